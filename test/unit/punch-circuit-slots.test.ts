/**
 * B's sessions at the same time to one coordination endpoint ride distinct overlay circuits (distinct isolation
 * keys), so one stalled circuit cannot hold them all; sessions one after another keep sharing the first one
 * (its warm circuit). Through a real PunchClient: the dialer records the isolation key of each dial and holds
 * it a moment before failing (a STAND-IN overlay that never connects: the dial is all this test is about).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { PunchEngine } from '../../src/native/engine.js';
import { PunchClient } from '../../src/punch/client.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { CircuitSlots, MAX_CIRCUITS_PER_ENDPOINT } from '../../src/punch/circuit-slots.js';
import type { CoordinationDialer, DialOptions } from '../../src/overlay/types.js';
import { clientOpts } from '../helpers/punch-loopback.js';

const engine = new PunchEngine();
after(() => engine.stop());

const ONION = `${'a'.repeat(56)}.onion`;

/** Records each dial's isolation key; every dial fails after `holdMs`. */
function recordingDialer(holdMs: number): CoordinationDialer & { keys: Array<string | undefined> } {
  const keys: Array<string | undefined> = [];
  return {
    kind: 'tor',
    keys,
    async dial(_a: string, _p: number, o?: DialOptions): Promise<Duplex> {
      keys.push(o?.isolationKey);
      await new Promise((r) => setTimeout(r, holdMs));
      throw new Error('stand-in overlay: no circuit');
    },
    async close() {},
  };
}

async function failsToDial(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_OVERLAY_DIAL');
}

test('concurrent sessions to one endpoint get distinct circuits; later ones reuse the first', async () => {
  const dialer = recordingDialer(80);
  const client = new PunchClient(clientOpts(engine, dialer, { limits: { perEndpoint: 4 } }));
  const target = { address: ONION, port: 8333, expectIp: null };
  await Promise.all([1, 2, 3].map(() => failsToDial(client.punch(target))));
  const key = `${ONION}:8333`;
  assert.deepEqual(dialer.keys, [key, `${key}#1`, `${key}#2`]);
  // One after another: the same circuit as before (slot 0's key), every time.
  await failsToDial(client.punch(target));
  await failsToDial(client.punch(target));
  assert.deepEqual(dialer.keys.slice(3), [key, key]);
  // Another endpoint has its own slots.
  await failsToDial(client.punch({ address: ONION, port: 18444, expectIp: null }));
  assert.equal(dialer.keys[5], `${ONION}:18444`);
});

test('CircuitSlots: lowest free slot, at most MAX_CIRCUITS_PER_ENDPOINT, then the least loaded; entries go', () => {
  const s = new CircuitSlots();
  const taken = Array.from({ length: MAX_CIRCUITS_PER_ENDPOINT }, () => s.acquire('k'));
  assert.deepEqual(
    taken.map((t) => t.slot),
    Array.from({ length: MAX_CIRCUITS_PER_ENDPOINT }, (_v, i) => i),
  );
  assert.equal(new Set(taken.map((t) => t.isolationKey)).size, MAX_CIRCUITS_PER_ENDPOINT);
  assert.equal(taken[0]!.isolationKey, 'k');
  // Past the cap: shared, on the least loaded slot.
  taken[5]!.release();
  taken[5]!.release(); // a second release is a no-op
  const again = s.acquire('k');
  assert.equal(again.slot, 5, 'the freed slot is the lowest free one');
  const extra = s.acquire('k');
  assert.ok(extra.slot >= 0 && extra.slot < MAX_CIRCUITS_PER_ENDPOINT);
  assert.equal(s.load('k').length, MAX_CIRCUITS_PER_ENDPOINT);
  assert.equal(s.load('k')[extra.slot], 2);
  for (const t of [...taken, again, extra]) t.release();
  assert.deepEqual(s.load('k'), [], 'an endpoint with nothing in flight keeps no entry');
});
