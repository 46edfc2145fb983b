/**
 * A fires without B's late `opfire` (src/punch/fire-fallback.ts): the estimator's rules, and whole sessions over
 * loopback streams with the real native engine, an ordinary punch and a spray.
 *
 * The overlay in the session tests is a fake, named as such: a relay between B's stream and A's that holds back
 * B's `opfire` frame (and what follows it) for HOLD_MS, as a lost segment waits for its retransmission. netem
 * can lose packets but not the one that carries a chosen message, which is the case this code is for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createPunchListener, type ConnectionInfo } from '../../src/punch/listener.js';
import { PunchClient } from '../../src/punch/client.js';
import {
  FireFallback,
  FALLBACK_FACTOR,
  FALLBACK_MARGIN_MS,
  FALLBACK_MAX_MS,
  FALLBACK_MIN_MS,
  FALLBACK_MIN_SAMPLES,
  FALLBACK_WINDOW,
} from '../../src/punch/fire-fallback.js';
import type { CoordinationDialer } from '../../src/overlay/types.js';
import type { PunchSessionError } from '../../src/punch/errors.js';
import { Timeline } from '../../src/punch/timeline.js';
import { clientOpts, edmAt, listenerOpts, portDialer, enginePair } from '../helpers/punch-loopback.js';

const { engA, engB } = enginePair();

const ONION = 'x'.repeat(56) + '.onion';
const HOLD_MS = 1500;
/** Node's timers count from the loop's cached clock, a little before the mark: one may end ~1 ms "early". */
const TIMER_SLACK_MS = 2;

test('FireFallback: no fallback before enough sessions; factor × median + margin, clamped', () => {
  const f = new FireFallback();
  for (let i = 1; i < FALLBACK_MIN_SAMPLES; i++) {
    f.record(100);
    assert.equal(f.afterMs(), undefined, `${i} sample(s): A waits for opfire`);
  }
  f.record(100);
  assert.equal(f.afterMs(), FALLBACK_FACTOR * 100 + FALLBACK_MARGIN_MS);
  // The median, not the mean: one huge delay does not move it.
  f.record(60_000);
  assert.equal(f.afterMs(), FALLBACK_FACTOR * 100 + FALLBACK_MARGIN_MS);
  const fast = new FireFallback();
  for (let i = 0; i < FALLBACK_MIN_SAMPLES; i++) fast.record(1);
  assert.equal(fast.afterMs(), FALLBACK_MIN_MS, 'a stranger answering at once cannot make A fire sooner than this');
  const slow = new FireFallback();
  for (let i = 0; i < FALLBACK_MIN_SAMPLES; i++) slow.record(1e9);
  assert.equal(slow.afterMs(), FALLBACK_MAX_MS);
  for (const junk of [Number.NaN, -5, Infinity]) slow.record(junk);
  assert.equal(slow.afterMs(), FALLBACK_MAX_MS, 'junk is not recorded');
});

test('FireFallback: a window of recent sessions; fallbacks push the estimate up', () => {
  const f = new FireFallback();
  for (let i = 0; i < FALLBACK_WINDOW; i++) f.record(50);
  // The overlay slows down for good: every session falls back; their record is factor × the fallback used.
  let last = f.afterMs()!;
  for (let i = 0; i < FALLBACK_WINDOW; i++) {
    f.record(undefined, f.afterMs());
    assert.ok(f.afterMs()! >= last);
    last = f.afterMs()!;
  }
  assert.ok(last > FALLBACK_FACTOR * 50 + FALLBACK_MARGIN_MS, `the estimate rose (${last} ms)`);
  f.record(undefined, undefined);
  assert.equal(f.afterMs(), last, 'nothing known: nothing recorded');
});

/** The fake overlay: relays B's stream to A's; while `hold` is set, B's opfire frame and all after it wait. */
async function holdingOverlay(
  aPort: number,
): Promise<{ server: Server; dialer: CoordinationDialer; setHold(on: boolean): void }> {
  let hold = false;
  const server = createServer((b) => {
    b.on('error', () => undefined);
    const a = connect(aPort, '127.0.0.1');
    a.on('error', () => undefined);
    a.pipe(b);
    const holding = hold;
    let buf = Buffer.alloc(0);
    let held = false;
    b.on('data', (chunk: Buffer) => {
      if (held) {
        buf = Buffer.concat([buf, chunk]);
        return;
      }
      buf = Buffer.concat([buf, chunk]);
      // Bitcoin P2P frames: magic 4, command 12, length 4, checksum 4, payload.
      while (buf.length >= 24) {
        const len = buf.readUInt32LE(16);
        if (buf.length < 24 + len) break;
        const cmd = buf.subarray(4, 16).toString('latin1').replace(/\0+$/, '');
        if (holding && cmd === 'opfire') {
          held = true;
          setTimeout(() => {
            held = false;
            a.write(buf);
            buf = Buffer.alloc(0);
          }, HOLD_MS);
          return;
        }
        a.write(buf.subarray(0, 24 + len));
        buf = buf.subarray(24 + len);
      }
    });
    b.on('close', () => a.destroy());
    a.on('close', () => b.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const dialer = portDialer(port);
  return { server, dialer, setHold: (on) => (hold = on) };
}

const target = { address: ONION, port: 8333, expectIp: '127.0.0.1' };

async function sessions(fireFallback: boolean): Promise<Array<{ info: ConnectionInfo; bMs: number }>> {
  const listener = await createPunchListener(listenerOpts(engA, '127.0.0.1', { fireFallback }));
  const aServer = createServer((s) => listener.handle(s, {}));
  await new Promise<void>((r) => aServer.listen(0, '127.0.0.1', r));
  const overlay = await holdingOverlay((aServer.address() as { port: number }).port);
  const out: Array<{ info: ConnectionInfo; bMs: number }> = [];
  try {
    for (let i = 0; i <= FALLBACK_MIN_SAMPLES; i++) {
      overlay.setHold(i === FALLBACK_MIN_SAMPLES); // the last session's opfire is held back
      const gotA = new Promise<[Socket, ConnectionInfo]>((r) => listener.once('connection', (s, x) => r([s, x])));
      const t0 = performance.now();
      const r = await new PunchClient(clientOpts(engB, overlay.dialer)).punch(target);
      const bMs = performance.now() - t0;
      const [aSock, info] = await gotA;
      out.push({ info, bMs });
      assert.equal(aSock.remotePort, r.socket.localPort);
      aSock.destroy();
      r.socket.destroy();
    }
  } finally {
    await listener.close();
    overlay.server.close();
    aServer.close();
  }
  return out;
}

test(
  `B's opfire held back ${HOLD_MS} ms: A fires without it and the punch connects first`,
  { timeout: 30_000 },
  async () => {
    const runs = await sessions(true);
    for (const { info } of runs.slice(0, -1)) {
      assert.equal(info.timeline.at('fire-fallback'), undefined, 'opfire on time: A waited for it');
      assert.ok(info.timeline.at('fire-received') !== undefined);
    }
    const last = runs[runs.length - 1]!;
    const fb = last.info.timeline.at('fire-fallback');
    assert.ok(fb !== undefined, 'A fell back');
    assert.equal(last.info.timeline.at('fire-received'), undefined);
    const waited = fb - last.info.timeline.at('endpoints-sent')!;
    assert.ok(
      waited >= FALLBACK_MIN_MS - TIMER_SLACK_MS && waited < HOLD_MS,
      `A fired ${waited.toFixed(0)} ms after its opendpoint`,
    );
    assert.ok(last.bMs < HOLD_MS, `B connected in ${last.bMs.toFixed(0)} ms, before the held opfire reached A`);
  },
);

test(
  'fireFallback: false: A waits for the held opfire (the old behaviour, and what the fallback saves)',
  {
    timeout: 30_000,
  },
  async () => {
    const runs = await sessions(false);
    const last = runs[runs.length - 1]!;
    assert.equal(last.info.timeline.at('fire-fallback'), undefined);
    assert.ok(last.info.timeline.at('fire-received') !== undefined);
    assert.ok(last.bMs >= HOLD_MS, `B waited for A, which waited for the opfire (${last.bMs.toFixed(0)} ms)`);
  },
);

test(
  `a spray whose opfire is held back ${HOLD_MS} ms: A runs its agreed side without it`,
  { timeout: 30_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts(engA, '127.0.0.1', { spray: { maxSyns: 64 } }));
    const aServer = createServer((s) => listener.handle(s, {}));
    await new Promise<void>((r) => aServer.listen(0, '127.0.0.1', r));
    const overlay = await holdingOverlay((aServer.address() as { port: number }).port);
    const ended: Timeline[] = [];
    listener.on('failure', (e: PunchSessionError) => e.timeline instanceof Timeline && ended.push(e.timeline));
    listener.on('connection', (s: Socket, info: ConnectionInfo) => (s.destroy(), ended.push(info.timeline)));
    try {
      // Ordinary sessions seed the listener's estimate (one estimate for both kinds: B's opfire follows A's
      // opendpoint by a round trip in either).
      // A records a sample when its own side resolves, which may be after B's: wait for each (ci33 started the
      // spray with two samples known, and A then waited for the held opfire).
      for (let i = 0; i < FALLBACK_MIN_SAMPLES; i++) {
        const gotA = new Promise<void>((r) => listener.once('connection', () => r()));
        (await new PunchClient(clientOpts(engB, overlay.dialer)).punch(target)).socket.destroy();
        await gotA;
      }
      overlay.setHold(true);
      const hard = new PunchClient(
        clientOpts(engB, overlay.dialer, { eim: edmAt('127.0.0.1'), spray: { maxSyns: 64 } }),
      );
      // Over loopback a spray's pairs rarely meet (no NAT keeps a refused SYN's port): the outcome is not the point.
      await hard.punch(target).then(
        (r) => r.socket.destroy(),
        () => undefined,
      );
      // A's session may end after B's (A's spray has its own deadline).
      const spray = () => ended.find((t) => t.at('spray-agreed') !== undefined);
      for (let i = 0; i < 100 && !spray(); i++) await new Promise((r) => setTimeout(r, 100));
      const tl = spray();
      assert.ok(tl, "A's spray session ended with a timeline");
      const fb = tl.at('fire-fallback');
      const steps = (): string => tl.events.map((e) => `${e.t.toFixed(0)} ${e.event}`).join(', ');
      assert.ok(fb !== undefined, `A fell back on the spray (A's steps: ${steps()})`);
      assert.equal(tl.at('fire-received'), undefined, 'the held opfire was not read');
      const waited = fb - tl.at('endpoints-sent')!;
      assert.ok(
        waited >= FALLBACK_MIN_MS - TIMER_SLACK_MS && waited < HOLD_MS,
        `A sprayed ${waited.toFixed(0)} ms after its opendpoint`,
      );
    } finally {
      await listener.close();
      overlay.server.close();
      aServer.close();
    }
  },
);
