/** `lab stress` results → the report's data (src/lab/report/model.ts), the same shape `lab matrix` fills. */
import type { StressResult } from '../stress/stress.js';
import type { ReportData, ReportGroup, ReportResourceSample } from './model.js';
import { quantile, round1 } from '../stats.js';

function conditions(r: StressResult, nat: string): string {
  return [
    `${r.sessions} sessions over ${r.overlay}, ${r.concurrency} at once from ${r.sites} B ` +
      `site${r.sites === 1 ? '' : 's'}`,
    nat,
    `${r.delayMs * 4} ms RTT A–B`,
    ...(r.jitterMs ? [`${r.jitterMs} ms jitter`] : []),
    `${r.lossPct}% loss per link`,
    ...(r.faults.length ? [`faults: ${r.faults.map((f) => f.fault).join(', ')}`] : []),
    `${Math.round(r.elapsedMs / 1000)} s`,
  ].join(', ');
}

/** The report of one stress run: one group per B worker (site), A's and every B's resources over the run. */
export function stressReportData(r: StressResult, nat: string, generatedAt = new Date().toISOString()): ReportData {
  const groups: ReportGroup[] = [];
  for (const b of [...new Set(r.outcomes.map((o) => o.b))]) {
    const os = r.outcomes.filter((o) => o.b === b);
    const ttc = os.flatMap((o) => (o.ok && o.timeToConnectMs !== undefined ? [o.timeToConnectMs] : []));
    const failures: Record<string, number> = {};
    for (const o of os) {
      if (o.ok) continue;
      const k = `${o.code ?? '?'}${o.side ? ` (${o.side})` : ''}`;
      failures[k] = (failures[k] ?? 0) + 1;
    }
    groups.push({
      name: `${b} → A`,
      attempts: os.length,
      connected: os.filter((o) => o.ok).length,
      timeToConnectMs: ttc,
      medianMs: ttc.length ? round1(quantile(ttc, 0.5)) : null,
      p90Ms: ttc.length ? round1(quantile(ttc, 0.9)) : null,
      boundMs: null,
      failures,
    });
  }
  const first = Math.min(...r.samples.map((s) => s.at));
  const resources: ReportResourceSample[] = r.samples.map((s) => ({
    tS: Math.round((s.at - first) / 100) / 10,
    who: s.who,
    segment: s.who,
    rssMb: Math.round(s.rssKb / 102.4) / 10,
    threads: s.threads,
    fds: s.fds,
  }));
  return {
    title: 'onionpunch lab stress',
    conditions: conditions(r, nat),
    generatedAt,
    groupLabel: 'B site',
    groups,
    timelines: r.timelines.flatMap((t) => {
      if (t.events.length === 0) return [];
      const t0 = Math.min(...t.events.map((e) => e.at));
      return [
        {
          group: `${t.b} → A`,
          label: t.label,
          events: t.events.map((e) => ({
            tMs: e.at - t0,
            who: e.who,
            event: e.event,
            ...(e.detail ? { detail: e.detail } : {}),
          })),
        },
      ];
    }),
    resources,
  };
}
