/**
 * The report's charts as Vega-Lite specifications (plain JSON, compiled in the page by the inlined vega-lite).
 * Each chart reads one named dataset, and each row of it carries a `series` field: the page counts the distinct
 * series of every chart (what the report test checks against the data it was given).
 */
import type { ReportData, ReportEvent, ReportGroup } from './model.js';

/** A Vega-Lite spec; kept as plain JSON so this module needs no type package. */
export type VlSpec = Record<string, unknown>;

export interface ChartSpec {
  /** Element id and dataset name. */
  id: string;
  title: string;
  /** Shown when the chart has no data (instead of an empty plot). */
  empty?: string;
  spec: VlSpec;
  /** Distinct `series` values in the data (legend entries the page must show). */
  series: string[];
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const WIDTH = 640;

function distinct(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** What a group's attempts coordinated with: the measured-RTT flow, or zero-round-trip (`fastPath` set). */
const pathOf = (g: ReportGroup): string => (g.fastPath !== undefined ? 'zero-RTT' : 'measured RTT');

/**
 * Empirical CDF per group: one step line per group that connected at least once (a pair's zero-round-trip
 * attempts are a group of their own, drawn dashed).
 */
export function cdfChart(d: ReportData): ChartSpec {
  const rows: Array<{ series: string; path: string; ms: number; p: number }> = [];
  for (const g of d.groups) {
    const xs = [...g.timeToConnectMs].sort((a, b) => a - b);
    // The share is of all attempts, so a pair with failures tops out below 1.
    xs.forEach((ms, i) => rows.push({ series: g.name, path: pathOf(g), ms, p: (i + 1) / g.attempts }));
  }
  const series = distinct(rows.map((r) => r.series));
  const paths = distinct(rows.map((r) => r.path));
  return {
    id: 'cdf',
    title: 'Time to connect (CDF; from B’s request reaching A to established)',
    empty: 'no attempt connected',
    series,
    spec: {
      $schema: SCHEMA,
      width: WIDTH,
      height: 300,
      data: { name: 'cdf', values: rows },
      mark: { type: 'line', interpolate: 'step-after', point: true },
      encoding: {
        x: { field: 'ms', type: 'quantitative', title: 'time to connect (ms)', scale: { type: 'log' } },
        y: { field: 'p', type: 'quantitative', title: 'share of attempts connected', scale: { domain: [0, 1] } },
        color: {
          field: 'series',
          type: 'nominal',
          title: d.groupLabel ?? 'pair',
          // More lines than the default ten colours (pairs and their zero-RTT lines): twenty.
          ...(series.length > 10 ? { scale: { scheme: 'tableau20' } } : {}),
        },
        // The series names say the path; the dash only repeats it, so it gets no legend of its own.
        ...(paths.length > 1
          ? {
              strokeDash: {
                field: 'path',
                type: 'nominal',
                legend: null,
                scale: {
                  domain: ['measured RTT', 'zero-RTT'],
                  range: [
                    [1, 0],
                    [5, 3],
                  ],
                },
              },
            }
          : {}),
        tooltip: [{ field: 'series' }, { field: 'ms', format: '.1f' }, { field: 'p', format: '.2f' }],
      },
    },
  };
}

/** The outcome series of zero-round-trip attempts that connected, on the fast path or after falling back. */
export const FAST_PATH = 'connected (zero-RTT fast path)';
export const MEASURED_AFTER_ZRTT = 'connected (measured-RTT flow: fell back or backed off)';

/**
 * Outcomes per group: connected plus each failure reason, stacked. A zero-round-trip group splits connected
 * into the fast path and the measured-RTT flow it fell back to (or B's back-off sent it to).
 */
export function successChart(d: ReportData): ChartSpec {
  const rows: Array<{ group: string; series: string; n: number }> = [];
  for (const g of d.groups) {
    if (g.fastPath !== undefined) {
      const fast = Math.min(g.fastPath, g.connected);
      if (fast > 0) rows.push({ group: g.name, series: FAST_PATH, n: fast });
      if (g.connected > fast) rows.push({ group: g.name, series: MEASURED_AFTER_ZRTT, n: g.connected - fast });
    } else if (g.connected > 0) rows.push({ group: g.name, series: 'connected', n: g.connected });
    for (const [why, n] of Object.entries(g.failures)) rows.push({ group: g.name, series: why.split(':')[0]!, n });
    const other = g.attempts - g.connected - Object.values(g.failures).reduce((a, b) => a + b, 0);
    if (other > 0) rows.push({ group: g.name, series: 'other failure', n: other });
  }
  const series = distinct(rows.map((r) => r.series));
  return {
    id: 'success',
    title: `Outcome per ${d.groupLabel ?? 'pair'}`,
    series,
    spec: {
      $schema: SCHEMA,
      width: WIDTH,
      data: { name: 'success', values: rows },
      mark: 'bar',
      encoding: {
        y: { field: 'group', type: 'nominal', title: null, sort: null },
        x: { field: 'n', type: 'quantitative', title: 'attempts', stack: 'zero' },
        color: {
          field: 'series',
          type: 'nominal',
          title: 'outcome',
          scale: { domain: series, scheme: 'tableau10' },
        },
        tooltip: [{ field: 'group' }, { field: 'series' }, { field: 'n' }],
      },
    },
  };
}

/** The kind of a session event, for the timeline's colours. */
export function eventKind(e: Pick<ReportEvent, 'event'>): string {
  const n = e.event;
  if (/fail|error|reject|timeout/.test(n)) return 'failure';
  if (n.startsWith('engine:syn') || n === 'engine:rst') return 'SYN';
  if (n.includes('established') || n === 'verified') return 'established';
  if (n.startsWith('bitcoin')) return 'bitcoin handshake';
  if (n.startsWith('engine:')) return 'engine';
  return 'coordination';
}

/** Every sampled session: A's and B's events on one time axis, one row per session. */
export function timelineChart(d: ReportData): ChartSpec {
  const rows = d.timelines.flatMap((t) =>
    t.events.map((e) => ({
      session: `${t.group} · ${t.label}`,
      who: e.who,
      tMs: Math.round(e.tMs * 10) / 10,
      event: e.event,
      detail: e.detail ?? '',
      series: eventKind(e),
    })),
  );
  const sessions = distinct(rows.map((r) => r.session));
  return {
    id: 'timeline',
    title: 'Sampled sessions: events of A and B on one time axis (ms since the session’s first event)',
    empty: 'no sampled sessions',
    series: distinct(rows.map((r) => r.series)),
    spec: {
      $schema: SCHEMA,
      data: { name: 'timeline', values: rows },
      facet: {
        row: {
          field: 'session',
          type: 'nominal',
          title: null,
          sort: sessions,
          header: { labelAngle: 0, labelAlign: 'left', labelLimit: 260 },
        },
      },
      spec: {
        width: WIDTH - 120,
        height: 40,
        mark: { type: 'point', filled: true, size: 70, opacity: 0.85 },
        encoding: {
          x: { field: 'tMs', type: 'quantitative', title: 'ms', scale: { type: 'symlog' } },
          y: { field: 'who', type: 'nominal', title: null },
          color: { field: 'series', type: 'nominal', title: 'event' },
          shape: { field: 'series', type: 'nominal', title: 'event' },
          tooltip: [{ field: 'who' }, { field: 'event' }, { field: 'tMs', title: 'ms' }, { field: 'detail' }],
        },
      },
      resolve: { scale: { x: 'shared' } },
    },
  };
}

/** RSS, threads and descriptors of each process over the run. */
export function resourceChart(d: ReportData): ChartSpec {
  const rows = d.resources.flatMap((r) => [
    { tS: r.tS, series: r.who, segment: r.segment, metric: 'RSS (MB)', value: r.rssMb },
    { tS: r.tS, series: r.who, segment: r.segment, metric: 'threads', value: r.threads },
    { tS: r.tS, series: r.who, segment: r.segment, metric: 'open fds', value: r.fds },
  ]);
  return {
    id: 'resources',
    title: 'Resource use over the run (each worker process is one line; workers restart between pairs)',
    empty: 'this run recorded no resource samples',
    series: distinct(rows.map((r) => r.series)),
    spec: {
      $schema: SCHEMA,
      data: { name: 'resources', values: rows },
      facet: { row: { field: 'metric', type: 'nominal', title: null } },
      spec: {
        width: WIDTH - 80,
        height: 120,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'tS', type: 'quantitative', title: 's since the first sample' },
          y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '~g' } },
          color: { field: 'series', type: 'nominal', title: 'process' },
          detail: { field: 'segment' },
          tooltip: [{ field: 'series' }, { field: 'metric' }, { field: 'value' }, { field: 'tS', format: '.1f' }],
        },
      },
      resolve: { scale: { y: 'independent' } },
    },
  };
}

/** All charts of a report, in page order. */
export function reportCharts(d: ReportData): ChartSpec[] {
  return [cdfChart(d), successChart(d), timelineChart(d), resourceChart(d)];
}
