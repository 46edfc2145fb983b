/**
 * Adversarial run against the real punch listener (A) and client (B) on loopback, with the real native engine
 * and A's default limits: for ~12 s at once
 *  - slowloris: 8 connections that never send a version, each trickling a 24-byte unknown message every
 *    second (below every step timeout), reconnecting whenever A drops them — the issue's "8 cheap
 *    connections hold A busy forever";
 *  - SYN cannon: requests asking A to fire at port 22 / 25, at 3 endpoints, at 2 IPs, and repeatedly at one
 *    victim IP;
 *  - redirect: a forged announcement (victim IP 127.0.0.1, attacker's coordination endpoint whose A punches
 *    from 127.0.0.2) offered to a second B;
 * while legitimate Bs (each its own host: 127.0.1.N) punch A every 2 s. Checks: the process stays up (an uncaught
 * error would fail the run), legitimate punches succeed, attackers get what docs/SECURITY.md says, RSS growth is
 * reported.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PunchEngine } from '../../src/native/engine.js';
import type { PunchEngineLike, PunchPlanLike } from '../../src/punch/engine-port.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { PunchClient } from '../../src/punch/client.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import {
  clientOpts,
  eimAt,
  listenerOpts,
  loopbackOverlay,
  rawPeer,
  until,
  type RawPeer,
} from '../helpers/punch-loopback.js';

const engA = new PunchEngine();
const engB = new PunchEngine();
const engX = new PunchEngine();
after(async () => {
  await engA.stop();
  await engB.stop();
  await engX.stop();
});

function counting(eng: PunchEngine): PunchEngineLike & { plans: PunchPlanLike[] } {
  const plans: PunchPlanLike[] = [];
  return {
    plans,
    now: () => eng.now(),
    probeBind: (l) => eng.probeBind(l),
    punch: (p) => (plans.push(p), eng.punch(p)),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const tally = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);

test(
  'attacks on the punch service: legitimate B served, attackers bounded, process up, RSS reported',
  { timeout: 120_000 },
  async () => {
    const a = counting(engA);
    const listener = await createPunchListener(listenerOpts(a)); // default limits (only the loopback SYN cap raised)
    const overlay = await loopbackOverlay(listener);
    const attackerA = await createPunchListener(listenerOpts(engX, '127.0.0.2'));
    const attackerOverlay = await loopbackOverlay(attackerA);
    const failuresA = new Map<string, number>();
    listener.on('failure', (e) => tally(failuresA, e.code));
    const b = counting(engB);
    /** A legitimate B on its own loopback "host" (A's per-target-IP limit is per B host, as in reality). */
    const legitB = (n: number): PunchClient =>
      new PunchClient(clientOpts(b, overlay.dialer, { localAddress: `127.0.1.${n}`, eim: eimAt(`127.0.1.${n}`) }));
    const victimB = counting(engB);
    const redirected = new PunchClient(clientOpts(victimB, attackerOverlay.dialer));

    // Warm up (first punch loads everything), then take the baseline.
    (await legitB(0).punch({ address: 'a.onion', port: overlay.port, expectIp: '127.0.0.1' })).socket.destroy();
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const DURATION = 12_000;
    const t0 = performance.now();
    const running = (): boolean => performance.now() - t0 < DURATION;

    // Slowloris: 8 held connections, reconnecting when dropped.
    const slow = { connects: 0, closes: 0, maxLifeMs: 0 };
    const holders = Array.from({ length: 8 }, async () => {
      while (running()) {
        let p: RawPeer;
        try {
          p = await rawPeer(overlay.port);
        } catch {
          await sleep(250);
          continue;
        }
        slow.connects++;
        p.trickle(1000);
        const life = await Promise.race([
          p.closed,
          sleep(DURATION + 1000 - (performance.now() - t0)).then(() => undefined),
        ]);
        if (life === undefined) {
          p.sock.destroy();
          break;
        }
        slow.closes++;
        slow.maxLifeMs = Math.max(slow.maxLifeMs, life);
        await sleep(250);
      }
    });

    // SYN cannon: one request a second, alternating bad shapes with requests aimed at one victim IP.
    const cannon = new Map<string, number>();
    const shapes: [string, { address: string; port: number }[]][] = [
      ['port22', [{ address: '127.0.0.1', port: 22 }]],
      ['victim', [{ address: '127.0.0.3', port: 42100 }]],
      ['port25', [{ address: '127.0.0.1', port: 25 }]],
      ['victim', [{ address: '127.0.0.3', port: 42101 }]],
      ['three', [1, 2, 3].map((i) => ({ address: '127.0.0.1', port: 42000 + i }))],
      ['victim', [{ address: '127.0.0.3', port: 42102 }]],
      [
        'two-ips',
        [
          { address: '127.0.0.1', port: 42000 },
          { address: '127.0.0.2', port: 42000 },
        ],
      ],
      ['victim', [{ address: '127.0.0.3', port: 42103 }]],
    ];
    const cannonLoop = (async () => {
      for (let i = 0; running(); i++) {
        const [name, endpoints] = shapes[i % shapes.length]!;
        try {
          const p = await rawPeer(overlay.port);
          const sessionId = Buffer.alloc(16, i);
          p.send({ cmd: 'version', nonce: BigInt(i), userAgent: '/cannon/' });
          p.send({ cmd: 'opendpoint', sessionId, flags: 0, endpoints });
          const m = await until(p, ['opreject', 'opendpoint'], 5000);
          if (m.cmd === 'opreject') tally(cannon, `${name}:reject:${m.code}`);
          else {
            p.send({ cmd: 'opfire', sessionId, delayUs: 0, profile: 'plain', deadlineMs: 300 });
            const r = await until(p, ['opresult', 'opreject'], 5000);
            tally(cannon, `${name}:${r.cmd === 'opresult' ? 'fired' : `reject:${r.code}`}`);
          }
          p.sock.destroy();
        } catch (err) {
          tally(cannon, `${name}:error:${(err as PunchSessionError).code ?? (err as Error).message}`);
        }
        await sleep(1000);
      }
    })();

    // Redirect: a second B offered the forged announcement every 3 s.
    const redirect = new Map<string, number>();
    const redirectLoop = (async () => {
      while (running()) {
        try {
          const r = await redirected.punch({
            address: 'fake.onion',
            port: attackerOverlay.port,
            clearnet: { address: '127.0.0.1', port: 8333 },
          });
          r.socket.destroy();
          tally(redirect, 'CONNECTED');
        } catch (err) {
          tally(redirect, (err as PunchSessionError).code ?? 'error');
        }
        await sleep(3000);
      }
    })();

    // The legitimate B.
    const legit: { ok: boolean; ms: number; code?: string }[] = [];
    const legitLoop = (async () => {
      await sleep(1500); // let the slowloris connections fill the slots first
      for (let n = 1; running(); n++) {
        const s = performance.now();
        try {
          const r = await legitB(n).punch({ address: 'a.onion', port: overlay.port, expectIp: '127.0.0.1' });
          r.socket.destroy();
          legit.push({ ok: true, ms: performance.now() - s });
        } catch (err) {
          legit.push({ ok: false, ms: performance.now() - s, code: (err as PunchSessionError).code });
        }
        await sleep(2000);
      }
    })();

    await Promise.all([...holders, cannonLoop, redirectLoop, legitLoop]);
    for (let i = 0; i < 100 && listener.stats.active > 0; i++) await sleep(100);
    global.gc?.();
    const rssGrowthMb = (process.memoryUsage().rss - rss0) / 1e6;
    const victimPlans = a.plans.filter((p) => p.remotes.some((r) => r.address === '127.0.0.3')).length;
    const report = {
      durationS: +((performance.now() - t0) / 1000).toFixed(1),
      rssGrowthMb: +rssGrowthMb.toFixed(1),
      legit: {
        attempts: legit.length,
        ok: legit.filter((l) => l.ok).length,
        maxMs: Math.round(Math.max(...legit.map((l) => l.ms))),
        failures: legit.filter((l) => !l.ok).map((l) => l.code),
      },
      slowloris: slow,
      cannon: Object.fromEntries(cannon),
      victimPlans,
      redirect: Object.fromEntries(redirect),
      redirectSynPlans: victimB.plans.length,
      stats: listener.stats,
      failuresA: Object.fromEntries(failuresA),
    };
    console.log(JSON.stringify(report));
    try {
      assert.ok(legit.length >= 3, 'the legitimate B tried throughout');
      // What the attack could cause is a lockout: a refusal, an eviction or a deadline. A loopback simultaneous
      // open that misses its re-SYN grid on a loaded machine (PUNCH_CONNECT_TIMEOUT) is not the attack's doing;
      // one such miss is tolerated, a lockout never.
      const lockouts = legit.filter((l) => !l.ok && l.code !== 'PUNCH_CONNECT_TIMEOUT');
      assert.deepEqual(
        lockouts,
        [],
        `no legitimate punch was locked out during the attack: ${JSON.stringify(report.legit)}`,
      );
      assert.ok(
        report.legit.ok >= legit.length - 1,
        `the legitimate punches succeeded: ${JSON.stringify(report.legit)}`,
      );
      assert.ok(
        slow.maxLifeMs < 10_000 + 2000,
        `no slowloris connection outlived the request deadline (${slow.maxLifeMs} ms)`,
      );
      assert.ok(listener.stats.evicted >= 1, 'legitimate sessions took the slots of stalled ones');
      for (const [k, n] of cannon) {
        // Refused for its shape, or (cap full of fresh sessions) busy: never fired.
        if (!k.startsWith('victim'))
          assert.ok(k.endsWith(':reject:bad-request') || k.endsWith(':reject:busy'), `${k} x${n}`);
      }
      assert.ok(victimPlans <= 4, `A fired at the victim IP ${victimPlans} times (burst 4)`);
      assert.ok((cannon.get('victim:reject:rate-limited') ?? 0) >= 1, 'then refused it');
      assert.equal(redirect.get('CONNECTED'), undefined, 'the forged announcement never produced a socket');
      assert.equal(victimB.plans.length, 0, 'the redirected B never fired a SYN');
      assert.equal(listener.stats.active, 0, 'no session left behind');
      assert.ok(rssGrowthMb < 64, `RSS grew ${rssGrowthMb.toFixed(1)} MB`);
    } finally {
      await listener.close();
      await attackerA.close();
      overlay.server.close();
      attackerOverlay.server.close();
    }
  },
);
