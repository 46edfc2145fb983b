/** Pieces shared by both roles of a coordination session. */
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Endpoint } from '../nat/types.js';
import { addressFamily, canonicalAddress } from '../ip.js';
import { isAllowedTarget, type TargetPolicy } from '../nat/address.js';
import type { Timeline } from './timeline.js';
import type { CoordMessage, PunchProfile } from './messages.js';
import type { CoordChannel } from './channel.js';
import { PunchSessionError, type PunchSessionCode, type Side } from './errors.js';
import { isBadPort } from './bad-ports.js';
import { classifyEngineError } from './engine-errors.js';
import type { SprayReport } from './spray.js';
import { StallLink } from './engine-port.js';

/** The engine knobs a session passes through (bounded by the SYN cap). */
export interface PlanTuning {
  profile?: PunchProfile;
  /**
   * Wave offsets (ms from the start instant). Default [0]: one socket per candidate whose SYN the kernel
   * retransmits (1 s, 3 s); the engine re-SYNs after a RST/error. A second wave at 1 s collided with the
   * kernel's own retransmission and could orphan a connection the far side had already completed.
   */
  waves?: number[];
  resynIntervalUs?: number;
  primeTtl?: number;
  primeDelayMs?: number;
  retryOnRefused?: boolean;
}

/** What a successful session returns to its caller. */
export interface PunchedConnection {
  socket: Socket;
  /** Our punch endpoint (local side of the socket). */
  local: Endpoint;
  /** The verified peer endpoint (== getpeername()). */
  remote: Endpoint;
  sessionId: string;
  timeline: Timeline;
  /** Native engine timeline (SYNs, established), when the engine provides one. */
  engineTimeline?: unknown;
  /** Overlay RTT measured by B (ms); A leaves it undefined. */
  overlayRttMs?: number;
  /** True when the session used zero-round-trip coordination (B: the fast path connected). */
  zeroRtt?: boolean;
  /** When the session was a birthday spray: its parameters, our SYNs and the winning port pair. */
  spray?: SprayReport;
}

export function familyOf(address: string): 4 | 6 {
  return addressFamily(address) === 6 ? 6 : 4;
}

/** Most endpoints one session accepts from the peer (the wire allows 8): a punch needs one, two covers a
 * mapping observed plus one predicted. Fewer targets per session = less use of a side as a SYN cannon. */
export const MAX_SESSION_ENDPOINTS = 2;

/** The outcome of checking a peer's `opendpoint` endpoints: all usable, or the first limit they break. */
export type TargetCheck =
  { ok: true; usable: Endpoint[]; family: 4 | 6 } | { ok: false; code: PunchSessionCode; reason: string };

/**
 * The peer's endpoints we may punch to. Strict, so that one session can aim our SYNs at one host only: at
 * most MAX_SESSION_ENDPOINTS, all on one IP (ports may differ), that IP public unicast under `policy` and of
 * `family` when given, and no port on Bitcoin Core's bad-port list. Any violation refuses the whole set.
 */
export function checkTargets(eps: Endpoint[], policy: TargetPolicy, family?: 4 | 6): TargetCheck {
  const list = eps.map((e) => `${e.address}:${e.port}`).join(', ');
  if (eps.length === 0) return { ok: false, code: 'PUNCH_TARGET_REFUSED', reason: 'no endpoint given' };
  if (eps.length > MAX_SESSION_ENDPOINTS) {
    const reason = `${eps.length} endpoints (at most ${MAX_SESSION_ENDPOINTS} per session): ${list}`;
    return { ok: false, code: 'PUNCH_TARGET_TOO_MANY', reason };
  }
  const ip = canonicalAddress(eps[0]!.address);
  if (eps.some((e) => canonicalAddress(e.address) !== ip)) {
    return { ok: false, code: 'PUNCH_TARGET_MIXED_IP', reason: `endpoints on more than one IP (one allowed): ${list}` };
  }
  const fam = familyOf(eps[0]!.address);
  if (family !== undefined && fam !== family) {
    return { ok: false, code: 'PUNCH_TARGET_REFUSED', reason: `${eps[0]!.address} (not IPv${family})` };
  }
  if (!isAllowedTarget(eps[0]!.address, policy)) {
    return { ok: false, code: 'PUNCH_TARGET_REFUSED', reason: `${eps[0]!.address} (not public unicast)` };
  }
  const bad = eps.filter((e) => isBadPort(e.port));
  if (bad.length > 0) {
    const which = bad.map((e) => `${e.address}:${e.port}`).join(', ');
    return { ok: false, code: 'PUNCH_TARGET_BAD_PORT', reason: `bad port (Bitcoin Core's IsBadPort list): ${which}` };
  }
  return { ok: true, usable: eps.map((e) => ({ address: e.address, port: e.port })), family: fam };
}

/**
 * Our own endpoints as we announce them in `opendpoint`: those of `family` on the IP of the best one, at
 * most MAX_SESSION_ENDPOINTS (what the peer's checkTargets accepts).
 */
export function ownEndpoints<E extends Endpoint>(eps: E[], family: 4 | 6): E[] {
  const mine = eps.filter((e) => familyOf(e.address) === family);
  if (mine.length === 0) return [];
  const ip = canonicalAddress(mine[0]!.address);
  return mine.filter((e) => canonicalAddress(e.address) === ip).slice(0, MAX_SESSION_ENDPOINTS);
}

/**
 * The time limits of one session, absolute from its start: every wait ends at the earliest of its own step
 * end and the session end, and messages a wait skips (verack, pong, unknown commands) neither restart it nor
 * come free: more than `maxIgnored` of them end the session. A peer trickling junk cannot hold it open.
 */
export class SessionClock {
  readonly startedAt: number;
  readonly endsAt: number;
  private ignoredCount = 0;

  /**
   * @param totalMs the whole-session deadline
   * @param maxIgnored most skipped messages per session
   * @param peer the side whose messages we wait for (named in errors)
   */
  constructor(
    readonly totalMs: number,
    readonly maxIgnored: number,
    private readonly peer: Side,
  ) {
    this.startedAt = performance.now();
    this.endsAt = this.startedAt + totalMs;
  }

  /** Milliseconds left of the whole session (0 when past). */
  remaining(): number {
    return Math.max(0, this.endsAt - performance.now());
  }

  /** Skipped messages so far. */
  get ignored(): number {
    return this.ignoredCount;
  }

  /** Counts one skipped message; throws PUNCH_PROTOCOL once more than `maxIgnored` were skipped. */
  ignore(what: string, step: string): void {
    if (++this.ignoredCount > this.maxIgnored) {
      const msg = `${this.peer} sent more than ${this.maxIgnored} ignored messages (last: ${what}) during ${step}`;
      throw new PunchSessionError('PUNCH_PROTOCOL', msg, { step, side: this.peer });
    }
  }

  /**
   * The next message, waiting at most until `stepEndsAt` (absolute, performance.now() ms) and the session
   * end. A timeout names the limit that ended it: PUNCH_TIMEOUT for the step, PUNCH_SESSION_DEADLINE for the
   * session (or for `deadlineName`, when `stepEndsAt` is itself a deadline such as the request deadline).
   */
  async next(
    ch: CoordChannel,
    step: string,
    stepEndsAt: number,
    signal?: AbortSignal,
    deadlineName?: string,
  ): Promise<CoordMessage> {
    const sessionBinds = this.endsAt <= stepEndsAt;
    const end = Math.min(stepEndsAt, this.endsAt);
    const left = end - performance.now();
    if (left <= 0) throw this.expired(step, sessionBinds, deadlineName);
    try {
      return await ch.next(Math.ceil(left), step, signal);
    } catch (err) {
      if (err instanceof PunchSessionError && err.code === 'PUNCH_TIMEOUT') {
        throw this.expired(step, sessionBinds, deadlineName);
      }
      // signal() fires at the session end too; whichever timer ran first, name the deadline.
      const r: unknown = signal?.reason;
      const deadlineAbort = r instanceof PunchSessionError && r.code === 'PUNCH_SESSION_DEADLINE';
      if (err instanceof PunchSessionError && err.code === 'PUNCH_ABORTED' && deadlineAbort) {
        throw this.expired(step, true);
      }
      throw err;
    }
  }

  private expired(step: string, sessionBinds: boolean, deadlineName?: string): PunchSessionError {
    if (sessionBinds) {
      const msg = `the whole-session deadline (${this.totalMs} ms) passed while waiting for ${step} from ${this.peer}`;
      return new PunchSessionError('PUNCH_SESSION_DEADLINE', msg, { step, side: this.peer });
    }
    if (deadlineName) {
      const msg = `the ${deadlineName} passed while waiting for ${step} from ${this.peer}`;
      return new PunchSessionError('PUNCH_SESSION_DEADLINE', msg, { step, side: this.peer });
    }
    const ms = Math.round(performance.now() - this.startedAt);
    const msg = `timed out waiting for ${step} from ${this.peer} (${ms} ms into the session)`;
    return new PunchSessionError('PUNCH_TIMEOUT', msg, { step, side: this.peer });
  }

  /** An AbortSignal that fires at the session end (for discovery and the engine); call the result's `clear`. */
  signal(parent?: AbortSignal): { signal: AbortSignal; clear: () => void } {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort(parent?.reason);
    if (parent?.aborted) ac.abort(parent.reason);
    parent?.addEventListener('abort', onAbort, { once: true });
    const msg = `the whole-session deadline (${this.totalMs} ms) passed`;
    const deadline = (): PunchSessionError => new PunchSessionError('PUNCH_SESSION_DEADLINE', msg, { side: this.peer });
    const t = setTimeout(() => ac.abort(deadline()), this.remaining());
    t.unref();
    return {
      signal: ac.signal,
      clear: () => {
        clearTimeout(t);
        parent?.removeEventListener('abort', onAbort);
      },
    };
  }
}

export function newSessionId(): Buffer {
  return randomBytes(16);
}

/**
 * Bounds a plan so one session never sends more than `maxSyns` SYNs: each wave costs (1 + prime) SYNs per
 * remote, and re-SYNs after a failure come at most every `resynIntervalUs` within the deadline; the
 * interval is stretched (and waves dropped) until the worst case fits.
 */
export function capPlan(
  tuning: PlanTuning,
  remotes: number,
  maxSyns: number,
  deadlineMs: number,
): { waves: number[]; resynIntervalUs: number } {
  const perWave = Math.max(1, remotes) * ((tuning.profile ?? 'prime') === 'prime' ? 2 : 1);
  const wanted = (tuning.waves ?? [0]).filter((w) => w >= 0 && w < deadlineMs);
  const nWaves = Math.max(1, Math.min(wanted.length || 1, Math.floor(maxSyns / perWave)));
  const waves = (wanted.length ? wanted : [0]).slice(0, nWaves);
  const budget = Math.max(0, maxSyns - nWaves * perWave);
  let resyn = tuning.resynIntervalUs ?? 20_000;
  if (resyn > 0) {
    const worst = Math.ceil((deadlineMs * 1000) / resyn) * Math.max(1, remotes);
    if (worst > budget) resyn = budget === 0 ? 0 : Math.ceil((deadlineMs * 1000 * Math.max(1, remotes)) / budget);
  }
  return { waves, resynIntervalUs: resyn };
}

/**
 * The engine failed: mark the timeline, tell the peer in an `opresult` (status and reason from the engine
 * error) and return the typed error for `side` (the caller adds the timeline and throws it).
 */
export function reportEngineFailure(
  ch: CoordChannel,
  sessionId: Buffer,
  tl: Timeline,
  err: unknown,
  side: Side,
): PunchSessionError {
  const { status, error } = classifyEngineError(err, side);
  tl.mark('punch-failed', error.message);
  const reason = error.message.slice(0, 256);
  ch.send({ cmd: 'opresult', sessionId, status, elapsedMs: Math.round(tl.mark('result')), reason });
  return error;
}

/**
 * The punched socket is verified: send our `connected` result, then read the peer's (at most 3 s) before the
 * coordination stream closes, so the result reaches it and nothing of ours is cut off.
 */
export function reportConnected(ch: CoordChannel, sessionId: Buffer, tl: Timeline): void {
  ch.send({ cmd: 'opresult', sessionId, status: 'connected', elapsedMs: Math.round(tl.mark('verified')), reason: '' });
  void ch
    .next(3000, 'opresult')
    .catch(() => undefined)
    .finally(() => ch.close());
}

/**
 * How long our SYN may go unanswered (socket still in SYN_SENT) before we tell the peer with `opstall`: 4 × the
 * lab's 50 ms RTT, above most terrestrial paths' RTT, so a SYN whose answer is merely in flight rarely counts.
 */
export const STALL_REPORT_MS = 200;
/** `opstall` reports a session sends, and acts on (each acted-on report is at most one fresh SYN per attempt). */
export const MAX_STALLS_PER_SESSION = 2;

/**
 * Stall coordination around one plain punch (docs/PROTOCOL.md `opstall`, docs/ENGINE.md "Stall report"). A
 * fresh ISN is only safe where the far side holds none of our old sequence numbers, and only the far side knows
 * that, so each side reports its own SYN_SENT stall and the other decides from its own state:
 * - A, on B's report, re-sends from SYN_SENT (both stalled: neither holds the other's sequence numbers, and A's
 *   socket is older than the stall period, so a SYN of A's that reached B late would already have been answered);
 *   from SYN_RECV too (B's SYN arrived, A's SYN-ACK was lost) while A itself has sent no report.
 * - B, on A's report, re-sends only from SYN_RECV (A's SYN arrived, B's SYN-ACK was lost: A, still in SYN_SENT,
 *   holds none of B's numbers) and only while B itself has sent no report.
 * "Only while we sent no report" makes the two exclusive: a side acts on a report only if it gave the other none
 * to act on before, so at most one side's re-send meets a state the other's report described. The engine skips a
 * socket the kernel has already re-sent from, or that is younger than the stall period. `end()` after the punch.
 */
export function stallCoordination(
  ch: CoordChannel,
  sessionId: Buffer,
  side: Side,
  tl: Timeline,
): { link: StallLink; end(): void } {
  let sent = 0;
  let acted = 0;
  const link = new StallLink(STALL_REPORT_MS, () => {
    if (sent >= MAX_STALLS_PER_SESSION) return;
    sent++;
    tl.mark('stall-sent');
    ch.send({ cmd: 'opstall', sessionId });
  });
  ch.onStall?.((m) => {
    if (!m.sessionId.equals(sessionId) || acted >= MAX_STALLS_PER_SESSION) return;
    const mode = side === 'A' ? (sent === 0 ? 'any' : 'sent-only') : sent === 0 ? 'recv-only' : undefined;
    if (!mode) return;
    acted++;
    tl.mark('stall-received', mode);
    link.nudge(mode);
  });
  return { link, end: () => ch.onStall?.(undefined) };
}
