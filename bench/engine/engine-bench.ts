/**
 * The engine benchmark: the native engine side by side with a pure-Node baseline (net.connect scheduled by
 * setTimeout), measured in the same run. (a) SYN schedule precision, (b) attempt rate against a closed
 * loopback port (every attempt ends in a RST), (c) 10k/50k attempts held in flight into a namespace that
 * drops SYNs (root only): memory per attempt and JS-thread CPU. Used by `onionpunch bench engine` and
 * bench/engine.bench.ts.
 */
import net from 'node:net';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PunchEngine, probeBind, raiseFdLimit, type EngineError } from '../../src/native/engine.js';
import { makeNsPair, dropAllSynIn, nsExec } from '../../src/lab/netns.js';

export interface InflightResult {
  /** Attempts asked for. */
  n: number;
  /** Largest number of attempts in flight at once. */
  held: number;
  rampMs: number;
  rssBytesPerAttempt: number;
  /** Kernel slab growth per attempt (machine-wide /proc/meminfo, so approximate). */
  slabBytesPerAttempt: number;
  /** CPU of the JS (main) thread while the attempts are held, percent of one core. */
  jsThreadCpuPct: number;
  /** CPU of the whole process over the same window. */
  processCpuPct: number;
  /** Processes the attempts were spread over (RLIMIT_NOFILE per process); CPU figures are per process (max). */
  processes?: number;
}

export interface SideResult {
  scheduled: number;
  p50ErrorUs: number;
  p99ErrorUs: number;
  maxErrorUs: number;
  attemptsPerSec: number;
  attemptsMeasured: number;
  /** Largest number of in-flight attempts held (from (c) when it ran). */
  concurrent: number;
  inflight: InflightResult[];
}

export interface NativeSideResult extends SideResult {
  /** The engine thread ran SCHED_FIFO for (a) and (b). */
  realtime: boolean;
  /** (a) again with normal scheduling (SCHED_OTHER), for comparison. */
  normalSched: { p50ErrorUs: number; p99ErrorUs: number; maxErrorUs: number };
}

export interface EngineBenchReport {
  native: NativeSideResult;
  baseline: SideResult;
  ratios: { p99Error: number; p50Error: number; attemptRate: number };
  targets: { p50Le20us: boolean; p99Le200us: boolean; p99TenXBaseline: boolean; rateThreeXBaseline: boolean };
  inflightSkipped?: string;
  machine: { nproc: number; cpu: string; kernel: string; node: string; loadavg: number[] };
  quick: boolean;
  date: string;
}

const LO = '127.0.0.1';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

function round(x: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

function closedPort(): number {
  return probeBind({ address: LO, port: 0 }).port;
}

/**
 * SYN instants are SPACING_US apart plus a random sub-spacing offset. Not denser: the engine spins up to
 * 2 ms before each timer on a busy machine, and a SCHED_FIFO thread spinning without pause would be
 * throttled by the kernel (sched_rt_runtime_us), which is not what a punch schedule looks like.
 */
const SPACING_US = 4000;

function targets(n: number, startNs: bigint, spacingUs: number): bigint[] {
  // Sub-millisecond offsets on purpose: a ms-granular scheduler cannot hit them.
  const out: bigint[] = [];
  for (let i = 0; i < n; i++)
    out.push(startNs + BigInt(Math.round(i * spacingUs * 1000 + Math.random() * spacingUs * 1000)));
  return out;
}

/**
 * (a) native: one plan per SYN, one wave, no retry; error = |actual - target| of each SYN. Each plan binds
 * an explicit local port (from probeBind), as punch sessions do.
 */
async function precisionNative(eng: PunchEngine, n: number): Promise<number[]> {
  const port = closedPort();
  const ts = targets(n, eng.now() + 300_000_000n, SPACING_US);
  const remotes = [{ address: LO, port }];
  const res = await Promise.allSettled(
    ts.map((t) =>
      eng.punch({
        local: probeBind({ address: LO, port: 0 }),
        remotes,
        startAtNs: t,
        retryOnRefused: false,
        deadlineMs: 1000,
      }),
    ),
  );
  const errs: number[] = [];
  for (const r of res) {
    const tl = r.status === 'rejected' ? (r.reason as EngineError).timeline : r.value.timeline;
    if (r.status === 'fulfilled') r.value.socket.destroy();
    const syn = tl?.find((e) => e.kind === 'syn');
    if (syn?.targetNs !== undefined) errs.push(Math.abs(Number(syn.actualNs - syn.targetNs)) / 1000);
  }
  return errs;
}

/** (a) baseline: setTimeout to each target, then net.connect. */
async function precisionBaseline(eng: PunchEngine, n: number): Promise<number[]> {
  const port = closedPort();
  const ts = targets(n, eng.now() + 300_000_000n, SPACING_US);
  const errs: number[] = [];
  await new Promise<void>((resolve) => {
    let left = n;
    const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, the same clock as the engine's
    for (const t of ts) {
      setTimeout(
        () => {
          const actual = process.hrtime.bigint();
          errs.push(Math.abs(Number(actual - t)) / 1000);
          const s = net.connect({ host: LO, port });
          s.on('error', () => {
            s.destroy();
            if (--left === 0) resolve();
          });
          s.on('connect', () => s.destroy());
        },
        Number(t - now) / 1e6,
      );
    }
  });
  return errs;
}

/** (b) native: `workers` plans re-SYN immediately after each RST until the deadline. */
async function rateNative(eng: PunchEngine, workers: number, ms: number): Promise<number> {
  const port = closedPort();
  const before = eng.stats().syns;
  const t0 = process.hrtime.bigint();
  const remotes = [{ address: LO, port }];
  await Promise.allSettled(
    Array.from({ length: workers }, () =>
      eng.punch({ local: { address: LO, port: 0 }, remotes, resynIntervalUs: 1, deadlineMs: ms }),
    ),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return (eng.stats().syns - before) / secs;
}

/** (b) baseline: `workers` loops of net.connect → 'error' → connect again. */
async function rateBaseline(workers: number, ms: number): Promise<number> {
  const port = closedPort();
  let count = 0;
  const t0 = process.hrtime.bigint();
  const end = Date.now() + ms;
  await Promise.all(
    Array.from(
      { length: workers },
      () =>
        new Promise<void>((resolve) => {
          const next = (): void => {
            if (Date.now() >= end) return resolve();
            count++;
            const s = net.connect({ host: LO, port });
            s.on('error', () => {
              s.destroy();
              next();
            });
            s.on('connect', () => {
              s.destroy();
              next();
            });
          };
          next();
        }),
    ),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return count / secs;
}

const CHILD = fileURLToPath(new URL('./engine-bench-child.js', import.meta.url));

/**
 * Runs (c) for one side with `n` attempts, in `shards` concurrent processes (RLIMIT_NOFILE may cap one
 * process below n): each ramps up, reports 'held', and measures its hold window only once every shard holds.
 */
async function runInflight(
  ns: string,
  side: 'native' | 'baseline',
  n: number,
  target: string,
  shards: number,
): Promise<InflightResult> {
  const kids = Array.from({ length: shards }, (_, k) => {
    const per = Math.floor(n / shards) + (k < n % shards ? 1 : 0);
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--expose-gc', CHILD, side, String(per), target, String(k)],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let out = '';
    let onHeld: () => void = () => {};
    const held = new Promise<void>((r) => (onHeld = r));
    child.stdout.on('data', (d) => {
      out += String(d);
      if (/^held /m.test(out)) onHeld();
    });
    const exit = new Promise<number | null>((r) => child.on('exit', r));
    return { child, held, exit, per, out: () => out };
  });
  const timer = setTimeout(() => kids.forEach((k) => k.child.kill('SIGKILL')), 180_000);
  try {
    await Promise.race([Promise.all(kids.map((k) => k.held)), Promise.all(kids.map((k) => k.exit))]);
    for (const k of kids) k.child.stdin.end('measure\n');
    const codes = await Promise.all(kids.map((k) => k.exit));
    const rs = kids.map((k, i) => {
      if (codes[i] !== 0) throw new Error(`in-flight child (${side}, ${k.per}) exited ${codes[i]}: ${k.out()}`);
      return JSON.parse(k.out().trim().split('\n').at(-1)!) as InflightResult;
    });
    const held = rs.reduce((a, r) => a + r.held, 0);
    const wavg = (f: (r: InflightResult) => number): number =>
      Math.round(rs.reduce((a, r) => a + f(r) * r.held, 0) / Math.max(1, held));
    return {
      n,
      held,
      rampMs: Math.max(...rs.map((r) => r.rampMs)),
      rssBytesPerAttempt: wavg((r) => r.rssBytesPerAttempt),
      slabBytesPerAttempt: Math.round(
        rs.reduce((a, r) => a + r.slabBytesPerAttempt * r.held, 0) / Math.max(1, held) / shards,
      ),
      jsThreadCpuPct: Math.max(...rs.map((r) => r.jsThreadCpuPct)),
      processCpuPct: Math.max(...rs.map((r) => r.processCpuPct)),
      processes: shards,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** (c): attempts into a namespace that drops every SYN; each side measured in its own fresh process. */
async function inflight(
  sizes: number[],
  log: (s: string) => void,
): Promise<{ native: InflightResult[]; baseline: InflightResult[] }> {
  const pair = makeNsPair();
  try {
    dropAllSynIn(pair.b);
    // Room for 50k distinct local ports in the sender's namespace (a per-namespace sysctl).
    nsExec(pair.a, 'sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535']);
    const native: InflightResult[] = [];
    const baseline: InflightResult[] = [];
    // Without CAP_SYS_RESOURCE the hard RLIMIT_NOFILE cannot be raised: spread over processes then.
    const fdCap = raiseFdLimit(200_000) - 2048;
    for (const n of sizes) {
      const shards = Math.max(1, Math.ceil(n / fdCap));
      log(`  (c) ${n} in flight (${shards} process${shards > 1 ? 'es' : ''}, fd limit ${fdCap + 2048}): native...`);
      native.push(await runInflight(pair.a, 'native', n, pair.addrB, shards));
      log(`  (c) ${n} in flight: baseline...`);
      baseline.push(await runInflight(pair.a, 'baseline', n, pair.addrB, shards));
    }
    return { native, baseline };
  } finally {
    pair.destroy();
  }
}

function machine(): EngineBenchReport['machine'] {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  // The load average matters: the benchmark shares the machine with whatever else runs.
  return {
    nproc: os.availableParallelism(),
    cpu,
    kernel: os.release(),
    node: process.version,
    loadavg: os.loadavg().map((x) => round(x, 2)),
  };
}

/** Runs the whole benchmark. `quick`: fewer SYNs, shorter rate window, only 10k in flight. */
export async function runEngineBench(
  opts: { quick?: boolean; log?: (s: string) => void } = {},
): Promise<EngineBenchReport> {
  const quick = opts.quick ?? false;
  const log = opts.log ?? (() => {});
  // SCHED_FIFO for the engine thread when permitted (root): the machine may be busy, and a punch engine
  // that fires on time is the point. The same run repeats (a) with normal scheduling for comparison.
  const eng = new PunchEngine({ realtime: true });
  try {
    const nSyn = quick ? 1000 : 1500;
    log(`(a) schedule precision: ${nSyn} SYNs each side`);
    const pn = (await precisionNative(eng, nSyn)).sort((x, y) => x - y);
    const realtime = eng.stats().realtime;
    const plain = new PunchEngine();
    const pnNormal = (await precisionNative(plain, nSyn)).sort((x, y) => x - y);
    await plain.stop();
    const pb = (await precisionBaseline(eng, nSyn)).sort((x, y) => x - y);
    const rateMs = quick ? 500 : 2000;
    const workers = 64;
    log(`(b) attempt rate against a closed port: ${workers} workers, ${rateMs} ms each side`);
    const rn = await rateNative(eng, workers, rateMs);
    const rb = await rateBaseline(workers, rateMs);
    const nativeMax = eng.stats().maxSockets;
    await eng.stop();

    let inf: { native: InflightResult[]; baseline: InflightResult[] } = { native: [], baseline: [] };
    let skipped: string | undefined;
    if (typeof process.getuid === 'function' && process.getuid() === 0) {
      const sizes = quick ? [10_000] : [10_000, 50_000];
      log(`(c) attempts in flight into a SYN-dropping namespace: ${sizes.join(', ')}`);
      inf = await inflight(sizes, log);
    } else {
      skipped = '(c) skipped: needs root for the SYN-dropping network namespace';
      log(skipped);
    }
    const side = (errs: number[], rate: number, infl: InflightResult[], fallbackConcurrent: number): SideResult => ({
      scheduled: errs.length,
      p50ErrorUs: round(percentile(errs, 50)),
      p99ErrorUs: round(percentile(errs, 99)),
      maxErrorUs: round(errs.at(-1) ?? NaN),
      attemptsPerSec: Math.round(rate),
      attemptsMeasured: Math.round(rate * (rateMs / 1000)),
      concurrent: Math.max(fallbackConcurrent, ...infl.map((x) => x.held)),
      inflight: infl,
    });
    const native: NativeSideResult = {
      ...side(pn, rn, inf.native, nativeMax),
      realtime,
      normalSched: {
        p50ErrorUs: round(percentile(pnNormal, 50)),
        p99ErrorUs: round(percentile(pnNormal, 99)),
        maxErrorUs: round(pnNormal.at(-1) ?? NaN),
      },
    };
    const baseline = side(pb, rb, inf.baseline, 0);
    const report: EngineBenchReport = {
      native,
      baseline,
      ratios: {
        p99Error: round(baseline.p99ErrorUs / native.p99ErrorUs),
        p50Error: round(baseline.p50ErrorUs / native.p50ErrorUs),
        attemptRate: round(native.attemptsPerSec / baseline.attemptsPerSec, 2),
      },
      targets: {
        p50Le20us: native.p50ErrorUs <= 20,
        p99Le200us: native.p99ErrorUs <= 200,
        p99TenXBaseline: baseline.p99ErrorUs >= 10 * native.p99ErrorUs,
        rateThreeXBaseline: native.attemptsPerSec >= 3 * baseline.attemptsPerSec,
      },
      machine: machine(),
      quick,
      date: new Date().toISOString(),
    };
    if (skipped) report.inflightSkipped = skipped;
    return report;
  } finally {
    await eng.stop();
  }
}

/** A short human summary of a report. */
export function formatEngineBench(r: EngineBenchReport): string {
  const l: string[] = [];
  l.push(
    `machine: ${r.machine.nproc} x ${r.machine.cpu}, kernel ${r.machine.kernel}, node ${r.machine.node}, load ` +
      `${r.machine.loadavg.join(' ')}`,
  );
  l.push(
    `(a) SYN schedule error   native p50 ${r.native.p50ErrorUs} us  p99 ${r.native.p99ErrorUs} us  |  baseline p50 ` +
      `${r.baseline.p50ErrorUs} us  p99 ${r.baseline.p99ErrorUs} us  (p99 ${r.ratios.p99Error}x better)`,
  );
  l.push(
    `    native, SCHED_OTHER  p50 ${r.native.normalSched.p50ErrorUs} us  p99 ${r.native.normalSched.p99ErrorUs} us  ` +
      `(engine thread realtime in the main run: ${r.native.realtime})`,
  );
  l.push(
    `(b) attempts/s (RST)     native ${r.native.attemptsPerSec}  |  baseline ${r.baseline.attemptsPerSec}  ` +
      `(${r.ratios.attemptRate}x)`,
  );
  for (let i = 0; i < r.native.inflight.length; i++) {
    const n = r.native.inflight[i]!;
    const b = r.baseline.inflight[i];
    l.push(
      `(c) ${n.n} in flight${n.processes && n.processes > 1 ? ` (${n.processes} procs)` : ''}  native held ` +
        `${n.held}, ${n.rssBytesPerAttempt} B RSS + ${n.slabBytesPerAttempt} B slab /attempt, JS thread ` +
        `${n.jsThreadCpuPct}% CPU, ramp ${n.rampMs} ms` +
        (b
          ? `  |  baseline held ${b.held}, ${b.rssBytesPerAttempt} B RSS + ${b.slabBytesPerAttempt} B slab ` +
            `/attempt, JS thread ${b.jsThreadCpuPct}% CPU, ramp ${b.rampMs} ms`
          : ''),
    );
  }
  if (r.inflightSkipped) l.push(r.inflightSkipped);
  l.push(
    `targets: ${Object.entries(r.targets)
      .map(([k, v]) => `${k}=${v ? 'met' : 'MISSED'}`)
      .join(' ')}`,
  );
  return l.join('\n');
}

/** Reads /proc/meminfo's Slab in bytes. */
export function slabBytes(): number {
  const m = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
