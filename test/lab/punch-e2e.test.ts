/**
 * Hole punching end to end in the NAT lab, coordination over a private Tor network: 50 ms RTT between the
 * sites (12.5 ms one-way per access link) and 2% loss per access link and direction. One lab + one Tor network
 * for the pairs that differ only in NAT rules (routers reconfigured in place), one more for the carrier NAT.
 * Each pair: consecutive attempts, all must connect and carry a Bitcoin version handshake both ways;
 * EDM on one side is sprayed (test/lab/lab-spray.test.ts), on both refused (test/lab/punch-demo.test.ts).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { needsRoot } from '../helpers/root.js';
import { PunchRig, type AttemptResult } from '../../src/lab/demo/rig.js';
import { median } from '../../src/lab/stats.js';

const RUNS = Number(process.env.ONIONPUNCH_LAB_RUNS ?? 10);
const COND = { delayMs: 12.5, lossPct: 2, profile: 'plain' as const };

interface Measured {
  pair: string;
  ttc: number[];
  overlay: number[];
  direct: number[];
}
const measured: Measured[] = [];

async function runPair(rig: PunchRig, pair: string): Promise<void> {
  const results: AttemptResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await rig.attempt(60_000);
    results.push(r);
    if (!r.ok) {
      const tl = r.events.map((e) => `${e.who} ${e.event}${e.detail ? ` ${e.detail}` : ''}`).join('\n  ');
      assert.fail(`${pair} attempt ${i + 1}/${RUNS} failed: ${r.error?.code}: ${r.error?.message}\n  ${tl}`);
    }
  }
  const m: Measured = {
    pair,
    ttc: results.map((r) => r.timeToConnectMs!).filter((x) => x !== undefined),
    overlay: results.map((r) => r.overlayRttMs!).filter((x) => x !== undefined),
    direct: results.map((r) => r.directRttMs!).filter((x) => x !== undefined),
  };
  measured.push(m);
  console.log(
    JSON.stringify({
      pair,
      runs: RUNS,
      medianTtcMs: median(m.ttc),
      medianOverlayRttMs: median(m.overlay),
      medianDirectRttMs: median(m.direct),
      ttc: m.ttc.map((x) => Math.round(x)),
    }),
  );
  assert.equal(
    results.filter((r) => r.ok && r.handshake).length,
    RUNS,
    'every attempt connected and carried the Bitcoin handshake',
  );
}

describe(
  'punch e2e over Tor: shared lab (eim drop/rst, eim-shift, fw6)',
  { ...needsRoot('network namespaces, nftables, tor'), timeout: 600_000 },
  () => {
    let rig: PunchRig | undefined;
    before(async () => {
      rig = await PunchRig.up({
        ...COND,
        a: { nat: 'eim', inbound: 'drop' },
        b: { nat: 'eim', inbound: 'drop' },
        ipv6: true,
        family: 4,
      });
    });
    after(async () => {
      await rig?.down();
    });

    test(`eim×eim (drop): ${RUNS} consecutive punches`, async () => {
      assert.equal(rig!.eimA?.mapping, 'eim');
      assert.equal(rig!.eimB?.mapping, 'eim');
      await runPair(rig!, 'eim×eim (drop)');
    });

    test(`eim×eim (rst): ${RUNS} consecutive punches`, async () => {
      await rig!.reconfigure({ nat: 'eim', inbound: 'rst' }, { nat: 'eim', inbound: 'rst' }, 4);
      await runPair(rig!, 'eim×eim (rst)');
    });

    test(`eim-shift×eim: ${RUNS} consecutive punches (A's public port differs from its local port)`, async () => {
      await rig!.reconfigure({ nat: 'eim-shift', inbound: 'drop' }, { nat: 'eim', inbound: 'drop' }, 4);
      assert.equal(rig!.eimA?.mapping, 'eim');
      assert.equal(rig!.eimA?.portPreserving, false);
      await runPair(rig!, 'eim-shift×eim');
    });

    test(`fw6×fw6 over IPv6: ${RUNS} consecutive punches`, async () => {
      await rig!.reconfigure({ nat: 'eim', inbound: 'drop' }, { nat: 'eim', inbound: 'drop' }, 6);
      await runPair(rig!, 'fw6×fw6 (IPv6)');
    });

    // edm on one side is punched by a birthday spray now (the lab's workers allow it): test/lab/lab-spray.test.ts
    // covers edm×eim and eim×edm-pba through this lab's NATs, test/lab/punch-demo.test.ts the edm×edm refusal,
    // test/unit/punch-spray.test.ts the fail-fast refusal when hard-NAT punching is off.

    test('time from request to established: median <= 1.5 x overlay RTT + 2 x direct RTT', () => {
      assert.ok(measured.length > 0, 'pairs measured');
      for (const m of measured) {
        const bound = 1.5 * median(m.overlay) + 2 * median(m.direct);
        // The target itself (ratio <= 1) is reported here and in `lab matrix` / docs/BENCHMARKS.md. The test
        // fails only at twice the target: that catches a protocol regression (an extra overlay round trip, a
        // missed wave) without turning scheduler noise on a loaded 2-core machine into a red build.
        console.log(
          JSON.stringify({ pair: m.pair, medianTtcMs: median(m.ttc), boundMs: bound, ratio: median(m.ttc) / bound }),
        );
        assert.ok(
          median(m.ttc) <= 2 * bound,
          `${m.pair}: median ${median(m.ttc).toFixed(1)} ms > 2 x ${bound.toFixed(1)} ms`,
        );
      }
    });
  },
);

describe(
  'punch e2e over Tor: carrier-grade NAT on A',
  { ...needsRoot('network namespaces, nftables, tor'), timeout: 300_000 },
  () => {
    let rig: PunchRig | undefined;
    before(async () => {
      rig = await PunchRig.up({
        ...COND,
        a: { nat: 'eim', inbound: 'drop', cgnat: true },
        b: { nat: 'eim', inbound: 'drop' },
        family: 4,
      });
    });
    after(async () => {
      await rig?.down();
    });
    test(`cgnat×eim: ${RUNS} consecutive punches`, async () => {
      assert.equal(rig!.eimA?.mapping, 'eim');
      await runPair(rig!, 'cgnat×eim');
    });
  },
);
