/** `lab matrix` results → the report's data (src/lab/report/model.ts). */
import type { AttemptSummary, PairReport, SampledTimeline } from '../matrix/matrix.js';
import type { ReportData, ReportGroup, ReportResourceSample, ReportTimeline } from './model.js';

/** The report group of a pair's zero-round-trip attempts (`lab matrix --zrtt`), e.g. `eim×eim (drop) (zero-RTT)`. */
export const zeroRttGroupName = (pair: string): string => `${pair} (zero-RTT)`;

/** What `lab matrix --json` prints (the report can be built again from a saved line). */
export interface MatrixRun {
  runs: number;
  elapsedMs?: number;
  /** One-way delay, jitter per access link (ms) and loss (%), when the run recorded them. */
  delayMs?: number;
  jitterMs?: number;
  lossPct?: number;
  pairs: PairReport[];
}

function conditions(r: MatrixRun): string {
  const zrtt = r.pairs.some((p) => p.zeroRtt) ? ' (each followed by a zero-round-trip attempt: --zrtt)' : '';
  const parts = [`${r.runs} run${r.runs === 1 ? '' : 's'} per pair${zrtt}`];
  if (r.delayMs !== undefined) parts.push(`${r.delayMs * 4} ms RTT A–B`);
  if (r.jitterMs) parts.push(`${r.jitterMs} ms jitter`);
  if (r.lossPct !== undefined) parts.push(`${r.lossPct}% loss per link`);
  if (r.elapsedMs !== undefined) parts.push(`${Math.round(r.elapsedMs / 1000)} s in all`);
  return parts.join(', ');
}

/** Time-to-connect of the connected attempts (a summary-only file has no attempts). */
function connectedTimes(attempts: AttemptSummary[] | undefined): number[] {
  return (attempts ?? []).flatMap((a) => (a.ok && a.timeToConnectMs !== undefined ? [a.timeToConnectMs] : []));
}

/**
 * The report of one matrix run: one group per pair and, with `--zrtt`, one more per pair for its zero-round-trip
 * attempts (its own CDF line, bar and sampled timelines, the fallbacks counted). `generatedAt` defaults to now.
 */
export function matrixReportData(r: MatrixRun, generatedAt = new Date().toISOString()): ReportData {
  const timelines: ReportTimeline[] = [];
  const resources: ReportResourceSample[] = [];
  const firstSample = Math.min(...r.pairs.flatMap((p) => (p.resources ?? []).map((s) => s.at)));
  const addTimelines = (group: string, ts: SampledTimeline[]): void => {
    for (const t of ts) {
      if (t.events.length === 0) continue;
      const t0 = Math.min(...t.events.map((e) => e.at));
      timelines.push({
        group,
        label: `${t.label} (#${t.attempt + 1})`,
        events: t.events.map((e) => ({
          tMs: e.at - t0,
          who: e.who,
          event: e.event,
          ...(e.detail ? { detail: e.detail } : {}),
        })),
      });
    }
  };
  const groups: ReportGroup[] = [];
  for (const p of r.pairs) {
    groups.push({
      name: p.pair,
      attempts: p.runs,
      connected: p.ok,
      timeToConnectMs: connectedTimes(p.attempts),
      medianMs: p.medianMs,
      p90Ms: p.p90Ms,
      boundMs: p.boundMs ?? null,
      failures: p.failures,
    });
    addTimelines(p.pair, p.timelines ?? []);
    const z = p.zeroRtt;
    if (z) {
      // The same measure as the pair's own: from B's request reaching A to A's established (summarizeZeroRtt).
      groups.push({
        name: zeroRttGroupName(p.pair),
        attempts: z.runs,
        connected: z.ok,
        timeToConnectMs: connectedTimes(z.attempts),
        medianMs: z.medianMs,
        p90Ms: z.p90Ms,
        boundMs: z.boundMs ?? null,
        boundRule: '1 × direct RTT + 20 ms (zero-round-trip target)',
        failures: z.failures ?? {},
        fastPath: z.fastPath,
        fallbacks: z.fallbacks ?? {},
      });
      addTimelines(zeroRttGroupName(p.pair), z.timelines ?? []);
    }
    for (const s of p.resources ?? []) {
      resources.push({
        tS: Math.round((s.at - firstSample) / 100) / 10,
        who: s.who,
        segment: `${p.pair} ${s.who}`,
        rssMb: Math.round(s.rssKb / 102.4) / 10,
        threads: s.threads,
        fds: s.fds,
      });
    }
  }
  return {
    title: 'onionpunch lab matrix',
    conditions: conditions(r),
    generatedAt,
    groups,
    timelines,
    resources,
  };
}
