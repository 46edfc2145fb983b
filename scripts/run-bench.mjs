#!/usr/bin/env node
// Runs every compiled benchmark (dist/bench/*.bench.js) in turn; each writes JSON under bench/results/.
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const dir = join('dist', 'bench');
const only = process.argv[2];
const files = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => f.endsWith('.bench.js'))
      .sort()
  : [];
let status = 0;
for (const f of files) {
  if (only && !f.startsWith(only)) continue;
  console.log(`== ${f}`);
  const r = spawnSync(process.execPath, ['--expose-gc', join(dir, f)], { stdio: 'inherit' });
  if (r.status !== 0) status = 1;
}
process.exit(status);
