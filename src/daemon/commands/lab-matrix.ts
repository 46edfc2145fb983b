/**
 * `onionpunch lab matrix`: the command-line face of src/punch/matrix.ts (every NAT pair, N punches each,
 * over one private Tor network).
 */
import { performance } from 'node:perf_hooks';
import { UsageError } from '../../errors.js';
import { ArgReader } from '../args.js';
import { CGNAT_PAIR, SHARED_LAB_PAIRS, matrixTable, runMatrix, type MatrixOptions } from '../../lab/matrix/matrix.js';

/**
 * `onionpunch lab matrix [--runs N] [--delay MS] [--jitter MS] [--loss PCT] [--profile plain|prime]
 *  [--pair NAME]... [--json]` (dispatched from commands/lab.ts). Needs root.
 */
export async function main(args: string[]): Promise<number> {
  const opts: MatrixOptions = { runs: 10 };
  let json = false;
  const r = new ArgReader(args);
  for (let a = r.next(); a !== undefined; a = r.next()) {
    const num = (min: number, max: number): number => r.number(a, min, max);
    switch (a) {
      case '--runs': opts.runs = Math.round(num(1, 1000)); break;
      case '--delay': opts.delayMs = num(0, 2000); break;
      case '--jitter': opts.jitterMs = num(0, 1000); break;
      case '--loss': opts.lossPct = num(0, 50); break;
      case '--profile': opts.profile = r.oneOf(a, ['plain', 'prime'] as const); break;
      case '--pair': (opts.pairs ??= []).push(r.value(a)); break;
      case '--json': json = true; break;
      case '--help':
      case '-h':
        process.stdout.write('usage: onionpunch lab matrix [--runs N] [--delay MS] [--jitter MS] [--loss PCT] [--profile plain|prime] [--pair NAME]... [--json]\n' +
          `pairs: ${[...SHARED_LAB_PAIRS, CGNAT_PAIR].map((p) => p.name).join(', ')}\n` +
          'defaults: 10 runs, 12.5 ms one-way per access link (50 ms RTT A-B), 2% loss, plain SYN schedule\n');
        return 0;
      default:
        throw new UsageError(`lab matrix: unknown option '${a}'`);
    }
  }
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    process.stderr.write('onionpunch lab matrix: needs root (network namespaces, nftables, a private Tor network)\n');
    return 1;
  }
  opts.log = (l) => process.stderr.write(l + '\n');
  const t0 = performance.now();
  const reports = await runMatrix(opts);
  if (json) process.stdout.write(JSON.stringify({ runs: opts.runs, elapsedMs: Math.round(performance.now() - t0), pairs: reports }) + '\n');
  else process.stdout.write(matrixTable(reports) + '\n');
  const ok = reports.every((r) => {
    const p = [...SHARED_LAB_PAIRS, CGNAT_PAIR].find((x) => x.name === r.pair);
    return p?.expectOk ? r.ok === r.runs : r.ok === 0;
  });
  return ok ? 0 : 1;
}
