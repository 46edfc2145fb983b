import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capPlan, usableEndpoints } from '../../src/punch/session-common.js';
import { quantile, median } from '../../src/lab/stats.js';
import { matrixTable } from '../../src/lab/matrix/matrix.js';
import { Timeline } from '../../src/punch/timeline.js';

test('SYN cap: the worst case of waves x candidates + re-SYNs within the deadline never exceeds the cap', () => {
  for (const maxSyns of [4, 10, 32, 100, 500]) {
    for (const remotes of [1, 2, 8]) {
      for (const profile of ['plain', 'prime'] as const) {
        const deadlineMs = 5000;
        const p = capPlan({ profile, waves: [0, 1000, 2000, 3000] }, remotes, maxSyns, deadlineMs);
        const perWave = remotes * (profile === 'prime' ? 2 : 1);
        const resyns = p.resynIntervalUs === 0 ? 0 : Math.ceil((deadlineMs * 1000) / p.resynIntervalUs) * remotes;
        const worst = p.waves.length * perWave + resyns;
        assert.ok(p.waves.length >= 1);
        if (maxSyns >= perWave) assert.ok(worst <= maxSyns + remotes, `maxSyns ${maxSyns}, remotes ${remotes}, ${profile}: worst ${worst}`);
      }
    }
  }
  assert.deepEqual(capPlan({}, 1, 100, 5000).waves, [0], 'one wave by default');
  assert.equal(capPlan({ resynIntervalUs: 20_000 }, 1, 1000, 5000).resynIntervalUs, 20_000, 'the interval is kept when it fits');
});

test('usable endpoints: family, policy and count filters', () => {
  const { usable, refused } = usableEndpoints(
    [{ address: '198.18.1.1', port: 1 }, { address: 'fd00::1', port: 2 }, { address: '127.0.0.1', port: 3 }, { address: '8.8.8.8', port: 0 }],
    4,
    { allowLab: true },
  );
  assert.deepEqual(usable, [{ address: '198.18.1.1', port: 1 }]);
  assert.equal(refused.length, 3);
  assert.equal(usableEndpoints(Array.from({ length: 20 }, (_, i) => ({ address: '8.8.8.8', port: i + 1 })), 4, {}).usable.length, 8);
});

test('stats and the matrix table', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9.1);
  assert.ok(Number.isNaN(median([])));
  const t = matrixTable([{ pair: 'eim×eim (drop)', runs: 2, ok: 2, successRate: 1, medianMs: 150, p90Ms: 200, medianTotalMs: 400, medianOverlayRttMs: 80, medianDirectRttMs: 50, eimA: 'eim', eimB: 'eim', failures: {}, maxFailMs: null }]);
  assert.match(t, /\| eim×eim \(drop\) \| eim\/eim \| 2\/2 \| 150\.0 \| 200\.0 \|/);
  const tl = new Timeline();
  tl.mark('a');
  tl.mark('b', 'x');
  assert.ok(tl.at('b')! >= tl.at('a')!);
  assert.equal(tl.at('c'), undefined);
});
