/**
 * Real Bitcoin nodes across the hole (issue #11, items 2 and 5), as root in the NAT lab: relays on two public
 * hosts, bcoin 1.0.2 + `onionpunch serve` (own tor client of a private Tor network) on site A, bcoin +
 * `onionpunch proxy` on site B, eim×eim (drop), 50 ms RTT and 2% loss on the WAN links. A mines 101 blocks;
 * B's node, configured with nothing but the proxy and RPC, is asked by the proxy to connect (addnode onetry),
 * the punch happens, and B syncs: B's best block hash equals A's, getpeerinfo shows B inbound on A (from the
 * splice) and A outbound on B. Then `ss -K` kills the punched connection on B: the proxy sees the peer drop,
 * asks again, a fresh punch carries the next 10 blocks. The same flow for cgnat×eim, fw6×fw6 over IPv6,
 * eim×eim with RST-answering NATs, and with I2P as the coordination overlay.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needsRoot } from '../helpers/root.js';
import { PunchRig } from '../../src/lab/demo/rig.js';
import { bcoinAvailable } from '../../src/lab/nodes/bcoin.js';

const rootSkip = needsRoot('network namespaces, nftables').skip;
const skip = rootSkip || (bcoinAvailable() ? false : 'bcoin is not installed (npm ci)');

test(
  "eim×eim: B's node syncs A's 101 blocks over a punched connection it was asked to make; ss -K → fresh punch",
  { timeout: 240_000, skip },
  async (t) => {
    let rig: PunchRig | undefined;
    t.after(async () => {
      await rig?.down();
    });
    const log = process.env['ONIONPUNCH_TEST_LOG'] ? (l: string) => process.stderr.write(`${l}\n`) : undefined;
    rig = await PunchRig.up(
      {
        a: { nat: 'eim', inbound: 'drop' },
        b: { nat: 'eim', inbound: 'drop' },
        delayMs: 12.5,
        lossPct: 2,
        nodes: 'bcoin',
        profile: 'plain',
        ...(log ? { log } : {}),
      },
      (r) => {
        rig = r;
      },
    );
    const r = await rig.syncNodes(120_000);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.heightA, 101);
    assert.equal(r.heightB, 101);
    assert.equal(r.hashB, r.hashA, "B's best block is A's");
    assert.ok(r.inboundOnA, "B is an inbound peer of A (serve spliced the punched socket to A's node)");
    assert.ok(r.outboundOnB, 'A is an outbound peer of B (through the proxy)');
    const kinds = r.events.map((e) => e.event);
    for (const e of ['mined', 'announced', 'relayed', 'learned', 'addnode', 'punched', 'spliced', 'synced']) {
      assert.ok(kinds.includes(e), `timeline has ${e}`);
    }
    assert.ok(r.timeToConnectMs !== undefined && r.timeToConnectMs > 0);
    t.diagnostic(`timeToConnectMs ${r.timeToConnectMs} syncMs ${r.syncMs}`);

    // The punched connection dies: the proxy notices the dropped peer, asks again, and a fresh punch syncs more.
    const sites = rig.nodeSites!;
    const punchesBefore = sites.proxy!.count('punch-connected');
    await sites.killPunched();
    await sites.proxy!.waitFor('punch-peer-lost', 30_000);
    await sites.nodeA!.mine(10);
    const r2 = await rig.syncNodes(90_000, 111);
    assert.equal(r2.error, undefined, JSON.stringify(r2.error));
    assert.equal(r2.hashB, r2.hashA);
    assert.ok(sites.proxy!.count('punch-connected') > punchesBefore, 'a fresh punch');
    t.diagnostic(`after ss -K: timeToConnectMs ${r2.timeToConnectMs} syncMs ${r2.syncMs}`);
  },
);

for (const c of [
  {
    name: 'cgnat×eim',
    a: { nat: 'eim' as const, inbound: 'drop' as const, cgnat: true },
    b: { nat: 'eim' as const, inbound: 'drop' as const },
  },
  {
    name: 'fw6×fw6 over IPv6',
    a: { nat: 'eim' as const, inbound: 'drop' as const, ipv6: 'fw6' as const },
    b: { nat: 'eim' as const, inbound: 'drop' as const, ipv6: 'fw6' as const },
    family: 6 as const,
  },
  // NATs that answer an unsolicited SYN with RST: the plain profile's re-SYN grid carries it (docs/BENCHMARKS.md).
  {
    name: 'eim×eim (rst)',
    a: { nat: 'eim' as const, inbound: 'rst' as const },
    b: { nat: 'eim' as const, inbound: 'rst' as const },
  },
  // serve --zerortt: A announces its warm punch port with NODE_HOLEPUNCH_ZRTT; B's proxy sends its whole request
  // in one write and fires at once (docs/PROTOCOL.md "Zero-round-trip coordination").
  {
    name: 'eim×eim zero-round-trip',
    a: { nat: 'eim' as const, inbound: 'drop' as const },
    b: { nat: 'eim' as const, inbound: 'drop' as const },
    zeroRtt: true,
  },
  // I2P as the coordination overlay of serve and proxy (a private 4-router network, `i2phops 0`).
  {
    name: 'eim×eim over I2P',
    a: { nat: 'eim' as const, inbound: 'drop' as const },
    b: { nat: 'eim' as const, inbound: 'drop' as const },
    overlay: 'i2p' as const,
  },
]) {
  test(`${c.name}: B's node syncs A's 101 blocks through the punch`, { timeout: 200_000, skip }, async (t) => {
    let rig: PunchRig | undefined;
    t.after(async () => {
      await rig?.down();
    });
    rig = await PunchRig.up(
      {
        a: c.a,
        b: c.b,
        ...(c.family ? { family: c.family } : {}),
        ...('overlay' in c ? { overlay: c.overlay } : {}),
        ...('zeroRtt' in c ? { zeroRtt: c.zeroRtt } : {}),
        delayMs: 12.5,
        lossPct: 2,
        nodes: 'bcoin',
        profile: 'plain',
      },
      (r) => {
        rig = r;
      },
    );
    const r = await rig.syncNodes(90_000);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.heightB, 101);
    assert.equal(r.hashB, r.hashA);
    assert.ok(r.inboundOnA && r.outboundOnB, 'B inbound on A, A outbound on B');
    if ('zeroRtt' in c) {
      // The announcement carried the bit and the punch that B's node uses took the fast path on both sides.
      const sites = rig.nodeSites!;
      assert.ok(
        sites.serve!.lines.some((l) => l.event === 'zero-rtt-port'),
        'serve confirmed its warm port',
      );
      const fast = (v: NonNullable<typeof sites.proxy>, e: string) =>
        v.lines.some((l) => l.event === e && l.zeroRtt === true);
      assert.ok(fast(sites.proxy!, 'punch-connected'), 'the proxy punched on the zero-round-trip path');
      assert.ok(fast(sites.serve!, 'session-punched'), 'serve answered from its warm port');
    }
    t.diagnostic(`timeToConnectMs ${r.timeToConnectMs} syncMs ${r.syncMs}`);
  });
}
