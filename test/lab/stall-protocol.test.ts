/**
 * The `opstall` rules of docs/PROTOCOL.md through whole sessions in the NAT lab (eim routers that drop
 * unsolicited inbound, real conntrack, 50 ms RTT, no random loss), coordination over plain TCP (`overlay:
 * 'direct'`). The losses are nft rules on A's router, before its conntrack sees the packet: B's first punch SYN
 * (as when B's SYN reaches A's NAT before A's own SYN has opened it) and B's first SYN-ACK. A's SYN then reaches
 * B, whose answer is lost: B sits in SYN_RECV and A in SYN_SENT, the case the kernel alone resolves only with
 * its 1 s retransmission. A reports its stall; B, which has reported nothing, re-sends from a fresh socket. And
 * the mirror case: A's answer lost with A in SYN_RECV, B reports, A re-sends (a silent close in repair mode).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { needsRoot } from '../helpers/root.js';
import { DIRECT_PORT, PunchRig, type AttemptResult } from '../../src/lab/demo/rig.js';

describe(
  'stall reports in whole sessions (direct coordination, lab NATs)',
  needsRoot('network namespaces and nftables'),
  () => {
    let rig: PunchRig | undefined;
    before(async () => {
      rig = await PunchRig.up({
        delayMs: 12.5,
        lossPct: 0,
        overlay: 'direct',
        profile: 'plain',
        a: { nat: 'eim', inbound: 'drop' },
        b: { nat: 'eim', inbound: 'drop' },
        family: 4,
      });
    });
    after(async () => {
      await rig?.down();
    });

    /** Drops, on `on`'s router before its conntrack, the first punch packet from the other site matching `flags`. */
    async function dropFirst(on: 'a' | 'b', flags: string, chain: string): Promise<void> {
      const lab = rig!.lab;
      const from = lab.sites[on === 'a' ? 'b' : 'a']!.publicIp;
      const rules =
        `table inet ${chain} {\n chain pre {\n  type filter hook prerouting priority -300; policy accept;\n` +
        // The coordination connection's packets carry DIRECT_PORT as A's port; one condition only (nft merges
        // `sport != X dport != Y` into one 4-byte "not both" comparison).
        `  iifname "wan" ip saddr ${from} tcp ${on === 'a' ? 'dport' : 'sport'} != ${DIRECT_PORT} ` +
        `tcp flags & (syn | ack) == ${flags} quota until 60 bytes drop\n }\n}\n`;
      const r = await lab.exec(lab.sites[on]!.router.key, ['nft', '-f', '-'], { input: rules });
      assert.equal(r.code, 0, r.stderr);
    }

    async function clearDrops(): Promise<void> {
      for (const site of ['a', 'b']) {
        for (const t of ['stall_syn', 'stall_synack']) {
          await rig!.lab.exec(rig!.lab.sites[site]!.router.key, ['nft', 'delete', 'table', 'inet', t]).catch(() => 0);
        }
      }
    }

    const has = (r: AttemptResult, who: string, event: string, detail?: string): boolean =>
      r.events.some((e) => e.who === who && e.event === event && (detail === undefined || e.detail === detail));
    const show = (r: AttemptResult): string => r.events.map((e) => `${e.who} ${e.event} ${e.detail ?? ''}`).join('\n');

    test("B's SYN-ACK lost with B in SYN_RECV: A's report makes B re-send, well before the kernel's 1 s", async () => {
      const warm = await rig!.attempt(30_000);
      assert.ok(warm.ok, show(warm));
      try {
        await dropFirst('a', 'syn', 'stall_syn');
        await dropFirst('a', 'syn | ack', 'stall_synack');
        const r = await rig!.attempt(30_000);
        assert.ok(r.ok && r.handshake, show(r));
        console.log(JSON.stringify({ timeToConnectMs: r.timeToConnectMs, warmMs: warm.timeToConnectMs }));
        assert.ok(has(r, 'A', 'stall-sent'), show(r));
        assert.ok(has(r, 'B', 'stall-received', 'recv-only'), show(r));
        assert.ok(!has(r, 'B', 'stall-sent'), `B was in SYN_RECV at its stall check:\n${show(r)}`);
        // Fire ≈ 50 ms after the request, A's report at + 200 ms, B's fresh SYN and the handshake one RTT more;
        // the kernel's own retransmission would come 1 s after A's SYN.
        assert.ok(r.timeToConnectMs! < 800, `connected after ${r.timeToConnectMs} ms\n${show(r)}`);
      } finally {
        await clearDrops();
      }
    });

    test("A's SYN-ACK lost with A in SYN_RECV: B's report makes A re-send from SYN_RECV, silently", async () => {
      try {
        await dropFirst('b', 'syn', 'stall_syn');
        await dropFirst('b', 'syn | ack', 'stall_synack');
        const r = await rig!.attempt(30_000);
        assert.ok(r.ok && r.handshake, show(r));
        console.log(JSON.stringify({ timeToConnectMs: r.timeToConnectMs }));
        assert.ok(has(r, 'B', 'stall-sent'), show(r));
        assert.ok(has(r, 'A', 'stall-received', 'any'), show(r));
        assert.ok(!has(r, 'A', 'stall-sent'), `A was in SYN_RECV at its stall check:\n${show(r)}`);
        assert.ok(!r.events.some((e) => e.event === 'engine:rst'), `a RST on the way:\n${show(r)}`);
        assert.ok(r.timeToConnectMs! < 800, `connected after ${r.timeToConnectMs} ms\n${show(r)}`);
      } finally {
        await clearDrops();
      }
    });
  },
);
