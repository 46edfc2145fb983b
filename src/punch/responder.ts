/**
 * A's side of one coordination session (A is the overlay responder and, on the punched socket, the
 * Bitcoin responder). Steps, each with a timeout: B's version → our version+verack → B's opendpoint →
 * (check NAT, discover our mapping) → our opendpoint → B's opfire → fire at receipt + delay → verify
 * getpeername → opresult. Pings are answered by the channel at any time.
 *
 * Time is absolute: B's request (version + opendpoint) must be complete `requestDeadlineMs` after the
 * stream was accepted, the whole session ends `sessionDeadlineMs` after it (engine included), and skipped
 * messages (verack, pong, unknown) restart nothing and are capped, so a trickle of junk holds no slot.
 */
import type { CoordChannel } from './channel.js';
import type { CoordMessage, RejectCode, SprayParams } from './messages.js';
import { FLAG_PORT_PRESERVING, FLAG_PREDICTED, FLAG_ZERO_RTT, USER_AGENT, fireMarginFlags } from './messages.js';
import { PunchSessionError, type SprayLimit } from './errors.js';
import type { PunchEngineLike, SprayOutcomeLike } from './engine-port.js';
import type { Endpoint } from '../nat/types.js';
import type { TargetPolicy } from '../nat/address.js';
import type { DiscoveryResult } from '../nat/mapping.js';
import type { EimVerdict } from '../nat/eim-check.js';
import { NatError } from '../nat/errors.js';
import { Timeline } from './timeline.js';
import { verifyOrReport } from './verify.js';
import {
  type PlanTuning,
  type PunchedConnection,
  SessionClock,
  capPlan,
  checkTargets,
  ownEndpoints,
  reportConnected,
  reportEngineFailure,
  stallCoordination,
} from './session-common.js';
import { canonicalAddress, formatEndpoint } from '../ip.js';
import { preparePunchPort } from './punch-port.js';
import { FALLBACK_DEADLINE_MS } from './fire-fallback.js';
import {
  SPRAY_LIMITS,
  type SprayCaps,
  describeSpray,
  hardDiscovery,
  hardRange,
  ourSide,
  runSpraySide,
  sprayReport,
  sprayShape,
} from './spray.js';
import { randomNonce } from '../wire/nonce.js';

/** Where a responder session is; the listener evicts only sessions waiting for B (`wait-*`). */
export type ResponderPhase = 'wait-version' | 'wait-endpoint' | 'discovery' | 'wait-fire' | 'punching' | 'done';

/** A per-target-IP rate limit (KeyedBuckets fits): checked at B's request, taken when A really fires. */
export interface TargetBudget {
  wouldAllow(ip: string): boolean;
  tryTake(ip: string): boolean;
}

/** Defaults of the session limits (docs/PROTOCOL.md "Limits"). */
export const RESPONDER_DEFAULTS = {
  handshakeTimeoutMs: 15_000,
  stepTimeoutMs: 15_000,
  requestDeadlineMs: 10_000,
  sessionDeadlineMs: 45_000,
  maxIgnoredMessages: 16,
} as const;

export interface ResponderOptions {
  engine: PunchEngineLike;
  /** The local punch endpoint for this session (a fresh reusable port). */
  localEndpoint(family: 4 | 6): Promise<Endpoint>;
  /** Our public mapping for `local` (budgeted by the caller). */
  discover(local: Endpoint, signal: AbortSignal): Promise<DiscoveryResult>;
  /**
   * Zero-round-trip coordination: the warm announced punch port (its local endpoint and the mapping A's
   * announcement carries, re-checked by the caller), or undefined when A holds none now. A request with the
   * zero-RTT flag is then refused `no-warm-port` (PUNCH_ZRTT_UNAVAILABLE) and B falls back.
   */
  zeroRtt?(family: 4 | 6): WarmPort | undefined;
  /** Our cached NAT verdict: `edm` → reject with nat-unsuitable. */
  natVerdict?(): EimVerdict | undefined;
  policy?: TargetPolicy;
  /** Address family A punches over (default: that of B's first endpoint). */
  family?: 4 | 6;
  handshakeTimeoutMs?: number;
  stepTimeoutMs?: number;
  /** B's request (version and opendpoint) must have arrived this long after the start (default 10 s). */
  requestDeadlineMs?: number;
  /** The whole session, engine included, ends this long after the start (default 45 s). */
  sessionDeadlineMs?: number;
  /** Most skipped messages (verack, pong, unknown commands) per session (default 16). */
  maxIgnoredMessages?: number;
  /** Per-target-IP budget: refused with `rate-limited` (PUNCH_TARGET_RATE_LIMITED) when spent. */
  targetBudget?: TargetBudget;
  /** Charges the session budget once B's request is valid; false → `opreject rate-limited`. */
  admit?(): boolean;
  /** Told each phase change (the listener's eviction policy uses it). */
  onPhase?(phase: ResponderPhase): void;
  /** Largest delay_us / deadline_ms A accepts from B. */
  maxDelayUs?: number;
  maxDeadlineMs?: number;
  /**
   * Fire without B's `opfire` this long after our `opendpoint` (ms; the listener's FireFallback estimate), on the
   * ordinary punch or a spray (not zero-round-trip). Undefined: wait for it (up to the step timeout).
   */
  fireFallbackMs?: number;
  /**
   * When the coordination stream's last bytes reached this host (`engine.now()`'s clock, ns; the listener asks
   * the engine about its stream). A fires `delay_us` after the `opfire` arrived rather than after its loop read it.
   * Undefined (or no answer): from the read.
   */
  arrivedNs?(): bigint | undefined;
  /**
   * The fire margin to ask B for in our `opendpoint` (ms; docs/PROTOCOL.md): how late our loop has been reading
   * B's `opfire` lately (the listener's estimate from `onReadLag`). Undefined or 0: none.
   */
  fireMarginMs?: number;
  /** Told how long after its arrival our loop read B's `opfire` (ms), when the kernel's receipt time is known. */
  onReadLag?(lagMs: number): void;
  /** SYN cap for one session (bounds waves × remotes). */
  maxSynsPerSession?: number;
  /**
   * Hard-NAT punching (opt-in, `hardnat=1`): A takes part in birthday sprays, sending at most `maxSyns` SYNs
   * per spray session whichever side it is. Undefined: every `opspray` is refused (nat-unsuitable).
   */
  spray?: SprayCaps;
  /** Charges the spray-session bucket (sprays per minute); false → `opreject rate-limited`. */
  admitSpray?(): boolean;
  tuning?: PlanTuning;
  signal?: AbortSignal;
  timeline?: Timeline;
}

/** A warm punch port: the local endpoint and its (announced) public mapping. */
export interface WarmPort {
  local: Endpoint;
  mapped: Endpoint;
  portPreserving: boolean;
}

function reject(ch: CoordChannel, code: RejectCode, reason: string): void {
  ch.send({ cmd: 'opreject', code, reason: reason.slice(0, 256) });
  ch.close();
}

/** Waits for one of `want`, skipping (and counting) verack/pong/other; anything else is a protocol error. */
async function expect<C extends CoordMessage['cmd']>(
  ch: CoordChannel,
  clock: SessionClock,
  want: C[],
  endsAt: number,
  step: string,
  signal?: AbortSignal,
  deadlineName?: string,
): Promise<Extract<CoordMessage, { cmd: C }>> {
  for (;;) {
    const m = await clock.next(ch, step, endsAt, signal, deadlineName);
    if ((want as string[]).includes(m.cmd)) return m as Extract<CoordMessage, { cmd: C }>;
    if (m.cmd === 'verack' || m.cmd === 'pong' || m.cmd === 'other') {
      clock.ignore(m.cmd === 'other' ? m.command : m.cmd, step);
      continue;
    }
    throw new PunchSessionError('PUNCH_PROTOCOL', `unexpected ${m.cmd} while waiting for ${step}`, { step, side: 'B' });
  }
}

/** The error for a session whose signal fired between a message and our reaction to it. */
function abortedBy(signal: AbortSignal, step: string): PunchSessionError {
  const r: unknown = signal.reason;
  if (r instanceof PunchSessionError) return r;
  return new PunchSessionError('PUNCH_ABORTED', `A: session aborted at ${step}`, { step, side: 'A' });
}

/**
 * A's answer to B's `opspray`: the agreed parameters, or undefined when A is easy and B only offered (the
 * ordinary punch follows). Refuses (opreject, then throws) when A does not spray, both sides are hard, or A's
 * range is unknown. Whatever B asked, A's own SYNs stay at most `spray.maxSyns`.
 */
function agreeSpray(
  ch: CoordChannel,
  asked: SprayParams,
  verdict: EimVerdict | undefined,
  opts: ResponderOptions,
): SprayParams | undefined {
  const aHard = verdict?.mapping === 'edm';
  type Refusal = 'PUNCH_NAT_BOTH_HARD' | 'PUNCH_SPRAY_LIMIT' | 'PUNCH_NAT_UNSUITABLE' | 'PUNCH_PROTOCOL';
  const refuse = (code: RejectCode, err: Refusal, why: string, limit?: SprayLimit): never => {
    reject(ch, code, why);
    const side = err === 'PUNCH_PROTOCOL' ? 'B' : 'A';
    throw new PunchSessionError(err, why, { step: 'opspray', side, ...(limit ? { limit } : {}) });
  };
  if (asked.hard === 'A' && !aHard) return undefined; // B's offer; A is easy: an ordinary punch
  if (asked.hard === 'B' && aHard) {
    const a = hardRange(verdict);
    const aRange = typeof a === 'string' ? 'range unknown' : `ports ${a.low}..${a.high}`;
    const why =
      `both sides are hard: A's NAT is endpoint-dependent (edm, ${aRange}) and B's is too (edm, ports ` +
      `${asked.probeLow}..${asked.probeHigh}); a spray needs one easy side`;
    return refuse('both-hard', 'PUNCH_NAT_BOTH_HARD', why);
  }
  if (!opts.spray || !opts.engine.spray) {
    const who = asked.hard === 'A' ? "A's NAT is endpoint-dependent (edm)" : "B's NAT is endpoint-dependent (edm)";
    const off = opts.spray ? "A's engine cannot spray" : 'A does not spray (hardnat=0)';
    return refuse('spray-off', 'PUNCH_SPRAY_LIMIT', `${who} and ${off}`, 'hardnat-off');
  }
  const cap = Math.max(1, Math.min(opts.spray.maxSyns, SPRAY_LIMITS.maxProbes));
  const spreadUs = Math.min(asked.spreadUs, SPRAY_LIMITS.maxSpreadUs);
  if (asked.hard === 'B') {
    if (asked.probeLow === 0) {
      return refuse('bad-request', 'PUNCH_PROTOCOL', 'opspray: B is hard but names no probe range');
    }
    // A is easy: its M probes go to B's IP, at most `cap` of them, whatever B asked.
    return { ...asked, probes: Math.min(asked.probes, cap), spreadUs };
  }
  const r = hardRange(verdict);
  if (typeof r === 'string') return refuse('nat-unsuitable', 'PUNCH_NAT_UNSUITABLE', `A cannot spray: ${r}`);
  // A is hard: A opens N sockets (at most `cap`) to B's one endpoint; B, who asked, sends the many probes.
  const shape = sprayShape(r.high - r.low + 1, 'A', asked.probes, cap);
  const probes = Math.min(asked.probes, shape.probes);
  return { ...asked, probeLow: r.low, probeHigh: r.high, sockets: shape.sockets, probes, spreadUs };
}

/**
 * The instant B's `opfire` counts from (`delay_us` after it, docs/PROTOCOL.md). A busy loop (1,000 sessions at
 * once on two cores) reads it 20–60 ms after it arrived, and A's SYN left that much after B's: outside the one-way
 * delay both SYNs need to pass each other's NAT (docs/BENCHMARKS.md "The direct tail is the fire window"). So
 * when the kernel knows, the instant is the data's arrival: never before our `opendpoint` (B answers it) nor after
 * the read. `sentNs` undefined (A fell back, no `opfire`): now.
 */
function receiptNs(
  opts: ResponderOptions,
  sentNs: bigint | undefined,
  tl: Timeline,
  early: { zeroRtt: boolean; preTimed: boolean },
): bigint {
  const readNs = opts.engine.now();
  if (early.preTimed && sentNs !== undefined) {
    // It was here before our answer (it rode B's first write): B counts on our answer, and it is no sample of
    // our loop's lag (it would only pull the margin down).
    const ago = Number(readNs - sentNs) / 1e6;
    tl.markAt('fire-pretimed', performance.now() - ago, 'the opfire came before our opendpoint: counted from it');
    return sentNs;
  }
  const arrived = sentNs === undefined ? undefined : opts.arrivedNs?.();
  if (arrived === undefined || sentNs === undefined) return readNs;
  const at = arrived < sentNs ? sentNs : arrived > readNs ? readNs : arrived;
  const lagMs = Number(readNs - at) / 1e6;
  // A zero-round-trip opfire rode B's first write, read after our answer on purpose: not a sample of our lag.
  if (!early.zeroRtt) opts.onReadLag?.(lagMs);
  tl.markAt('fire-arrived', performance.now() - lagMs, `read ${lagMs.toFixed(1)} ms after it arrived`);
  return at;
}

/** Runs one session on an accepted coordination stream. Resolves with the verified punched socket. */
export async function runResponder(ch: CoordChannel, opts: ResponderOptions): Promise<PunchedConnection> {
  const tl = opts.timeline ?? new Timeline();
  const d = RESPONDER_DEFAULTS;
  const handshakeMs = opts.handshakeTimeoutMs ?? d.handshakeTimeoutMs;
  const stepMs = opts.stepTimeoutMs ?? d.stepTimeoutMs;
  const requestMs = opts.requestDeadlineMs ?? d.requestDeadlineMs;
  const maxIgnored = opts.maxIgnoredMessages ?? d.maxIgnoredMessages;
  const clock = new SessionClock(opts.sessionDeadlineMs ?? d.sessionDeadlineMs, maxIgnored, 'B');
  const requestEnd = clock.startedAt + requestMs;
  const requestName = `request deadline (${requestMs} ms)`;
  // Aborts discovery and the engine at the session end, or when the caller aborts.
  const { signal, clear } = clock.signal(opts.signal);
  const phase = (p: ResponderPhase): void => opts.onPhase?.(p);
  try {
    phase('wait-version');
    const vEnd = Math.min(clock.startedAt + handshakeMs, requestEnd);
    const vName = vEnd === requestEnd ? requestName : undefined;
    const v = await expect(ch, clock, ['version'], vEnd, 'version', signal, vName);
    tl.mark('request', `B version ${v.userAgent}`);
    ch.send({ cmd: 'version', nonce: randomNonce(), userAgent: USER_AGENT });
    ch.send({ cmd: 'verack' });

    phase('wait-endpoint');
    const eEnd = Math.min(performance.now() + stepMs, requestEnd);
    const eName = eEnd === requestEnd ? requestName : undefined;
    let asked: SprayParams | undefined;
    let ep: Extract<CoordMessage, { cmd: 'opendpoint' }> | undefined;
    while (!ep) {
      const m = await expect(ch, clock, ['opendpoint', 'opspray'], eEnd, 'opendpoint', signal, eName);
      if (m.cmd === 'opendpoint') ep = m;
      else if (asked) {
        throw new PunchSessionError('PUNCH_PROTOCOL', 'B sent opspray twice', { step: 'opspray', side: 'B' });
      } else asked = m;
    }
    if (asked && !asked.sessionId.equals(ep.sessionId)) {
      const why = 'opspray carries another session id';
      throw new PunchSessionError('PUNCH_PROTOCOL', why, { step: 'opspray', side: 'B' });
    }
    tl.mark('peer-endpoints', ep.endpoints.map((e) => `${e.address}:${e.port}`).join(' '));
    const sessionId = ep.sessionId;
    const checked = checkTargets(ep.endpoints, opts.policy ?? {}, opts.family);
    if (!checked.ok) {
      reject(ch, 'bad-request', checked.reason);
      throw new PunchSessionError(checked.code, `B's endpoints refused: ${checked.reason}`, {
        step: 'opendpoint',
        side: 'B',
      });
    }
    const { usable, family } = checked;
    const targetIp = canonicalAddress(usable[0]!.address);
    if (opts.targetBudget && !opts.targetBudget.wouldAllow(targetIp)) {
      const why = `A punched ${targetIp} too often recently (per-target-IP rate limit)`;
      reject(ch, 'rate-limited', why);
      throw new PunchSessionError('PUNCH_TARGET_RATE_LIMITED', why, { step: 'opendpoint', side: 'B' });
    }
    const zeroRtt = (ep.flags & FLAG_ZERO_RTT) !== 0;
    if (zeroRtt && asked) {
      const why = 'a zero-round-trip request cannot be a spray (opspray with the zero-RTT flag)';
      reject(ch, 'bad-request', why);
      throw new PunchSessionError('PUNCH_PROTOCOL', why, { step: 'opendpoint', side: 'B' });
    }
    const verdict = opts.natVerdict?.();
    const spray = asked ? agreeSpray(ch, asked, verdict, opts) : undefined;
    if (!spray && verdict?.mapping === 'edm') {
      const why = "A's NAT maps endpoint-dependently (edm): hole punching cannot work (B offered no spray)";
      reject(ch, 'nat-unsuitable', why);
      throw new PunchSessionError('PUNCH_NAT_UNSUITABLE', why, { step: 'nat-check', side: 'A' });
    }
    if (signal.aborted) throw abortedBy(signal, 'opendpoint');
    if (opts.admit && !opts.admit()) {
      reject(ch, 'rate-limited', 'too many coordination sessions');
      const why = 'A: too many coordination sessions (session bucket empty)';
      throw new PunchSessionError('PUNCH_RATE_LIMITED', why, { step: 'opendpoint', side: 'A' });
    }
    if (spray && opts.admitSpray && !opts.admitSpray()) {
      const why = 'A: too many spray sessions (the spray bucket, sprayrate a minute and sprayburst, is empty)';
      reject(ch, 'spray-rate-limited', why);
      const info = { step: 'opspray', side: 'A' as const, limit: 'sessions-per-minute' as const };
      throw new PunchSessionError('PUNCH_SPRAY_LIMIT', why, info);
    }

    // Zero-round-trip: B already fires at the announced endpoint, so A answers from that warm port (no
    // allocation, no discovery) or refuses at once; B's opfire is (or will be) right behind its opendpoint.
    const warm = zeroRtt ? opts.zeroRtt?.(family) : undefined;
    if (zeroRtt && !warm) {
      const why = 'A holds no warm announced punch port now (zero-round-trip unavailable; use the measured flow)';
      reject(ch, 'no-warm-port', why);
      throw new PunchSessionError('PUNCH_ZRTT_UNAVAILABLE', why, { step: 'opendpoint', side: 'A' });
    }
    if (warm) tl.mark('zero-rtt', `warm port ${warm.local.port} -> ${warm.mapped.address}:${warm.mapped.port}`);
    phase('discovery');
    let local: Endpoint;
    let disco: DiscoveryResult;
    try {
      const hard = spray?.hard === 'A' && verdict ? hardDiscovery(verdict) : undefined;
      if (warm) {
        local = warm.local;
        const e = { ...warm.mapped, method: 'natcheck' as const };
        disco = { endpoints: [e], predicted: false, portPreserving: warm.portPreserving, failures: [], elapsedMs: 0 };
      } else if (hard) {
        local = await opts.localEndpoint(family);
        disco = hard;
      } else {
        // A mapping on the bad-port list would make B refuse the whole session: take another port instead.
        ({ local, discovery: disco } = await preparePunchPort({
          allocate: () => opts.localEndpoint(family),
          discover: (l) => opts.discover(l, signal),
          family,
          side: 'A',
          onBadMapping: (l, bad) => tl.mark('bad-mapping', `${l.port} -> ${bad.map(formatEndpoint).join(' ')}`),
        }));
      }
    } catch (err) {
      const budget = err instanceof NatError && err.has('NAT_BUDGET');
      reject(ch, budget ? 'busy' : 'nat-unsuitable', `A: mapping discovery failed: ${(err as Error).message}`);
      throw new PunchSessionError(
        budget ? 'PUNCH_RATE_LIMITED' : 'PUNCH_DISCOVERY',
        `A: mapping discovery failed: ${(err as Error).message}`,
        { step: 'discovery', side: 'A', cause: err },
      );
    }
    const mine = ownEndpoints(disco.endpoints, family);
    if (mine.length === 0) {
      reject(ch, 'nat-unsuitable', `A has no IPv${family} mapping`);
      throw new PunchSessionError('PUNCH_DISCOVERY', `A has no IPv${family} mapping`, { step: 'discovery', side: 'A' });
    }
    tl.mark('discovered', mine.map((e) => `${e.address}:${e.port}`).join(' '));
    const flags =
      (disco.portPreserving ? FLAG_PORT_PRESERVING : 0) |
      (disco.predicted ? FLAG_PREDICTED : 0) |
      (warm ? FLAG_ZERO_RTT : 0) |
      // Zero-round-trip: B has fired already, a margin is too late to ask for.
      (warm ? 0 : fireMarginFlags(opts.fireMarginMs ?? 0));
    // The agreed spray goes first: B reads an opendpoint without one before it as "A does not spray".
    if (spray) {
      ch.send({ cmd: 'opspray', ...spray });
      tl.mark('spray-agreed', describeSpray(spray));
    }
    ch.send({
      cmd: 'opendpoint',
      sessionId,
      flags,
      endpoints: mine.map((e) => ({ address: e.address, port: e.port })),
    });
    // The last write the peer waits for: a lost one is re-sent a round trip later (PROTOCOL.md "Trailing ping").
    ch.trail?.();
    tl.mark('endpoints-sent');

    phase('wait-fire');
    const sentAt = performance.now();
    const sentNs = opts.engine.now();
    const preTimed = !warm && ch.hasQueued?.('opfire') === true;
    const stepEnd = sentAt + stepMs;
    // A late opfire (lost on the overlay, held by its retransmission) need not hold A's SYN: fire-fallback.ts.
    // A spray falls back too: its parameters were agreed before the opendpoint, only the instant was missing.
    const fallbackMs = warm ? undefined : opts.fireFallbackMs;
    const fallbackEnd = fallbackMs !== undefined ? sentAt + fallbackMs : Infinity;
    let fire: Extract<CoordMessage, { cmd: 'opfire' }>;
    let fellBack = false;
    try {
      fire = await expect(ch, clock, ['opfire'], Math.min(stepEnd, fallbackEnd), 'opfire', signal);
    } catch (err) {
      fellBack = err instanceof PunchSessionError && err.code === 'PUNCH_TIMEOUT' && fallbackEnd < stepEnd;
      if (!fellBack) throw err;
      tl.mark('fire-fallback', `no opfire ${fallbackMs} ms after our opendpoint: A fires without it`);
      fire = { cmd: 'opfire', sessionId, delayUs: 0, profile: 'plain', deadlineMs: FALLBACK_DEADLINE_MS };
    }
    const recvNs = receiptNs(opts, fellBack ? undefined : sentNs, tl, { zeroRtt: warm !== undefined, preTimed });
    if (!fire.sessionId.equals(sessionId)) {
      throw new PunchSessionError('PUNCH_PROTOCOL', 'opfire carries another session id', { step: 'opfire', side: 'B' });
    }
    const maxDelayUs = opts.maxDelayUs ?? 5_000_000;
    const maxDeadline = opts.maxDeadlineMs ?? 15_000;
    if (fire.delayUs > maxDelayUs || fire.deadlineMs > maxDeadline || fire.deadlineMs === 0) {
      reject(ch, 'bad-request', `opfire out of bounds (delay ≤ ${maxDelayUs} us, 0 < deadline ≤ ${maxDeadline} ms)`);
      throw new PunchSessionError('PUNCH_PROTOCOL', 'opfire out of bounds', { step: 'opfire', side: 'B' });
    }
    if (!fellBack) tl.mark('fire-received', `delay ${fire.delayUs} us, profile ${fire.profile}`);
    // Evicted, closed or out of time in the same turn the opfire arrived: fire nothing.
    if (signal.aborted) throw abortedBy(signal, 'opfire');
    if (opts.targetBudget && !opts.targetBudget.tryTake(targetIp)) {
      const why = `A punched ${targetIp} too often recently (per-target-IP rate limit)`;
      reject(ch, 'rate-limited', why);
      throw new PunchSessionError('PUNCH_TARGET_RATE_LIMITED', why, { step: 'opfire', side: 'B' });
    }
    phase('punching');

    const tuning = { ...(opts.tuning ?? {}), profile: fire.profile };
    const capped = capPlan(tuning, usable.length, opts.maxSynsPerSession ?? 100, fire.deadlineMs);
    const startAtNs = recvNs + BigInt(fire.delayUs) * 1000n;
    let outcome;
    let won: SprayOutcomeLike | undefined;
    let expected = usable;
    let stall: ReturnType<typeof stallCoordination> | undefined;
    try {
      if (spray) {
        const side = ourSide(spray, 'A');
        const r = await runSpraySide(opts.engine, side, local, usable[0]!, spray, startAtNs, fire.deadlineMs, signal);
        outcome = won = r.outcome;
        expected = r.expected;
        const pair = `${r.outcome.pair.localPort} -> ${r.outcome.pair.remotePort}`;
        const at = r.outcome.establishedMs.toFixed(1);
        tl.mark('spray-won', `A ${side.role}: ${r.outcome.syns} SYNs, pair ${pair} at ${at} ms`);
      } else {
        stall = stallCoordination(ch, sessionId, 'A', tl);
        outcome = await opts.engine.punch({
          ...tuning,
          local,
          remotes: usable,
          startAtNs,
          ...capped,
          deadlineMs: fire.deadlineMs,
          stallLink: stall.link,
          signal,
        });
      }
    } catch (err) {
      stall?.end();
      const error = reportEngineFailure(ch, sessionId, tl, err, 'A');
      ch.close();
      error.timeline = tl;
      throw error;
    }
    stall?.end();
    tl.mark('established', `${outcome.remote.address}:${outcome.remote.port}`);
    const remote = verifyOrReport('A', outcome.socket, expected, ch, sessionId, tl);
    reportConnected(ch, sessionId, tl); // B's opresult is informative only
    return {
      socket: outcome.socket,
      local: outcome.local ?? local,
      remote,
      sessionId: sessionId.toString('hex'),
      timeline: tl,
      engineTimeline: outcome.timeline,
      ...(warm ? { zeroRtt: true } : {}),
      ...(spray && won ? { spray: sprayReport(spray, 'A', won) } : {}),
    };
  } catch (err) {
    ch.close();
    if (err instanceof PunchSessionError) {
      if (err.timeline === undefined) err.timeline = tl;
      throw err;
    }
    throw new PunchSessionError('PUNCH_ENGINE', `A: ${(err as Error).message}`, { cause: err });
  } finally {
    clear();
    phase('done');
  }
}
