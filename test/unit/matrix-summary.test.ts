/**
 * `lab matrix` per-pair summary (src/lab/matrix/matrix.ts summarizePair): the issue-14 bound
 * (1.5 × overlay RTT + 2 × direct RTT), `ratio` = median ÷ bound, `p90OverMedian`, and which sessions'
 * timelines are kept for the report. Attempt results are synthetic rows of the shape PunchRig.attempt returns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizePair } from '../../src/lab/matrix/matrix.js';
import type { AttemptResult } from '../../src/lab/demo/rig.js';

const ok = (ttc: number, overlay: number, direct: number): AttemptResult => ({
  ok: true,
  timeToConnectMs: ttc,
  totalMs: ttc + 300,
  overlayRttMs: overlay,
  directRttMs: direct,
  events: [
    { at: 1000, who: 'B', event: 'start' },
    { at: 1000 + ttc, who: 'A', event: 'established' },
  ],
});
const fail: AttemptResult = {
  ok: false,
  totalMs: 41,
  error: { code: 'PUNCH_NAT_UNSUITABLE', message: "B's NAT maps endpoint-dependently", side: 'B' },
  events: [{ at: 5, who: 'B', event: 'start' }],
};

test('bound, ratio and p90OverMedian from the medians of the pair', () => {
  // overlay RTT median 80, direct median 50: bound 1.5*80 + 2*50 = 220; ttc median 150 -> ratio 0.68.
  const rs = [ok(100, 70, 40), ok(150, 80, 50), ok(400, 90, 60), ok(130, 80, 50), ok(200, 85, 55)];
  const r = summarizePair({ name: 'eim×eim' }, rs, { a: 'eim', b: 'eim' });
  assert.equal(r.medianOverlayRttMs, 80);
  assert.equal(r.medianDirectRttMs, 50);
  assert.equal(r.boundMs, 220);
  assert.equal(r.medianMs, 150);
  assert.equal(r.ratio, 0.68);
  // p90 of [100,130,150,200,400] by linear interpolation: 200 + 0.6*200 = 320 -> 320/150 = 2.13.
  assert.equal(r.p90Ms, 320);
  assert.equal(r.p90OverMedian, 2.13);
  assert.equal(r.attempts.length, 5);
  assert.deepEqual(r.attempts[0], { ok: true, timeToConnectMs: 100, totalMs: 400, overlayRttMs: 70, directRttMs: 40 });
  assert.deepEqual(
    r.timelines.map((t) => [t.label, t.attempt]),
    [
      ['fastest', 0],
      ['median', 1],
      ['slowest', 2],
    ],
  );
  assert.equal(r.timelines[2]!.events.length, 2);
});

test('a pair that never connects has no ratios but keeps its failure and its timeline', () => {
  const r = summarizePair({ name: 'eim×edm' }, [fail, fail]);
  assert.equal(r.ok, 0);
  assert.equal(r.boundMs, null);
  assert.equal(r.ratio, null);
  assert.equal(r.p90OverMedian, null);
  const row = { ok: false, totalMs: 41, code: 'PUNCH_NAT_UNSUITABLE' };
  assert.deepEqual(r.attempts, [row, row]);
  assert.deepEqual(
    r.timelines.map((t) => t.label),
    ['failure'],
  );
  assert.deepEqual(Object.values(r.failures), [2]);
  assert.equal(r.maxFailMs, 41);
});
