#!/usr/bin/env node
// Runs the compiled test files with node's test runner. Unit tests first (fast), then the adversarial runs
// (attacks against the real listener/proxy on loopback), then native, then lab tests (root only; they skip
// themselves with a reason elsewhere), then the package test (npm pack + installs). `--unit` runs only the unit tests.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const onlyUnit = args.includes('--unit');
const groups = onlyUnit ? ['unit'] : ['unit', 'adversarial', 'native', 'lab', 'package'];

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

// As root the lab tests run for real: check (and on Debian/Ubuntu install) what they spawn first, so
// `npm ci && npm test` is enough on a fresh machine. Elsewhere they skip themselves with a reason.
if (groups.includes('lab') && process.getuid?.() === 0) {
  const { ensurePrereqs } = await import('../dist/src/lab/prereqs.js');
  try {
    await ensurePrereqs(['lab', 'tor', 'i2p', 'conntrack'], { what: 'npm test' });
  } catch (err) {
    console.error(`run-tests: ${err.code ?? 'error'}: ${err.message}`);
    process.exit(1);
  }
  // The extras (cmake for the sanitizer build, procps, python3): without them some tests skip or fail, the rest runs.
  await ensurePrereqs(['test'], { what: 'npm test' }).catch((err) => {
    console.error(`run-tests: warning: ${err.code ?? 'error'}: ${err.message}`);
  });
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
