#!/usr/bin/env node
// Runs the compiled test files with node's test runner. Unit tests first (fast), then native, then lab
// tests (root only; they skip themselves with a reason elsewhere). `--unit` runs only the unit tests.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const onlyUnit = args.includes('--unit');
const groups = onlyUnit ? ['unit'] : ['unit', 'adversarial', 'native', 'lab'];

function collect(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = groups.flatMap((g) => collect(join('dist', 'test', g)));
if (files.length === 0) {
  console.error('run-tests: no compiled tests found under dist/test (did `npm run build:ts` run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=900000', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
