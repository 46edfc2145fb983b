/**
 * Zero-round-trip coordination end to end in the NAT lab (docs/PROTOCOL.md "Zero-round-trip coordination"):
 * eim×eim with NATs that drop unsolicited SYNs, 50 ms RTT, 2% loss, coordination over the private Tor network.
 * A keeps a warm announced port; B alternates the measured-RTT flow and the fast path. Asserts that every attempt
 * connects (the fast path or its fallback), that most fast-path attempts stayed on it, and that A's time from
 * request to established on the fast path is well below the measured flow's (generous slack: the exact bound,
 * 1 direct RTT + 20 ms, is for docs/BENCHMARKS.md, not a timed test).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { needsRoot } from '../helpers/root.js';
import { PunchRig, type AttemptResult } from '../../src/lab/demo/rig.js';
import { median } from '../../src/lab/stats.js';

const RUNS = Number(process.env.ONIONPUNCH_LAB_RUNS ?? 8);

describe(
  'zero-round-trip coordination over Tor (eim×eim, drop)',
  { ...needsRoot('network namespaces, nftables, tor'), timeout: 600_000 },
  () => {
    let rig: PunchRig | undefined;
    before(async () => {
      rig = await PunchRig.up({
        delayMs: 12.5,
        lossPct: 2,
        profile: 'plain',
        zeroRtt: true,
        a: { nat: 'eim', inbound: 'drop' },
        b: { nat: 'eim', inbound: 'drop' },
        family: 4,
      });
    });
    after(async () => {
      await rig?.down();
    });

    test(`${RUNS} measured and ${RUNS} zero-RTT punches, interleaved`, async () => {
      assert.ok(rig!.zeroRttPort !== undefined, 'A announced a warm punch port');
      const measured: AttemptResult[] = [];
      const fast: AttemptResult[] = [];
      const fail = (r: AttemptResult, what: string): never => {
        const tl = r.events.map((e) => `${e.who} ${e.event}${e.detail ? ` ${e.detail}` : ''}`).join('\n  ');
        return assert.fail(`${what} failed: ${r.error?.code}: ${r.error?.message}\n  ${tl}`);
      };
      for (let i = 0; i < RUNS; i++) {
        const m = await rig!.attempt(60_000);
        if (!m.ok) fail(m, `measured #${i + 1}`);
        measured.push(m);
        const z = await rig!.attempt(60_000, { zeroRtt: true });
        if (!z.ok) fail(z, `zero-RTT #${i + 1}`);
        fast.push(z);
      }
      const used = fast.filter((r) => r.zeroRttUsed);
      const ttc = (xs: AttemptResult[]): number[] => xs.map((r) => r.timeToConnectMs!).filter((x) => x !== undefined);
      const mMed = median(ttc(measured));
      const zMed = median(ttc(used));
      const direct = median(fast.map((r) => r.directRttMs!).filter((x) => x !== undefined));
      console.log(
        JSON.stringify({
          runs: RUNS,
          fastPath: used.length,
          fallbacks: fast.map((r) => r.zeroRttFallback).filter(Boolean),
          medianMeasuredMs: mMed,
          medianZeroRttMs: zMed,
          medianDirectRttMs: direct,
          zeroRtt: ttc(fast).map((x) => Math.round(x)),
        }),
      );
      assert.ok(used.length >= Math.ceil(RUNS / 2), `the fast path connected ${used.length} of ${RUNS} times`);
      // The fast path saves at least the overlay round trip and A's fire delay (≈ 80 ms in this lab).
      assert.ok(zMed < mMed - 30, `zero-RTT median ${zMed} ms vs measured ${mMed} ms`);
      assert.ok(zMed < 3 * direct, `zero-RTT median ${zMed} ms within a few direct RTTs (${direct} ms)`);
    });
  },
);
