import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/addon.js';

const BIN = join(packageRoot(), 'dist', 'bench', 'engine', 'cli.js');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('bench engine script: usage errors exit 2 with the usage line, --help exits 0', () => {
  for (const args of [['nope'], ['--bogus']]) {
    const r = cli(args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, /usage: node dist\/bench\/engine\/cli.js/);
  }
  const h = cli(['--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /--json/);
});
