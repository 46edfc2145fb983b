// `onionpunch lab selftest --json`: builds every behaviour and measures it; the JSON is a contract.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { needsRoot } from '../helpers/root.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'onionpunch.js');

test(
  'lab selftest --json: every behaviour ok, with observations',
  needsRoot('network namespaces and nftables'),
  (t) => {
    const r = spawnSync(process.execPath, [cli, 'lab', 'selftest', '--json'], { encoding: 'utf8', timeout: 90000 });
    for (const line of r.stderr.trim().split('\n')) t.diagnostic(line);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const res = JSON.parse(r.stdout) as {
      ok: boolean;
      behaviours: Record<string, Record<string, unknown> & { ok: boolean }>;
      upMs: number;
    };
    const keys = ['eim', 'eim-shift', 'edm', 'edm-pba', 'drop', 'rst', 'icmp', 'cgnat', 'fw6', 'delay', 'loss'];
    assert.deepEqual(Object.keys(res.behaviours).sort(), [...keys].sort());
    for (const k of keys) assert.equal(res.behaviours[k]!.ok, true, `${k}: ${JSON.stringify(res.behaviours[k])}`);
    assert.equal(res.ok, true);
    assert.ok(Array.isArray(res.behaviours.eim!.seen));
    // the real Bitcoin-protocol NAT check agrees with the plain observation
    const nc = (k: string) => res.behaviours[k]!.natcheck as { mapping: string; portPreserving: boolean | null };
    assert.equal(nc('eim').mapping, 'eim');
    assert.equal(nc('eim').portPreserving, true);
    assert.equal(nc('eim-shift').mapping, 'eim');
    assert.equal(nc('eim-shift').portPreserving, false);
    assert.equal(nc('edm').mapping, 'edm');
    // hard NATs: random-fully is a wide spread, the port block a narrow one inside the block
    const spread = (k: string) =>
      (res.behaviours[k]!.natcheck as { portSpread: { narrow: boolean; min: number; max: number } }).portSpread;
    assert.equal(spread('edm').narrow, false);
    assert.equal(nc('edm-pba').mapping, 'edm');
    assert.equal(spread('edm-pba').narrow, true);
    assert.ok(spread('edm-pba').min >= 40000 && spread('edm-pba').max <= 41023);
    assert.equal(typeof res.behaviours.delay!.addedRttMs, 'number');
    assert.equal(typeof res.behaviours.loss!.measuredPctPerDirection, 'number');
  },
);
