import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadNative } from '../../src/native/addon.js';

test('native addon loads and its monotonic clock advances', () => {
  const n = loadNative();
  const a = n.monotonicNs();
  const b = n.monotonicNs();
  assert.equal(typeof a, 'bigint');
  assert.ok(b >= a);
});

test('cli rejects an unknown command with exit code 2', () => {
  const r = spawnSync(process.execPath, ['bin/onionpunch.js', 'no-such-verb'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'no-such-verb'/);
});
