/**
 * Pre-timed spray fire (docs/PROTOCOL.md): B's `opfire` rides its first write, A counts its `delay_us` from its
 * own `opendpoint`, and B fires on that `opendpoint`'s arrival at the same instant. B's side against a raw A over
 * a loopback stream; A's side (the real listener) against a raw B; and when B pre-times at all (FireRttMemory).
 * Engines here record the spray plan instead of running it: the instants are the point, not the race.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PunchEngine } from '../../src/native/engine.js';
import type { PunchEngineLike, SprayPlanLike } from '../../src/punch/engine-port.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { StreamChannel } from '../../src/punch/channel.js';
import { runInitiator, INITIATOR_DEFAULTS } from '../../src/punch/initiator.js';
import type { CoordMessage } from '../../src/punch/messages.js';
import { FireRttMemory, FIRE_RTT_MIN_SAMPLES, PRETIME_MAX_RTT_MS } from '../../src/punch/fire-rtt.js';
import { FireFallback, FALLBACK_MIN_SAMPLES } from '../../src/punch/fire-fallback.js';
import { Timeline } from '../../src/punch/timeline.js';
import { codec, edmAt, listenerOpts, loopbackOverlay, rawPeer, tcpPair, until } from '../helpers/punch-loopback.js';

const eng = new PunchEngine();
after(() => eng.stop());

/** `eng`, except that spray() records its plan and fails (ending the session). */
function recordingEngine(plans: SprayPlanLike[]): PunchEngineLike {
  return {
    now: () => eng.now(),
    probeBind: (l) => eng.probeBind(l),
    reservePort: (l) => eng.reservePort(l),
    lastDataReceivedNs: (s) => eng.lastDataReceivedNs(s),
    punch: () => Promise.reject(new PunchSessionError('PUNCH_ENGINE', 'not a spray')),
    spray: (plan) => {
      plans.push(plan);
      return Promise.reject(new PunchSessionError('PUNCH_ENGINE', 'recorded, not sprayed'));
    },
  };
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test(
  "B pre-times: its opfire rides the first write, and B fires on A's opendpoint, not an opfire trip later",
  { timeout: 10_000 },
  async () => {
    const RTT_MS = 60;
    const { near, far, close } = await tcpPair();
    const plans: SprayPlanLike[] = [];
    const b = runInitiator(new StreamChannel(near, codec), {
      engine: recordingEngine(plans),
      local: { address: '127.0.0.1', port: 5 },
      discovery: Promise.resolve({
        endpoints: [{ address: '127.0.0.1', port: 5, method: 'natcheck' as const }],
        predicted: false,
        portPreserving: false,
        failures: [],
        elapsedMs: 0,
      }),
      policy: { allowLoopback: true },
      tuning: { profile: 'plain' },
      spray: { role: 'hard', range: { low: 40_000, high: 41_023 }, maxSyns: 64 },
      pretimedRttMs: RTT_MS,
    });
    b.catch(() => undefined);
    const a = new StreamChannel(far, codec); // answers B's pings at once
    try {
      const before: CoordMessage[] = [];
      while (!before.some((m) => m.cmd === 'opfire')) before.push(await a.next(3000, 'test'));
      const spray = before.find((m) => m.cmd === 'opspray');
      const ep = before.find((m) => m.cmd === 'opendpoint');
      const fire = before.find((m) => m.cmd === 'opfire');
      assert.ok(spray?.cmd === 'opspray' && ep?.cmd === 'opendpoint' && fire?.cmd === 'opfire', 'B asked first');
      const delayMs = RTT_MS / 2 + INITIATOR_DEFAULTS.fireDelayMs;
      assert.equal(fire.delayUs, delayMs * 1000, 'half the RTT B knows, plus the fire delay');
      // A answers a little later, as a busy A might: B's instant counts from A's answer, not from B's request.
      await wait(40);
      a.send({ cmd: 'version', nonce: 3n, userAgent: '/a/' });
      a.send({ cmd: 'verack' });
      a.send({ ...spray, probes: Math.min(spray.probes, 32) });
      a.send({ cmd: 'opendpoint', sessionId: ep.sessionId, flags: 0, endpoints: [{ address: '127.0.0.1', port: 6 }] });
      const answeredNs = eng.now();
      const afterAnswer: CoordMessage[] = [];
      const reading = (async () => {
        for (;;) afterAnswer.push(await a.next(3000, 'test'));
      })();
      reading.catch(() => undefined);
      await b.catch(() => undefined);
      assert.equal(plans.length, 1, 'B sprayed once');
      const startMs = Number(plans[0]!.startAtNs! - answeredNs) / 1e6;
      // B fires at its receipt − its ping RTT / 2 + delay: loopback's one way is ~0, its ping RTT includes A's 40 ms
      // wait (≤ 20 ms off). The measured flow would be ≥ delayMs + its opfire's one way, and the opfire after this.
      assert.ok(startMs > delayMs - 25 && startMs <= delayMs + 5, `B fires ${startMs.toFixed(1)} ms after A's answer`);
      await wait(50);
      assert.equal(afterAnswer.filter((m) => m.cmd === 'opfire').length, 0, 'no second opfire');
    } finally {
      close();
    }
  },
);

test(
  "A counts a pre-timed opfire's delay from its own opendpoint (any A does: it reads it after answering)",
  { timeout: 10_000 },
  async () => {
    const DELAY_MS = 100;
    const plans: SprayPlanLike[] = [];
    const listener = await createPunchListener(
      listenerOpts(recordingEngine(plans), '127.0.0.1', { eim: edmAt('127.0.0.1'), spray: { maxSyns: 64 } }),
    );
    const { server, port } = await loopbackOverlay(listener);
    const failed = new Promise<PunchSessionError>((r) => listener.once('failure', r));
    const p = await rawPeer(port);
    try {
      const sessionId = Buffer.alloc(16, 7);
      // B's first write, whole: version, the spray offer (B easy), opendpoint, ping, opfire.
      p.send({ cmd: 'version', nonce: 9n, userAgent: '/b/' });
      p.send({
        cmd: 'opspray',
        sessionId,
        hard: 'A',
        probeLow: 0,
        probeHigh: 0,
        sockets: 64,
        probes: 512,
        spreadUs: 1e5,
      });
      p.send({ cmd: 'opendpoint', sessionId, flags: 0, endpoints: [{ address: '127.0.0.1', port: 40_123 }] });
      p.send({ cmd: 'ping', nonce: 11n });
      p.send({ cmd: 'opfire', sessionId, delayUs: DELAY_MS * 1000, profile: 'plain', deadlineMs: 2000 });
      assert.equal((await until(p, ['opspray'])).cmd, 'opspray');
      assert.equal((await until(p, ['opendpoint'])).cmd, 'opendpoint');
      const answeredNs = eng.now();
      const e = await failed;
      const tl = e.timeline as Timeline;
      assert.ok(tl instanceof Timeline);
      assert.equal(plans.length, 1, 'A sprayed once');
      assert.equal(tl.at('fire-fallback'), undefined);
      assert.ok(tl.at('fire-pretimed') !== undefined, 'A saw the opfire before its answer');
      assert.equal(tl.at('fire-arrived'), undefined, 'no read-lag sample');
      // Counted from A's answer (B read it here, ≤ a few ms later), not from the opfire's arrival before it.
      const startMs = Number(plans[0]!.startAtNs! - answeredNs) / 1e6;
      assert.ok(startMs > DELAY_MS - 10 && startMs <= DELAY_MS, `A fires ${startMs.toFixed(1)} ms after its answer`);
    } finally {
      p.sock.destroy();
      await listener.close();
      server.close();
    }
  },
);

test('B pre-times only a spray it expects, on the median of enough verified sessions', () => {
  let now = 0;
  const m = new FireRttMemory(() => now);
  const key = 'a.onion:8333';
  for (let i = 1; i < FIRE_RTT_MIN_SAMPLES; i++) m.record(key, 60 + i, true);
  assert.equal(m.pretimeRttMs(key, true), undefined, 'too few sessions');
  m.record(key, 70, false);
  assert.equal(m.pretimeRttMs(key, true), 62, 'B hard: a spray for sure (median, not the 2× bound)');
  assert.equal(m.pretimeRttMs(key, false), undefined, "B easy: A's last session was no spray");
  m.record(key, 64, true);
  assert.equal(m.pretimeRttMs(key, false), 64, 'B easy: A sprayed last time');
  assert.equal(m.boundMs(key), 2 * 64);
  const slow = 'slow.i2p:0';
  for (let i = 0; i < FIRE_RTT_MIN_SAMPLES; i++) m.record(slow, PRETIME_MAX_RTT_MS + 1, true);
  assert.equal(m.pretimeRttMs(slow, true), undefined, 'too slow a path: its delay_us would near what A accepts');
  now += 11 * 60_000;
  assert.equal(m.pretimeRttMs(key, true), undefined, 'an old estimate is forgotten');
});

test("A's fire fallback learns nothing from pre-timed or zero-round-trip sessions (their opfire was early)", () => {
  const session = (opfireMs: number, pretimed: boolean): Timeline => {
    const tl = new Timeline(0);
    tl.markAt('endpoints-sent', 100);
    if (pretimed) tl.markAt('fire-pretimed', 100);
    tl.markAt('fire-received', 100 + opfireMs);
    return tl;
  };
  const f = new FireFallback();
  for (let i = 0; i < FALLBACK_MIN_SAMPLES; i++) f.recordSession(session(300, false), false);
  const slow = f.afterMs();
  assert.equal(slow, 2 * 300 + 50, 'a 300 ms circuit');
  for (let i = 0; i < 10; i++) f.recordSession(session(0.2, true), false);
  for (let i = 0; i < 10; i++) f.recordSession(session(0.2, false), true);
  assert.equal(f.afterMs(), slow, 'unchanged: A keeps waiting as long for the measured flow');
});
