/**
 * An outsider asking A (hardnat on, default spray limits) for the biggest spray the wire allows: A is the easy
 * side, so every probe is a SYN from A to the IP the outsider names. A sends at most its own cap
 * (SPRAY_LIMITS.aSynsPerSession) whatever was asked, never to a bad port, and no more than the spray bucket's
 * burst of spray sessions at once. The real listener and native engine on loopback; the engine is wrapped only
 * to record the plans it is given.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PunchEngine } from '../../src/native/engine.js';
import type { PunchEngineLike, SprayPlanLike } from '../../src/punch/engine-port.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { isBadPort } from '../../src/punch/bad-ports.js';
import { SPRAY_LIMITS } from '../../src/wire/index.js';
import type { PunchSessionError } from '../../src/punch/errors.js';
import { listenerOpts, loopbackOverlay, rawPeer, until } from '../helpers/punch-loopback.js';

const engA = new PunchEngine();
after(() => engA.stop());

function recording(eng: PunchEngine): PunchEngineLike & { sprays: SprayPlanLike[] } {
  const sprays: SprayPlanLike[] = [];
  return {
    sprays,
    now: () => eng.now(),
    probeBind: (l) => eng.probeBind(l),
    punch: (p) => eng.punch(p),
    spray: (p) => (sprays.push(p), eng.spray(p as Parameters<PunchEngine['spray']>[0])),
  };
}

test(
  'an outsider cannot make A spray beyond its cap: SYNs per session, bad ports, spray sessions at once',
  { timeout: 30_000 },
  async () => {
    const a = recording(engA);
    const cap = SPRAY_LIMITS.aSynsPerSession;
    const listener = await createPunchListener(
      listenerOpts(a, '127.0.0.1', {
        spray: { maxSyns: cap, sessionsPerMinute: SPRAY_LIMITS.aSessionsPerMinute, burst: SPRAY_LIMITS.aSessionBurst },
      }),
    );
    const failures: PunchSessionError[] = [];
    listener.on('failure', (e) => failures.push(e));
    const { server, port } = await loopbackOverlay(listener);
    try {
      const ask = async (i: number) => {
        const p = await rawPeer(port);
        const sessionId = Buffer.alloc(16, i);
        p.send({ cmd: 'version', nonce: BigInt(i), userAgent: '/x/' });
        // The most the wire allows: 4,096 probes over a range full of bad ports (ssh, smtp, ...), "B" being hard.
        const wire = { hard: 'B' as const, probeLow: 1, probeHigh: 65_535, sockets: SPRAY_LIMITS.maxSockets };
        p.send({ cmd: 'opspray', sessionId, ...wire, probes: SPRAY_LIMITS.maxProbes, spreadUs: 0 });
        p.send({ cmd: 'opendpoint', sessionId, flags: 0, endpoints: [{ address: '127.0.0.2', port: 40_000 }] });
        return { p, sessionId, first: await until(p, ['opspray', 'opreject', 'opendpoint']) };
      };
      const s1 = await ask(1);
      assert.equal(s1.first.cmd, 'opspray');
      if (s1.first.cmd === 'opspray') assert.ok(s1.first.probes <= cap, `A agreed to ${s1.first.probes} probes`);
      await until(s1.p, ['opendpoint']);
      s1.p.send({ cmd: 'opfire', sessionId: s1.sessionId, delayUs: 0, profile: 'plain', deadlineMs: 15_000 });
      const res = await until(s1.p, ['opresult'], 10_000);
      assert.equal(res.cmd, 'opresult');
      assert.equal(a.sprays.length, 1);
      const plan = a.sprays[0]!;
      assert.equal(plan.role, 'easy');
      assert.ok(plan.count <= cap, `A's spray plan has ${plan.count} SYNs (cap ${cap})`);
      const ports = plan.probePorts ?? [];
      assert.equal(ports.length, plan.count);
      assert.equal(new Set(ports).size, ports.length, 'distinct ports');
      assert.deepEqual(ports.filter(isBadPort), [], 'no bad port');
      assert.ok(plan.deadlineMs <= 2500 && plan.synCnt === 1, 'one kernel retransmission at most per socket');
      assert.ok(engA.stats().syns <= cap, `engine counted ${engA.stats().syns} SYNs`);
      s1.p.sock.destroy();

      // The spray bucket's burst (2): a second spray session is agreed, a third at once is refused with the limit.
      const s2 = await ask(2);
      assert.equal(s2.first.cmd, 'opspray');
      const s3 = await ask(3);
      assert.equal(s3.first.cmd, 'opreject');
      if (s3.first.cmd === 'opreject') assert.equal(s3.first.code, 'spray-rate-limited');
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(failures.some((f) => f.code === 'PUNCH_SPRAY_LIMIT' && f.limit === 'sessions-per-minute'));
      s2.p.sock.destroy();
      s3.p.sock.destroy();
    } finally {
      await listener.close();
      server.close();
    }
  },
);
