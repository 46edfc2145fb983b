// `onionpunch lab selftest --json`: builds every behaviour and measures it; the JSON is a contract.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { needsRoot } from '../helpers/root.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'onionpunch.js');

test('lab selftest --json: every behaviour ok, with observations', needsRoot('network namespaces and nftables'), (t) => {
  const r = spawnSync(process.execPath, [cli, 'lab', 'selftest', '--json'], { encoding: 'utf8', timeout: 90000 });
  for (const line of r.stderr.trim().split('\n')) t.diagnostic(line);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const res = JSON.parse(r.stdout) as { ok: boolean; behaviours: Record<string, Record<string, unknown> & { ok: boolean }>; upMs: number };
  const keys = ['eim', 'eim-shift', 'edm', 'drop', 'rst', 'icmp', 'cgnat', 'fw6', 'delay', 'loss'];
  assert.deepEqual(Object.keys(res.behaviours).sort(), [...keys].sort());
  for (const k of keys) assert.equal(res.behaviours[k]!.ok, true, `${k}: ${JSON.stringify(res.behaviours[k])}`);
  assert.equal(res.ok, true);
  assert.ok(Array.isArray(res.behaviours.eim!.seen));
  assert.equal(typeof res.behaviours.delay!.addedRttMs, 'number');
  assert.equal(typeof res.behaviours.loss!.measuredPctPerDirection, 'number');
});
