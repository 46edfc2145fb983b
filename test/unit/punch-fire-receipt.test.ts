/**
 * A counts B's fire delay from when the `opfire` reached its host, not from when its busy loop read it
 * (src/punch/responder.ts `receiptNs`, docs/PROTOCOL.md "When A fires"). A raw B writes the `opfire` on a real
 * loopback stream and then holds the (shared) event loop for 80 ms, as 1,000 sessions at once hold A's; the
 * listener's engine records the plan's start instant instead of punching.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PunchEngine } from '../../src/native/engine.js';
import type { PunchEngineLike, PunchPlanLike } from '../../src/punch/engine-port.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import type { Timeline } from '../../src/punch/timeline.js';
import { codec, listenerOpts, loopbackOverlay, rawPeer, tcpPair, until } from '../helpers/punch-loopback.js';
import { FIRE_MARGIN_MIN_SAMPLES } from '../../src/punch/listener.js';
import { fireMarginFlags, fireMarginOf, MAX_FIRE_MARGIN_MS } from '../../src/punch/messages.js';
import { StreamChannel } from '../../src/punch/channel.js';
import { runInitiator, INITIATOR_DEFAULTS } from '../../src/punch/initiator.js';

const engA = new PunchEngine();
after(() => engA.stop());

const DELAY_MS = 100;
/** Nine sessions in a row from one source to one target: no rate limit in the way. */
const LOOSE = { sessionsPerSec: 1000, sessionBurst: 1000, targetIpPerSec: 1000, targetIpBurst: 1000 };
const HOLD_MS = 80;

/** Initiator options with the recording engine (B's side of the last test). */
function recordingEngineOpts(plans: PunchPlanLike[]): { engine: PunchEngineLike } {
  return { engine: recordingEngine(plans) };
}

/** engA, except that punch() only records the plan (and fails, ending the session). */
function recordingEngine(plans: PunchPlanLike[]): PunchEngineLike {
  return {
    now: () => engA.now(),
    probeBind: (l) => engA.probeBind(l),
    reservePort: (l) => engA.reservePort(l),
    lastDataReceivedNs: (s) => engA.lastDataReceivedNs(s),
    punch: (plan) => {
      plans.push(plan);
      return Promise.reject(new PunchSessionError('PUNCH_ENGINE', 'recorded, not punched'));
    },
  };
}

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/**
 * One session against a listener on `engine`: B's request, then its `opfire` (delay DELAY_MS) in one write with
 * nothing after it (a raw B sends no trailing ping, so the kernel's last receipt is the opfire's), then the loop
 * held HOLD_MS. Resolves A's start instant (ms after the write), its plans and its timeline.
 */
async function fireAfterHold(
  engine: PunchEngineLike,
  plans: PunchPlanLike[],
  id: number,
): Promise<{ startMs: number; timeline: Timeline | undefined }> {
  const listener = await createPunchListener(listenerOpts(engine));
  const { server, port } = await loopbackOverlay(listener);
  try {
    const r = await session(listener, port, id, HOLD_MS);
    assert.equal(plans.length, 1, 'A fired once');
    return { startMs: Number(plans[0]!.startAtNs! - r.writtenNs) / 1e6, timeline: r.timeline };
  } finally {
    await listener.close();
    server.close();
  }
}

/** One raw B session on `port`, its loop held `holdMs` after the opfire; A's opendpoint flags and timeline. */
async function session(
  listener: Awaited<ReturnType<typeof createPunchListener>>,
  port: number,
  id: number,
  holdMs: number,
): Promise<{ flags: number; writtenNs: bigint; timeline: Timeline | undefined }> {
  const failed = new Promise<PunchSessionError>((r) => listener.once('failure', r));
  const p = await rawPeer(port);
  try {
    const sessionId = Buffer.alloc(16, id);
    p.send({ cmd: 'version', nonce: 9n, userAgent: '/b/' });
    p.send({ cmd: 'opendpoint', sessionId, flags: 0, endpoints: [{ address: '127.0.0.1', port: 40_000 + id }] });
    const ep = await until(p, ['opendpoint']);
    p.sock.write(
      codec.encode({ cmd: 'opfire', sessionId, delayUs: DELAY_MS * 1000, profile: 'plain', deadlineMs: 1000 }),
    );
    const writtenNs = engA.now();
    busy(holdMs);
    const e = await failed;
    return { flags: ep.flags, writtenNs, timeline: e.timeline as Timeline | undefined };
  } finally {
    p.sock.destroy();
  }
}

test(
  "A fires delay_us after the opfire arrived, although its loop read it 80 ms later (kernel's receipt time)",
  { timeout: 10_000 },
  async () => {
    const plans: PunchPlanLike[] = [];
    const { startMs, timeline: tl } = await fireAfterHold(recordingEngine(plans), plans, 3);
    // Counted from the read it would be ≥ DELAY_MS + HOLD_MS; the kernel's clock is off by ≤ 1 jiffy (4 ms).
    assert.ok(startMs >= DELAY_MS - 5 && startMs < DELAY_MS + HOLD_MS / 2, `A starts ${startMs.toFixed(1)} ms after`);
    const arrived = tl?.events.find((x) => x.event === 'fire-arrived');
    assert.ok(arrived, 'the timeline marks the arrival');
    const received = tl?.at('fire-received');
    assert.ok(received !== undefined && received - arrived.t >= HOLD_MS / 2, 'marked where it arrived, in order');
  },
);

test(
  'without a receipt clock (an engine without lastDataReceivedNs) A counts from its read',
  { timeout: 10_000 },
  async () => {
    const plans: PunchPlanLike[] = [];
    const { lastDataReceivedNs: _, ...noClock } = recordingEngine(plans);
    const { startMs, timeline } = await fireAfterHold(noClock, plans, 4);
    assert.ok(startMs >= DELAY_MS + HOLD_MS, `A starts ${startMs.toFixed(1)} ms after: from the read`);
    assert.equal(timeline?.at('fire-arrived'), undefined);
  },
);

test(
  'a listener whose loop reads opfires late asks B for a fire margin in its opendpoint',
  { timeout: 20_000 },
  async () => {
    const plans: PunchPlanLike[] = [];
    const listener = await createPunchListener(listenerOpts(recordingEngine(plans), '127.0.0.1', { limits: LOOSE }));
    const { server, port } = await loopbackOverlay(listener);
    try {
      const margins: number[] = [];
      for (let i = 0; i <= FIRE_MARGIN_MIN_SAMPLES; i++)
        margins.push(fireMarginOf((await session(listener, port, 20 + i, 30)).flags));
      assert.deepEqual(
        margins.slice(0, FIRE_MARGIN_MIN_SAMPLES),
        Array(FIRE_MARGIN_MIN_SAMPLES).fill(0),
        'too few samples',
      );
      // Read lags ≈ 30 ms: the 75th percentile less a 4 ms tick, to the nearest 8 ms unit.
      const m = margins[FIRE_MARGIN_MIN_SAMPLES]!;
      assert.ok(m >= 16 && m <= 40, `margin ${m} ms`);
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test('fire margin bits: nearest 8 ms unit, capped at 56 ms, nothing for none', () => {
  assert.equal(fireMarginFlags(0), 0);
  assert.equal(fireMarginFlags(-3), 0);
  assert.equal(fireMarginFlags(Number.NaN), 0);
  assert.equal(fireMarginOf(fireMarginFlags(3)), 0);
  assert.equal(fireMarginOf(fireMarginFlags(26)), 24);
  assert.equal(fireMarginOf(fireMarginFlags(1000)), MAX_FIRE_MARGIN_MS);
  assert.equal(MAX_FIRE_MARGIN_MS, 56);
  assert.equal(fireMarginFlags(1000) & ~0x38, 0, 'bits 3-5 only');
});

test("B adds the margin A's opendpoint asks for to its opfire delay", { timeout: 10_000 }, async () => {
  const { near, far, close } = await tcpPair();
  const plans: PunchPlanLike[] = [];
  const b = runInitiator(new StreamChannel(near, codec), {
    ...recordingEngineOpts(plans),
    local: { address: '127.0.0.1', port: 5 },
    discovery: Promise.resolve({
      endpoints: [{ address: '127.0.0.1', port: 5, method: 'predict' as const }],
      predicted: true,
      portPreserving: true,
      failures: [],
      elapsedMs: 0,
    }),
    policy: { allowLoopback: true },
    tuning: { profile: 'plain' },
  });
  b.catch(() => undefined);
  const a = new StreamChannel(far, codec);
  try {
    let ep: Extract<Awaited<ReturnType<typeof a.next>>, { cmd: 'opendpoint' }> | undefined;
    while (!ep) {
      const m = await a.next(3000, 'test');
      if (m.cmd === 'opendpoint') ep = m;
    }
    a.send({ cmd: 'version', nonce: 3n, userAgent: '/a/' });
    a.send({
      cmd: 'opendpoint',
      sessionId: ep.sessionId,
      flags: fireMarginFlags(24),
      endpoints: [{ address: '127.0.0.1', port: 6 }],
    });
    let fire: Extract<Awaited<ReturnType<typeof a.next>>, { cmd: 'opfire' }> | undefined;
    while (!fire) {
      const m = await a.next(3000, 'test');
      if (m.cmd === 'opfire') fire = m;
    }
    assert.equal(fire.delayUs, (INITIATOR_DEFAULTS.fireDelayMs + 24) * 1000);
  } finally {
    close();
  }
});
