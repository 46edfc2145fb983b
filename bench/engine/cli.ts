/**
 * `node dist/bench/engine/cli.js [--json] [--quick] [--out FILE]` (`npm run bench:engine --`): the punch engine
 * benchmark, native engine and pure-Node baseline side by side (see docs/BENCHMARKS.md). `--json` prints the
 * report as JSON (`{"native": {...}, "baseline": {...}, ...}`), otherwise a summary; progress goes to stderr.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../../src/errors.js';
import { flag, helpText, parseCommand, text, value } from '../../src/daemon/args.js';

const BENCH = {
  program: 'node dist/bench/engine/cli.js',
  name: '',
  summary: 'The punch engine benchmark: the native engine and a pure-Node baseline side by side (docs/BENCHMARKS.md).',
  options: {
    json: flag('print the report as JSON (otherwise a summary; progress goes to stderr)'),
    quick: flag('fewer rounds'),
    out: value('FILE', 'also write the JSON report to FILE', text),
  },
};

export async function main(args: string[]): Promise<number> {
  let p;
  try {
    p = parseCommand(BENCH, args);
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`${err.message}\n${helpText(BENCH)}`);
    throw err;
  }
  if (p === null) return 0;
  const { json, quick, out } = p.values;
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
