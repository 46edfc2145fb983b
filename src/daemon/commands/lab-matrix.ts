/**
 * `onionpunch lab matrix`: the command-line face of src/lab/matrix/matrix.ts (every NAT pair, N punches each,
 * over one private Tor network).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { UsageError } from '../../errors.js';
import { flag, integer, list, oneOf, parseCommand, text, value } from '../args.js';
import type { SiteBehaviourSpec } from '../../lab/topology/spec.js';
import { ensurePrereqs } from '../../lab/prereqs.js';
import { formatSiteBehaviour, parseDuration, parsePercent, parseSiteBehaviour } from '../../lab/topology/spec.js';
import { CGNAT_PAIR, SHARED_LAB_PAIRS, matrixTable, runMatrix, type MatrixOptions } from '../../lab/matrix/matrix.js';
import { Progress } from '../../lab/progress.js';
import { matrixReportData, type MatrixRun } from '../../lab/report/matrix.js';
import { writeReport } from '../../lab/report/html.js';

const PAIRS = [...SHARED_LAB_PAIRS, CGNAT_PAIR].map((p) => p.name);

const MATRIX = {
  name: 'lab matrix',
  summary:
    'Punches every NAT pair N times over one private Tor network per lab (root); exit 0 when every pair\n' +
    'that should connect did every time and every pair that should fail (edm on both sides) did.',
  options: {
    runs: value('N', 'punches per pair, 1..1000 (default 10)', integer(1, 1000), 10),
    delay: value('MS', 'one-way delay per access link, e.g. 12.5ms (default 12.5ms: 50 ms RTT A-B)', (s: string) =>
      parseDuration(s, 2000),
    ),
    jitter: value('MS', 'jitter per access link (default 0)', (s: string) => parseDuration(s, 1000)),
    loss: value('PCT', 'loss per access link and direction, e.g. 2% (default 2%)', (s: string) => parsePercent(s, 50)),
    profile: value('P', 'SYN schedule: plain | prime (default plain)', oneOf(['plain', 'prime'] as const)),
    pair: list('NAME', 'only this pair of the table (repeatable; a prefix is enough)', text),
    'nat-a': value(
      'SPEC',
      "instead of the table, one pair: site A's behaviour as lab up's (e.g. cgnat)",
      parseSiteBehaviour,
    ),
    'nat-b': value(
      'SPEC',
      "site B's behaviour for that pair (e.g. eim,rst; fw6 on both: over IPv6)",
      parseSiteBehaviour,
    ),
    zrtt: flag(
      'also the zero-round-trip path: one attempt after each measured one; its own table (bound: direct RTT + 20 ms)',
    ),
    'conntrack-wait': value(
      'S',
      "after each pair, wait S seconds and read the routers' conntrack counts again (SYN_SENT: 120 s; default 0)",
      integer(0, 600),
    ),
    warmup: value(
      'N',
      'uncounted punches before each pair, as a running daemon is warm (default 3; 0: measure cold)',
      integer(0, 20),
    ),
    'no-install': flag('do not install missing packages (apt-get); print the command and stop'),
    json: flag('one JSON object; per pair ratio = median / (1.5 x overlay RTT + 2 x direct RTT), p90OverMedian'),
    report: value('FILE', 'also write a self-contained HTML report (charts inlined, opens offline)', text),
    from: value('FILE', 'no run: the table (or --report) from a saved --json line (no lab, no root)', text),
  },
  notes: `pairs: ${PAIRS.join(', ')}`,
};

/** `onionpunch lab matrix [options]` (dispatched from commands/lab.ts). Needs root. */
export async function main(args: string[]): Promise<number> {
  const p = parseCommand(MATRIX, args);
  if (p === null) return 0;
  const v = p.values;
  const opts: MatrixOptions = { runs: v.runs };
  if (v.delay !== undefined) opts.delayMs = v.delay;
  if (v.jitter !== undefined) opts.jitterMs = v.jitter;
  if (v.loss !== undefined) opts.lossPct = v.loss;
  if (v.profile !== undefined) opts.profile = v.profile;
  if (v.pair.length > 0) opts.pairs = v.pair;
  if (v.zrtt) opts.zeroRtt = true;
  if (v['conntrack-wait'] !== undefined) opts.conntrackWaitS = v['conntrack-wait'];
  if (v.warmup !== undefined) opts.warmup = v.warmup;
  if (v['nat-a'] !== undefined || v['nat-b'] !== undefined) {
    if (v.pair.length > 0) throw new UsageError('give --pair or --nat-a/--nat-b, not both');
    const [a, b] = [v['nat-a'] ?? {}, v['nat-b'] ?? {}];
    const site = (s: SiteBehaviourSpec) => ({ nat: s.nat ?? 'eim', inbound: s.inbound ?? 'drop', ...s });
    opts.custom = {
      name: `${formatSiteBehaviour(a)}×${formatSiteBehaviour(b)}`,
      a: site(a),
      b: site(b),
      family: a.ipv6 === 'fw6' && b.ipv6 === 'fw6' ? 6 : 4,
      // One endpoint-dependent side is sprayed through (the lab allows hard-NAT punching); both hard must fail fast.
      expectOk: !(['edm', 'edm-pba'].includes(a.nat ?? 'eim') && ['edm', 'edm-pba'].includes(b.nat ?? 'eim')),
    };
  }
  const json = v.json;
  if (v.from !== undefined) {
    let saved: MatrixRun;
    try {
      const raw = JSON.parse(readFileSync(v.from, 'utf8')) as MatrixRun | MatrixRun['pairs'];
      // bench/results/punch-matrix.json holds the bare pair list (no attempts: the report has no CDF then).
      saved = Array.isArray(raw) ? { runs: raw[0]?.runs ?? 0, pairs: raw } : raw;
    } catch (err) {
      throw new UsageError(`cannot read ${v.from}: ${(err as Error).message}`);
    }
    if (!Array.isArray(saved?.pairs)) throw new UsageError(`${v.from} is not a lab matrix --json line`);
    if (v.report !== undefined) {
      writeReport(v.report, matrixReportData(saved));
      process.stderr.write(`report: ${v.report}\n`);
    }
    process.stdout.write((json ? JSON.stringify(saved) : matrixTable(saved.pairs)) + '\n');
    return 0;
  }
  await ensurePrereqs(['lab', 'tor'], { what: 'onionpunch lab matrix', install: !v['no-install'] });
  const progress = new Progress({ label: 'lab matrix' });
  opts.progress = progress;
  const t0 = performance.now();
  const reports = await runMatrix(opts);
  const n = reports.length;
  progress.finish(`${n} pair${n === 1 ? '' : 's'} in ${Math.round((performance.now() - t0) / 1000)} s`);
  const run: MatrixRun = {
    runs: opts.runs,
    elapsedMs: Math.round(performance.now() - t0),
    delayMs: opts.delayMs ?? 12.5,
    jitterMs: opts.jitterMs ?? 0,
    lossPct: opts.lossPct ?? 2,
    pairs: reports,
  };
  if (v.report !== undefined) {
    writeReport(v.report, matrixReportData(run));
    process.stderr.write(`report: ${v.report}\n`);
  }
  if (json) process.stdout.write(JSON.stringify(run) + '\n');
  else process.stdout.write(matrixTable(reports) + '\n');
  const ok = reports.every((r) => {
    const p = [...SHARED_LAB_PAIRS, CGNAT_PAIR, ...(opts.custom ? [opts.custom] : [])].find((x) => x.name === r.pair);
    const z = r.zeroRtt;
    return p?.expectOk ? r.ok === r.runs && (!z || z.ok === z.runs) : r.ok === 0;
  });
  return ok ? 0 : 1;
}
