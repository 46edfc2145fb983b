/**
 * `onionpunch lab matrix`: every NAT pair N times, coordination over one private Tor network per lab.
 * Pairs that differ only in NAT rules share one lab (routers are reconfigured in place between pairs);
 * the carrier-NAT pair needs its own topology and gets a second lab.
 */
import { PunchRig, WARM_SESSIONS, type AttemptResult, type ResourceSample, type RigSite } from '../demo/rig.js';
import { median, quantile, round1 } from '../stats.js';
import { statusOnly, type ProgressSink } from '../progress.js';

/**
 * Uncounted punches before each pair's measured ones (`--warmup`, default): a long-running daemon's onion has
 * been reached before and its estimates (A's fire fallback, fire-fallback.ts; B's fire-RTT bound, fire-rtt.ts;
 * WARM_SESSIONS) are warm, while every pair here starts a new A with a new onion.
 * Measured cold, a pair's first attempts carried that instead of the NATs: an onion B's tor could not reach for
 * ~2 minutes after publication (2 failed attempts), an `opfire` held 1.1 s by Tor with no fallback yet
 * (docs/BENCHMARKS.md). `--warmup 0` measures cold.
 */
export const MATRIX_WARMUP = WARM_SESSIONS;
/** Most warm-up tries per pair: the warm-up may fail (a fresh onion not reachable yet), never without end. */
export const MATRIX_WARMUP_EXTRA_TRIES = 2;

export interface MatrixPair {
  name: string;
  /** The sites' behaviours; `cgnat`/`fw6` only for a pair with its own lab (the carrier-NAT or a custom pair). */
  a: RigSite;
  b: RigSite;
  family: 4 | 6;
  /** Whether success is expected (edm pairs must fail fast with a reason naming the side). */
  expectOk: boolean;
}

export const SHARED_LAB_PAIRS: MatrixPair[] = [
  {
    name: 'eim×eim (drop)',
    a: { nat: 'eim', inbound: 'drop' },
    b: { nat: 'eim', inbound: 'drop' },
    family: 4,
    expectOk: true,
  },
  {
    name: 'eim×eim (rst)',
    a: { nat: 'eim', inbound: 'rst' },
    b: { nat: 'eim', inbound: 'rst' },
    family: 4,
    expectOk: true,
  },
  {
    name: 'eim-shift×eim',
    a: { nat: 'eim-shift', inbound: 'drop' },
    b: { nat: 'eim', inbound: 'drop' },
    family: 4,
    expectOk: true,
  },
  {
    name: 'fw6×fw6 (IPv6)',
    a: { nat: 'eim', inbound: 'drop' },
    b: { nat: 'eim', inbound: 'drop' },
    family: 6,
    expectOk: true,
  },
  // One hard (endpoint-dependent) side: a birthday spray (the lab's workers allow hard-NAT punching).
  {
    name: 'edm×eim',
    a: { nat: 'edm', inbound: 'drop' },
    b: { nat: 'eim', inbound: 'drop' },
    family: 4,
    expectOk: true,
  },
  {
    name: 'eim×edm',
    a: { nat: 'eim', inbound: 'drop' },
    b: { nat: 'edm', inbound: 'drop' },
    family: 4,
    expectOk: true,
  },
  {
    name: 'edm-pba×eim',
    a: { nat: 'edm-pba', inbound: 'drop' },
    b: { nat: 'eim', inbound: 'drop' },
    family: 4,
    expectOk: true,
  },
  {
    name: 'eim×edm-pba',
    a: { nat: 'eim', inbound: 'drop' },
    b: { nat: 'edm-pba', inbound: 'drop' },
    family: 4,
    expectOk: true,
  },
  // Both hard: refused fast (PUNCH_NAT_BOTH_HARD) with a reason naming both sides.
  {
    name: 'edm×edm',
    a: { nat: 'edm', inbound: 'drop' },
    b: { nat: 'edm', inbound: 'drop' },
    family: 4,
    expectOk: false,
  },
];
export const CGNAT_PAIR: MatrixPair = {
  name: 'cgnat×eim',
  a: { nat: 'eim', inbound: 'drop' },
  b: { nat: 'eim', inbound: 'drop' },
  family: 4,
  expectOk: true,
};

export interface PairReport {
  pair: string;
  runs: number;
  ok: number;
  successRate: number;
  /** Time from B's request reaching A to established (ms). */
  medianMs: number | null;
  p90Ms: number | null;
  /** B's whole punch() including the overlay dial (ms). */
  medianTotalMs: number | null;
  medianOverlayRttMs: number | null;
  medianDirectRttMs: number | null;
  eimA?: string;
  eimB?: string;
  /** Birthday sprays: SYNs per side per attempt (median, max) over the sprayed attempts; null without any. */
  synsA?: { median: number; max: number } | null;
  synsB?: { median: number; max: number } | null;
  /** Failure reasons seen (code: side: message) with counts. */
  failures: Record<string, number>;
  /** Longest failing attempt (ms): a failure must be fast, never a hang. */
  maxFailMs: number | null;
  /** The issue-14 target for the median: 1.5 × overlay RTT + 2 × direct RTT (medians of this pair, ms). */
  boundMs: number | null;
  /** `medianMs / boundMs` (≤ 1 meets the target). */
  ratio: number | null;
  /** `p90Ms / medianMs` (the tail; the target is ≤ 2). */
  p90OverMedian: number | null;
  /** Every attempt in order, without its events. */
  attempts: AttemptSummary[];
  /**
   * `lab matrix --zrtt`: the same pair's zero-round-trip attempts (interleaved one for one with the measured-RTT
   * ones above, so both see the same overlay). Bound: 1 direct RTT + 20 ms (issue 14).
   */
  zeroRtt?: ZeroRttReport;
  /** Whole timelines of a few attempts (fastest, median and slowest success, first failure). */
  timelines: SampledTimeline[];
  /** A's and B's resource use before the first attempt and after each one. */
  resources: ResourceSample[];
  /** The uncounted warm-up punches before the measured ones: how many connected, tried, and how long (ms). */
  warmup?: { ok: number; tries: number; ms: number };
  /**
   * The routers' conntrack entry counts before the pair's first attempt, right after its last, and (with
   * `conntrackWaitS`) that many seconds later, when a spray's SYN_SENT entries (120 s) have timed out.
   */
  conntrack?: {
    before: Record<string, number>;
    after: Record<string, number>;
    afterWait?: Record<string, number>;
    waitS?: number;
  };
}

/** A pair's zero-round-trip attempts (`lab matrix --zrtt`). */
export interface ZeroRttReport {
  runs: number;
  ok: number;
  /** Connected on the fast path (the rest fell back to the measured-RTT flow or failed). */
  fastPath: number;
  /** Time from B's request reaching A to A's established (ms), over the connected attempts. */
  medianMs: number | null;
  p90Ms: number | null;
  /** The same over the fast-path attempts only. */
  medianFastMs: number | null;
  medianTotalMs: number | null;
  medianDirectRttMs: number | null;
  /** 1 × direct RTT + 20 ms (median direct RTT of these attempts). */
  boundMs: number | null;
  /** `medianMs / boundMs`. */
  ratio: number | null;
  p90OverMedian: number | null;
  failures: Record<string, number>;
  /** Why attempts fell back (B's `zero-rtt-fallback` reason) with counts. */
  fallbacks: Record<string, number>;
  attempts: AttemptSummary[];
  timelines: SampledTimeline[];
}

/** The zero-round-trip summary of a pair's fast-path attempts. */
export function summarizeZeroRtt(results: AttemptResult[]): ZeroRttReport {
  const base = summarizePair({ name: 'zrtt' }, results);
  const fast = results.filter((r) => r.ok && r.zeroRttUsed);
  const fastTtc = fast.map((r) => r.timeToConnectMs).filter((x): x is number => x !== undefined);
  const boundMs = base.medianDirectRttMs === null ? null : round1(base.medianDirectRttMs + 20);
  return {
    runs: base.runs,
    ok: base.ok,
    fastPath: fast.length,
    medianMs: base.medianMs,
    p90Ms: base.p90Ms,
    medianFastMs: fastTtc.length ? round1(median(fastTtc)) : null,
    medianTotalMs: base.medianTotalMs,
    medianDirectRttMs: base.medianDirectRttMs,
    boundMs,
    ratio: ratioOf(base.medianMs, boundMs),
    p90OverMedian: base.p90OverMedian,
    failures: base.failures,
    fallbacks: count(results.map((r) => r.zeroRttFallback)),
    attempts: base.attempts,
    // The first fallback too: why the fast path did not connect is the interesting part.
    timelines: [...base.timelines, ...fallbackTimeline(results)],
  };
}

function fallbackTimeline(results: AttemptResult[]): SampledTimeline[] {
  const i = results.findIndex((r) => r.zeroRttFallback !== undefined);
  return i < 0 ? [] : [{ attempt: i, label: 'fallback', events: results[i]!.events }];
}

function count(xs: Array<string | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) if (x !== undefined) out[x] = (out[x] ?? 0) + 1;
  return out;
}

export interface AttemptSummary {
  ok: boolean;
  timeToConnectMs?: number;
  totalMs?: number;
  overlayRttMs?: number;
  directRttMs?: number;
  code?: string;
  synsA?: number;
  synsB?: number;
}

export interface SampledTimeline {
  /** Index into `attempts`. */
  attempt: number;
  /** Why this one was kept: fastest | median | slowest | failure. */
  label: string;
  events: AttemptResult['events'];
}

export interface MatrixOptions {
  runs: number;
  delayMs?: number;
  jitterMs?: number;
  lossPct?: number;
  profile?: 'plain' | 'prime';
  pairs?: string[];
  /** Instead of the table: this one pair (e.g. `lab matrix --nat-a cgnat --nat-b eim,rst`), in its own lab. */
  custom?: MatrixPair;
  log?: (line: string) => void;
  /** Also run every pair's zero-round-trip path, one attempt after each measured-RTT one (`--zrtt`). */
  zeroRtt?: boolean;
  /** Told every attempt (a step) and each pair's summary; the rigs' bring-up shows as its status. */
  progress?: ProgressSink;
  /** After each pair's last attempt, wait this long (s) and read the routers' conntrack counts again (default 0). */
  conntrackWaitS?: number;
  /** Uncounted punches before each pair's measured ones (default MATRIX_WARMUP; 0 = measure cold). */
  warmup?: number;
}

/** Picks the attempts whose whole timelines the report shows. */
function sampleTimelines(results: AttemptResult[]): SampledTimeline[] {
  const ok = results.map((r, i) => ({ r, i })).filter((x) => x.r.ok && x.r.timeToConnectMs !== undefined);
  ok.sort((x, y) => x.r.timeToConnectMs! - y.r.timeToConnectMs!);
  const picks: Array<[number, string]> = [];
  if (ok.length) {
    picks.push([ok[0]!.i, 'fastest']);
    if (ok.length > 2) picks.push([ok[Math.floor((ok.length - 1) / 2)]!.i, 'median']);
    if (ok.length > 1) picks.push([ok[ok.length - 1]!.i, 'slowest']);
  }
  const fail = results.findIndex((r) => !r.ok);
  if (fail >= 0) picks.push([fail, 'failure']);
  return picks.map(([i, label]) => ({ attempt: i, label, events: results[i]!.events }));
}

function synStats(xs: Array<number | undefined>): { median: number; max: number } | null {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length ? { median: round1(median(v)), max: Math.max(...v) } : null;
}

function ratioOf(x: number | null, y: number | null): number | null {
  return x === null || y === null || y <= 0 ? null : Math.round((x / y) * 100) / 100;
}

/**
 * One pair's report from its attempts: success, quantiles, the issue-14 bound and ratios, sampled timelines.
 * `eim` is what each side's EIM check said (the rig's verdicts).
 */
export function summarizePair(
  pair: Pick<MatrixPair, 'name'>,
  results: AttemptResult[],
  eim: { a?: string; b?: string } = {},
  resources: ResourceSample[] = [],
): PairReport {
  const oks = results.filter((r) => r.ok);
  const ttc = oks.map((r) => r.timeToConnectMs).filter((x): x is number => x !== undefined);
  const nums = (f: (r: AttemptResult) => number | undefined): number[] =>
    oks.map(f).filter((x): x is number => x !== undefined);
  const failures: Record<string, number> = {};
  let maxFail: number | null = null;
  for (const r of results) {
    if (r.ok) continue;
    const k = `${r.error?.code ?? '?'}${r.error && 'side' in r.error && r.error.side ? ` (${r.error.side})` : ''}: ${(r.error?.message ?? '').slice(0, 120)}`;
    failures[k] = (failures[k] ?? 0) + 1;
    if (r.totalMs !== undefined) maxFail = Math.max(maxFail ?? 0, r.totalMs);
  }
  const m = (xs: number[]): number | null => (xs.length ? round1(median(xs)) : null);
  const medianMs = m(ttc);
  const p90Ms = ttc.length ? round1(quantile(ttc, 0.9)) : null;
  const overlay = m(nums((r) => r.overlayRttMs));
  const direct = m(nums((r) => r.directRttMs));
  const boundMs = overlay === null || direct === null ? null : round1(1.5 * overlay + 2 * direct);
  const r1 = (x: number | undefined): number | undefined => (x === undefined ? undefined : round1(x));
  const attempts = results.map((r): AttemptSummary => {
    const o: AttemptSummary = { ok: r.ok };
    for (const k of ['timeToConnectMs', 'totalMs', 'overlayRttMs', 'directRttMs'] as const) {
      const v = r1(r[k]);
      if (v !== undefined) o[k] = v;
    }
    if (r.error) o.code = r.error.code;
    if (r.synsA !== undefined) o.synsA = r.synsA;
    if (r.synsB !== undefined) o.synsB = r.synsB;
    return o;
  });
  return {
    pair: pair.name,
    runs: results.length,
    ok: oks.length,
    successRate: results.length ? oks.length / results.length : 0,
    medianMs,
    p90Ms,
    medianTotalMs: m(nums((r) => r.totalMs)),
    medianOverlayRttMs: overlay,
    medianDirectRttMs: direct,
    ...(eim.a !== undefined ? { eimA: eim.a } : {}),
    ...(eim.b !== undefined ? { eimB: eim.b } : {}),
    synsA: synStats(results.map((r) => r.synsA)),
    synsB: synStats(results.map((r) => r.synsB)),
    failures,
    maxFailMs: maxFail === null ? null : Math.round(maxFail),
    boundMs,
    ratio: ratioOf(medianMs, boundMs),
    p90OverMedian: ratioOf(p90Ms, medianMs),
    attempts,
    timelines: sampleTimelines(results),
    resources,
  };
}

/** A pair's uncounted warm-up (MATRIX_WARMUP): until that many connected, at most MATRIX_WARMUP_EXTRA_TRIES more. */
async function warmUp(
  rig: PunchRig,
  p: MatrixPair,
  opts: MatrixOptions,
): Promise<{ ok: number; tries: number; ms: number } | undefined> {
  const want = opts.warmup ?? MATRIX_WARMUP;
  if (want <= 0) return undefined;
  const t0 = performance.now();
  let ok = 0;
  let tries = 0;
  while (ok < want && tries < want + MATRIX_WARMUP_EXTRA_TRIES) {
    const r = await rig.attempt();
    tries++;
    if (r.ok) ok++;
    const how = r.ok ? `ok ${r.timeToConnectMs?.toFixed(1)} ms` : `FAIL ${r.error?.code}: ${r.error?.message}`;
    const line = `${p.name} warm-up #${tries} (not counted): ${how}`;
    if (opts.progress) opts.progress.log(line);
    else opts.log?.(line);
  }
  return { ok, tries, ms: Math.round(performance.now() - t0) };
}

async function runPairs(
  rig: PunchRig,
  pairs: MatrixPair[],
  opts: MatrixOptions,
  first: boolean,
): Promise<PairReport[]> {
  const out: PairReport[] = [];
  let fresh = first;
  for (const p of pairs) {
    if (!fresh) await rig.reconfigure(p.a, p.b, p.family);
    fresh = false;
    const warmup = p.expectOk ? await warmUp(rig, p, opts) : undefined;
    const results: AttemptResult[] = [];
    const zrtt: AttemptResult[] = [];
    const ctBefore = await rig.conntrackCounts();
    const resources: ResourceSample[] = rig.resources();
    const told = (r: AttemptResult, line: string): void => {
      const how = r.ok ? `ok ${r.timeToConnectMs?.toFixed(1)} ms` : `FAIL ${r.error?.code}: ${r.error?.message}`;
      if (opts.progress) opts.progress.advance(`${line}: ${how}`);
      else opts.log?.(`${line}: ${how}`);
    };
    for (let i = 0; i < opts.runs; i++) {
      const r = await rig.attempt();
      results.push(r);
      resources.push(...rig.resources());
      told(r, `${p.name} #${i + 1}`);
      if (!opts.zeroRtt) continue;
      const z = await rig.attempt(90_000, { zeroRtt: true });
      zrtt.push(z);
      resources.push(...rig.resources());
      told(z, `${p.name} zero-RTT #${i + 1}${z.zeroRttFallback ? ` (fell back: ${z.zeroRttFallback})` : ''}`);
    }
    const eim = {
      ...(rig.eimA ? { a: String(rig.eimA.mapping) } : {}),
      ...(rig.eimB ? { b: String(rig.eimB.mapping) } : {}),
    };
    const conntrack: NonNullable<PairReport['conntrack']> = { before: ctBefore, after: await rig.conntrackCounts() };
    const waitS = opts.conntrackWaitS ?? 0;
    if (waitS > 0) {
      const note = `${p.name}: waiting ${waitS} s for the routers' conntrack entries to time out`;
      if (opts.progress) opts.progress.log(note);
      else opts.log?.(note);
      await new Promise((r) => setTimeout(r, waitS * 1000));
      conntrack.afterWait = await rig.conntrackCounts();
      conntrack.waitS = waitS;
    }
    const rep: PairReport = {
      ...summarizePair(p, results, eim, resources),
      ...(warmup ? { warmup } : {}),
      conntrack,
    };
    if (opts.zeroRtt) rep.zeroRtt = summarizeZeroRtt(zrtt);
    const use = (r: ResourceSample | undefined): string =>
      r ? `${r.fds} fds, ${r.threads} threads, ${(r.rssKb / 1024).toFixed(1)} MB` : '-';
    const side = (who: string): string => {
      const mine = resources.filter((r) => r.who === who);
      return `${who} ${use(mine[0])} -> ${use(mine[mine.length - 1])}`;
    };
    const ct = (c: Record<string, number> | undefined): string =>
      c
        ? Object.entries(c)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')
        : '-';
    const hygiene =
      `${p.name}: ${[...new Set(resources.map((r) => r.who))].map(side).join('; ')}; conntrack before ` +
      `${ct(conntrack.before)}, after ${ct(conntrack.after)}` +
      (conntrack.afterWait ? `, ${waitS} s later ${ct(conntrack.afterWait)}` : '');
    if (opts.progress) opts.progress.log(hygiene);
    else opts.log?.(hygiene);
    const sum =
      `${p.name}: ${rep.ok}/${rep.runs}, median ${rep.medianMs} ms, p90 ${rep.p90Ms} ms` +
      (rep.ratio !== null ? `, median/bound ${rep.ratio}` : '') +
      (rep.p90OverMedian !== null ? `, p90/median ${rep.p90OverMedian}` : '') +
      (rep.synsA || rep.synsB ? `, SYNs A ${rep.synsA?.median ?? 0} B ${rep.synsB?.median ?? 0} (median)` : '');
    const z = rep.zeroRtt;
    const zsum = z
      ? `\n${p.name} zero-RTT: ${z.ok}/${z.runs} (${z.fastPath} fast path), median ${z.medianMs} ms, ` +
        `p90 ${z.p90Ms} ms, bound (direct RTT + 20) ${z.boundMs} ms, ratio ${z.ratio}`
      : '';
    if (opts.progress) opts.progress.log(sum + zsum);
    else opts.log?.(sum + zsum);
    out.push(rep);
  }
  return out;
}

/** Runs the matrix. Builds at most two labs (shared pairs, then the carrier-NAT pair), tears each down. */
export async function runMatrix(opts: MatrixOptions): Promise<PairReport[]> {
  const want = (p: MatrixPair): boolean => !opts.pairs || opts.pairs.some((n) => p.name.startsWith(n));
  const shared = SHARED_LAB_PAIRS.filter(want);
  const reports: PairReport[] = [];
  const common = {
    delayMs: opts.delayMs ?? 12.5,
    jitterMs: opts.jitterMs ?? 0,
    lossPct: opts.lossPct ?? 2,
    profile: opts.profile ?? 'plain',
    ...(opts.zeroRtt ? { zeroRtt: true } : {}),
    ...(opts.log || opts.progress ? { log: () => undefined } : {}),
    ...(opts.progress ? { progress: statusOnly(opts.progress) } : {}),
  };
  opts.progress?.setTotal(
    (opts.zeroRtt ? 2 : 1) * opts.runs * (opts.custom ? 1 : shared.length + (want(CGNAT_PAIR) ? 1 : 0)),
  );
  if (opts.custom) {
    const c = opts.custom;
    const rig = await PunchRig.up({ ...common, a: { ...c.a }, b: { ...c.b }, family: c.family });
    try {
      return await runPairs(rig, [c], opts, true);
    } finally {
      await rig.down();
    }
  }
  if (shared.length) {
    const p0 = shared[0]!;
    const rig = await PunchRig.up({ ...common, a: { ...p0.a }, b: { ...p0.b }, ipv6: true, family: p0.family });
    try {
      reports.push(...(await runPairs(rig, shared, opts, true)));
    } finally {
      await rig.down();
    }
  }
  if (want(CGNAT_PAIR)) {
    const rig = await PunchRig.up({
      ...common,
      a: { ...CGNAT_PAIR.a, cgnat: true },
      b: { ...CGNAT_PAIR.b },
      family: 4,
    });
    try {
      reports.push(...(await runPairs(rig, [CGNAT_PAIR], opts, true)));
    } finally {
      await rig.down();
    }
  }
  return reports;
}

/** The markdown table for docs/BENCHMARKS.md. */
export function matrixTable(reports: PairReport[]): string {
  const f = (x: number | null): string => (x === null ? '–' : x.toFixed(1));
  const lines = [
    '| pair (A×B) | EIM check A/B | success | median ms | p90 ms | median B total ms | overlay RTT ms | direct RTT ms ' +
      '| median ÷ bound | p90 ÷ median | failure reason |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of reports) {
    const reasons = Object.keys(r.failures)
      .map((k) => k.replace(/\|/g, '/'))
      .join('; ');
    // A spray's SYNs per side (medians) go with the success count: the table keeps its columns.
    const syns = r.synsA || r.synsB ? ` (spray SYNs A ${r.synsA?.median ?? 0}, B ${r.synsB?.median ?? 0})` : '';
    lines.push(
      `| ${r.pair} | ${r.eimA ?? '?'}/${r.eimB ?? '?'} | ${r.ok}/${r.runs}${syns} | ${f(r.medianMs)} | ${f(r.p90Ms)} | ${f(r.medianTotalMs)} | ${f(r.medianOverlayRttMs)} | ${f(r.medianDirectRttMs)} ` +
        `| ${r.ratio ?? '–'} | ${r.p90OverMedian ?? '–'} | ${reasons || '–'}${r.maxFailMs !== null ? ` (slowest failure ${r.maxFailMs} ms)` : ''} |`,
    );
  }
  const z = reports.filter((r) => r.zeroRtt);
  if (z.length) {
    lines.push(
      '',
      '| pair (A×B), zero-RTT | success (fast path) | median ms | p90 ms | median fast path ms ' +
        '| median B total ms ' +
        '| direct RTT ms | bound (direct RTT + 20) ms | median ÷ bound | failure reason |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const r of z) {
      const q = r.zeroRtt!;
      const reasons = Object.keys(q.failures)
        .map((k) => k.replace(/\|/g, '/'))
        .join('; ');
      lines.push(
        `| ${r.pair} | ${q.ok}/${q.runs} (${q.fastPath}) | ${f(q.medianMs)} | ${f(q.p90Ms)} ` +
          `| ${f(q.medianFastMs)} ` +
          `| ${f(q.medianTotalMs)} | ${f(q.medianDirectRttMs)} | ${f(q.boundMs)} | ${q.ratio ?? '–'} ` +
          `| ${reasons || '–'} |`,
      );
    }
  }
  const warm = reports.filter((r) => r.warmup);
  if (warm.length) {
    const w = warm.map((r) => `${r.pair} ${r.warmup!.ok}/${r.warmup!.tries} in ${(r.warmup!.ms / 1000).toFixed(1)} s`);
    lines.push('', `Not counted: each pair's warm-up punches first (connected/tried): ${w.join('; ')}.`);
  }
  return lines.join('\n');
}
