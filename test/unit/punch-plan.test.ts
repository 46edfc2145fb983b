import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capPlan, checkTargets, ownEndpoints } from '../../src/punch/session-common.js';
import { isBadPort } from '../../src/punch/bad-ports.js';
import { sameIp } from '../../src/punch/verify.js';
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
        if (maxSyns >= perWave)
          assert.ok(worst <= maxSyns + remotes, `maxSyns ${maxSyns}, remotes ${remotes}, ${profile}: worst ${worst}`);
      }
    }
  }
  assert.deepEqual(capPlan({}, 1, 100, 5000).waves, [0], 'one wave by default');
  assert.equal(
    capPlan({ resynIntervalUs: 20_000 }, 1, 1000, 5000).resynIntervalUs,
    20_000,
    'the interval is kept when it fits',
  );
});

test('target checks: at most 2 endpoints, one IP, public unicast, family, no bad ports; each refusal names its limit', () => {
  const ok = checkTargets(
    [
      { address: '198.18.1.1', port: 40000 },
      { address: '198.18.1.1', port: 40001 },
    ],
    { allowLab: true },
  );
  assert.ok(ok.ok && ok.usable.length === 2 && ok.family === 4);
  const code = (eps: { address: string; port: number }[], family?: 4 | 6): string | undefined => {
    const r = checkTargets(eps, { allowLab: true }, family);
    return r.ok ? undefined : r.code;
  };
  assert.equal(code([]), 'PUNCH_TARGET_REFUSED');
  assert.equal(code([1, 2, 3].map((i) => ({ address: '198.18.1.1', port: 40000 + i }))), 'PUNCH_TARGET_TOO_MANY');
  assert.equal(
    code([
      { address: '198.18.1.1', port: 40000 },
      { address: '198.18.1.2', port: 40000 },
    ]),
    'PUNCH_TARGET_MIXED_IP',
  );
  assert.equal(
    code([
      { address: '198.18.1.1', port: 40000 },
      { address: '::ffff:198.18.1.1', port: 40001 },
    ]),
    undefined,
    'mapped v4 is the same IP',
  );
  assert.equal(code([{ address: '127.0.0.1', port: 40000 }]), 'PUNCH_TARGET_REFUSED');
  assert.equal(code([{ address: 'fd00::1', port: 40000 }], 4), 'PUNCH_TARGET_REFUSED');
  assert.equal(code([{ address: '8.8.8.8', port: 25 }]), 'PUNCH_TARGET_BAD_PORT');
  assert.equal(code([{ address: '8.8.8.8', port: 0 }]), 'PUNCH_TARGET_BAD_PORT');
  assert.equal(
    code([
      { address: '1.1.1.1', port: 8333 },
      { address: '1.1.1.1', port: 22 },
    ]),
    'PUNCH_TARGET_BAD_PORT',
  );
  assert.equal(code([{ address: '8.8.8.8', port: 8333 }]), undefined);
  for (const p of [1, 22, 25, 53, 123, 465, 3306, 3389, 5432, 5900, 6667, 10080, 27017])
    assert.ok(isBadPort(p), `${p} is bad`);
  for (const p of [80, 443, 8333, 18333, 18444, 40000, 65535]) assert.ok(!isBadPort(p), `${p} is fine`);
  // Our own list: same IP as the best one, at most 2.
  const own = ownEndpoints(
    [
      { address: '198.18.1.1', port: 1 },
      { address: '198.18.9.9', port: 2 },
      { address: '198.18.1.1', port: 3 },
      { address: '198.18.1.1', port: 4 },
    ],
    4,
  );
  assert.deepEqual(
    own.map((e) => e.port),
    [1, 3],
  );
  assert.ok(
    sameIp('2001:DB8::1', '2001:db8:0:0:0:0:0:1') &&
      sameIp('::ffff:10.0.0.1', '10.0.0.1') &&
      !sameIp('10.0.0.1', '10.0.0.2'),
  );
});

test('stats and the matrix table', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9.1);
  assert.ok(Number.isNaN(median([])));
  const t = matrixTable([
    {
      pair: 'eim×eim (drop)',
      runs: 2,
      ok: 2,
      successRate: 1,
      medianMs: 150,
      p90Ms: 200,
      medianTotalMs: 400,
      medianOverlayRttMs: 80,
      medianDirectRttMs: 50,
      eimA: 'eim',
      eimB: 'eim',
      failures: {},
      maxFailMs: null,
      boundMs: 220,
      ratio: 0.68,
      p90OverMedian: 1.33,
      attempts: [],
      timelines: [],
      resources: [],
    },
  ]);
  assert.match(t, /\| eim×eim \(drop\) \| eim\/eim \| 2\/2 \| 150\.0 \| 200\.0 \|/);
  assert.match(t, /\| 80\.0 \| 50\.0 \| 0\.68 \| 1\.33 \| – \|$/m, 'median ÷ bound and p90 ÷ median columns');
  const tl = new Timeline();
  tl.mark('a');
  tl.mark('b', 'x');
  assert.ok(tl.at('b')! >= tl.at('a')!);
  assert.equal(tl.at('c'), undefined);
});
