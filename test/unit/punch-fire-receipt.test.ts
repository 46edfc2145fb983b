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
import { codec, listenerOpts, loopbackOverlay, rawPeer, until } from '../helpers/punch-loopback.js';

const engA = new PunchEngine();
after(() => engA.stop());

const DELAY_MS = 100;
const HOLD_MS = 80;

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
  const failed = new Promise<PunchSessionError>((r) => listener.once('failure', r));
  try {
    const p = await rawPeer(port);
    const sessionId = Buffer.alloc(16, id);
    p.send({ cmd: 'version', nonce: 9n, userAgent: '/b/' });
    p.send({ cmd: 'opendpoint', sessionId, flags: 0, endpoints: [{ address: '127.0.0.1', port: 40_000 + id }] });
    await until(p, ['opendpoint']);
    p.sock.write(
      codec.encode({ cmd: 'opfire', sessionId, delayUs: DELAY_MS * 1000, profile: 'plain', deadlineMs: 1000 }),
    );
    const writtenNs = engA.now();
    busy(HOLD_MS);
    const e = await failed;
    p.sock.destroy();
    assert.equal(plans.length, 1, 'A fired once');
    return { startMs: Number(plans[0]!.startAtNs! - writtenNs) / 1e6, timeline: e.timeline as Timeline | undefined };
  } finally {
    await listener.close();
    server.close();
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
