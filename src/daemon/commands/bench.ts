/**
 * `onionpunch bench engine [--json] [--quick] [--out FILE]`: the punch engine benchmark, native engine and
 * pure-Node baseline side by side (see docs/BENCHMARKS.md). `--json` prints the report as JSON
 * (`{"native": {...}, "baseline": {...}, ...}`), otherwise a summary; progress goes to stderr.
 */
import { writeFileSync } from 'node:fs';
import { UsageError } from '../../errors.js';

const USAGE = 'usage: onionpunch bench engine [--json] [--quick] [--out FILE]';

export async function main(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const [what, ...rest] = args;
  if (what !== 'engine') throw new UsageError(what === undefined ? `missing benchmark name\n${USAGE}` : `unknown benchmark '${what}'\n${USAGE}`);
  let json = false;
  let quick = false;
  let out: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--json') json = true;
    else if (a === '--quick') quick = true;
    else if (a === '--out' && rest[i + 1] !== undefined) out = rest[++i];
    else throw new UsageError(`unknown option '${a}'\n${USAGE}`);
  }
  const { runEngineBench, formatEngineBench } = await import('../../native/engine-bench.js');
  const report = await runEngineBench({ quick, log: (s) => process.stderr.write(s + '\n') });
  const text = JSON.stringify(report, null, 2) + '\n';
  if (out) writeFileSync(out, text);
  process.stdout.write(json ? text : formatEngineBench(report) + '\n');
  return 0;
}
