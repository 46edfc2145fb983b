/**
 * The punch engine facade. A native thread runs an epoll loop that fires timed SYN bursts from reusable local
 * ports, races candidates and hands the first established connection back as an ordinary `net.Socket`.
 * The JS thread never blocks: plans go in with `punch()`, outcomes come back through a thread-safe function.
 * See docs/ENGINE.md for the design.
 */
import net from 'node:net';
import { closeSync } from 'node:fs';
import { loadNative } from './addon.js';
import type { Endpoint } from './endpoint.js';
import { EngineError, NativeError, type EngineErrorCode } from './errors.js';
import {
  ENGINE_STATUS,
  NUDGE_MODE,
  PORT_MODE,
  SYSCALL,
  enumName,
  type EngineStatusName,
  type NudgeModeName,
  type PortModeName,
} from './enums.js';
import { decodeTimeline, type TimelineEvent } from './timeline.js';

export type { Endpoint } from './endpoint.js';
export type { TimelineEvent, TimelineKind } from './timeline.js';
export { EngineError, NativeError, PunchError, type EngineErrorCode } from './errors.js';

/** One punch: where to bind, whom to race, when to fire, when to give up. */
export interface PunchPlan {
  /** Bind address/port; port 0 = any (all attempts of the plan share the port chosen). */
  local: Endpoint;
  /**
   * Candidates, raced; the first established connection wins. Same address family as `local`. At most
   * 1024, or {@link MAX_SPRAY_ATTEMPTS} with `localPorts: 'distinct'` or `spreadUs` (a spray).
   */
  remotes: Endpoint[];
  /**
   * `shared` (default): every attempt leaves from the one local port. `distinct`: every attempt gets its own
   * ephemeral port at connect() (`local.port` must be 0) — the hard side of a spray.
   */
  localPorts?: PortModeName;
  /** Pacing: within a wave, attempt i of n sends its SYN `spreadUs * i / n` µs after the wave. Default 0. */
  spreadUs?: number;
  /** Absolute CLOCK_MONOTONIC ns (see `PunchEngine.now()`) of the first wave. */
  startAtNs?: bigint;
  /** Or: start this many ms from now. Neither: start at once. */
  startDelayMs?: number;
  /** Wave offsets in ms from the start; each wave re-creates every candidate's socket. Default [0]. */
  waves?: number[];
  /** Within a wave, re-create a failed attempt on this grid (µs). Default 20000; 0 = no re-SYN. */
  resynIntervalUs?: number;
  /**
   * A SYN still unanswered after this many ms (its socket still in SYN_SENT: neither the peer's SYN nor a
   * SYN-ACK came back) is re-sent from a fresh socket on the same 4-tuple, then after twice that, and so on
   * (at most 1 s apart), instead of waiting for the kernel's 1 s retransmission: a lost SYN costs about this
   * long. Sockets past SYN_SENT are never touched. Default 0 = leave it to the kernel (see docs/ENGINE.md
   * "Stall" for the RST ping-pong that made it opt-in); {@link DEFAULT_STALL_RESYN_MS} is the value measured.
   * Raised to the re-SYN grid when below it (a SYN budget computed from the grid holds); ignored (0) for sprays
   * (it would multiply their SYNs), for the prime profile, for plans of more than 16 remotes or with spread or
   * distinct ports, and when re-SYNs are off.
   */
  stallResynMs?: number;
  /**
   * Every this many ms from its SYN an attempt socket is checked; one found in SYN_RECV twice in a row (the peer's
   * SYN came, our SYN-ACK went, the handshake's final ACK has not come: lost, while the peer is established) sends
   * an ACK probe, which makes the peer repeat that ACK with no new ISN — instead of the kernel re-sending the
   * SYN-ACK only on the SYN's 1 s / 3 s timer (docs/ENGINE.md "ACK probe"). At most 4 per socket, 600 ms apart.
   * Needs CAP_NET_ADMIN and CAP_NET_RAW; without them the timeline gets one `ack-probe` with the errno. Default
   * {@link DEFAULT_ACK_PROBE_MS}; 0 = off; ignored (0) for sprays (spread, distinct ports), plans of more than
   * 16 remotes and with the blind {@link PunchPlan.stallResynMs} re-send (a {@link PunchPlan.stallLink} keeps it).
   */
  ackProbeMs?: number;
  /** 'prime' = per wave a low-TTL SYN, then after primeDelayMs a full-TTL SYN from a fresh socket. */
  profile?: 'plain' | 'prime';
  /** TTL / hop limit of prime SYNs (default 2). */
  primeTtl?: number;
  /** Delay between the prime SYN and the full SYN (default 100 ms). */
  primeDelayMs?: number;
  /** Plain profile: TTL of each socket's first SYN; the kernel's retransmissions use the default TTL. */
  firstSynTtl?: number;
  /** Default true; false = fail fast on RST or any error (ordinary connects). */
  retryOnRefused?: boolean;
  /** TCP_SYNCNT for the attempt sockets. */
  synCnt?: number;
  /** TCP_NODELAY on the winning socket (default true). */
  noDelay?: boolean;
  /**
   * Spray follower (the hard side, docs/ENGINE.md): keep every connection that establishes (no new SYN after the
   * first) and win with the one still alive once none has established or died for max(settleMs, 2 × its RTT),
   * at most 4 × settleMs; or at once with one the peer sent data on. Bounded: 1 s after the first, or at the
   * deadline, the earliest alive one wins. 0 / absent: the first established connection wins. At most 1000.
   */
  settleMs?: number;
  /** Close the losing sockets with RST (SO_LINGER 0) instead of FIN: the spray leader's (easy side's) way. */
  resetLosers?: boolean;
  /**
   * Stall coordination (docs/ENGINE.md "Stall report"): instead of re-sending a stalled SYN itself, the plan
   * calls `link.onStall()` when a SYN is still unanswered after `link.afterMs` (socket in SYN_SENT; then after
   * twice that, and so on, at most 1 s apart), and the caller tells the peer; the peer's report comes back as
   * `link.nudge()`. Excludes `stallResynMs`. Same limits as the stall re-send (not for sprays, prime, > 16
   * remotes, spread, distinct ports or re-SYNs off: then `onStall` is never called and `nudge` does nothing).
   */
  stallLink?: StallLink;
  /** From the start instant. */
  deadlineMs: number;
  signal?: AbortSignal;
}

/**
 * The two halves of stall coordination for one plan ({@link PunchPlan.stallLink}). A fresh ISN on a 4-tuple
 * whose far side already answered the old one is answered with RSTs by the far NAT (docs/ENGINE.md "Stall"),
 * and only the far side knows whether it did: so each side reports its own stall and the other decides.
 */
export class StallLink {
  /** Our SYN went unanswered this long (ms) before `onStall` runs. */
  readonly afterMs: number;
  private readonly report: () => void;
  private bound: ((mode: NudgeModeName) => void) | undefined;

  /** @param onStall runs on the JS thread, once per unanswered SYN (and again at each doubling). */
  constructor(afterMs: number, onStall: () => void) {
    if (!(afterMs > 0) || !Number.isFinite(afterMs) || afterMs > 60_000)
      throw invalid('afterMs must be 0 < ms ≤ 60000');
    this.afterMs = afterMs;
    this.report = onStall;
  }

  /**
   * The peer reported its own stall: give every attempt still handshaking a fresh SYN now — in SYN_SENT or
   * SYN_RECV (`any`: the peer is in SYN_SENT and holds none of our sequence numbers), or only in SYN_RECV
   * (`recv-only`). Only sockets whose SYN left at least `afterMs` ago and that the kernel has not re-sent from. At
   * most twice per plan; a no-op before the plan starts and after it ends.
   */
  nudge(mode: NudgeModeName): void {
    this.bound?.(mode);
  }

  /** @internal the engine's side. */
  bind(nudge: ((mode: NudgeModeName) => void) | undefined): void {
    this.bound = nudge;
  }

  /** @internal the engine's side. */
  stalled(): void {
    this.report();
  }
}

/** A won punch: a connected socket plus how it came about. */
export interface PunchResult {
  socket: net.Socket;
  local: Endpoint;
  remote: Endpoint;
  timeline: TimelineEvent[];
  /** Sockets that sent a SYN (prime SYNs included). */
  attempts: number;
  startedNs: bigint;
  establishedNs: bigint;
}

/** Counters of one engine. */
export interface EngineStats {
  /** Plans in flight on the engine thread. */
  plans: number;
  /** Attempt sockets open right now (each one a SYN in flight). */
  sockets: number;
  /** High-water mark of `sockets` since the engine started. */
  maxSockets: number;
  /** SYNs sent since the engine started. */
  syns: number;
  plansDone: number;
  /** Plans submitted whose outcome JS has not received yet. */
  inFlight: number;
  /** The engine thread runs SCHED_FIFO (asked for with `realtime` and permitted). */
  realtime: boolean;
}

/** Engine options. */
export interface PunchEngineOptions {
  /**
   * Run the engine thread SCHED_FIFO (priority 10) so that SYNs leave on time even on a busy machine.
   * Needs CAP_SYS_NICE (root); silently ignored otherwise (see `stats().realtime`). Default false.
   */
  realtime?: boolean;
  /**
   * Fixed spin before each timer, in µs (the thread sleeps on a timerfd until then, then busy-waits).
   * Default: adaptive, a little more than the worst recent timerfd wakeup lateness (100 µs .. 2 ms).
   */
  spinUs?: number;
}

interface NativeOutcome {
  id: number;
  status: number;
  errno: number;
  code: string;
  /** `onionpunch::Syscall` value (names in SYSCALL). */
  syscall: number;
  attempts: number;
  startedNs: bigint;
  establishedNs: bigint;
  remoteIndex: number;
  fd: number;
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  timeline: BigInt64Array;
}

interface NativeEngine {
  submit(plan: object): number;
  abort(id: number): void;
  stop(): void;
  nudge(id: number, mode: number): void;
  drain(): { outcomes: NativeOutcome[]; stalls?: Array<{ id: number; remote: number }>; stopped: boolean };
  stats(): EngineStats;
}

interface EngineBinding {
  monotonicNs(): bigint;
  errnoName(n: number): string;
  probeBind(address: string, port: number): { port: number } | { errno: number; code: string; syscall: number };
  reservePort(
    address: string,
    port: number,
  ): { port: number; fd?: number } | { errno: number; code: string; syscall: number };
  raiseFdLimit(n: number): number;
  lastDataReceivedNs(fd: number): bigint;
  Engine: new (wake: () => void, opts?: { realtimePriority?: number; spinNs?: number }) => NativeEngine;
}

function binding(): EngineBinding {
  return loadNative() as unknown as EngineBinding;
}

const errnoCache = new Map<number, string>();
function errnoName(n: number): string {
  let s = errnoCache.get(n);
  if (s === undefined) {
    s = binding().errnoName(n);
    errnoCache.set(n, s);
  }
  return s;
}

/** The error code of each C++ `Status` a plan can end with (`established` is no error). */
const STATUS_CODES: Record<Exclude<EngineStatusName, 'established'>, EngineErrorCode> = {
  timeout: 'ENGINE_TIMEOUT',
  aborted: 'ENGINE_ABORTED',
  refused: 'ENGINE_REFUSED',
  unreachable: 'ENGINE_UNREACHABLE',
  'bind-error': 'ENGINE_BIND',
  'socket-error': 'ENGINE_SOCKET',
  stopped: 'ENGINE_STOPPED',
  'loop-failed': 'ENGINE_LOOP_FAILED',
};

interface Pending {
  plan: PunchPlan;
  resolve: (r: PunchResult) => void;
  reject: (e: unknown) => void;
}

/** The plans sharing one AbortSignal, behind a single listener (thousands of listeners cost O(n²)). */
interface SignalGroup {
  ids: Set<number>;
  onAbort: () => void;
}

function invalid(msg: string): EngineError {
  return new EngineError('ENGINE_INVALID', msg);
}

function checkEndpoint(e: Endpoint | undefined, what: string, portZeroOk: boolean): number {
  if (e === null || typeof e !== 'object') throw invalid(`${what} must be {address, port}`);
  const fam = net.isIP(e.address);
  if (fam === 0) throw invalid(`${what}.address is not an IPv4/IPv6 literal: ${String(e.address)}`);
  if (!Number.isInteger(e.port) || e.port < (portZeroOk ? 0 : 1) || e.port > 65535)
    throw invalid(`${what}.port out of range: ${String(e.port)}`);
  return fam;
}

function msToNs(ms: number): number {
  return Math.round(ms * 1e6);
}

/** Validates a plan and turns it into what the addon reads. Throws ENGINE_INVALID. */
function toNativePlan(plan: PunchPlan, now: bigint): object {
  if (plan === null || typeof plan !== 'object') throw invalid('plan must be an object');
  const fam = checkEndpoint(plan.local, 'local', true);
  if (!Array.isArray(plan.remotes) || plan.remotes.length === 0) throw invalid('remotes must be a non-empty array');
  const spray = plan.localPorts === 'distinct' || (plan.spreadUs ?? 0) > 0;
  const maxRemotes = spray ? MAX_SPRAY_ATTEMPTS : 1024;
  if (plan.remotes.length > maxRemotes) throw invalid(`at most ${maxRemotes} remotes per plan`);
  const portMode = PORT_MODE.indexOf(plan.localPorts ?? 'shared');
  if (portMode < 0) throw invalid(`localPorts must be one of ${PORT_MODE.join(', ')}`);
  if (plan.localPorts === 'distinct' && plan.local.port !== 0) {
    throw invalid("localPorts 'distinct' needs local.port 0");
  }
  const spreadUs = plan.spreadUs ?? 0;
  if (!(spreadUs >= 0) || !Number.isFinite(spreadUs) || spreadUs > 60_000_000) {
    throw invalid('spreadUs must be 0..60e6');
  }
  plan.remotes.forEach((r, i) => {
    if (checkEndpoint(r, `remotes[${i}]`, false) !== fam) throw invalid(`remotes[${i}] is not the family of local`);
  });
  if (typeof plan.deadlineMs !== 'number' || !(plan.deadlineMs > 0) || !Number.isFinite(plan.deadlineMs))
    throw invalid('deadlineMs must be a positive number');
  const waves = plan.waves ?? [0];
  const badWave = (w: unknown): boolean => typeof w !== 'number' || !(w >= 0) || !Number.isFinite(w);
  if (!Array.isArray(waves) || waves.length === 0 || waves.some(badWave))
    throw invalid('waves must be non-negative ms offsets');
  const resynUs = plan.resynIntervalUs ?? 20_000;
  if (!(resynUs >= 0) || !Number.isFinite(resynUs)) throw invalid('resynIntervalUs must be >= 0');
  // The default never re-sends faster than the re-SYN grid: a new socket per remote at most every
  // max(grid, stall), so the SYN budget a caller computed from the grid (punch/ capPlan) still holds.
  // Off for prime plans: across a router, a fresh ISN after a prime SYN whose ICMP never came back was seen
  // to stall the handshake for good (test/native/simultaneous.test.ts, IPv6, 2 in 6) where the kernel's own
  // retransmission of the same ISN connects at 1 s.
  // Opt-in since a clean-clone CI run (docs/ENGINE.md "Stall"): a fresh ISN after the peer had answered the old
  // one can leave both sides in a RST ping-pong on their re-SYN grids until the deadline (0.4-0.7% of sessions
  // in `lab stress`); the kernel's own retransmission of the same ISN never does. A stall value below the
  // re-SYN grid is raised to it, so a SYN budget computed from the grid holds.
  const stallOff = spray || plan.remotes.length > 16 || resynUs === 0 || plan.profile === 'prime';
  const stallAsked = plan.stallResynMs ?? 0;
  if (!(stallAsked >= 0) || !Number.isFinite(stallAsked) || stallAsked > 60_000) {
    throw invalid('stallResynMs must be 0..60000');
  }
  if (plan.stallLink !== undefined && !(plan.stallLink instanceof StallLink))
    throw invalid('stallLink must be a StallLink');
  if (plan.stallLink && stallAsked > 0) throw invalid('stallLink and stallResynMs exclude each other');
  const stallWant = plan.stallLink ? plan.stallLink.afterMs : stallAsked;
  const stallMs = stallOff || stallWant === 0 ? 0 : Math.max(stallWant, resynUs / 1000);
  const probeAsked = plan.ackProbeMs ?? DEFAULT_ACK_PROBE_MS;
  if (!(probeAsked >= 0) || !Number.isFinite(probeAsked) || probeAsked > 10_000) {
    throw invalid('ackProbeMs must be 0..10000');
  }
  // Sprays: thousands of sockets, and the follower keeps every established one; a check each would cost more than
  // the lost ACK it recovers.
  // The blind stall re-send (stallResynMs) replaces sockets with fresh ISNs on its own clock; the probe's premise is
  // an untouched handshake, and the two together lost the stall test's connection 1 run in 5 here (0 in 6 without).
  const blindResend = stallMs > 0 && plan.stallLink === undefined;
  const probeMs = spray || blindResend || plan.remotes.length > 16 ? 0 : probeAsked;
  const ttlOk = (t: number | undefined): boolean => t === undefined || (Number.isInteger(t) && t >= 1 && t <= 255);
  if (!ttlOk(plan.primeTtl) || !ttlOk(plan.firstSynTtl)) throw invalid('TTLs must be integers 1..255');
  if (plan.synCnt !== undefined && !(Number.isInteger(plan.synCnt) && plan.synCnt >= 1 && plan.synCnt <= 127))
    throw invalid('synCnt must be 1..127');
  if (plan.profile !== undefined && plan.profile !== 'plain' && plan.profile !== 'prime') throw invalid('bad profile');
  const settleMs = plan.settleMs ?? 0;
  if (!(settleMs >= 0) || !Number.isFinite(settleMs) || settleMs > 1000) throw invalid('settleMs must be 0..1000');
  const primeDelayMs = plan.primeDelayMs ?? 100;
  if (!(primeDelayMs >= 0) || !Number.isFinite(primeDelayMs)) throw invalid('primeDelayMs must be >= 0');
  let start = now;
  if (plan.startAtNs !== undefined) {
    if (typeof plan.startAtNs !== 'bigint') throw invalid('startAtNs must be a bigint');
    start = plan.startAtNs;
  } else if (plan.startDelayMs !== undefined) {
    if (!(plan.startDelayMs >= 0) || !Number.isFinite(plan.startDelayMs)) throw invalid('startDelayMs must be >= 0');
    start = now + BigInt(msToNs(plan.startDelayMs));
  }
  return {
    localAddress: plan.local.address,
    localPort: plan.local.port,
    remotes: plan.remotes.map((r) => ({ address: r.address, port: r.port })),
    startNs: start,
    deadlineNs: start + BigInt(msToNs(plan.deadlineMs)),
    wavesNs: waves.map(msToNs),
    resynNs: Math.round(resynUs * 1000),
    stallNs: msToNs(stallMs),
    stallReport: plan.stallLink !== undefined && stallMs > 0,
    ackProbeNs: msToNs(probeMs),
    profile: plan.profile === 'prime' ? 1 : 0,
    primeTtl: plan.primeTtl ?? 2,
    primeDelayNs: msToNs(primeDelayMs),
    firstSynTtl: plan.firstSynTtl ?? 0,
    retryOnRefused: plan.retryOnRefused ?? true,
    synCnt: plan.synCnt ?? 0,
    noDelay: plan.noDelay ?? true,
    portMode,
    spreadNs: Math.round(spreadUs * 1000),
    settleNs: msToNs(settleMs),
    resetLosers: plan.resetLosers ?? false,
  };
}

/**
 * The {@link PunchPlan.stallResynMs} measured in docs/BENCHMARKS.md (opt-in): 4× the lab's 50 ms RTT and
 * above most terrestrial paths' RTT, so a SYN whose answer is merely in flight is rarely replaced.
 */
export const DEFAULT_STALL_RESYN_MS = 200;

/**
 * The {@link PunchPlan.ackProbeMs} default: a lost final ACK costs one to two of these plus a round trip (instead
 * of the kernel's 1 s), for a getsockopt per handshaking socket every 50 ms.
 */
export const DEFAULT_ACK_PROBE_MS = 50;

/** At most this many attempts in one spray plan (the engine's timeline indexes them in 16 bits). */
export const MAX_SPRAY_ATTEMPTS = 16384;

/**
 * A birthday spray, one side of it. `hard`: `count` sockets from distinct local ports, all to `remote` (the
 * easy side's mapped endpoint). `easy`: `count` sockets from the one `local` port to `count` distinct ports
 * of `remote.address` in `ports` (the hard side's public IP and its NAT's probe range).
 */
export interface SprayPlan {
  role: 'hard' | 'easy';
  /** Local address; for `easy` also the port (0 = any, shared by every attempt). */
  local: Endpoint;
  /** `hard`: the easy side's endpoint. `easy`: the hard side's public address (`port` ignored). */
  remote: Endpoint;
  /** Sockets (SYNs) in the plan, 1..MAX_SPRAY_ATTEMPTS. */
  count: number;
  /** `easy`: the inclusive port range to probe (default 1024..65535). */
  ports?: { low: number; high: number };
  /** `easy`: the probed ports, instead of a random choice in `ports` (distinct, `count` of them). */
  probePorts?: number[];
  /** Pace the SYNs over this many µs (default 0: at once). */
  spreadUs?: number;
  startAtNs?: bigint;
  startDelayMs?: number;
  deadlineMs: number;
  synCnt?: number;
  /**
   * One connection for both sides: the leader's first established connection wins and every other socket is
   * reset (`resetLosers`); the follower keeps what establishes until one survives the leader's resets or carries
   * its data (`settleMs`). Exactly one side of a spray leads. Default: the easy side leads.
   */
  lead?: boolean;
  /** The follower's settle period, default {@link SPRAY_SETTLE_MS} (see {@link PunchPlan.settleMs}). */
  settleMs?: number;
  signal?: AbortSignal;
}

/**
 * Default settle period of a spray's follower: a spray usually establishes several connections; the leader
 * keeps its first and resets the rest, the follower waits this long (or 2 × the RTT) for the resets to arrive.
 */
export const SPRAY_SETTLE_MS = 100;

/** A won spray: the punch result plus its summary. */
export interface SprayResult extends PunchResult {
  /** SYNs the plan sent (its attempt sockets). */
  syns: number;
  /** The winning port pair: our local port and the remote port it reached. */
  pair: { localPort: number; remotePort: number };
  /** ms from the start instant to the first SYN, the last SYN and the connection. */
  firstSynMs: number;
  lastSynMs: number;
  establishedMs: number;
}

/** `count` distinct random ports in [low, high] (partial Fisher–Yates over the range). */
export function randomPorts(count: number, low: number, high: number): number[] {
  const span = high - low + 1;
  if (!Number.isInteger(count) || count < 1 || count > span) {
    throw invalid(`cannot pick ${count} distinct ports in ${low}..${high}`);
  }
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(Math.random() * (span - i));
    const vi = swapped.get(i) ?? i;
    const vj = swapped.get(j) ?? j;
    swapped.set(j, vi);
    out.push(low + vj);
  }
  return out;
}

/** The engine plan of one spray side (validated; throws ENGINE_INVALID). */
export function sprayToPunchPlan(s: SprayPlan): PunchPlan {
  if (s === null || typeof s !== 'object' || (s.role !== 'hard' && s.role !== 'easy')) {
    throw invalid("role must be 'hard' or 'easy'");
  }
  if (!Number.isInteger(s.count) || s.count < 1 || s.count > MAX_SPRAY_ATTEMPTS) {
    throw invalid(`count must be 1..${MAX_SPRAY_ATTEMPTS}`);
  }
  checkEndpoint(s.remote, 'remote', true);
  let remotes: Endpoint[];
  if (s.role === 'hard') {
    checkEndpoint(s.remote, 'remote', false);
    remotes = new Array<Endpoint>(s.count).fill({ address: s.remote.address, port: s.remote.port });
  } else if (s.probePorts !== undefined) {
    if (!Array.isArray(s.probePorts) || s.probePorts.length !== s.count || new Set(s.probePorts).size !== s.count) {
      throw invalid('probePorts must be count distinct ports');
    }
    remotes = s.probePorts.map((port) => ({ address: s.remote.address, port }));
  } else {
    const { low, high } = s.ports ?? { low: 1024, high: 65535 };
    if (!Number.isInteger(low) || !Number.isInteger(high) || low < 1 || high > 65535 || low > high) {
      throw invalid('ports must be 1 <= low <= high <= 65535');
    }
    remotes = randomPorts(s.count, low, high).map((port) => ({ address: s.remote.address, port }));
  }
  const plan: PunchPlan = {
    local: s.role === 'hard' ? { address: s.local.address, port: 0 } : s.local,
    remotes,
    localPorts: s.role === 'hard' ? 'distinct' : 'shared',
    spreadUs: s.spreadUs ?? 0,
    // The kernel retransmits each SYN (1 s, 3 s, ...): a spray needs no re-SYN grid of its own.
    resynIntervalUs: 0,
    deadlineMs: s.deadlineMs,
  };
  // One connection for both sides: the leader's first established wins, the rest are reset; the follower keeps
  // what establishes until the leader's resets leave one, or the leader's data names it. See docs/ENGINE.md.
  if (s.lead !== undefined && typeof s.lead !== 'boolean') throw invalid('lead must be a boolean');
  if (s.lead ?? s.role === 'easy') plan.resetLosers = true;
  else plan.settleMs = s.settleMs ?? SPRAY_SETTLE_MS;
  if (s.startAtNs !== undefined) plan.startAtNs = s.startAtNs;
  if (s.startDelayMs !== undefined) plan.startDelayMs = s.startDelayMs;
  if (s.synCnt !== undefined) plan.synCnt = s.synCnt;
  if (s.signal) plan.signal = s.signal;
  return plan;
}

/**
 * One engine: a native thread and the plans it runs. `PunchEngine.shared()` is the process-wide one; tests
 * and benchmarks may make their own. The thread starts with the first plan, and again after `stop()`.
 */
export class PunchEngine {
  private static sharedEngine: PunchEngine | undefined;
  private native: NativeEngine | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly signals = new Map<AbortSignal, SignalGroup>();
  private stopping: Promise<void> | undefined;
  private stopDone: (() => void) | undefined;
  private readonly opts: PunchEngineOptions;

  constructor(opts: PunchEngineOptions = {}) {
    this.opts = { ...opts };
  }

  /** The process-wide engine. */
  static shared(): PunchEngine {
    PunchEngine.sharedEngine ??= new PunchEngine();
    return PunchEngine.sharedEngine;
  }

  /** CLOCK_MONOTONIC now, in ns: the clock of `startAtNs` and of every timeline. */
  now(): bigint {
    return binding().monotonicNs();
  }

  /** {@link probeBind}, as the engine port's port allocation (src/punch/engine-port.ts). */
  probeBind(local: Endpoint): Endpoint {
    return probeBind(local);
  }

  /** {@link reservePort}, as the engine port's held port allocation (src/punch/engine-port.ts). */
  reservePort(local: Endpoint): PortReservation {
    return reservePort(local);
  }

  /** {@link lastDataReceivedNs}, as the engine port's receipt clock (src/punch/engine-port.ts). */
  lastDataReceivedNs(stream: unknown): bigint | undefined {
    return lastDataReceivedNs(stream);
  }

  /** Plans submitted and not settled yet. */
  inFlight(): number {
    return this.pending.size;
  }

  /** Engine counters (zeros when the thread is not running). */
  stats(): EngineStats {
    if (!this.native) {
      return { plans: 0, sockets: 0, maxSockets: 0, syns: 0, plansDone: 0, inFlight: 0, realtime: false };
    }
    return this.native.stats();
  }

  /**
   * Runs a plan. Resolves with the first established connection as a `net.Socket`; rejects with an
   * `EngineError` (ENGINE_TIMEOUT, ENGINE_ABORTED, ENGINE_REFUSED, ENGINE_UNREACHABLE, ENGINE_BIND,
   * ENGINE_SOCKET, ENGINE_STOPPED, ENGINE_LOOP_FAILED, ENGINE_INVALID, ENGINE_START) that carries the
   * timeline.
   */
  punch(plan: PunchPlan): Promise<PunchResult> {
    let spec: object;
    try {
      spec = toNativePlan(plan, this.now());
    } catch (err) {
      return Promise.reject(err);
    }
    if (plan.signal?.aborted) return Promise.reject(new EngineError('ENGINE_ABORTED', 'aborted before start'));
    return new Promise<PunchResult>((resolve, reject) => {
      let id: number;
      if (this.stopping) {
        reject(new EngineError('ENGINE_STOPPED', 'engine is stopping'));
        return;
      }
      let native: NativeEngine;
      try {
        native = this.engine();
      } catch (err) {
        reject(err);
        return;
      }
      try {
        id = native.submit(spec);
      } catch (err) {
        // The plan passed toNativePlan, so only the addon's own checks can refuse it.
        reject(new EngineError('ENGINE_INVALID', (err as Error).message, [], { attempts: 0 }));
        return;
      }
      this.pending.set(id, { plan, resolve, reject });
      if (plan.signal) this.watch(plan.signal, id);
      plan.stallLink?.bind((mode) => native.nudge(id, NUDGE_MODE.indexOf(mode)));
    });
  }

  /**
   * Runs one side of a birthday spray ({@link SprayPlan}): thousands of sockets, paced over `spreadUs`. The easy
   * side's first established connection wins and every other socket is reset at once; the hard side keeps what
   * establishes until one survives the easy side's resets, so both end with the same connection. Raises
   * RLIMIT_NOFILE for the sockets first; rejects with ENGINE_FD_LIMIT when the limit cannot hold them (nothing
   * sent). The timeline (on the result or the EngineError) holds every SYN.
   */
  async spray(s: SprayPlan): Promise<SprayResult> {
    const plan = sprayToPunchPlan(s);
    // Every attempt of every plan in flight is an fd until it fails or the plan ends; keep headroom for Node.
    const need = this.stats().sockets + plan.remotes.length + 512;
    const limit = raiseFdLimit(need);
    if (limit < need) {
      const msg = `a spray of ${plan.remotes.length} sockets needs RLIMIT_NOFILE >= ${need}, have ${limit}`;
      throw new EngineError('ENGINE_FD_LIMIT', msg);
    }
    const r = await this.punch(plan);
    const syns = r.timeline.filter((e) => e.kind === 'syn' || e.kind === 'prime');
    const ms = (ns: bigint | undefined) => (ns === undefined ? NaN : Number(ns - r.startedNs) / 1e6);
    return {
      ...r,
      syns: r.attempts,
      pair: { localPort: r.local.port, remotePort: r.remote.port },
      firstSynMs: ms(syns[0]?.actualNs),
      lastSynMs: ms(syns[syns.length - 1]?.actualNs),
      establishedMs: ms(r.establishedNs),
    };
  }

  /** Ends every plan (they reject with ENGINE_STOPPED) and joins the thread. The engine can be used again. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    const native = this.native;
    if (!native) return Promise.resolve();
    this.stopping = new Promise<void>((resolve) => {
      this.stopDone = resolve;
    });
    native.stop();
    return this.stopping;
  }

  /** The running native engine, started on first use. Throws ENGINE_START when the thread cannot start. */
  private engine(): NativeEngine {
    if (!this.native) {
      const b = binding();
      let native: NativeEngine | undefined = undefined;
      try {
        native = new b.Engine(() => this.wake(native!), {
          realtimePriority: this.opts.realtime ? 10 : 0,
          spinNs: Math.round((this.opts.spinUs ?? 0) * 1000),
        });
      } catch (err) {
        const e = err as { errno?: unknown; code?: unknown; syscall?: unknown };
        const call = enumName(SYSCALL, typeof e.syscall === 'number' ? e.syscall : 0, '');
        const known = typeof e.errno === 'number' && typeof e.code === 'string';
        const cause = known ? new NativeError(e.code as string, e.errno as number, call) : undefined;
        const msg = `the engine thread cannot start: ${(err as Error).message}`;
        throw new EngineError('ENGINE_START', msg, [], cause ? { cause } : {});
      }
      this.native = native;
    }
    return this.native;
  }

  /** Runs on the JS thread when the engine has outcomes (or has stopped). */
  private wake(native: NativeEngine): void {
    let batch: ReturnType<NativeEngine['drain']>;
    try {
      batch = native.drain();
    } catch {
      return;
    }
    // Before the outcomes: a report and the plan's end can come in one batch, and an ended plan reports nothing.
    for (const r of batch.stalls ?? []) {
      const link = this.pending.get(r.id)?.plan.stallLink;
      try {
        link?.stalled();
      } catch {
        // the caller's callback: its failure is not the engine's
      }
    }
    for (const o of batch.outcomes) this.settle(o);
    if (batch.stopped && this.native === native) {
      this.native = undefined;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        this.cleanup(id, p);
        p.reject(new EngineError('ENGINE_STOPPED', 'engine stopped'));
      }
      const done = this.stopDone;
      this.stopping = undefined;
      this.stopDone = undefined;
      done?.();
    }
  }

  private watch(signal: AbortSignal, id: number): void {
    let g = this.signals.get(signal);
    if (!g) {
      const native = this.native!;
      const group: SignalGroup = {
        ids: new Set(),
        onAbort: () => {
          this.signals.delete(signal);
          for (const planId of group.ids) native.abort(planId);
        },
      };
      g = group;
      this.signals.set(signal, g);
      signal.addEventListener('abort', g.onAbort, { once: true });
    }
    g.ids.add(id);
  }

  private cleanup(id: number, p: Pending): void {
    const signal = p.plan.signal;
    if (!signal) return;
    const g = this.signals.get(signal);
    if (!g) return;
    g.ids.delete(id);
    if (g.ids.size === 0) {
      signal.removeEventListener('abort', g.onAbort);
      this.signals.delete(signal);
    }
  }

  private settle(o: NativeOutcome): void {
    const p = this.pending.get(o.id);
    if (!p) {
      if (o.fd >= 0) closeSync(o.fd);
      return;
    }
    this.pending.delete(o.id);
    this.cleanup(o.id, p);
    p.plan.stallLink?.bind(undefined);
    const timeline = decodeTimeline(o.timeline, p.plan.remotes, errnoName);
    const status = enumName(ENGINE_STATUS, o.status, 'socket-error');
    if (status === 'established' && o.fd >= 0) {
      if (p.plan.signal?.aborted) {
        // Won the race against the abort: the caller no longer wants it.
        closeSync(o.fd);
        p.reject(new EngineError('ENGINE_ABORTED', 'aborted', timeline, { attempts: o.attempts }));
        return;
      }
      let socket: net.Socket;
      try {
        // manualStart (Node's own option for adopted descriptors): nothing is read from the kernel until a
        // consumer asks ('data', pipe, read()), so a socket handed off as an fd (daemon/handoff.ts) keeps
        // every byte the peer sent; for any other use the socket behaves as usual.
        const opts = { fd: o.fd, readable: true, writable: true, manualStart: true } as net.SocketConstructorOpts;
        socket = new net.Socket(opts);
      } catch (err) {
        closeSync(o.fd);
        p.reject(new EngineError('ENGINE_SOCKET', `cannot wrap fd: ${(err as Error).message}`, timeline));
        return;
      }
      p.resolve({
        socket,
        local: { address: o.localAddress!, port: o.localPort! },
        remote: { address: o.remoteAddress!, port: o.remotePort! },
        timeline,
        attempts: o.attempts,
        startedNs: o.startedNs,
        establishedNs: o.establishedNs,
      });
      return;
    }
    const syscall = enumName(SYSCALL, o.syscall, '') || 'connect';
    const cause = o.errno !== 0 ? new NativeError(o.code, o.errno, syscall) : undefined;
    // 'established' without an fd cannot happen; were it to, it is a socket failure, never a success.
    const what = status === 'established' ? 'ENGINE_SOCKET' : STATUS_CODES[status];
    const msg = `${status}${cause ? ` (${cause.syscall}: ${cause.code})` : ''} after ${o.attempts} attempt(s)`;
    p.reject(new EngineError(what, msg, timeline, { ...(cause ? { cause } : {}), attempts: o.attempts }));
  }
}

/**
 * Binds a reusable (SO_REUSEADDR + SO_REUSEPORT) socket to `local` and reports the port the kernel chose;
 * the socket is closed again. Throws `NativeError` (EADDRINUSE, EADDRNOTAVAIL, ...).
 */
export function probeBind(local: Endpoint): Endpoint {
  checkEndpoint(local, 'local', true);
  const r = binding().probeBind(local.address, local.port);
  if ('errno' in r) throw new NativeError(r.code, r.errno, enumName(SYSCALL, r.syscall, '') || 'bind');
  return { address: local.address, port: r.port };
}

/**
 * A punch port held by a bound socket (SO_REUSEADDR + SO_REUSEPORT, never listening) from its choice until
 * the plan that uses it has bound its own sockets. A port merely probed and released can be taken in between
 * by connect()'s ephemeral choice for any other connection of the host (thousands of them in a busy run); the
 * plan's bind then fails with EADDRINUSE although the peer was already told the port. While this socket is
 * bound, connect() skips the port; the plan's sockets bind beside it (both reusable). Incoming SYNs are not
 * affected: nothing listens. See docs/ENGINE.md "Local ports".
 */
export class PortReservation {
  /** The endpoint held (the port the kernel chose when 0 was asked). */
  readonly local: Endpoint;
  private fd: number | undefined;

  /** @internal made by {@link reservePort}. */
  constructor(local: Endpoint, fd: number) {
    this.local = local;
    this.fd = fd;
  }

  /** True until {@link release}. */
  get held(): boolean {
    return this.fd !== undefined;
  }

  /** Closes the holding socket (idempotent). Sockets bound to the port meanwhile keep it. */
  release(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * As {@link probeBind}, but the socket stays bound until `release()`: the port cannot be taken by another
 * connection's ephemeral choice before the plan binds it. Throws `NativeError` (EADDRINUSE, EADDRNOTAVAIL, ...).
 */
export function reservePort(local: Endpoint): PortReservation {
  checkEndpoint(local, 'local', true);
  const r = binding().reservePort(local.address, local.port);
  if ('errno' in r) throw new NativeError(r.code, r.errno, enumName(SYSCALL, r.syscall, '') || 'bind');
  // No fd: the addon could not hand the descriptor over (a terminating worker) and closed it.
  if (r.fd === undefined) throw new NativeError('EBADF', 9, 'bind');
  return new PortReservation({ address: local.address, port: r.port }, r.fd);
}

/**
 * When the kernel last received data on `stream`'s TCP socket, on {@link PunchEngine.now}'s clock (ns); undefined
 * when `stream` is not a connected kernel TCP socket (a PassThrough in a test, a socket already closed). A busy
 * event loop reads a message tens of ms after it arrived (docs/BENCHMARKS.md "The direct tail is the fire
 * window"); this is when it did arrive. The kernel keeps the time in jiffies (TCP_INFO tcpi_last_data_recv): off
 * by up to one tick either way (4 ms at HZ=250), and data that came after the message moves it later.
 */
export function lastDataReceivedNs(stream: unknown): bigint | undefined {
  if (!(stream instanceof net.Socket)) return undefined;
  // Node exposes a socket's descriptor only on its handle; the handle is gone once the socket closes.
  const fd = (stream as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  const ns = binding().lastDataReceivedNs(fd);
  return ns > 0n ? ns : undefined;
}

/** Raises RLIMIT_NOFILE to at least `n` (as far as permitted). Returns the new soft limit. */
export function raiseFdLimit(n: number): number {
  return binding().raiseFdLimit(n);
}

/**
 * An ordinary connect from a reusable local port (EIM checks, mapping discovery): one SYN, fail fast on
 * RST (ENGINE_REFUSED) or any error (ENGINE_UNREACHABLE), ENGINE_TIMEOUT after `timeoutMs` (default 10 s).
 */
export function connectFrom(
  local: Endpoint,
  remote: Endpoint,
  opts: { timeoutMs?: number; signal?: AbortSignal; engine?: PunchEngine } = {},
): Promise<PunchResult> {
  const plan: PunchPlan = { local, remotes: [remote], retryOnRefused: false, deadlineMs: opts.timeoutMs ?? 10_000 };
  if (opts.signal) plan.signal = opts.signal;
  return (opts.engine ?? PunchEngine.shared()).punch(plan);
}
