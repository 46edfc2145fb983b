/**
 * `onionpunch lab stress`: many concurrent punches from one or more B sites to site A through the lab, on the
 * demo rig (src/lab/demo/rig.ts): over the private Tor network (each B site with its own tor client), the private
 * I2P network, or `direct` (plain TCP coordination to a port A's router forwards, named as such: it loads the
 * engine and the protocol past what the private Tor network carries).
 *
 * Measured: every session's outcome (connected, or a typed failure within its deadline), time-to-connect
 * (A's request → established, as `lab matrix`), B's whole punch, SYNs (engine counters), A's and B's CPU, RSS,
 * fds and threads before, during and after, conntrack entries on every router, and leaks after the run.
 * Faults, each on request, are injected while sessions run; the sessions they touched are reported one by one.
 */
import { PunchRig, WARM_SESSIONS, type ResourceSample, type RigSite } from '../demo/rig.js';
import type { WorkerMessage } from '../demo/jsonl.js';
import {
  eventsOf,
  outcomeLabel,
  sampleTimelines,
  type Events,
  type Sample,
  type SampleInput,
} from './sampled-timelines.js';
import { wallMs } from '../demo/jsonl.js';
import { LOSS_TABLES, lossRuleset } from '../topology/nft.js';
import { quantile, round1 } from '../stats.js';
import { statusOnly, type ProgressSink } from '../progress.js';
import { LabError } from '../errors.js';

export const STRESS_FAULTS = ['tor-restart', 'conntrack-flush', 'loss', 'i2pd-kill', 'b-kill'] as const;
/**
 * `tor-restart`: A's tor stopped and started again (A's endpoint re-publishes by itself); `conntrack-flush`:
 * A's router's conntrack table flushed; `loss`: 10% loss on every access link for 10 s; `i2pd-kill`: an I2P
 * router neither side uses as its SAM bridge killed; `b-kill`: a B worker SIGKILLed and started again.
 */
export type StressFault = (typeof STRESS_FAULTS)[number];

export interface StressOptions {
  overlay: 'tor' | 'i2p' | 'direct';
  /** B sites (default 1; over Tor each runs its own tor client). */
  sites?: number;
  sessions: number;
  concurrency: number;
  a?: RigSite;
  b?: RigSite;
  /** One-way delay per access link (ms; default 12.5: 50 ms RTT A–B), jitter, loss per link (%; default 1). */
  delayMs?: number;
  jitterMs?: number;
  lossPct?: number;
  faults?: StressFault[];
  /**
   * Rounds in one rig (default 1): `sessions` sessions each, A settled and its heap measured after every round,
   * so growth that plateaus (first-use caches) can be told from a leak (growth every round).
   */
  rounds?: number;
  /**
   * B's deadline per session (ms; default 30000): its overlay dial's timeout and, from then, the whole
   * session's. The parent waits for both and 15 s more, then records `LAB_SESSION_NO_OUTCOME`.
   */
  deadlineMs?: number;
  log?: (line: string) => void;
  progress?: ProgressSink;
}

/** Longest failure message an outcome keeps. */
const MESSAGE_CHARS = 300;

/** One session's outcome. Times are ms since the run started. */
export interface SessionOutcome {
  id: number;
  /** The B worker that ran it (`B`, `B2`, ...). */
  b: string;
  ok: boolean;
  /** A's request → established (ms), when A reported it. */
  timeToConnectMs?: number;
  /** B's punch() from start to established (ms; includes the overlay dial). */
  totalMs?: number;
  code?: string;
  /** The failure's message, cut to {@link MESSAGE_CHARS} (a report must stay small whatever B said). */
  message?: string;
  side?: string;
  step?: string;
  startedAt: number;
  endedAt: number;
  /** A's and B's steps (first time of each event, ms since that side's start; SYN/stall/RST counts). */
  aSteps?: Record<string, number>;
  bSteps?: Record<string, number>;
}

export interface FaultReport {
  fault: StressFault;
  /** ms since the run started. */
  startedAt: number;
  endedAt: number;
  /** What was done (e.g. `conntrack -F on a-router: 312 entries`). */
  detail: string;
  /** Sessions in flight at some moment of [startedAt, endedAt]: their outcomes, by code (`connected`). */
  touched: number;
  outcomes: Record<string, number>;
  /** Every touched session; a failed one with its (cut) message. */
  sessions: Array<{ id: number; outcome: string; totalMs?: number; message?: string }>;
  /** Sessions started after the fault ended: how many, how many connected (A recovered by itself). */
  after: { sessions: number; connected: number };
}

export interface ProcessUse {
  who: string;
  rssKb: number;
  threads: number;
  fds: number;
  cpuMs?: number;
}

export interface StressResult {
  overlay: StressOptions['overlay'];
  sites: number;
  sessions: number;
  concurrency: number;
  connected: number;
  successRate: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** p99 ÷ median (the target is ≤ 3). */
  p99OverMedian: number | null;
  /** B's whole punch (overlay dial included). */
  totalP50Ms: number | null;
  totalP99Ms: number | null;
  /** Outcome code (and side) → count for sessions that did not connect. */
  failures: Record<string, number>;
  /** SYNs (and prime SYNs) the engines sent during the run. */
  syns: { a: number; b: number; perSession: number };
  /** Connected sessions in which A fired without B's opfire, it being late (docs/PROTOCOL.md). */
  fireFallbacks: number;
  /** Resource use: before the run (after the warm-up, WARM_SESSIONS per B), the peak during it, after it settled. */
  resources: { before: ProcessUse[]; peak: ProcessUse[]; after: ProcessUse[]; cpuMsDuring: Record<string, number> };
  /** Conntrack entries per router: before, peak during, after. */
  conntrack: { before: Record<string, number>; peak: Record<string, number>; after: Record<string, number> };
  /**
   * Growth after the run on A and on every B that ran the whole run (a B a fault restarted has no baseline):
   * descriptors and threads must be 0; `engineSockets` are A's native engine sockets still open; RSS growth of
   * A after a GC is reported, not judged (the heap settles over minutes).
   */
  leaks: {
    fds: number;
    threads: number;
    engineSockets: number;
    aRssKb: number;
    /**
     * A's live heap after a GC: growth from the end of the first round to the end of the last (with one round:
     * from before the run), and whether it stayed within `aHeapBoundKb` (the check that can fail).
     */
    aHeapKb: number | null;
    aHeapBoundKb: number;
    aHeapOk: boolean;
  };
  /** A's heap after a GC and RSS: before the run and after every round (settled). */
  memory: {
    before: { heapUsedKb: number | null; rssKb: number };
    rounds: Array<{ heapUsedKb: number | null; rssKb: number }>;
  };
  /** The slowest connected sessions and the failed ones (up to TAIL each), with both sides' steps. */
  tail: SessionOutcome[];
  faults: FaultReport[];
  delayMs: number;
  jitterMs: number;
  lossPct: number;
  bringUpMs: number;
  elapsedMs: number;
  /** Every session (the report's CDF, the faults' lists). */
  outcomes: SessionOutcome[];
  /** Resource samples over the run (the report's resource chart). */
  samples: ResourceSample[];
  /** Whole timelines of sampled sessions: the first few, the slowest, the first failures (labels say which). */
  timelines: Array<{ label: string; b: string; events: Events }>;
}

const TIMELINES = 4;
const TAIL = 12;
/**
 * Whole timelines each worker keeps for the report's tail (A: slowest by request to established, the report's
 * measure; B: slowest whole punches) and failures. The report shows A's slowest joined with B's side where B
 * kept the same session, a few of B's own slowest and the first failures.
 */
const TAIL_TIMELINES = { slowest: 8, failed: 6 } as const;
const B_ONLY_SLOWEST = 3;
/**
 * A's heap may grow this much after a GC over the run (kB). A's first sessions fill code caches and bounded
 * tables (rate-limit buckets, the session-id replay window); a leak of even 1 kB per session passes it within
 * a few thousand sessions, which is why the growth is taken between rounds when there are several.
 */
const HEAP_BOUND_KB = 4096;
const FAULT_LOSS_PCT = 10;
const FAULT_LOSS_MS = 10_000;
const GRACE_MS = 15_000;

function use(s: ResourceSample): ProcessUse {
  const cpu = s.cpuMs !== undefined ? { cpuMs: s.cpuMs } : {};
  return { who: s.who, rssKb: s.rssKb, threads: s.threads, fds: s.fds, ...cpu };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs one stress run: builds the rig, runs the sessions (and faults), measures, tears everything down. */
export async function runStress(opts: StressOptions): Promise<StressResult> {
  const faults = opts.faults ?? [];
  const overlay = opts.overlay;
  const nb = opts.sites ?? 1;
  for (const [f, o] of [
    ['tor-restart', 'tor'],
    ['i2pd-kill', 'i2p'],
  ] as const) {
    if (faults.includes(f) && overlay !== o) throw new LabError('LAB_BAD_SPEC', `--fault ${f} needs --overlay ${o}`);
  }
  const deadlineMs = opts.deadlineMs ?? 30_000;
  const delayMs = opts.delayMs ?? 12.5;
  const jitterMs = opts.jitterMs ?? 0;
  const lossPct = opts.lossPct ?? 1;
  const K = opts.concurrency;
  const log = (l: string): void => {
    if (opts.progress) opts.progress.log(l);
    else opts.log?.(l);
  };

  // Messages from the workers, routed by what they answer.
  type Answer = WorkerMessage | { error: Record<string, string> };
  const pending = new Map<number, { who: string; resolve: (m: Answer) => void }>();
  const aConnected = new Map<string, number>();
  const aDetailed = new Map<string, Events>();
  const aSteps = new Map<string, Record<string, number>>();
  const bDetailed = new Map<string, Events>();
  const statsWait = new Map<string, (m: WorkerMessage) => void>();
  const tailWait = new Map<string, (m: WorkerMessage) => void>();
  /** Session number → B's session id (to join A's time-to-connect); B workers being restarted; killed ones. */
  const sessionIds = new Map<number, string>();
  const restarting = new Map<string, Promise<void>>();
  const killed = new Set<string>();
  const onMessage = (who: string, m: WorkerMessage): void => {
    if (m.type === 'session') {
      const p = pending.get(Number(m.id));
      if (p) {
        pending.delete(Number(m.id));
        p.resolve(m);
      }
      if (m.timeline && typeof m.sessionId === 'string') bDetailed.set(m.sessionId, eventsOf(who, m));
    } else if (m.type === 'connected' && who === 'A') {
      if (typeof m.sessionId === 'string' && typeof m.ttcMs === 'number') aConnected.set(m.sessionId, m.ttcMs);
      if (typeof m.sessionId === 'string' && m.steps) aSteps.set(m.sessionId, m.steps as Record<string, number>);
      if (m.timeline && typeof m.sessionId === 'string') aDetailed.set(m.sessionId, eventsOf('A', m));
    } else if (m.type === 'stats') {
      const w = statsWait.get(who);
      statsWait.delete(who);
      w?.(m);
    } else if (m.type === 'timelines') {
      const w = tailWait.get(who);
      tailWait.delete(who);
      w?.(m);
    }
  };
  const onExit = (who: string): void => {
    for (const [id, p] of pending) {
      if (p.who !== who) continue;
      pending.delete(id);
      const why = `the ${who} worker exited with the session in flight`;
      p.resolve({ error: failure(new LabError('LAB_WORKER_EXITED', why)) });
    }
    const w = statsWait.get(who);
    statsWait.delete(who);
    w?.({ type: 'stats', at: wallMs() });
    const t = tailWait.get(who);
    tailWait.delete(who);
    t?.({ type: 'timelines', at: wallMs() });
  };

  const t0Up = performance.now();
  const rig = await PunchRig.up({
    a: { nat: 'eim', inbound: 'drop', ...(opts.a ?? {}) },
    b: { nat: 'eim', inbound: 'drop', ...(opts.b ?? {}) },
    overlay,
    bSites: nb,
    delayMs,
    jitterMs,
    lossPct,
    profile: 'plain',
    sessionDeadlineMs: deadlineMs,
    timelines: TIMELINES + nb * WARM_SESSIONS,
    tail: TAIL_TIMELINES,
    steps: true,
    // A serves the whole run's concurrency: the lab's budgets sized to it (their defaults are a node's).
    aLimits: {
      maxConcurrentSessions: K + 16,
      sessionsPerSec: 100_000,
      sessionBurst: 100_000,
      targetIpPerSec: 100_000,
      targetIpBurst: 100_000,
      maxSessionsPerSource: K + 16,
      discoveryPerSec: 1000,
      discoveryBurst: 1000,
    },
    bLimits: { perEndpoint: K, perNetgroup: K, maxKeys: 1024 },
    onMessage,
    onExit: (who) => onExit(who),
    ...(opts.log || opts.progress ? { log: () => undefined } : {}),
    ...(opts.progress ? { progress: statusOnly(opts.progress) } : {}),
  });
  const bringUpMs = Math.round(performance.now() - t0Up);
  try {
    return await measured();
  } finally {
    await rig.down();
  }

  /** Sends `cmd` to a worker and waits (at most 5 s) for its answer through `waits`; undefined when none came. */
  async function ask(
    who: string,
    cmd: string,
    waits: Map<string, (m: WorkerMessage) => void>,
  ): Promise<WorkerMessage | undefined> {
    const p = new Promise<WorkerMessage>((resolve) => waits.set(who, resolve));
    if (!rig.send(who, { cmd })) {
      waits.delete(who);
      return undefined;
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 5000)));
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
      waits.delete(who);
    }
  }

  function engineStats(who: string): Promise<WorkerMessage | undefined> {
    return ask(who, 'stats', statsWait);
  }

  /** The tail timelines a worker kept (TailSampler samples; on B also `totals`, its slowest whole sessions). */
  async function tailSamples(who: string): Promise<{ samples: Sample[]; totals: Sample[] }> {
    const m = await ask(who, 'timelines', tailWait);
    const list = (x: unknown): Sample[] => (Array.isArray(x) ? (x as Sample[]) : []);
    return { samples: list(m?.samples), totals: list(m?.totals) };
  }

  /** The report's sampled sessions (sampled-timelines.ts) from what the live workers kept. */
  async function sampledTimelines(outcomes: SessionOutcome[]): Promise<StressResult['timelines']> {
    const bTails: SampleInput['bTails'] = [];
    for (const b of rig.bWorkerNames) if (!killed.has(b)) bTails.push({ who: b, ...(await tailSamples(b)) });
    const aTail = (await tailSamples('A')).samples;
    const first = TIMELINES;
    return sampleTimelines({ outcomes, sessionIds, aDetailed, bDetailed, aTail, bTails, first, bOnly: B_ONLY_SLOWEST });
  }

  function routerNodes(): string[] {
    return Object.values(rig.lab.sites).flatMap((s) => [s.router.ns, ...(s.carrier ? [s.carrier.ns] : [])]);
  }

  async function conntrack(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    await Promise.all(
      routerNodes().map(async (ns) => {
        // `conntrack -C` asks the namespace's own table over netlink (the /proc count is not per namespace here).
        const r = await rig.lab.exec(ns, ['conntrack', '-C']).catch(() => undefined);
        const n = Number(r?.stdout.trim());
        if (r?.code === 0 && Number.isFinite(n)) out[ns.slice(rig.lab.prefix.length)] = n;
      }),
    );
    return out;
  }

  async function setLoss(pct: number): Promise<void> {
    await Promise.all(
      Object.values(rig.lab.sites).map(async (s) => {
        const ns = (s.carrier ?? s.router).ns;
        for (const [family, name] of LOSS_TABLES) {
          await rig.lab.exec(ns, ['nft', 'delete', 'table', family, name]).catch(() => undefined);
        }
        if (pct > 0) {
          const r = await rig.lab.exec(ns, ['nft', '-f', '-'], { input: lossRuleset('wan', pct) });
          if (r.code !== 0) throw new LabError('LAB_COMMAND_FAILED', `nft (loss) on ${ns}: ${r.stderr}`);
        }
      }),
    );
  }

  async function inject(f: StressFault): Promise<string> {
    switch (f) {
      case 'tor-restart': {
        await rig.tor!.stopClient('a');
        const ms = await rig.tor!.startClient('a');
        return `tor on A stopped and started again (bootstrapped in ${ms} ms)`;
      }
      case 'conntrack-flush': {
        const ns = rig.lab.sites.a!.router.ns;
        const before = (await conntrack())[ns.slice(rig.lab.prefix.length)];
        const r = await rig.lab.exec(ns, ['conntrack', '-F']);
        if (r.code !== 0) throw new LabError('LAB_COMMAND_FAILED', `conntrack -F on ${ns}: ${r.stderr.trim()}`);
        return `conntrack -F on a-router (${before ?? '?'} entries)`;
      }
      case 'loss':
        await setLoss(FAULT_LOSS_PCT);
        await sleep(FAULT_LOSS_MS);
        await setLoss(lossPct);
        return `${FAULT_LOSS_PCT}% loss on every access link for ${FAULT_LOSS_MS / 1000} s, then ${lossPct}% again`;
      case 'i2pd-kill':
        await rig.i2p!.killRouter(0, 'SIGKILL');
        return 'i2pd router 1 (no SAM bridge of A or B) SIGKILLed, not restarted';
      case 'b-kill': {
        const i = nb - 1;
        const who = rig.bWorkerNames[i]!;
        restarting.set(
          who,
          (async () => {
            rig.killB(i);
            await sleep(1000);
            await rig.startB(i);
          })(),
        );
        await restarting.get(who);
        restarting.delete(who);
        killed.add(who);
        return `${who} SIGKILLed, started again after 1 s`;
      }
    }
  }

  async function measured(): Promise<StressResult> {
    const bNames = rig.bWorkerNames;
    // Warm-up, not counted: WARM_SESSIONS sessions per B, one after another (first use loads code and starts the
    // engine's thread; A's fire fallback and B's fire-RTT bound need that many verified sessions).
    await Promise.all(
      bNames.map(async (b, i) => {
        for (let k = 0; k < WARM_SESSIONS; k++) await session(-1 - i - k * bNames.length, b, 0);
      }),
    );
    await sleep(1500);
    const before = rig.resources();
    const ctBefore = await conntrack();
    const engBefore = new Map<string, number>();
    const synsIn = (m: WorkerMessage | undefined): number =>
      Number((m?.engine as { syns?: number } | undefined)?.syns ?? 0);
    let aStatsBefore: WorkerMessage | undefined;
    for (const w of ['A', ...bNames]) {
      const m = await engineStats(w);
      if (w === 'A') aStatsBefore = m;
      engBefore.set(w, synsIn(m));
    }
    const samples: ResourceSample[] = [...before];
    const ctPeak: Record<string, number> = { ...ctBefore };
    const t0 = wallMs();
    let sampling = false;
    const sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      samples.push(...rig.resources());
      void conntrack()
        .then((c) => {
          for (const [k, v] of Object.entries(c)) ctPeak[k] = Math.max(ctPeak[k] ?? 0, v);
        })
        .finally(() => (sampling = false));
    }, 1000);
    const outcomes: SessionOutcome[] = [];
    const faultRuns: Array<Promise<void>> = [];
    const faultReports: Array<Omit<FaultReport, 'touched' | 'outcomes' | 'sessions' | 'after'>> = [];
    const triggers = faults.map((f, i) => ({
      f,
      at: Math.floor((opts.sessions * (opts.rounds ?? 1) * (i + 1)) / (faults.length + 1)),
    }));
    const rounds = opts.rounds ?? 1;
    const total = opts.sessions * rounds;
    opts.progress?.setTotal(total);
    let next = 0;
    let roundEnd = 0;
    const lane = async (): Promise<void> => {
      while (next < roundEnd) {
        const id = next++;
        for (const t of triggers) {
          if (t.at !== id) continue;
          const startedAt = wallMs() - t0;
          log(`fault ${t.f} at session ${id}`);
          faultRuns.push(
            inject(t.f).then(
              (detail) => void faultReports.push({ fault: t.f, startedAt, endedAt: wallMs() - t0, detail }),
              (err: Error) =>
                void faultReports.push({
                  fault: t.f,
                  startedAt,
                  endedAt: wallMs() - t0,
                  detail: `failed: ${err.message}`,
                }),
            ),
          );
        }
        const o = await session(id, bNames[id % nb]!, t0);
        outcomes.push(o);
        const how = o.ok ? `ok, B ${o.totalMs?.toFixed(0) ?? '?'} ms` : `FAIL ${o.code}`;
        opts.progress?.advance(`#${id + 1} ${o.b}: ${how}`);
      }
    };
    const baseA = before.find((s) => s.who === 'A');
    const heapOf = (m: WorkerMessage | undefined): number | null => {
      const h = (m?.memory as { heapUsedKb?: number; gc?: boolean } | undefined) ?? {};
      return h.gc && typeof h.heapUsedKb === 'number' ? h.heapUsedKb : null;
    };
    const memory: StressResult['memory'] = {
      before: { heapUsedKb: heapOf(aStatsBefore), rssKb: baseA?.rssKb ?? 0 },
      rounds: [],
    };
    let after: ResourceSample[] = [];
    let aStats: WorkerMessage | undefined;
    let elapsedMs = 0;
    for (let r = 0; r < rounds; r++) {
      next = r * opts.sessions;
      roundEnd = next + opts.sessions;
      await Promise.all(Array.from({ length: Math.min(K, opts.sessions) }, () => lane()));
      if (r === rounds - 1) {
        await Promise.all(faultRuns);
        clearInterval(sampler);
        elapsedMs = Math.round(wallMs() - t0);
      }
      // Settle: A's sessions finish their handshakes and close; wait until A is back to its baseline (or 20 s).
      const settleEnd = performance.now() + 20_000;
      for (;;) {
        await sleep(1000);
        aStats = await engineStats('A');
        after = rig.resources();
        samples.push(...after);
        const a = after.find((s) => s.who === 'A');
        const active = Number((aStats?.listener as { active?: number } | undefined)?.active ?? 0);
        const settled = a && baseA && a.fds <= baseA.fds && a.threads <= baseA.threads && active === 0;
        if (settled || performance.now() > settleEnd) break;
      }
      const a = after.find((s) => s.who === 'A');
      memory.rounds.push({ heapUsedKb: heapOf(aStats), rssKb: a?.rssKb ?? 0 });
      if (rounds > 1) log(`round ${r + 1}/${rounds}: A heap ${heapOf(aStats) ?? '?'} kB, RSS ${a?.rssKb ?? '?'} kB`);
    }
    const ctAfter = await conntrack();
    const synsOf = async (w: string): Promise<number> =>
      synsIn(w === 'A' ? aStats : await engineStats(w)) - (engBefore.get(w) ?? 0);
    const synA = await synsOf('A');
    let synB = 0;
    for (const b of bNames) if (!killed.has(b)) synB += await synsOf(b);
    // Leaks: A and every B that lived through the run.
    let fds = 0;
    let threads = 0;
    for (const s of after) {
      if (killed.has(s.who)) continue;
      const b0 = before.find((x) => x.who === s.who);
      if (!b0) continue;
      fds += Math.max(0, s.fds - b0.fds);
      threads += Math.max(0, s.threads - b0.threads);
    }
    const aAfter = after.find((s) => s.who === 'A');
    const engineSockets = Number((aStats?.engine as { sockets?: number } | undefined)?.sockets ?? 0);
    const peak = new Map<string, ResourceSample>();
    for (const s of samples) {
      const p = peak.get(s.who);
      if (!p || s.rssKb > p.rssKb || s.fds > p.fds || s.threads > p.threads) {
        const m = (k: 'rssKb' | 'fds' | 'threads'): number => Math.max(s[k], p?.[k] ?? 0);
        peak.set(s.who, { ...s, rssKb: m('rssKb'), fds: m('fds'), threads: m('threads') });
      }
    }
    const cpuMsDuring: Record<string, number> = {};
    for (const s of after) {
      const b0 = before.find((x) => x.who === s.who);
      if (b0?.cpuMs === undefined || s.cpuMs === undefined || killed.has(s.who)) continue;
      cpuMsDuring[s.who] = Math.round(s.cpuMs - b0.cpuMs);
    }
    for (const o of outcomes) {
      if (!o.ok) continue;
      // A's measure when it reported one (every connected session does), B's otherwise.
      const sid = sessionIds.get(o.id);
      const t = sid !== undefined ? aConnected.get(sid) : undefined;
      if (t !== undefined) o.timeToConnectMs = round1(t);
      const st = sid !== undefined ? aSteps.get(sid) : undefined;
      if (st) o.aSteps = st;
    }
    const slowest = outcomes
      .filter((o) => o.ok && o.timeToConnectMs !== undefined)
      .sort((x, y) => y.timeToConnectMs! - x.timeToConnectMs!)
      .slice(0, TAIL);
    const tail = [...slowest, ...outcomes.filter((o) => !o.ok).slice(0, TAIL)];
    const heap0 = rounds > 1 ? memory.rounds[0]!.heapUsedKb : memory.before.heapUsedKb;
    const heap1 = memory.rounds[memory.rounds.length - 1]!.heapUsedKb;
    const aHeapKb = heap0 !== null && heap1 !== null ? heap1 - heap0 : null;
    const ttc = outcomes.flatMap((o) => (o.ok && o.timeToConnectMs !== undefined ? [o.timeToConnectMs] : []));
    const tot = outcomes.flatMap((o) => (o.ok && o.totalMs !== undefined ? [o.totalMs] : []));
    const q = (xs: number[], p: number): number | null => (xs.length ? round1(quantile(xs, p)) : null);
    const failures: Record<string, number> = {};
    for (const o of outcomes) if (!o.ok) failures[outcomeLabel(o)] = (failures[outcomeLabel(o)] ?? 0) + 1;
    const connected = outcomes.filter((o) => o.ok).length;
    const p50 = q(ttc, 0.5);
    const p99 = q(ttc, 0.99);
    const fr: FaultReport[] = faultReports.map((f) => {
      const touched = outcomes.filter((o) => o.startedAt <= f.endedAt && o.endedAt >= f.startedAt);
      const outc: Record<string, number> = {};
      for (const o of touched) outc[outcomeLabel(o)] = (outc[outcomeLabel(o)] ?? 0) + 1;
      const later = outcomes.filter((o) => o.startedAt > f.endedAt);
      return {
        ...f,
        startedAt: Math.round(f.startedAt),
        endedAt: Math.round(f.endedAt),
        touched: touched.length,
        outcomes: outc,
        sessions: touched.map((o) => ({
          id: o.id,
          outcome: outcomeLabel(o),
          ...(o.totalMs !== undefined ? { totalMs: o.totalMs } : {}),
          ...(o.message !== undefined ? { message: o.message } : {}),
        })),
        after: { sessions: later.length, connected: later.filter((o) => o.ok).length },
      };
    });
    const timelines = await sampledTimelines(outcomes);
    return {
      overlay,
      sites: nb,
      sessions: total,
      concurrency: K,
      connected,
      successRate: total ? Math.round((connected / total) * 10_000) / 10_000 : 0,
      p50Ms: p50,
      p90Ms: q(ttc, 0.9),
      p99Ms: p99,
      maxMs: ttc.length ? round1(Math.max(...ttc)) : null,
      p99OverMedian: p50 && p99 !== null ? Math.round((p99 / p50) * 100) / 100 : null,
      totalP50Ms: q(tot, 0.5),
      totalP99Ms: q(tot, 0.99),
      failures,
      syns: { a: synA, b: synB, perSession: total ? round1((synA + synB) / total) : 0 },
      fireFallbacks: outcomes.filter((o) => o.aSteps?.['fire-fallback'] !== undefined).length,
      resources: {
        before: before.map(use),
        peak: [...peak.values()].map(use),
        after: after.map(use),
        cpuMsDuring,
      },
      conntrack: { before: ctBefore, peak: ctPeak, after: ctAfter },
      leaks: {
        fds,
        threads,
        engineSockets,
        aRssKb: aAfter && baseA ? aAfter.rssKb - baseA.rssKb : 0,
        aHeapKb,
        aHeapBoundKb: HEAP_BOUND_KB,
        aHeapOk: aHeapKb !== null && aHeapKb <= HEAP_BOUND_KB,
      },
      memory,
      tail,
      faults: fr,
      delayMs,
      jitterMs,
      lossPct,
      bringUpMs,
      elapsedMs,
      outcomes,
      samples,
      timelines,
    };
  }

  /** One session on worker `b`: waits (bounded) for a restarting worker, then for its one `session` line. */
  async function session(id: number, b: string, t0: number): Promise<SessionOutcome> {
    const startedAt = wallMs() - t0;
    const end = (m: WorkerMessage | { error: Record<string, string> }): SessionOutcome => {
      const err = (m as { error?: Record<string, string> }).error;
      const wm = m as WorkerMessage;
      if (typeof wm.sessionId === 'string' && id >= 0) sessionIds.set(id, wm.sessionId);
      return {
        id,
        b,
        ok: wm.ok === true,
        startedAt: round1(startedAt),
        endedAt: round1(wallMs() - t0),
        ...(typeof wm.totalMs === 'number' ? { totalMs: round1(wm.totalMs) } : {}),
        ...(err?.code ? { code: err.code } : {}),
        ...(typeof err?.message === 'string' ? { message: err.message.slice(0, MESSAGE_CHARS) } : {}),
        ...(err?.side ? { side: err.side } : {}),
        ...(err?.step ? { step: err.step } : {}),
        ...(wm.steps ? { bSteps: wm.steps as Record<string, number> } : {}),
      };
    };
    const r = restarting.get(b);
    if (r) await Promise.race([r.catch(() => undefined), sleep(deadlineMs)]);
    const done = new Promise<WorkerMessage | { error: Record<string, string> }>((resolve) => {
      const timer = setTimeout(
        () => {
          pending.delete(id);
          const ms = 2 * deadlineMs + GRACE_MS;
          resolve({ error: failure(new LabError('LAB_SESSION_NO_OUTCOME', `B reported no outcome within ${ms} ms`)) });
        },
        2 * deadlineMs + GRACE_MS,
      );
      pending.set(id, {
        who: b,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
    if (!rig.send(b, { cmd: 'punch', id })) onExit(b);
    return end(await done);
  }
}

/** A session's failure the parent records itself (B's worker died, or never answered): B's side. */
function failure(e: LabError): Record<string, string> {
  return { code: e.code, message: e.message, side: 'B' };
}

/** `CODE (side)` of a failed outcome, `connected` of a good one. */

/** The final JSON line of `lab stress --json` without the per-session lists (those go to --report). */
export function stressSummary(r: StressResult): Omit<StressResult, 'outcomes' | 'samples' | 'timelines'> {
  const { outcomes: _o, samples: _s, timelines: _t, ...rest } = r;
  return rest;
}
