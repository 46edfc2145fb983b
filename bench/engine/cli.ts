/**
 * `node dist/bench/engine/cli.js [--json] [--quick] [--out FILE]` (`npm run bench:engine --`): the punch engine benchmark, native engine and
 * pure-Node baseline side by side (see docs/BENCHMARKS.md). `--json` prints the report as JSON
 * (`{"native": {...}, "baseline": {...}, ...}`), otherwise a summary; progress goes to stderr.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../../src/errors.js';

const USAGE = 'usage: node dist/bench/engine/cli.js [--json] [--quick] [--out FILE]';

export async function main(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const rest = args;
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
  const { runEngineBench, formatEngineBench } = await import('./engine-bench.js');
  const report = await runEngineBench({ quick, log: (s) => process.stderr.write(s + '\n') });
  const text = JSON.stringify(report, null, 2) + '\n';
  if (out) writeFileSync(out, text);
  process.stdout.write(json ? text : formatEngineBench(report) + '\n');
  return 0;
}

// Run as a script (the benchmark harness lives outside the library, so it is not a verb of `onionpunch`).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}
