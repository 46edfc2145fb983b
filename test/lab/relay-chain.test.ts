/**
 * Two `onionpunch relay` processes in a chain on loopback (no root needed), configured only through operator
 * flags: relay 2 keeps a link to relay 1 (`addnode`). A sender (a Peer, as serve's announcer) talks to relay 1, a
 * collector (a Peer, as proxy's collector) to relay 2. A fresh announcement reaches the collector through both
 * relays; a stale one (11 minutes old) does not; a flood of 10,000 announcements from one peer is cut to the
 * rate limit (counted at the collector) and relay 1's memory stays bounded (RSS from /proc, reported).
 * Then the real verbs: `serve` (its onion on a private Tor network on loopback) announces to relay 1 and `proxy`
 * learns the announcement from relay 2, with the two relays as both sides' NAT-check servers; "bitcoind B" connects
 * through the proxy, the proxy punches over Tor and serve splices to "bitcoind A".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SocksClient } from 'socks';
import { connectPeer, Peer } from '../../src/peer/index.js';
import { formatOnion, type AddrV2Entry } from '../../src/wire/index.js';
import { RELAY_BUCKET_INITIAL, makeAnnouncement } from '../../src/relay/index.js';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';
import { serverOn, verb, type VerbProcess } from '../helpers/daemon-verbs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ann = (timeOffsetS = 0, clearPort = 8333): AddrV2Entry =>
  makeAnnouncement({
    coordination: formatOnion(randomBytes(32)),
    coordinationPort: 18444,
    clearnet: { address: '203.0.113.24', port: clearPort },
    nowS: Math.floor(Date.now() / 1000) + timeOffsetS,
  });

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function peerTo(port: number): Promise<{ peer: Peer; got: AddrV2Entry[] }> {
  const { peer } = await connectPeer({ host: '127.0.0.1', port, network: 'regtest' });
  const got: AddrV2Entry[] = [];
  peer.on('message', (cmd, payload) => {
    if (cmd === 'addrv2') got.push(...peer.decode('addrv2', payload).addrs);
  });
  return { peer, got };
}

test(
  'relay chain: fresh announcement crosses two relays, stale does not, a flood keeps the rate',
  {
    timeout: 120_000,
  },
  async (t) => {
    const lines1: string[] = [];
    const lines2: string[] = [];
    const procs: VerbProcess[] = [];
    const peers: Peer[] = [];
    t.after(async () => {
      for (const p of peers) p.close();
      for (const p of procs.reverse()) await p.stop();
    });
    const common = ['--network', 'regtest', '--bind', '127.0.0.1', '--port', '0', '--log', 'json', '--json'];
    const r1 = verb('relay', common, lines1);
    procs.push(r1);
    const port1 = Number((await r1.ready).port);
    const r2 = verb('relay', [...common, '--addnode', `127.0.0.1:${port1}`], lines2);
    procs.push(r2);
    const port2 = Number((await r2.ready).port);
    await until('relay 2 linked to relay 1', () => lines2.some((l) => l.includes('"peer-connected"')));

    const sender = await peerTo(port1);
    const collector = await peerTo(port2);
    peers.push(sender.peer, collector.peer);
    await sleep(200); // both handshakes settled at the relays

    const stale = ann(-660);
    const fresh = ann();
    sender.peer.send('addrv2', { addrs: [stale] });
    sender.peer.send('addrv2', { addrs: [fresh] });
    await until('the fresh announcement at the collector', () => collector.got.length >= 1);
    await sleep(300);
    // Same path, same order: had the stale one been relayed it would have arrived first.
    assert.deepEqual(
      collector.got.map((e) => e.address),
      [fresh.address],
      'only the fresh announcement arrived',
    );
    assert.equal(lines1.filter((l) => l.includes('"announcement-relayed"')).length, 1, 'relay 1 accepted one');
    assert.equal(lines2.filter((l) => l.includes('"announcement-relayed"')).length, 1, 'relay 2 accepted one');

    // Flood: 10,000 fresh announcements from one new peer, in 1000 messages of 10 (still relayable).
    const flooder = await peerTo(port1);
    peers.push(flooder.peer);
    await sleep(200);
    const before = rssKb(r1.child.pid!);
    const t0 = Date.now();
    for (let m = 0; m < 1000; m++) {
      flooder.peer.send('addrv2', { addrs: Array.from({ length: 10 }, (_, i) => ann(0, 1 + m * 10 + i)) });
      if (flooder.peer.sendPaused) await sleep(5);
    }
    // Ask relay 1 for a round trip: its pong comes after it has handled every addrv2 before the ping.
    await flooder.peer.ping(30_000);
    const settled = collector.got.length;
    await sleep(500);
    const elapsedS = (Date.now() - t0) / 1000;
    const after = rssKb(r1.child.pid!);
    const got = collector.got.length - 1;
    // A new peer's bucket holds one message's worth, then earns 0.1/s (RELAY_BUCKET_INITIAL).
    const limit = RELAY_BUCKET_INITIAL + Math.ceil(elapsedS * 0.1) + 1;
    t.diagnostic(
      `flood: 10000 sent, relay 1 forwarded ${sender.got.length}, ${got} reached the collector ` +
        `in ${elapsedS.toFixed(1)} s (limit ${limit}); ` +
        `relay 1 RSS ${before} kB before, ${after} kB after (+${after - before} kB)`,
    );
    // The sender is relay 1's other neighbour: it sees what relay 1 itself forwarded (the collector's count is also
    // cut by relay 2's meter of its link to relay 1).
    const fwd = sender.got.length;
    assert.ok(fwd <= limit && fwd >= RELAY_BUCKET_INITIAL, `relay 1 forwarded ${fwd}`);
    assert.ok(got <= limit, `forwarded ${got} <= ${limit}`);
    // Relay 2 credited its link to relay 1 for the getaddr answer it asked for on connect, so its meter cuts none.
    assert.ok(got >= RELAY_BUCKET_INITIAL, `the new peer's budget went through (${got}, ${settled - 1} at the pong)`);
    assert.ok(after - before < 64 * 1024, `relay 1 RSS grew ${after - before} kB (< 64 MB)`);

    assert.equal(await r2.stop(), 0);
    assert.equal(await r1.stop(), 0);
    type Shutdown = { dropped: { rateLimited: number; stale: number } };
    const shut = JSON.parse(lines1.find((l) => l.includes('"shutdown"'))!) as Shutdown;
    assert.ok(shut.dropped.rateLimited >= 10_000 - limit, `relay 1 rate-limited ${shut.dropped.rateLimited}`);
    assert.equal(shut.dropped.stale, 1);
  },
);

test(
  'serve announces to relay 1, proxy learns from relay 2, punches and splices; relays are the NAT check',
  {
    timeout: 150_000,
  },
  async (t) => {
    const lines: string[] = [];
    const procs: VerbProcess[] = [];
    let net: PrivateTor | undefined;
    t.after(async () => {
      for (const p of procs.reverse()) await p.stop();
      await net?.stop();
    });
    net = await startPrivateTor({ timeoutMs: 100_000 });
    // "bitcoind A": the responder the punched peer is spliced to.
    const btcA = await serverOn((s) => {
      const p = new Peer(s, { network: 'regtest', role: 'responder', userAgent: '/bitcoind-A-standin/' });
      p.handshake().catch(() => undefined);
    });
    t.after(() => {
      for (const s of btcA.sockets) s.destroy();
      btcA.server.close();
    });
    const base = ['--network', 'regtest', '--log', 'json', '--json'];
    const r1 = verb('relay', [...base, '--bind', '127.0.0.1', '--port', '0'], lines);
    procs.push(r1);
    const port1 = Number((await r1.ready).port);
    const r2 = verb('relay', [...base, '--bind', '127.0.0.1', '--port', '0', '--addnode', `127.0.0.1:${port1}`], lines);
    procs.push(r2);
    const port2 = Number((await r2.ready).port);
    await until('relay 2 linked to relay 1', () => lines.some((l) => l.includes('"peer-connected"')));
    // The two relays are the NAT-check servers of both sides; loopback punch settings as in daemon-e2e.test.ts.
    const punch = [
      '--natcheck',
      `127.0.0.1:${port1}`,
      '--natcheck',
      `127.0.0.1:${port2}`,
      '--bind',
      '127.0.0.1',
      '--loopback',
      '--maxsyns',
      '20000',
      '--shutdowngrace',
      '1',
    ];
    const proxy = verb(
      'proxy',
      [
        ...base,
        ...punch,
        '--listen',
        '127.0.0.1:0',
        '--proxy',
        `127.0.0.1:${net.socksB.port}`,
        '--peer',
        `127.0.0.1:${port2}`,
        '--punchprofile',
        'plain',
        '--resyninterval',
        '1037',
      ],
      lines,
    );
    procs.push(proxy);
    const socksPort = Number(
      String((await proxy.ready).socks)
        .split(':')
        .pop(),
    );
    const serve = verb(
      'serve',
      [
        ...base,
        ...punch,
        '--torcontrol',
        `127.0.0.1:${net.controlA.port}`,
        '--externalip',
        '127.0.0.1',
        '--punchport',
        '18444',
        '--announce',
        `127.0.0.1:${port1}`,
        '--announceinterval',
        '10',
        '--bitcoind',
        `127.0.0.1:${btcA.port}`,
        '--resyninterval',
        '1000',
      ],
      lines,
    );
    procs.push(serve);
    const info = await serve.ready;
    const coordination = String(info.coordination);
    const learned = () => lines.find((l) => l.includes('"announcement-learned"') && l.includes('"component":"proxy"'));
    await until('proxy learned the announcement', () => learned() !== undefined, 60_000);
    const rec = JSON.parse(learned()!) as { coordination: string; clearnet: string; from: string };
    assert.equal(rec.coordination, coordination);
    assert.equal(rec.clearnet, '127.0.0.1:18444');
    assert.equal(rec.from, `127.0.0.1:${port2}`, 'heard from relay 2, which never talked to serve');
    const relayed = lines.filter(
      (l) => l.includes('"announcement-relayed"') && l.includes(coordination.split(':')[0]!),
    );
    assert.ok(relayed.length >= 2, `both relays accepted it (${relayed.length} relay records)`);

    // "bitcoind B" dials the announced endpoint through the proxy: punched over Tor, spliced to "bitcoind A".
    const { socket } = await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port: socksPort, type: 5 },
      command: 'connect',
      destination: { host: '127.0.0.1', port: 18444 },
      timeout: 100_000,
    }).catch((err: unknown) => {
      // The SOCKS reply code alone does not say which step failed: the daemons' own records do.
      const tail = lines.filter((l) => !l.includes('"announcement-')).slice(-40);
      throw new Error(`${(err as Error).message}; the daemons' last lines:\n${tail.join('\n')}`);
    });
    t.after(() => void socket.destroy());
    const b = new Peer(socket, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 20_000 });
    const hs = await b.handshake();
    assert.equal(hs.version.userAgent, '/bitcoind-A-standin/', 'the handshake crossed the punched, spliced path');
    b.close();
    const checks = lines.filter((l) => l.includes('"nat-check-done"')).map((l) => JSON.parse(l) as { mapping: string });
    assert.deepEqual(
      checks.map((c) => c.mapping),
      ['eim', 'eim'],
      'both EIM checks ran against the two relays',
    );
    for (const p of [serve, proxy, r2, r1]) assert.equal(await p.stop(), 0);
  },
);
