/**
 * What B fires on (docs/PROTOCOL.md, the measured flow): the smaller of the pings' RTT and the overlay dial's, and
 * at most FIRE_RTT_FACTOR × the median of B's recent verified sessions with the same A (src/punch/fire-rtt.ts).
 * The pings all ride B's first write and A's reply, so one slow leg there (a lost Tor cell, re-sent by the relay
 * hop's TCP 200 ms or more later) inflated every sample alike, and B, firing rtt/2 after its `opfire`, fired
 * that much late while A fired on receipt. Here a loopback relay between B and the real listener holds A's first
 * reply back 300 ms (one slow leg); the dial itself is a loopback connect, or one held back 400 ms as a dial whose
 * SYN the kernel re-sent. Real engines both sides, on loopback.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createPunchListener, type ConnectionInfo } from '../../src/punch/listener.js';
import { PunchClient } from '../../src/punch/client.js';
import type { Duplex } from 'node:stream';
import type { CoordinationDialer } from '../../src/overlay/types.js';
import {
  FireRttMemory,
  FIRE_RTT_FACTOR,
  FIRE_RTT_MAX_KEYS,
  FIRE_RTT_MIN_SAMPLES,
  FIRE_RTT_TTL_MS,
  FIRE_RTT_WINDOW,
} from '../../src/punch/fire-rtt.js';
import { clientOpts, enginePair, listenerOpts, loopbackOverlay, portDialer } from '../helpers/punch-loopback.js';

const { engA, engB } = enginePair();
after(async () => {
  await engA.stop();
  await engB.stop();
});

/**
 * A relay to 127.0.0.1:`to` that holds the first chunk from the far side (A) back `holdMs` (while `hold.on`, read
 * at each connection).
 */
async function slowFirstReply(
  to: number,
  holdMs: number,
  hold = { on: true },
): Promise<{ server: Server; port: number }> {
  const server = createServer((near: Socket) => {
    const far = connect(to, '127.0.0.1');
    let first = hold.on;
    near.on('data', (d) => far.write(d));
    far.on('data', (d: Buffer) => {
      if (!first) return void near.write(d);
      first = false;
      far.pause();
      setTimeout(() => {
        near.write(d);
        far.resume();
      }, holdMs);
    });
    const end = (): void => {
      near.destroy();
      far.destroy();
    };
    near.on('error', end).on('close', end);
    far.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

test(
  "one slow leg before the fire: B fires on the dial's RTT, not the inflated pings",
  { timeout: 20_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts(engA));
    const { server, port } = await loopbackOverlay(listener);
    const relay = await slowFirstReply(port, 300);
    const atA = new Promise<ConnectionInfo>((r) =>
      listener.once('connection', (s: Socket, info) => (s.destroy(), r(info))),
    );
    try {
      const client = new PunchClient(clientOpts(engB, portDialer(relay.port)));
      const r = await client.punch({ address: 'a.onion', port: 1, expectIp: null });
      r.socket.destroy();
      const a = await atA;
      assert.ok(r.overlayRttMs !== undefined && r.overlayRttMs >= 290, `the pings saw the slow leg: ${r.overlayRttMs}`);
      // Both fire instants on one clock (CLOCK_MONOTONIC): each plan's first SYN. A fires 10 ms (clientOpts'
      // fireDelayMs) after the opfire arrives, at once here; B fires 10 ms + rtt/2 after sending it: ~150 ms after
      // A on the pings' RTT, within a few ms on the dial's (a loopback connect).
      const first = (tl: unknown): bigint =>
        (tl as { kind: string; actualNs: bigint }[]).find((e) => e.kind === 'syn')!.actualNs;
      const skewMs = Number(first(r.engineTimeline) - first(a.engineTimeline)) / 1e6;
      assert.ok(Math.abs(skewMs) < 40, `B fired ${skewMs.toFixed(1)} ms after A`);
    } finally {
      relay.server.close();
      server.close();
      await listener.close();
    }
  },
);

test('FireRttMemory: nothing before enough sessions, then factor × the median; junk ignored', () => {
  const m = new FireRttMemory();
  for (let i = 1; i < FIRE_RTT_MIN_SAMPLES; i++) {
    m.record('a:1', 60);
    assert.equal(m.boundMs('a:1'), undefined, `${i} session(s): no bound`);
  }
  m.record('a:1', 60);
  assert.equal(m.boundMs('a:1'), FIRE_RTT_FACTOR * 60);
  // The median: one session with a re-sent dial SYN does not move it.
  m.record('a:1', 1050);
  assert.equal(m.boundMs('a:1'), FIRE_RTT_FACTOR * 60);
  for (const junk of [Number.NaN, -1, 0, Infinity]) m.record('a:1', junk);
  assert.equal(m.boundMs('a:1'), FIRE_RTT_FACTOR * 60, 'junk is not recorded');
  assert.equal(m.boundMs('b:1'), undefined, 'per endpoint: another A has no bound yet');
});

test('FireRttMemory: a window of recent sessions; per endpoint, bounded, forgotten when unused', () => {
  let now = 0;
  const m = new FireRttMemory(() => now);
  for (let i = 0; i < FIRE_RTT_WINDOW; i++) m.record('a:1', 50);
  // The path slows down for good: after half a window of slower sessions the median follows.
  for (let i = 0; i < Math.ceil(FIRE_RTT_WINDOW / 2); i++) m.record('a:1', 400);
  assert.equal(m.boundMs('a:1'), FIRE_RTT_FACTOR * 400);
  for (let i = 0; i < FIRE_RTT_MAX_KEYS + 10; i++) m.record(`k${i}:1`, 10);
  assert.equal(m.size, FIRE_RTT_MAX_KEYS, 'at most FIRE_RTT_MAX_KEYS endpoints');
  assert.equal(m.boundMs('a:1'), undefined, 'the least recently used endpoint went first');
  for (let i = 0; i < FIRE_RTT_MIN_SAMPLES; i++) m.record('a:1', 50);
  now += FIRE_RTT_TTL_MS + 1;
  assert.equal(m.boundMs('a:1'), undefined, 'unused for longer than the TTL: forgotten');
});

/** portDialer, with every dial held back `slow.ms` before it resolves (a dial whose SYN the kernel re-sent). */
function slowDialer(port: number, slow: { ms: number }): CoordinationDialer {
  const d = portDialer(port);
  return {
    ...d,
    dial: (a, p, o) => d.dial(a, p, o).then((s) => new Promise<Duplex>((r) => setTimeout(() => r(s), slow.ms))),
  };
}

test(
  'a slow dial and slow pings in one session: B fires on its recent sessions with this A',
  { timeout: 30_000 },
  async () => {
    // A fires only on the opfire here (no fallback): the skew measured is B's timing alone.
    const listener = await createPunchListener(listenerOpts(engA, '127.0.0.1', { fireFallback: false }));
    const { server, port } = await loopbackOverlay(listener);
    const hold = { on: false };
    const slow = { ms: 0 };
    const relay = await slowFirstReply(port, 300, hold);
    const client = new PunchClient(clientOpts(engB, slowDialer(relay.port, slow)));
    const first = (tl: unknown): bigint =>
      (tl as { kind: string; actualNs: bigint }[]).find((e) => e.kind === 'syn')!.actualNs;
    const once = async (): Promise<{ skewMs: number; detail: string }> => {
      const atA = new Promise<ConnectionInfo>((r) =>
        listener.once('connection', (s: Socket, info) => (s.destroy(), r(info))),
      );
      const r = await client.punch({ address: 'a.onion', port: 1, expectIp: null });
      r.socket.destroy();
      const a = await atA;
      const detail = r.timeline.events.find((e) => e.event === 'rtt')?.detail ?? '';
      return { skewMs: Number(first(r.engineTimeline) - first(a.engineTimeline)) / 1e6, detail };
    };
    try {
      for (let i = 0; i < FIRE_RTT_MIN_SAMPLES; i++) await once(); // loopback: every estimate a few ms
      hold.on = true;
      slow.ms = 400;
      const { skewMs, detail } = await once();
      // On both of its own estimates (pings ≥ 300 ms, dial ≥ 400 ms) B would fire ~150 ms after A.
      assert.match(detail, /fire on recent sessions'/, detail);
      assert.ok(Math.abs(skewMs) < 40, `B fired ${skewMs.toFixed(1)} ms after A (${detail})`);
    } finally {
      relay.server.close();
      server.close();
      await listener.close();
    }
  },
);
