/** The stress workers' bounded choice of whole timelines to keep: the slowest sessions and the first failures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TailSampler } from '../../src/lab/demo/tail-sampler.js';

test('TailSampler keeps the k slowest (slowest first) and builds a sample only when it enters the set', () => {
  const t = new TailSampler<number>(3, 0);
  let built = 0;
  const ms = [50, 10, 70, 20, 90, 60, 30, 80, 40];
  for (const m of ms) t.offer(m, () => (built++, m));
  assert.deepEqual(
    t.samples().map((s) => s.ms),
    [90, 80, 70],
  );
  assert.deepEqual(
    t.samples().map((s) => s.data),
    [90, 80, 70],
  );
  // 50, 10, 70 fill it; 20, 90, 60, 80 each beat the third slowest of their moment; 30 and 40 do not.
  assert.equal(built, 7);
  t.offer(Number.NaN, () => -1);
  t.offer(70, () => -1); // a tie does not displace an earlier session
  assert.deepEqual(
    t.samples().map((s) => s.data),
    [90, 80, 70],
  );
});

test('TailSampler keeps the first failures, after the slowest; zero sizes keep nothing', () => {
  const t = new TailSampler<string>(1, 2);
  for (const f of ['a', 'b', 'c']) t.offerFailure(() => f);
  t.offer(5, () => 'slow');
  assert.deepEqual(
    t.samples().map((s) => [s.ms, s.data]),
    [
      [5, 'slow'],
      [undefined, 'a'],
      [undefined, 'b'],
    ],
  );
  const none = new TailSampler<string>(0, 0);
  none.offer(1, () => assert.fail('not built'));
  none.offerFailure(() => assert.fail('not built'));
  assert.deepEqual(none.samples(), []);
});
