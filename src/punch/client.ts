/**
 * B's embeddable API: `new PunchClient(opts).punch(target)` → `{socket, timeline, ...}`. B starts its
 * mapping discovery and the overlay dial at the same time, then runs the session (initiator.ts).
 * Limits: at most `perEndpoint` attempts at once per coordination endpoint (all announcements naming one
 * endpoint count as one address) and `perNetgroup` per clearnet netgroup (/16 v4, /32 v6) when known.
 */
import { isIP } from 'node:net';
import type { CoordinationDialer } from '../overlay/types.js';
import { KeyedCaps } from '../limits/keyed.js';
import { netgroupOf } from '../limits/netgroup.js';
import type { Release } from '../limits/concurrency-cap.js';
import type { Endpoint, Observer } from '../nat/types.js';
import { discoverMapping, type DiscoveryMethod } from '../nat/mapping.js';
import type { EimVerdict } from '../nat/eim-check.js';
import type { TargetPolicy } from '../nat/address.js';
import { formatEndpoint } from '../ip.js';
import { StreamChannel, type FrameCodec } from './channel.js';
import { runInitiator } from './initiator.js';
import { FireRttMemory } from './fire-rtt.js';
import type { PunchEngineLike } from './engine-port.js';
import type { PlanTuning, PunchedConnection } from './session-common.js';
import { HeldPorts } from './local-port.js';
import { preparePunchPort, type PreparedPunchPort } from './punch-port.js';
import { PunchSessionError } from './errors.js';
import { Timeline } from './timeline.js';
import { NODE_HOLEPUNCH_ZRTT } from '../wire/constants.js';
import { type InitiatorSpray, type SprayCaps, hardDiscovery, hardRange } from './spray.js';

interface PunchTargetBase {
  /** Coordination address (`xxx.onion` / `xxx.b32.i2p`) and virtual port. */
  address: string;
  port: number;
  /** The clearnet endpoint from the announcement, if known (netgroup cap; default of `expectIp`). */
  clearnet?: Endpoint;
  /**
   * The clearnet IP A must punch from: every endpoint in A's `opendpoint` and the punched socket's peer must
   * have exactly this IP (ports may differ: an EIM NAT may shift them), else the punch fails with
   * PUNCH_VERIFY_FAILED naming the mismatch. Defaults to `clearnet.address`. `null` says explicitly that
   * nothing is checked: whoever answers at `address` decides where B connects (only for a coordination
   * endpoint the caller trusts, e.g. its own).
   */
  expectIp?: string | null;
  /**
   * The announcement's services and time (seconds), when the target came from one: with NODE_HOLEPUNCH_ZRTT
   * set, a fresh time (≤ 10 min old) and `clearnet`, B uses zero-round-trip coordination (falls back by itself).
   */
  announcement?: { services: bigint; time: number };
}

/**
 * Where to punch. Either the announcement's `clearnet` endpoint (its IP is then checked) or an explicit
 * `expectIp` (a string, or `null` for "unchecked") is required: a bare coordination address would let the
 * coordinator alone choose the host B connects to.
 */
export type PunchTarget = PunchTargetBase & ({ clearnet: Endpoint } | { expectIp: string | null });

/** The IP a target expects A at, `undefined` when explicitly unchecked; throws PUNCH_BAD_TARGET otherwise. */
export function expectedIpOf(target: PunchTarget): string | undefined {
  const t = target as PunchTargetBase;
  if (typeof t.expectIp === 'string') {
    if (isIP(t.expectIp) === 0) {
      const why = `expectIp ${JSON.stringify(t.expectIp)} is not an IP address`;
      throw new PunchSessionError('PUNCH_BAD_TARGET', why, { step: 'target', side: 'B' });
    }
    return t.expectIp;
  }
  if (t.expectIp === null) return undefined;
  if (t.clearnet && isIP(t.clearnet.address) !== 0) return t.clearnet.address;
  const why =
    `target ${t.address}:${t.port} names no clearnet IP: pass clearnet (the announcement's) or expectIp` +
    ' (null: unchecked)';
  throw new PunchSessionError('PUNCH_BAD_TARGET', why, { step: 'target', side: 'B' });
}

export interface PunchClientOptions {
  dialer: CoordinationDialer;
  engine: PunchEngineLike;
  codec: FrameCodec;
  discovery: {
    methods: DiscoveryMethod[];
    feelerPeers?: Endpoint[];
    natcheckServers?: Endpoint[];
    observe?: Observer;
    timeoutMs?: number;
  };
  eim?: EimVerdict | (() => EimVerdict | undefined);
  family?: 4 | 6;
  localAddress?: string;
  allowLab?: boolean;
  /** Full target policy (tests may allow loopback); merged with `allowLab`. */
  policy?: TargetPolicy;
  limits?: { perEndpoint?: number; perNetgroup?: number; maxKeys?: number; maxSynsPerSession?: number };
  /**
   * Hard-NAT punching (opt-in, `hardnat=1`): behind an endpoint-dependent NAT B sprays as the hard side (up to
   * `maxSyns` sockets, the range from the NAT check); behind an easy one it offers to probe a hard A.
   */
  spray?: SprayCaps;
  tuning?: PlanTuning;
  dialTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  stepTimeoutMs?: number;
  /** Whole-session deadline from the overlay stream to the verified socket (default 45 s). */
  sessionDeadlineMs?: number;
  /** Most skipped messages per session (default 16). */
  maxIgnoredMessages?: number;
  fireDelayMs?: number;
  deadlineMs?: number;
  pings?: number;
  /**
   * Zero-round-trip coordination when the target's announcement offers it (default true); false: always the
   * measured-RTT flow.
   */
  zeroRtt?: boolean;
  /** Engine deadline of a zero-round-trip punch before the fallback (ms, default ZERO_RTT_DEADLINE_MS). */
  zeroRttDeadlineMs?: number;
}

/** How old an announcement may be for the fast path (as for relaying it: 10 minutes). */
const ZERO_RTT_MAX_AGE_S = 600;
/** A coordination endpoint whose fast path failed gets the measured flow this long (an announcement's life). */
const ZERO_RTT_BACKOFF_MS = 600_000;
/** The fallback needs at least this much of the session deadline left (a new overlay stream and the whole flow). */
const ZERO_RTT_FALLBACK_MIN_MS = 5_000;

/**
 * Failures of the fast path after which B runs the measured-RTT flow on a new stream: A has no warm port, A is
 * an older onionpunch (closes on the unknown flag), or the early SYNs met a NAT that does not let them through
 * (no connection, or refused: e.g. A's router answers unsolicited SYNs with RST). Never after a verification
 * failure, a limit or a refusal for another reason.
 */
const FALLBACK_CODES: ReadonlySet<string> = new Set([
  'PUNCH_ZRTT_UNAVAILABLE',
  'PUNCH_CLOSED',
  'PUNCH_PROTOCOL',
  'PUNCH_CONNECT_TIMEOUT',
  'PUNCH_REFUSED',
  'PUNCH_REMOTE_FAILED',
]);

export interface PunchOptions {
  signal?: AbortSignal;
}

export class PunchClient {
  private readonly perEndpoint: KeyedCaps<string>;
  private readonly perNetgroup: KeyedCaps<string>;
  /** Per coordination endpoint: consecutive fast-path failures, and until when it gets the measured flow. */
  private readonly zrttBackoff = new Map<string, { fails: number; until: number }>();
  /** Per coordination endpoint: the RTT estimates of recent verified sessions, bounding the one B fires on. */
  private readonly fireRtt = new FireRttMemory();

  constructor(private readonly opts: PunchClientOptions) {
    const l = opts.limits ?? {};
    this.perEndpoint = new KeyedCaps({ perKey: l.perEndpoint ?? 1, maxKeys: l.maxKeys ?? 256 });
    this.perNetgroup = new KeyedCaps({ perKey: l.perNetgroup ?? 2, maxKeys: l.maxKeys ?? 256 });
  }

  private verdict(): EimVerdict | undefined {
    const e = this.opts.eim;
    return typeof e === 'function' ? e() : e;
  }

  /**
   * One punch to `target`. Rejects with PunchSessionError (code names the reason, `side` whose); with
   * PUNCH_VERIFY_FAILED when A's endpoints or the punched peer are not on the expected IP (see PunchTarget).
   */
  async punch(target: PunchTarget, popts: PunchOptions = {}): Promise<PunchedConnection> {
    const tl = new Timeline();
    const expectIp = expectedIpOf(target);
    const v = this.verdict();
    let spray: InitiatorSpray | undefined;
    if (v?.mapping === 'edm') {
      const range = this.opts.spray ? hardRange(v) : 'hard-NAT punching is off (hardnat=0)';
      if (typeof range === 'string') {
        const why = `B's NAT maps endpoint-dependently (edm): hole punching cannot work (${range})`;
        throw new PunchSessionError('PUNCH_NAT_UNSUITABLE', why, { step: 'nat-check', side: 'B', timeline: tl });
      }
      spray = { ...this.opts.spray!, role: 'hard', range };
    } else if (this.opts.spray) spray = { ...this.opts.spray, role: 'easy' };
    const key = `${target.address.toLowerCase()}:${target.port}`;
    const releases: Release[] = [];
    const r1 = this.perEndpoint.tryAcquire(key);
    if (!r1)
      throw new PunchSessionError('PUNCH_RATE_LIMITED', `attempt already in progress for ${key}`, {
        step: 'limits',
        side: 'B',
      });
    releases.push(r1);
    if (target.clearnet) {
      const r2 = this.perNetgroup.tryAcquire(netgroupOf(target.clearnet.address));
      if (!r2) {
        r1();
        throw new PunchSessionError(
          'PUNCH_RATE_LIMITED',
          `too many attempts to netgroup ${netgroupOf(target.clearnet.address)}`,
          { step: 'limits', side: 'B' },
        );
      }
      releases.push(r2);
    }
    try {
      const zrtt = this.zeroRttEndpoint(target, key, spray);
      if (!zrtt) return await this.attempt(target, popts, tl, key, expectIp, v, spray);
      const started = performance.now();
      try {
        const r = await this.attempt(target, popts, tl, key, expectIp, v, undefined, zrtt);
        this.zrttBackoff.delete(key);
        return r;
      } catch (err) {
        const left = (this.opts.sessionDeadlineMs ?? 45_000) - (performance.now() - started);
        const code = err instanceof PunchSessionError ? err.code : '';
        if (!FALLBACK_CODES.has(code) || left < ZERO_RTT_FALLBACK_MIN_MS || popts.signal?.aborted) throw err;
        this.backOff(key, code);
        tl.mark('zero-rtt-fallback', `${code}: ${(err as Error).message.slice(0, 160)}`);
        return await this.attempt(target, popts, tl, key, expectIp, v, spray, undefined, Math.floor(left));
      }
    } finally {
      for (const r of releases) r();
    }
  }

  /** A's announced endpoint when the fast path applies to this target now, else undefined. */
  private zeroRttEndpoint(target: PunchTarget, key: string, spray: InitiatorSpray | undefined): Endpoint | undefined {
    const a = target.announcement;
    if (this.opts.zeroRtt === false || !a || !target.clearnet || spray?.role === 'hard') return undefined;
    if ((a.services & NODE_HOLEPUNCH_ZRTT) === 0n) return undefined;
    const nowS = Date.now() / 1000;
    if (a.time < nowS - ZERO_RTT_MAX_AGE_S || a.time > nowS + ZERO_RTT_MAX_AGE_S) return undefined;
    if (isIP(target.clearnet.address) !== (this.opts.family ?? 4)) return undefined;
    const b = this.zrttBackoff.get(key);
    if (b !== undefined && b.until > performance.now()) return undefined;
    return { address: target.clearnet.address, port: target.clearnet.port };
  }

  /**
   * Counts a fast-path failure. A refusal or an A that does not speak it backs off at once; a punch that did
   * not connect (loss can do that once) only on the second failure in a row. Bounded (1024 endpoints).
   */
  private backOff(key: string, code: string): void {
    const now = performance.now();
    for (const [k, b] of this.zrttBackoff) if (b.until !== 0 && b.until <= now) this.zrttBackoff.delete(k);
    if (this.zrttBackoff.size >= 1024) this.zrttBackoff.delete(this.zrttBackoff.keys().next().value!);
    const fails = (this.zrttBackoff.get(key)?.fails ?? 0) + 1;
    const structural = code === 'PUNCH_ZRTT_UNAVAILABLE' || code === 'PUNCH_CLOSED' || code === 'PUNCH_PROTOCOL';
    this.zrttBackoff.set(key, { fails, until: structural || fails >= 2 ? now + ZERO_RTT_BACKOFF_MS : 0 });
  }

  /** One coordination session on a fresh punch port and a fresh overlay stream. */
  private async attempt(
    target: PunchTarget,
    popts: PunchOptions,
    tl: Timeline,
    key: string,
    expectIp: string | undefined,
    v: EimVerdict | undefined,
    spray: InitiatorSpray | undefined,
    zrtt?: Endpoint,
    sessionDeadlineMs?: number,
  ): Promise<PunchedConnection> {
    const family = this.opts.family ?? 4;
    // Every port this attempt takes stays held until the punch is over (local-port.ts HeldPorts).
    const held = new HeldPorts(this.opts.engine, family, this.opts.localAddress);
    try {
      const first = held.take();
      tl.mark('start', `punch port ${first.port}`);
      const d = this.opts.discovery;
      const hard = spray?.role === 'hard' && v ? hardDiscovery(v) : undefined;
      let unused: Endpoint | undefined = first;
      const allocate = (): Promise<Endpoint> => {
        const l = unused;
        unused = undefined;
        return l ? Promise.resolve(l) : held.allocate();
      };
      // Runs during the overlay dial. A mapping on the bad-port list takes another port (A would refuse it).
      const prepared: Promise<PreparedPunchPort> = hard
        ? Promise.resolve({ local: first, discovery: hard })
        : preparePunchPort({
            allocate,
            discover: (local) =>
              discoverMapping({
                local,
                methods: d.methods,
                ...(d.feelerPeers ? { feelerPeers: d.feelerPeers } : {}),
                ...(d.natcheckServers ? { natcheckServers: d.natcheckServers } : {}),
                ...(v ? { eim: v } : {}),
                ...(d.observe ? { observe: d.observe } : {}),
                timeoutMs: d.timeoutMs ?? 3000,
                ...(popts.signal ? { signal: popts.signal } : {}),
              }).then((r) => {
                tl.mark('discovered', r.endpoints.map((e) => `${e.method} ${e.address}:${e.port}`).join(' '));
                return r;
              }),
            family,
            side: 'B',
            onBadMapping: (l, bad) => tl.mark('bad-mapping', `${l.port} -> ${bad.map(formatEndpoint).join(' ')}`),
          });
      prepared.catch(() => undefined); // awaited below; avoid an unhandled rejection meanwhile
      let stream;
      const dialStart = performance.now();
      try {
        stream = await this.opts.dialer.dial(target.address, target.port, {
          timeoutMs: this.opts.dialTimeoutMs ?? 60_000,
          isolationKey: key,
          ...(popts.signal ? { signal: popts.signal } : {}),
        });
      } catch (err) {
        throw new PunchSessionError(
          'PUNCH_OVERLAY_DIAL',
          `B: cannot reach ${key} over ${this.opts.dialer.kind}: ${(err as Error).message}`,
          { step: 'dial', side: 'B', cause: err, timeline: tl },
        );
      }
      const overlayDialMs = performance.now() - dialStart;
      tl.mark('overlay-connected', `${overlayDialMs.toFixed(1)} ms`);
      stream.on('error', () => undefined);
      const ch = new StreamChannel(stream, this.opts.codec);
      // The punch port is final once its mapping is known. B's opendpoint waits for the mapping anyway, so
      // waiting here costs no round trip; a failed discovery is reported by the session (PUNCH_DISCOVERY).
      const port = await prepared.catch(() => undefined);
      const fireRttBoundMs = this.fireRtt.boundMs(key);
      const pretimedRttMs = spray ? this.fireRtt.pretimeRttMs(key, spray.role === 'hard') : undefined;
      const r = await runInitiator(ch, {
        engine: this.opts.engine,
        local: port?.local ?? first,
        discovery: prepared.then((p) => p.discovery),
        policy: { ...(this.opts.policy ?? {}), ...(this.opts.allowLab ? { allowLab: true } : {}) },
        timeline: tl,
        overlayDialMs,
        ...(fireRttBoundMs !== undefined ? { fireRttBoundMs } : {}),
        ...(pretimedRttMs !== undefined ? { pretimedRttMs } : {}),
        ...(this.opts.tuning ? { tuning: this.opts.tuning } : {}),
        ...(spray ? { spray } : {}),
        ...(this.opts.limits?.maxSynsPerSession !== undefined
          ? { maxSynsPerSession: this.opts.limits.maxSynsPerSession }
          : {}),
        ...(this.opts.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: this.opts.handshakeTimeoutMs } : {}),
        ...(this.opts.stepTimeoutMs !== undefined ? { stepTimeoutMs: this.opts.stepTimeoutMs } : {}),
        ...(sessionDeadlineMs !== undefined
          ? { sessionDeadlineMs }
          : this.opts.sessionDeadlineMs !== undefined
            ? { sessionDeadlineMs: this.opts.sessionDeadlineMs }
            : {}),
        ...(zrtt
          ? {
              zeroRtt: {
                endpoint: zrtt,
                ...(this.opts.zeroRttDeadlineMs !== undefined ? { deadlineMs: this.opts.zeroRttDeadlineMs } : {}),
              },
            }
          : {}),
        ...(this.opts.maxIgnoredMessages !== undefined ? { maxIgnoredMessages: this.opts.maxIgnoredMessages } : {}),
        ...(expectIp !== undefined ? { expectIp } : {}),
        ...(this.opts.fireDelayMs !== undefined ? { fireDelayMs: this.opts.fireDelayMs } : {}),
        ...(this.opts.deadlineMs !== undefined ? { deadlineMs: this.opts.deadlineMs } : {}),
        ...(this.opts.pings !== undefined ? { pings: this.opts.pings } : {}),
        ...(popts.signal ? { signal: popts.signal } : {}),
      });
      // Verified (runInitiator resolves only then): its own estimate, before the bound, joins the memory.
      if (r.overlayRttMs !== undefined)
        this.fireRtt.record(key, Math.min(r.overlayRttMs, overlayDialMs), r.spray !== undefined);
      return r;
    } finally {
      held.releaseAll();
    }
  }
}

/** One-shot convenience: `punch(target, clientOptions)`. */
export async function punch(target: PunchTarget, opts: PunchClientOptions & PunchOptions): Promise<PunchedConnection> {
  return new PunchClient(opts).punch(target, opts.signal ? { signal: opts.signal } : {});
}
