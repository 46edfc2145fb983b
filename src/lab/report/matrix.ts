/** `lab matrix` results → the report's data (src/lab/report/model.ts). */
import type { PairReport } from '../matrix/matrix.js';
import type { ReportData, ReportResourceSample, ReportTimeline } from './model.js';

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
  const parts = [`${r.runs} run${r.runs === 1 ? '' : 's'} per pair`];
  if (r.delayMs !== undefined) parts.push(`${r.delayMs * 4} ms RTT A–B`);
  if (r.jitterMs) parts.push(`${r.jitterMs} ms jitter`);
  if (r.lossPct !== undefined) parts.push(`${r.lossPct}% loss per link`);
  if (r.elapsedMs !== undefined) parts.push(`${Math.round(r.elapsedMs / 1000)} s in all`);
  return parts.join(', ');
}

/** The report of one matrix run. `generatedAt` defaults to now. */
export function matrixReportData(r: MatrixRun, generatedAt = new Date().toISOString()): ReportData {
  const timelines: ReportTimeline[] = [];
  const resources: ReportResourceSample[] = [];
  const firstSample = Math.min(...r.pairs.flatMap((p) => (p.resources ?? []).map((s) => s.at)));
  for (const p of r.pairs) {
    for (const t of p.timelines ?? []) {
      if (t.events.length === 0) continue;
      const t0 = Math.min(...t.events.map((e) => e.at));
      timelines.push({
        group: p.pair,
        label: `${t.label} (#${t.attempt + 1})`,
        events: t.events.map((e) => ({
          tMs: e.at - t0,
          who: e.who,
          event: e.event,
          ...(e.detail ? { detail: e.detail } : {}),
        })),
      });
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
    groups: r.pairs.map((p) => ({
      name: p.pair,
      attempts: p.runs,
      connected: p.ok,
      timeToConnectMs: (p.attempts ?? []).flatMap((a) =>
        a.ok && a.timeToConnectMs !== undefined ? [a.timeToConnectMs] : [],
      ),
      medianMs: p.medianMs,
      p90Ms: p.p90Ms,
      boundMs: p.boundMs ?? null,
      failures: p.failures,
    })),
    timelines,
    resources,
  };
}
