/**
 * Engine benchmark (native vs pure-Node baseline in the same run). Writes bench/results/engine.json.
 * `--quick` for a shorter run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runEngineBench, formatEngineBench } from './engine/engine-bench.js';
import { packageRoot } from '../src/native/addon.js';

const report = await runEngineBench({ quick: process.argv.includes('--quick'), log: (s) => console.log(s) });
const dir = join(packageRoot(), 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'engine.json'), JSON.stringify(report, null, 2) + '\n');
console.log(formatEngineBench(report));
