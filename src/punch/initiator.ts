/**
 * B's side of one coordination session (B dials the overlay and is the Bitcoin initiator on the punched
 * socket). B pipelines: `version`, then — as soon as its mapping is known — `opendpoint` and the RTT
 * `ping`s, without waiting for A's handshake. On A's opendpoint it sends `opfire` and fires itself at
 * send + delay + rtt/2, which is when A, `delay` after receipt, fires too.
 */
import type { CoordChannel } from './channel.js';
import type { CoordMessage, PunchProfile } from './messages.js';
import { FLAG_PORT_PRESERVING, FLAG_PREDICTED, FLAG_ZERO_RTT, USER_AGENT, fireMarginOf } from './messages.js';
import { PunchSessionError, type PunchSessionCode, type SprayLimit } from './errors.js';
import type { PunchEngineLike } from './engine-port.js';
import type { Endpoint } from '../nat/types.js';
import type { TargetPolicy } from '../nat/address.js';
import type { DiscoveryResult } from '../nat/mapping.js';
import { Timeline } from './timeline.js';
import { verifyOrReport } from './verify.js';
import { badMappings } from './punch-port.js';
import { formatEndpoint } from '../ip.js';
import {
  type PlanTuning,
  type PunchedConnection,
  SessionClock,
  capPlan,
  checkTargets,
  familyOf,
  newSessionId,
  ownEndpoints,
  reportConnected,
  reportEngineFailure,
  stallCoordination,
} from './session-common.js';
import { sameEndpoint, sameIp } from './verify.js';
import type { SprayOutcomeLike } from './engine-port.js';
import type { RejectCode, SprayParams } from './messages.js';
import {
  type InitiatorSpray,
  checkSprayAnswer,
  describeSpray,
  ourSide,
  runSpraySide,
  sprayReport,
  sprayRequest,
} from './spray.js';
import { randomNonce } from '../wire/nonce.js';

/** B's error for each opreject code (and, for a spray refusal, which of A's limits refused). */
const REJECTED_AS: Record<RejectCode, { code: PunchSessionCode; limit?: SprayLimit }> = {
  'rate-limited': { code: 'PUNCH_RATE_LIMITED' },
  busy: { code: 'PUNCH_REJECTED' },
  'nat-unsuitable': { code: 'PUNCH_NAT_UNSUITABLE' },
  'bad-request': { code: 'PUNCH_REJECTED' },
  'shutting-down': { code: 'PUNCH_REJECTED' },
  'both-hard': { code: 'PUNCH_NAT_BOTH_HARD' },
  'spray-off': { code: 'PUNCH_SPRAY_LIMIT', limit: 'hardnat-off' },
  'spray-rate-limited': { code: 'PUNCH_SPRAY_LIMIT', limit: 'sessions-per-minute' },
  'no-warm-port': { code: 'PUNCH_ZRTT_UNAVAILABLE' }, // the client falls back to the measured flow on it
};

/** Defaults of B's session limits. */
export const INITIATOR_DEFAULTS = {
  handshakeTimeoutMs: 15_000,
  stepTimeoutMs: 15_000,
  sessionDeadlineMs: 45_000,
  maxIgnoredMessages: 16,
  /**
   * A's margin between receiving `opfire` and firing: time for A to submit its plan, which takes well under a
   * millisecond (a spray's 1,000 sockets are paced from the start instant anyway, so a late start only bunches
   * the first few). Every ms of it is a ms of time to connect; B fires this much later too, so it moves neither
   * side relative to the other.
   */
  fireDelayMs: 5,
} as const;

export interface InitiatorOptions {
  engine: PunchEngineLike;
  /** B's local punch endpoint (already allocated; discovery ran or runs for it). */
  local: Endpoint;
  /** B's mapping, usually started before the overlay dial so both overlap. */
  discovery: Promise<DiscoveryResult>;
  policy?: TargetPolicy;
  handshakeTimeoutMs?: number;
  stepTimeoutMs?: number;
  /** The whole session (from the overlay stream to the verified socket) ends this long after it starts. */
  sessionDeadlineMs?: number;
  /** Most skipped messages (verack, unknown commands, pongs we did not ask for) per session. */
  maxIgnoredMessages?: number;
  /**
   * The clearnet IP A must punch from (B: the announced one). Every endpoint in A's `opendpoint` and the
   * punched socket's peer must have it (ports may differ), else PUNCH_VERIFY_FAILED. Undefined: unchecked.
   */
  expectIp?: string;
  /** RTT probes over the overlay (1..3; the minimum is used). */
  pings?: number;
  /**
   * How long the overlay dial of this stream took (ms), when known: it holds at least one round trip to A's end
   * of the overlay (a Tor stream's BEGIN → CONNECTED, an I2P stream's connect, a TCP handshake), so it bounds the
   * RTT B fires on from above, independently of the pings. Those all ride B's first write and A's reply: one cell
   * lost there (Tor re-sends it on the relay hop's TCP, 200 ms or more later) inflates every ping alike, and B,
   * firing rtt/2 after its `opfire`, fired that much late — the Tor tail (docs/BENCHMARKS.md).
   */
  overlayDialMs?: number;
  /**
   * The most B fires on (ms): FIRE_RTT_FACTOR × the median estimate of B's recent verified sessions with this A
   * (PunchClient's FireRttMemory, fire-rtt.ts), when known. A session whose pings and dial were both delayed
   * (a re-sent dial SYN, an A that read the request late) would otherwise fire that much late.
   */
  fireRttBoundMs?: number;
  /**
   * Pre-timed spray fire (docs/PROTOCOL.md): the RTT estimate (ms) of B's recent verified sessions with this A
   * (FireRttMemory.pretimeRttMs), given when this session will be a spray. B's `opfire` then rides its first
   * write with a `delay_us` that A counts from its own `opendpoint`, and B fires on A's `opendpoint` at the same
   * instant: the `opfire`'s own trip (half an overlay round trip) is off the spray's time. Ignored without `spray`.
   */
  pretimedRttMs?: number;
  /** Margin A gets between receiving opfire and firing (ms); default INITIATOR_DEFAULTS.fireDelayMs. */
  fireDelayMs?: number;
  /** Engine deadline for the simultaneous open (ms). */
  deadlineMs?: number;
  maxSynsPerSession?: number;
  /** Hard-NAT punching (opt-in, `hardnat=1`): B's side of a spray (hard, or an offer to probe a hard A). */
  spray?: InitiatorSpray;
  /**
   * Zero-round-trip coordination (docs/PROTOCOL.md): A's announced clearnet endpoint, from an announcement
   * that carries NODE_HOLEPUNCH_ZRTT. B sends version, opendpoint (zero-RTT flag), one ping and opfire in its
   * first write and fires at once at `endpoint`; the engine gives up after `deadlineMs` (default
   * ZERO_RTT_DEADLINE_MS). Ignored together with `spray`.
   */
  zeroRtt?: { endpoint: Endpoint; deadlineMs?: number };
  tuning?: PlanTuning;
  signal?: AbortSignal;
  timeline?: Timeline;
}

/**
 * The engine deadline of a zero-round-trip punch: long enough for A to receive the request over a slow overlay
 * (B fires before A has it) and for a stall re-send, short enough that a fallback still fits the session.
 */
export const ZERO_RTT_DEADLINE_MS = 3000;

export async function runInitiator(ch: CoordChannel, opts: InitiatorOptions): Promise<PunchedConnection> {
  const tl = opts.timeline ?? new Timeline();
  const d = INITIATOR_DEFAULTS;
  const handshakeMs = opts.handshakeTimeoutMs ?? d.handshakeTimeoutMs;
  const stepMs = opts.stepTimeoutMs ?? d.stepTimeoutMs;
  const maxIgnored = opts.maxIgnoredMessages ?? d.maxIgnoredMessages;
  const clock = new SessionClock(opts.sessionDeadlineMs ?? d.sessionDeadlineMs, maxIgnored, 'A');
  const { signal, clear } = clock.signal(opts.signal);
  const pings = Math.max(1, Math.min(3, opts.pings ?? 2));
  const profile = opts.tuning?.profile ?? 'prime';
  const sessionId = newSessionId();
  const family = familyOf(
    opts.local.address === '0.0.0.0' || opts.local.address === '::'
      ? opts.local.address === '::'
        ? '::1'
        : '0.0.0.0'
      : opts.local.address,
  );
  try {
    ch.send({ cmd: 'version', nonce: randomNonce(), userAgent: USER_AGENT });
    tl.mark('version-sent');
    let disco: DiscoveryResult;
    try {
      disco = await Promise.race([opts.discovery, aborted(signal)]);
    } catch (err) {
      if (err instanceof PunchSessionError) throw err; // the session deadline or the caller's abort
      throw new PunchSessionError('PUNCH_DISCOVERY', `B: mapping discovery failed: ${(err as Error).message}`, {
        step: 'discovery',
        side: 'B',
        cause: err,
      });
    }
    const mine = ownEndpoints(disco.endpoints, family);
    if (mine.length === 0)
      throw new PunchSessionError('PUNCH_DISCOVERY', `B has no IPv${family} mapping`, { step: 'discovery', side: 'B' });
    const bad = badMappings(disco, family);
    if (bad.length > 0) {
      // A would refuse the whole set (PUNCH_TARGET_BAD_PORT); PunchClient takes another port before it gets here.
      const why = `B's mapping ${bad.map(formatEndpoint).join(' ')} is on Bitcoin Core's bad-port list (A refuses it)`;
      throw new PunchSessionError('PUNCH_DISCOVERY', why, { step: 'discovery', side: 'B' });
    }
    const flags = (disco.portPreserving ? FLAG_PORT_PRESERVING : 0) | (disco.predicted ? FLAG_PREDICTED : 0);
    if (opts.zeroRtt && !opts.spray) {
      return await zeroRttSession(ch, opts, { tl, clock, signal, sessionId, family, mine, flags, profile });
    }
    // The spray request precedes the opendpoint: A decides on both together (an old A skips the unknown command).
    const asked = opts.spray ? sprayRequest(sessionId, opts.spray) : undefined;
    if (asked) {
      ch.send({ cmd: 'opspray', ...asked });
      tl.mark('spray-asked', describeSpray(asked.hard === 'B' ? asked : { ...asked, probeLow: 1, probeHigh: 65535 }));
    }
    ch.send({
      cmd: 'opendpoint',
      sessionId,
      flags,
      endpoints: mine.map((e) => ({ address: e.address, port: e.port })),
    });
    const sent = new Map<bigint, number>();
    for (let i = 0; i < pings; i++) {
      const n = randomNonce();
      sent.set(n, performance.now());
      ch.send({ cmd: 'ping', nonce: n });
    }
    tl.mark('endpoints-sent', mine.map((e) => `${e.address}:${e.port}`).join(' '));
    const fireDelayMs = opts.fireDelayMs ?? INITIATOR_DEFAULTS.fireDelayMs;
    const deadlineMs = opts.deadlineMs ?? 5000;
    // Pre-timed: A fires `preDelayUs` after its opendpoint leaves, half our recent RTT estimate (its trip to us)
    // plus the fire delay, and we fire on its arrival at that instant. A queues the opfire until it has answered
    // (as a zero-round-trip one), so any A counts it from its answer: an A that reads it later than that fires late.
    const rtt = opts.pretimedRttMs ?? 0;
    const preDelayUs = asked && rtt > 0 ? Math.round((rtt / 2 + fireDelayMs) * 1000) : undefined;
    if (preDelayUs !== undefined) {
      ch.send({ cmd: 'opfire', sessionId, delayUs: preDelayUs, profile, deadlineMs });
      ch.trail?.();
      tl.mark('fire-sent', `pre-timed: A fires ${(preDelayUs / 1000).toFixed(1)} ms after its opendpoint`);
    }

    let gotVersion = false;
    let peerEp: Extract<CoordMessage, { cmd: 'opendpoint' }> | undefined;
    let agreed: SprayParams | undefined;
    let peerEpNs = 0n;
    const rtts: number[] = [];
    // Until A's version, its opendpoint, and every pong (or A's opendpoint plus one pong) arrived.
    // Each wait ends at an absolute instant: the handshake step from the start, then one step from A's version.
    let stepEnd = clock.startedAt + handshakeMs;
    while (!(gotVersion && peerEp && (rtts.length === pings || (rtts.length > 0 && peerEp)))) {
      const m = await clock.next(ch, gotVersion ? 'opendpoint' : 'version', stepEnd, signal);
      switch (m.cmd) {
        case 'version':
          if (gotVersion)
            throw new PunchSessionError('PUNCH_PROTOCOL', 'A sent version twice', { step: 'version', side: 'A' });
          gotVersion = true;
          stepEnd = performance.now() + stepMs;
          tl.mark('handshake', `A version ${m.userAgent}`);
          ch.send({ cmd: 'verack' });
          break;
        case 'pong': {
          const t = sent.get(m.nonce);
          if (t !== undefined) {
            rtts.push(performance.now() - t);
            sent.delete(m.nonce);
          } else clock.ignore('pong', 'opendpoint');
          break;
        }
        case 'opendpoint':
          if (!gotVersion)
            throw new PunchSessionError('PUNCH_PROTOCOL', 'A sent opendpoint before version', {
              step: 'opendpoint',
              side: 'A',
            });
          if (!m.sessionId.equals(sessionId))
            throw new PunchSessionError('PUNCH_PROTOCOL', 'A echoed another session id', {
              step: 'opendpoint',
              side: 'A',
            });
          if (peerEp) {
            throw new PunchSessionError('PUNCH_PROTOCOL', 'A sent opendpoint twice', { step: 'opendpoint', side: 'A' });
          }
          if (asked?.hard === 'B' && !agreed) {
            const why =
              "B's NAT is endpoint-dependent (edm) and needs a spray, but A answered without opspray " +
              '(A does not speak it: an older onionpunch); nothing was fired';
            throw new PunchSessionError('PUNCH_SPRAY_UNSUPPORTED', why, { step: 'opspray', side: 'A' });
          }
          peerEp = m;
          peerEpNs = opts.engine.now();
          tl.mark('peer-endpoints', m.endpoints.map((e) => `${e.address}:${e.port}`).join(' '));
          break;
        case 'opspray': {
          const step = { step: 'opspray', side: 'A' as const };
          const fail = (why: string): PunchSessionError => new PunchSessionError('PUNCH_PROTOCOL', why, step);
          if (!gotVersion || peerEp || agreed) throw fail('A sent opspray out of turn');
          if (!asked) throw fail('A sent opspray unasked');
          if (!m.sessionId.equals(sessionId)) throw fail('A echoed another session id');
          const bad = checkSprayAnswer(asked, m);
          if (bad) throw fail(`A's opspray: ${bad}`);
          agreed = m;
          tl.mark('spray-agreed', describeSpray(m));
          break;
        }
        case 'opreject': {
          throw rejectError(m, gotVersion ? (asked ? 'opspray' : 'opendpoint') : 'version');
        }
        case 'verack':
        case 'other':
          clock.ignore(m.cmd === 'other' ? m.command : m.cmd, gotVersion ? 'opendpoint' : 'version');
          break;
        default:
          throw new PunchSessionError('PUNCH_PROTOCOL', `unexpected ${m.cmd} from A`, { side: 'A' });
      }
    }
    const rttMs = Math.min(...rtts);
    // B fires on the smaller of the pings' RTT and the dial's: the opfire's one way is rarely the slow one.
    const dialMs = opts.overlayDialMs !== undefined && opts.overlayDialMs > 0 ? opts.overlayDialMs : Infinity;
    const ownMs = Math.min(rttMs, dialMs);
    const boundMs = opts.fireRttBoundMs !== undefined && opts.fireRttBoundMs > 0 ? opts.fireRttBoundMs : Infinity;
    const fireRttMs = Math.min(ownMs, boundMs);
    tl.mark(
      'rtt',
      `${rttMs.toFixed(1)} ms over the overlay` +
        (fireRttMs < ownMs
          ? `; fire on recent sessions' ${fireRttMs.toFixed(1)} ms (dial ${dialMs.toFixed(1)} ms)`
          : fireRttMs < rttMs
            ? `; fire on the dial's ${fireRttMs.toFixed(1)} ms`
            : ''),
    );
    // Redirect guard: a forged announcement (victim IP + the attacker's coordination endpoint) must not make B
    // punch, and hand bitcoind a "verified" socket, to a host other than the one it asked for.
    if (opts.expectIp !== undefined) {
      const off = peerEp.endpoints.filter((e) => !sameIp(e.address, opts.expectIp!));
      if (off.length > 0) {
        const got = off.map((e) => `${e.address}:${e.port}`);
        const why = `A's opendpoint names ${got.join(', ')}, not the expected clearnet IP ${opts.expectIp}`;
        const mismatch = { expectedIp: opts.expectIp, got };
        throw new PunchSessionError('PUNCH_VERIFY_FAILED', why, { step: 'opendpoint', side: 'A', mismatch });
      }
    }
    const checked = checkTargets(peerEp.endpoints, opts.policy ?? {}, family);
    if (!checked.ok) {
      throw new PunchSessionError(checked.code, `A's endpoints refused: ${checked.reason}`, {
        step: 'opendpoint',
        side: 'A',
      });
    }
    const usable = checked.usable;

    let startAtNs: bigint;
    if (preDelayUs !== undefined) {
      // A's opendpoint left it half a round trip before it reached us; A fires preDelayUs after that.
      const aFiresNs = peerEpNs - BigInt(Math.round((fireRttMs / 2) * 1e6)) + BigInt(preDelayUs) * 1000n;
      const now = opts.engine.now();
      startAtNs = aFiresNs > now ? aFiresNs : now;
      const inMs = Number(startAtNs - now) / 1e6;
      const late = aFiresNs < now ? ` (${(Number(now - aFiresNs) / 1e6).toFixed(1)} ms after A)` : '';
      tl.mark('fire-pretimed', `B fires in ${inMs.toFixed(1)} ms, with A${late}`);
    } else {
      // A busy A asks for a margin (its loop reads our opfire that late; it counts the delay from the arrival).
      // Not for a spray: its pacing dwarfs the lag, and its median has no ms to spare (docs/BENCHMARKS.md).
      const marginMs = agreed ? 0 : fireMarginOf(peerEp.flags);
      const delayUs = Math.round((fireDelayMs + marginMs) * 1000);
      ch.send({ cmd: 'opfire', sessionId, delayUs, profile, deadlineMs });
      // The last write the peer waits for: a lost one is re-sent a round trip later (PROTOCOL.md "Trailing ping").
      ch.trail?.();
      const sentNs = opts.engine.now();
      const bInMs = delayUs / 1000 + fireRttMs / 2;
      const askedMargin = marginMs > 0 ? ` (A asked for ${marginMs} ms more)` : '';
      tl.mark(
        'fire-sent',
        `A fires in ${(delayUs / 1000).toFixed(0)} ms after receipt${askedMargin}; B in ${bInMs.toFixed(1)} ms`,
      );
      startAtNs = sentNs + BigInt(delayUs) * 1000n + BigInt(Math.round((fireRttMs / 2) * 1e6));
    }
    const tuning = { ...(opts.tuning ?? {}), profile };
    let outcome;
    let won: SprayOutcomeLike | undefined;
    let expected = usable;
    let stall: ReturnType<typeof stallCoordination> | undefined;
    try {
      if (agreed) {
        const side = ourSide(agreed, 'B');
        const r = await runSpraySide(opts.engine, side, opts.local, usable[0]!, agreed, startAtNs, deadlineMs, signal);
        outcome = won = r.outcome;
        expected = r.expected;
        const pair = `${won.pair.localPort} -> ${won.pair.remotePort}`;
        tl.mark('spray-won', `B ${side.role}: ${won.syns} SYNs, pair ${pair} at ${won.establishedMs.toFixed(1)} ms`);
      } else {
        stall = stallCoordination(ch, sessionId, 'B', tl);
        outcome = await opts.engine.punch({
          ...tuning,
          local: opts.local,
          remotes: usable,
          startAtNs,
          ...capPlan(tuning, usable.length, opts.maxSynsPerSession ?? 100, deadlineMs),
          deadlineMs,
          stallLink: stall.link,
          signal,
        });
      }
    } catch (err) {
      stall?.end();
      const error = reportEngineFailure(ch, sessionId, tl, err, 'B');
      // A's opresult may name its own failure; wait briefly so the error says both sides' story.
      const theirs = await ch.next(1000, 'opresult').catch(() => undefined);
      if (theirs?.cmd === 'opresult' && theirs.status !== 'connected')
        error.message += ` (A reported ${theirs.status}: ${theirs.reason})`;
      error.timeline = tl;
      throw error;
    }
    tl.mark('established', `${outcome.remote.address}:${outcome.remote.port}`);
    const remote = verifyOrReport('B', outcome.socket, expected, ch, sessionId, tl, opts.expectIp);
    reportConnected(ch, sessionId, tl);
    return {
      socket: outcome.socket,
      local: outcome.local ?? opts.local,
      remote,
      sessionId: sessionId.toString('hex'),
      timeline: tl,
      engineTimeline: outcome.timeline,
      overlayRttMs: rttMs,
      ...(agreed && won ? { spray: sprayReport(agreed, 'B', won) } : {}),
    };
  } catch (err) {
    ch.close();
    if (err instanceof PunchSessionError) {
      if (err.timeline === undefined) err.timeline = tl;
      throw err;
    }
    throw new PunchSessionError('PUNCH_ENGINE', `B: ${(err as Error).message}`, { cause: err });
  } finally {
    clear();
  }
}

/** Rejects when `signal` aborts (with its reason when that is a PunchSessionError). */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = (): void => {
      const r: unknown = signal.reason;
      reject(r instanceof PunchSessionError ? r : new PunchSessionError('PUNCH_ABORTED', 'aborted', { side: 'B' }));
    };
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

interface ZeroRttContext {
  tl: Timeline;
  clock: SessionClock;
  signal: AbortSignal;
  sessionId: Buffer;
  family: 4 | 6;
  mine: Endpoint[];
  flags: number;
  profile: PunchProfile;
}

/** B's error for A's opreject at `step` (the table above: a spray refusal names its limit). */
function rejectError(m: Extract<CoordMessage, { cmd: 'opreject' }>, step: string): PunchSessionError {
  const { code, limit } = REJECTED_AS[m.code];
  const info = { step, side: 'A' as const, rejectCode: m.code, ...(limit ? { limit } : {}) };
  return new PunchSessionError(code, `A rejected (${m.code}): ${m.reason}`, info);
}

/**
 * B's zero-round-trip session: the whole request in one write, the engine started at once at A's announced
 * endpoint, and A's messages read alongside: A's version (answered with verack), its opendpoint (must name
 * exactly the announced endpoint), an opreject or a failed opresult (the engine is aborted). The punched peer
 * must be the announced endpoint.
 */
async function zeroRttSession(ch: CoordChannel, opts: InitiatorOptions, c: ZeroRttContext): Promise<PunchedConnection> {
  const { tl, clock, signal, sessionId, family } = c;
  const target = opts.zeroRtt!.endpoint;
  const step = { step: 'zero-rtt', side: 'A' as const };
  if (opts.expectIp !== undefined && !sameIp(target.address, opts.expectIp)) {
    const why = `the announced endpoint ${target.address}:${target.port} is not on the expected IP ${opts.expectIp}`;
    throw new PunchSessionError('PUNCH_VERIFY_FAILED', why, step);
  }
  const checked = checkTargets([target], opts.policy ?? {}, family);
  if (!checked.ok) throw new PunchSessionError(checked.code, `A's announced endpoint refused: ${checked.reason}`, step);
  const deadlineMs = opts.zeroRtt!.deadlineMs ?? ZERO_RTT_DEADLINE_MS;
  const pingNonce = randomNonce();
  ch.send({
    cmd: 'opendpoint',
    sessionId,
    flags: c.flags | FLAG_ZERO_RTT,
    endpoints: c.mine.map((e) => ({ address: e.address, port: e.port })),
  });
  ch.send({ cmd: 'ping', nonce: pingNonce });
  ch.send({ cmd: 'opfire', sessionId, delayUs: 0, profile: c.profile, deadlineMs });
  // The last write the peer waits for: a lost one is re-sent a round trip later (PROTOCOL.md "Trailing ping").
  ch.trail?.();
  const sentAt = performance.now();
  tl.mark('zero-rtt-sent', `fire at once at ${target.address}:${target.port}`);
  const tuning = { ...(opts.tuning ?? {}), profile: c.profile };
  const engineAc = new AbortController();
  const onAbort = (): void => engineAc.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  const stop = new AbortController();
  let rttMs: number | undefined;
  // A's side of the conversation, read while the engine runs; it only ever ends the race by failing.
  const watch = (async (): Promise<never> => {
    let gotVersion = false;
    let gotEp = false;
    for (;;) {
      let m: CoordMessage;
      try {
        m = await clock.next(ch, gotVersion ? 'opendpoint' : 'version', clock.endsAt, stop.signal);
      } catch (err) {
        // A answered the zero-RTT request and then closed (its punch ended): not an A that lacks the mode, so the
        // engine's own result decides (a timeout there counts as a punch that did not connect).
        if (!(err instanceof PunchSessionError) || err.code !== 'PUNCH_CLOSED' || !gotEp) throw err;
        tl.mark('a-closed', 'A closed the coordination stream; the engine decides');
        return await new Promise<never>((_resolve, reject) => {
          const stopped = (): void => reject(new PunchSessionError('PUNCH_ABORTED', 'watch stopped', step));
          if (stop.signal.aborted) stopped();
          else stop.signal.addEventListener('abort', stopped, { once: true });
        });
      }
      switch (m.cmd) {
        case 'version':
          if (gotVersion) throw new PunchSessionError('PUNCH_PROTOCOL', 'A sent version twice', step);
          gotVersion = true;
          tl.mark('handshake', `A version ${m.userAgent}`);
          ch.send({ cmd: 'verack' });
          break;
        case 'opendpoint': {
          if (!gotVersion || gotEp)
            throw new PunchSessionError('PUNCH_PROTOCOL', 'A sent opendpoint out of turn', step);
          if (!m.sessionId.equals(sessionId))
            throw new PunchSessionError('PUNCH_PROTOCOL', 'A echoed another session id', step);
          gotEp = true;
          const named = m.endpoints.map((e) => `${e.address}:${e.port}`);
          tl.mark('peer-endpoints', named.join(' '));
          // A punches from its announced port: anything else is a redirect attempt (or a stale announcement).
          if (m.endpoints.length !== 1 || !sameEndpoint(m.endpoints[0]!, target)) {
            const ann = `${target.address}:${target.port}`;
            const why = `A's zero-RTT opendpoint names ${named.join(', ')}, not the announced ${ann}`;
            const mismatch = { expectedIp: opts.expectIp ?? target.address, got: named };
            throw new PunchSessionError('PUNCH_VERIFY_FAILED', why, { ...step, mismatch });
          }
          break;
        }
        case 'pong':
          if (m.nonce === pingNonce && rttMs === undefined) rttMs = performance.now() - sentAt;
          else clock.ignore('pong', 'zero-rtt');
          break;
        case 'opreject':
          throw rejectError(m, 'zero-rtt');
        case 'opresult':
          if (m.status !== 'connected') {
            const why = `A reported ${m.status}: ${m.reason}`;
            throw new PunchSessionError('PUNCH_REMOTE_FAILED', why, step);
          }
          break;
        case 'verack':
        case 'other':
          clock.ignore(m.cmd === 'other' ? m.command : m.cmd, 'zero-rtt');
          break;
        default:
          throw new PunchSessionError('PUNCH_PROTOCOL', `unexpected ${m.cmd} from A`, step);
      }
    }
  })();
  watch.catch(() => undefined);
  const stall = stallCoordination(ch, sessionId, 'B', tl);
  const punchP = opts.engine.punch({
    ...tuning,
    local: opts.local,
    remotes: [target],
    startAtNs: opts.engine.now(),
    ...capPlan(tuning, 1, opts.maxSynsPerSession ?? 100, deadlineMs),
    deadlineMs,
    stallLink: stall.link,
    signal: engineAc.signal,
  });
  punchP.finally(() => stall.end()).catch(() => undefined);
  punchP.catch(() => undefined);
  let outcome;
  try {
    outcome = await Promise.race([punchP, watch]);
  } catch (err) {
    stop.abort();
    signal.removeEventListener('abort', onAbort);
    if (err instanceof PunchSessionError) {
      // From A's side of the race (an engine failure is an EngineError): A refused or misbehaved. Stop our
      // SYNs; a connection completing meanwhile is dropped (never handed on from a session that failed).
      engineAc.abort(err);
      const late = await punchP.catch(() => undefined);
      late?.socket.destroy();
      tl.mark('zero-rtt-failed', err.message);
      throw err;
    }
    const error = reportEngineFailure(ch, sessionId, tl, err, 'B');
    error.timeline = tl;
    throw error;
  }
  stop.abort();
  signal.removeEventListener('abort', onAbort);
  tl.mark('established', `${outcome.remote.address}:${outcome.remote.port}`);
  const remote = verifyOrReport('B', outcome.socket, [target], ch, sessionId, tl, opts.expectIp);
  reportConnected(ch, sessionId, tl);
  return {
    socket: outcome.socket,
    local: outcome.local ?? opts.local,
    remote,
    sessionId: sessionId.toString('hex'),
    timeline: tl,
    engineTimeline: outcome.timeline,
    zeroRtt: true,
    ...(rttMs !== undefined ? { overlayRttMs: rttMs } : {}),
  };
}
