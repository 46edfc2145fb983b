/**
 * The proxy's automatic outbound (src/daemon/outbound.ts) against real nodes: bcoin 1.0.2 on loopback as B's
 * node (asked over its JSON-RPC) and as A. B is asked to `addnode onetry` a fresh announcement's clearnet
 * endpoint, connects and syncs; a dropped peer is asked for again after its backoff; B's filters (one peer per
 * netgroup, the maxpunchpeers cap, stale announcements forgotten) hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AnnouncementDirectory, type Announcement } from '../../src/relay/index.js';
import { Logger } from '../../src/daemon/log.js';
import { NodeRpc } from '../../src/daemon/node-rpc.js';
import { PunchOutbound, OUTBOUND_POLL_MS } from '../../src/daemon/outbound.js';
import { freePort } from '../../src/lab/tor/private-tor-process.js';
import { formatOnion } from '../../src/wire/index.js';
import { bcoinSkip as skip, startBcoin } from '../helpers/bcoin-node.js';

function announcement(address: string, port: number, nowS = Math.floor(Date.now() / 1000)): Announcement {
  return {
    coordination: formatOnion(randomBytes(32)),
    coordinationPort: 8333,
    clearnet: { address, port },
    services: 1n,
    time: nowS,
  };
}

function logged(): { log: Logger; events: Array<Record<string, unknown>> } {
  const events: Array<Record<string, unknown>> = [];
  return {
    log: new Logger({ format: 'json', write: (l) => events.push(JSON.parse(l) as Record<string, unknown>) }),
    events,
  };
}

async function until(what: string, ms: number, f: () => boolean | Promise<boolean>): Promise<void> {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > ms) assert.fail(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test(
  "a fresh announcement makes B's node connect (addnode onetry) and sync; a dropped peer is asked for again",
  { timeout: 90_000, skip },
  async (t) => {
    const a = await startBcoin('A', { mine: 20 });
    const b = await startBcoin('B');
    const { log, events } = logged();
    const directory = new AnnouncementDirectory();
    const out = new PunchOutbound({ rpc: b.rpc, directory, maxPeers: 2, log });
    t.after(async () => {
      out.stop();
      await Promise.all([a.stop(), b.stop()]);
    });
    out.start();
    const ann = announcement('127.0.0.1', a.p2pPort);
    assert.ok(directory.add(ann, 'relay'));
    out.learned(ann);
    await b.waitForHeight(20, 30_000);
    const infoB = await b.info();
    assert.equal(infoB.hash, (await a.info()).hash, "B synced to A's tip");
    const peerOnB = infoB.peers.find((p) => p.addr === `127.0.0.1:${a.p2pPort}`);
    assert.ok(peerOnB && !peerOnB.inbound, 'A is an outbound peer of B');
    await until('punch-peer-connected', 2 * OUTBOUND_POLL_MS + 2000, () =>
      events.some((e) => e.event === 'punch-peer-connected'),
    );
    assert.equal(events.filter((e) => e.event === 'addnode').length, 1);

    // The node drops the peer: the manager notices (getpeerinfo) and asks again after the first backoff (5 s).
    await b.rpc.call('disconnectnode', [`127.0.0.1:${a.p2pPort}`]);
    await until('punch-peer-lost', 2 * OUTBOUND_POLL_MS + 2000, () =>
      events.some((e) => e.event === 'punch-peer-lost'),
    );
    await until('a second addnode', 20_000, () => events.filter((e) => e.event === 'addnode').length === 2);
    await until(
      'reconnected',
      2 * OUTBOUND_POLL_MS + 5000,
      () => events.filter((e) => e.event === 'punch-peer-connected').length === 2,
    );
    await a.mine(1);
    await b.waitForHeight(21, 20_000);
  },
);

test(
  "B's filters: one peer per netgroup, the maxpunchpeers cap, stale and re-pointed announcements",
  { timeout: 60_000, skip },
  async (t) => {
    const b = await startBcoin('B');
    const { log, events } = logged();
    let nowS = Math.floor(Date.now() / 1000);
    const directory = new AnnouncementDirectory({ nowS: () => nowS });
    const out = new PunchOutbound({ rpc: b.rpc, directory, maxPeers: 2, log });
    t.after(async () => {
      out.stop();
      await b.stop();
    });
    // Nobody listens on these ports: B's node tries and fails; what matters here is who is chosen.
    const dead = await freePort();
    const sameGroup = [announcement('127.0.0.1', dead, nowS), announcement('127.0.9.9', dead, nowS)];
    const others = [announcement('127.1.0.1', dead, nowS), announcement('127.2.0.1', dead, nowS)];
    for (const x of [...sameGroup, ...others]) assert.ok(directory.add(x, 'relay'));
    await out.round();
    const chosen = [...out.peers.values()];
    assert.equal(chosen.length, 2, 'the cap');
    assert.equal(new Set(chosen.map((p) => p.netgroup)).size, 2, 'distinct netgroups');
    assert.equal(events.filter((e) => e.event === 'addnode').length, 2);
    // A second coordination endpoint claiming a chosen clearnet endpoint is not a second peer.
    const chosenAddr = chosen[0]!.clearnet;
    directory.add(announcement(chosenAddr.address, chosenAddr.port, nowS), 'another');
    await out.round();
    assert.equal(out.peers.size, 2);
    // All announcements stale: every peer is forgotten, nothing is asked for.
    nowS += 601;
    await out.round();
    assert.equal(out.peers.size, 0);
    assert.equal(events.filter((e) => e.event === 'punch-peer-expired').length, 2);
    assert.equal(events.filter((e) => e.event === 'addnode').length, 2);
  },
);

test("the node's RPC down: logged with the fix, no crash, retried", { timeout: 30_000 }, async (t) => {
  const { log, events } = logged();
  const directory = new AnnouncementDirectory();
  const out = new PunchOutbound({
    rpc: new NodeRpc({ host: '127.0.0.1', port: await freePort(), timeoutMs: 1000 }),
    directory,
    maxPeers: 2,
    log,
  });
  t.after(() => out.stop());
  directory.add(announcement('198.51.100.7', 8333), 'relay');
  await out.round();
  const p = [...out.peers.values()][0]!;
  assert.equal(p.state, 'backoff');
  assert.equal(p.failures, 1);
  const warn = events.find((e) => e.event === 'node-rpc-failed');
  assert.ok(warn, 'warned');
  assert.match(String(warn.fix), /rpcconnect/);
});
