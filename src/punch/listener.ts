/**
 * A's embeddable API: `createPunchListener()` serves punch requests arriving on a coordination endpoint and
 * emits each verified punched socket as a `'connection'` event. Limits (all enforced before any work):
 *  - coordination sessions: concurrency cap → `opreject busy`, token bucket charged at B's valid request →
 *    `opreject rate-limited`; sessions per
 *    overlay source where one is known (I2P peer destination; Tor reveals none) well below the global cap;
 *    when the cap is full a newcomer evicts the session that has waited for B the longest (never one where
 *    A is working), so stalled sessions cannot lock legitimate ones out;
 *  - every session: request deadline, whole-session deadline, ignored-message cap (responder.ts);
 *  - discovery connections the sessions cause: their own token bucket (the proposal's warning);
 *  - SYNs: per session (bounds the engine plan), ≤ 2 endpoints on one IP, no bad ports, per target IP bucket;
 *  - targets: only public unicast unless `allowLab`.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { CoordinationEndpoint, AcceptedStreamInfo } from '../overlay/types.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { ConcurrencyCap, type Release } from '../limits/concurrency-cap.js';
import { KeyedBuckets, KeyedCaps } from '../limits/keyed.js';
import type { Endpoint, Observer } from '../nat/types.js';
import { discoverMapping, type DiscoveryMethod, type DiscoveryResult } from '../nat/mapping.js';
import type { EimVerdict } from '../nat/eim-check.js';
import type { TargetPolicy } from '../nat/address.js';
import { StreamChannel, type FrameCodec } from './channel.js';
import { runResponder, type ResponderPhase, type WarmPort } from './responder.js';
import type { PortReservationLike, PunchEngineLike } from './engine-port.js';
import { ownEndpoints, type PlanTuning, type PunchedConnection } from './session-common.js';
import { HeldPorts } from './local-port.js';
import { badMappings, preparePunchPort, type PreparedPunchPort } from './punch-port.js';
import { FireFallback } from './fire-fallback.js';
import { RecentMedian } from './recent-median.js';
import { PunchSessionError } from './errors.js';
import { Timeline } from './timeline.js';
import { SPRAY_LIMITS, type SprayCaps, type SprayReport } from './spray.js';

/** Sessions whose `opfire` read lag the fire margin is taken over (a ring). */
export const FIRE_MARGIN_WINDOW = 64;
/**
 * The quantile of those lags asked for as margin: A is then on time in about 3 of 4 sessions while busy. Measured
 * (`lab stress --overlay direct`, 10,000 × 1,000): lags p50 8–12 ms, p90 28–44 ms.
 */
export const FIRE_MARGIN_QUANTILE = 0.75;
export const FIRE_MARGIN_MIN_SAMPLES = 8;
/** Read lags this small are the kernel clock's tick (4 ms at HZ=250), not a busy loop: taken off the margin. */
export const FIRE_MARGIN_NOISE_MS = 4;

export interface ListenerLimits {
  /** Coordination sessions per second (refill) and burst. */
  sessionsPerSec?: number;
  sessionBurst?: number;
  /** Sessions in progress at once. */
  maxConcurrentSessions?: number;
  /** Discovery connections per second and burst. */
  discoveryPerSec?: number;
  discoveryBurst?: number;
  maxSynsPerSession?: number;
  /** Sessions at once from one overlay source (I2P destination); default 2. Tor callers are anonymous. */
  maxSessionsPerSource?: number;
  /** Whole-session deadline (default 45 s) and B's request deadline (default 10 s), from the accept. */
  sessionDeadlineMs?: number;
  requestDeadlineMs?: number;
  /** Skipped messages (verack, pong, unknown) per session before it is closed (default 16). */
  maxIgnoredMessages?: number;
  /** A waiting session may be evicted for a newcomer once it waited this long in its step (default 1 s). */
  evictAfterMs?: number;
  /** Punches per target IP: refill per second (default 1/30) and burst (default 4). */
  targetIpPerSec?: number;
  targetIpBurst?: number;
}

/** One session in progress, as the eviction policy sees it. */
interface SessionRecord {
  source: string | undefined;
  phase: ResponderPhase;
  phaseAt: number;
  evicted: boolean;
  /** The step it was waiting for when evicted. */
  evictedIn?: string;
  finish: () => void;
  evict: () => void;
}

/** Phases in which the session only waits for B (A holds nothing but the slot): these may be evicted. */
const EVICTABLE: ReadonlySet<ResponderPhase> = new Set(['wait-version', 'wait-endpoint', 'wait-fire']);
const STEP_OF: Partial<Record<ResponderPhase, string>> = {
  'wait-version': 'version',
  'wait-endpoint': 'opendpoint',
  'wait-fire': 'opfire',
};

export interface DiscoveryConfig {
  methods: DiscoveryMethod[];
  feelerPeers?: Endpoint[];
  natcheckServers?: Endpoint[];
  observe?: Observer;
  timeoutMs?: number;
}

export interface PunchListenerOptions {
  /** Where requests arrive. Optional: without it, feed streams to `listener.handle()` yourself. */
  endpoint?: CoordinationEndpoint;
  engine: PunchEngineLike;
  codec: FrameCodec;
  discovery: DiscoveryConfig;
  /** Cached EIM verdict for our network (from eimCheck); `edm` → every request gets nat-unsuitable. */
  eim?: EimVerdict | (() => EimVerdict | undefined);
  limits?: ListenerLimits;
  /** Allow the lab's address ranges as targets (never on a real network). */
  allowLab?: boolean;
  /** Full target policy (tests may allow loopback); merged with `allowLab`. */
  policy?: TargetPolicy;
  /** Local address to punch from (default: wildcard of the family). */
  localAddress?: { v4?: string; v6?: string };
  tuning?: PlanTuning;
  /**
   * Hard-NAT punching (opt-in, `hardnat=1`): take part in birthday sprays, at most `maxSyns` SYNs of A's per
   * spray session and `sessionsPerMinute` spray sessions a minute (burst `burst`). Undefined: refused.
   */
  spray?: SprayCaps & { sessionsPerMinute?: number; burst?: number };
  /**
   * Keep one punch port with its mapping already discovered (default true when prediction cannot work, i.e.
   * the NAT is EIM but not port-preserving): a session then answers without a discovery round trip. Refreshed
   * after use and when older than `warmMaxAgeMs` (default 20 s), always within the discovery budget.
   */
  prewarm?: boolean;
  warmMaxAgeMs?: number;
  /**
   * Zero-round-trip coordination (docs/PROTOCOL.md): keep one punch port for the announcement, its mapping
   * re-checked every `recheckMs` (default 60 s; pass the announce interval), and serve zero-RTT requests from it.
   * `zeroRttEndpoint()` is the endpoint to announce with NODE_HOLEPUNCH_ZRTT (undefined: announce without the
   * bit). Only when A's NAT is EIM. Default off.
   */
  zeroRtt?: boolean | { recheckMs?: number };
  /**
   * Fire without B's opfire when it is clearly late (default true): after FireFallback's estimate from this
   * listener's recent verified sessions (docs/PROTOCOL.md "When opfire is late"). False: always wait for it.
   */
  fireFallback?: boolean;
  handshakeTimeoutMs?: number;
  stepTimeoutMs?: number;
}

export interface ConnectionInfo {
  remote: Endpoint;
  local: Endpoint;
  sessionId: string;
  timeline: Timeline;
  engineTimeline?: unknown;
  overlay?: AcceptedStreamInfo;
  /** When the session was a birthday spray: its parameters, A's SYNs and the winning port pair. */
  spray?: SprayReport;
  /** True when B used zero-round-trip coordination (A answered from its warm announced port). */
  zeroRtt?: boolean;
}

export interface ListenerStats {
  accepted: number;
  /** Valid requests refused because the session bucket was empty (counted after the accept). */
  rejectedRate: number;
  rejectedBusy: number;
  discoveryConnections: number;
  /** Refused because the caller's overlay source already holds `maxSessionsPerSource` sessions. */
  rejectedSource: number;
  /** Waiting sessions dropped to make room for a newcomer. */
  evicted: number;
  connected: number;
  failed: number;
  active: number;
}

/**
 * Events: `connection` (socket: net.Socket, info: ConnectionInfo) — a verified punched socket, B will send
 * `version` first; `failure` (err: PunchSessionError) — one session failed; `zero-rtt` (endpoint | undefined) —
 * the endpoint to announce with NODE_HOLEPUNCH_ZRTT changed (undefined: stop setting the bit); `error` never
 * for a session.
 */
export class PunchListener extends EventEmitter {
  readonly stats: ListenerStats = {
    accepted: 0,
    rejectedRate: 0,
    rejectedBusy: 0,
    discoveryConnections: 0,
    rejectedSource: 0,
    evicted: 0,
    connected: 0,
    failed: 0,
    active: 0,
  };
  private readonly sessionBucket: TokenBucket;
  /** Spray sessions (hard-NAT punching): their own, much smaller bucket. */
  private readonly sprayBucket: TokenBucket;
  private readonly sessionCap: ConcurrencyCap;
  private readonly perSource: KeyedCaps<string>;
  private readonly targetBudget: KeyedBuckets<string>;
  private readonly sessions = new Set<SessionRecord>();
  private readonly discoveryBudget: TokenBucket;
  private readonly ac = new AbortController();
  private closing = false;
  /** A spare punch port, discovered and held (its reservation goes to the session that takes it). */
  private warm: { local: Endpoint; result: DiscoveryResult; at: number; hold?: PortReservationLike } | undefined;
  /** When A fires without a late opfire, learned from this listener's verified sessions. */
  private readonly fireFallback = new FireFallback();
  /**
   * How late this listener's loop read B's `opfire` in its last FIRE_MARGIN_WINDOW sessions (ms after the kernel
   * had it): its FIRE_MARGIN_QUANTILE is the margin each `opendpoint` asks for (docs/PROTOCOL.md). Only our own
   * loop moves it; a peer can at most make a session's sample smaller (data after its opfire).
   */
  private readonly readLag = new RecentMedian(FIRE_MARGIN_WINDOW);
  private warming = false;
  private readonly taken = new Map<string, DiscoveryResult>();
  /** The warm announced punch port (zero-round-trip coordination) and when its mapping was last confirmed. */
  private announced: (WarmPort & { at: number }) | undefined;
  private announcedLocal: Endpoint | undefined;
  /** Holds `announcedLocal` while it is the announced port: no other connection of the host may take it. */
  private announcedHold: PortReservationLike | undefined;
  private zrttTimer: NodeJS.Timeout | undefined;
  private zrttFirst: Promise<Endpoint | undefined> = Promise.resolve(undefined);
  private readonly onStream = (s: Duplex, info: AcceptedStreamInfo): void => this.handle(s, info);

  constructor(private readonly opts: PunchListenerOptions) {
    super();
    const l = opts.limits ?? {};
    this.sessionBucket = new TokenBucket({ ratePerSec: l.sessionsPerSec ?? 2, capacity: l.sessionBurst ?? 10 });
    const sp = opts.spray;
    const perMin = sp?.sessionsPerMinute ?? SPRAY_LIMITS.aSessionsPerMinute;
    this.sprayBucket = new TokenBucket({ ratePerSec: perMin / 60, capacity: sp?.burst ?? SPRAY_LIMITS.aSessionBurst });
    this.sessionCap = new ConcurrencyCap(l.maxConcurrentSessions ?? 8);
    this.perSource = new KeyedCaps({ perKey: l.maxSessionsPerSource ?? 2, maxKeys: 1024 });
    this.targetBudget = new KeyedBuckets({
      ratePerSec: l.targetIpPerSec ?? 1 / 30,
      capacity: l.targetIpBurst ?? 4,
      maxKeys: 4096,
    });
    this.discoveryBudget = new TokenBucket({ ratePerSec: l.discoveryPerSec ?? 1, capacity: l.discoveryBurst ?? 5 });
    opts.endpoint?.on('stream', this.onStream);
    this.prewarm();
    if (opts.zeroRtt) this.startZeroRtt();
  }

  private get zrttRecheckMs(): number {
    const z = this.opts.zeroRtt;
    return typeof z === 'object' && z.recheckMs !== undefined ? z.recheckMs : 60_000;
  }

  /** Allocates the announced punch port once and (re)checks its mapping every recheck interval. */
  private startZeroRtt(): void {
    const fam: 4 | 6 = this.opts.localAddress?.v6 && !this.opts.localAddress.v4 ? 6 : 4;
    const check = async (): Promise<Endpoint | undefined> => {
      if (this.closing) return undefined;
      if (this.verdict()?.mapping !== 'eim') {
        this.announced = undefined; // an EDM (or unchecked) NAT has no stable endpoint to announce
        return undefined;
      }
      try {
        let local = this.announcedLocal;
        let r = local ? await this.discoverFor(local, this.ac.signal) : undefined;
        if (!local || !r || badMappings(r, fam).length > 0) {
          // First check, or the NAT now maps the announced port onto the bad-port list (B would refuse it):
          // announce another port.
          this.announcedLocal = undefined;
          this.announcedHold?.release();
          this.announcedHold = undefined;
          let hold: PortReservationLike | undefined;
          ({ local, discovery: r, hold } = await this.prepareHeld(fam));
          if (this.closing) {
            hold?.release();
            return undefined;
          }
          this.announcedLocal = local;
          this.announcedHold = hold;
        }
        const mapped = ownEndpoints(r.endpoints, fam)[0];
        if (!mapped) throw new Error(`no IPv${fam} mapping`);
        const prev = this.announced;
        this.announced = {
          local,
          mapped: { address: mapped.address, port: mapped.port },
          portPreserving: r.portPreserving,
          at: performance.now(),
        };
        if (!prev || prev.mapped.address !== mapped.address || prev.mapped.port !== mapped.port) {
          this.emit('zero-rtt', { ...this.announced.mapped });
        }
        return { ...this.announced.mapped };
      } catch {
        // Unconfirmed mapping: stop announcing the bit (and refuse zero-RTT requests) until a check succeeds.
        if (this.announced) this.emit('zero-rtt', undefined);
        this.announced = undefined;
        return undefined;
      }
    };
    this.zrttFirst = check();
    this.zrttTimer = setInterval(() => void check(), this.zrttRecheckMs);
    this.zrttTimer.unref();
  }

  /**
   * The clearnet endpoint to announce with NODE_HOLEPUNCH_ZRTT: the warm punch port's mapping, confirmed
   * within the last two recheck intervals; undefined when zero-round-trip is off or unconfirmed.
   */
  zeroRttEndpoint(): Endpoint | undefined {
    const w = this.freshWarmPort();
    return w ? { ...w.mapped } : undefined;
  }

  /** Resolves after the first check of the announced port (its endpoint, or undefined). */
  zeroRttReady(): Promise<Endpoint | undefined> {
    return this.zrttFirst;
  }

  private freshWarmPort(): WarmPort | undefined {
    const w = this.announced;
    if (!w || performance.now() - w.at > 2 * this.zrttRecheckMs) return undefined;
    return w;
  }

  private wantsWarm(): boolean {
    if (this.opts.prewarm === false || !this.opts.discovery.observe) return false;
    if (this.opts.prewarm === true) return true;
    const v = this.verdict();
    const canPredict =
      this.opts.discovery.methods.includes('predict') && v?.mapping === 'eim' && v.portPreserving === true;
    return v?.mapping === 'eim' && !canPredict;
  }

  private discoverFor(local: Endpoint, signal?: AbortSignal): Promise<DiscoveryResult> {
    const d = this.opts.discovery;
    const eim = this.verdict();
    const observe: Observer | undefined = d.observe
      ? (l, peer, o) => {
          this.stats.discoveryConnections++;
          return d.observe!(l, peer, o);
        }
      : undefined;
    return discoverMapping({
      local,
      methods: d.methods,
      ...(d.feelerPeers ? { feelerPeers: d.feelerPeers } : {}),
      ...(d.natcheckServers ? { natcheckServers: d.natcheckServers } : {}),
      ...(eim ? { eim } : {}),
      ...(observe ? { observe } : {}),
      budget: this.discoveryBudget,
      timeoutMs: d.timeoutMs ?? 3000,
      ...(signal ? { signal } : {}),
    });
  }

  /** Discovers one spare punch port in the background (IPv4 or the configured v6 address). */
  private prewarm(): void {
    if (this.warming || this.closing || !this.wantsWarm()) return;
    this.warming = true;
    const fam: 4 | 6 = this.opts.localAddress?.v6 && !this.opts.localAddress.v4 ? 6 : 4;
    void this.prepareHeld(fam)
      .then(({ local, discovery, hold }) => {
        if (this.closing) hold?.release();
        else this.warm = { local, result: discovery, at: performance.now(), ...(hold ? { hold } : {}) };
      })
      .catch(() => undefined)
      .finally(() => {
        this.warming = false;
      });
  }

  /**
   * A punch port of `family` on the configured address, discovered and off the bad-port list, held: the
   * reservation of the chosen port is returned (the caller releases it), those of refused ports are released.
   */
  private async prepareHeld(family: 4 | 6): Promise<PreparedPunchPort & { hold: PortReservationLike | undefined }> {
    const h = this.heldPorts(family);
    try {
      const p = await preparePunchPort({
        allocate: () => h.allocate(),
        discover: (l) => this.discoverFor(l, this.ac.signal),
        family,
        side: 'A',
      });
      return { ...p, hold: h.detach(p.local) };
    } finally {
      h.releaseAll();
    }
  }

  /** An empty set of held ports of `family` on the configured address. */
  private heldPorts(family: 4 | 6): HeldPorts {
    return new HeldPorts(
      this.opts.engine,
      family,
      family === 6 ? this.opts.localAddress?.v6 : this.opts.localAddress?.v4,
    );
  }

  private verdict(): EimVerdict | undefined {
    const e = this.opts.eim;
    return typeof e === 'function' ? e() : e;
  }

  /** Serves one coordination stream (from the endpoint, or any Duplex in tests / custom transports). */
  handle(stream: Duplex, info: AcceptedStreamInfo = {}): void {
    const ch = new StreamChannel(stream, this.opts.codec);
    stream.on('error', () => undefined); // the channel reports stream errors; never crash
    if (this.closing) {
      ch.send({ cmd: 'opreject', code: 'shutting-down', reason: 'listener closing' });
      ch.close();
      return;
    }
    // Per source first: a source over its share is refused before it can take (or evict for) a slot.
    const source = info.peer?.toLowerCase();
    let releaseSource: Release | undefined;
    if (source !== undefined) {
      releaseSource = this.perSource.tryAcquire(source);
      if (!releaseSource) {
        this.stats.rejectedSource++;
        ch.send({ cmd: 'opreject', code: 'busy', reason: 'too many sessions from this source' });
        ch.close();
        return;
      }
    }
    let releaseSlot = this.sessionCap.tryAcquire();
    if (!releaseSlot) {
      const victim = this.pickVictim();
      if (victim) {
        victim.evict();
        releaseSlot = this.sessionCap.tryAcquire();
      }
    }
    if (!releaseSlot) {
      releaseSource?.();
      this.stats.rejectedBusy++;
      ch.send({ cmd: 'opreject', code: 'busy', reason: 'too many sessions in progress' });
      ch.close();
      return;
    }
    const slot = releaseSlot;
    let finished = false;
    // Aborted by eviction or by close(): a session evicted just as its opfire arrived must not fire anyway.
    const sac = new AbortController();
    const onClose = (): void => sac.abort();
    this.ac.signal.addEventListener('abort', onClose, { once: true });
    const rec: SessionRecord = {
      source,
      phase: 'wait-version',
      phaseAt: performance.now(),
      evicted: false,
      // Frees the slot at once (idempotent): an evicted session's slot goes to the newcomer synchronously.
      finish: () => {
        if (finished) return;
        finished = true;
        this.sessions.delete(rec);
        this.ac.signal.removeEventListener('abort', onClose);
        this.stats.active--;
        slot();
        releaseSource?.();
      },
      evict: () => {
        rec.evicted = true;
        rec.evictedIn = STEP_OF[rec.phase] ?? rec.phase;
        this.stats.evicted++;
        rec.finish();
        sac.abort();
        ch.send({ cmd: 'opreject', code: 'busy', reason: 'evicted: the session waited too long while others queued' });
        ch.close();
      },
    };
    this.sessions.add(rec);
    this.stats.accepted++;
    this.stats.active++;
    const tl = new Timeline();
    const fallbackMs = this.opts.fireFallback === false ? undefined : this.fireFallback.afterMs();
    const lab = this.opts.allowLab === true;
    const l = this.opts.limits ?? {};
    // The ports this session takes stay held until it ends (local-port.ts HeldPorts), the warm one included.
    const held = new Map<4 | 6, HeldPorts>();
    const heldFor = (family: 4 | 6): HeldPorts => {
      let h = held.get(family);
      if (!h) held.set(family, (h = this.heldPorts(family)));
      return h;
    };
    const engine = this.opts.engine;
    runResponder(ch, {
      engine,
      arrivedNs: () => engine.lastDataReceivedNs?.(stream),
      localEndpoint: (family) => {
        const w = this.warm;
        if (
          w &&
          performance.now() - w.at < (this.opts.warmMaxAgeMs ?? 20_000) &&
          (w.local.address.includes(':') ? 6 : 4) === family
        ) {
          this.warm = undefined;
          if (w.hold) heldFor(family).adopt(w.hold);
          const key = `${w.local.address}|${w.local.port}`;
          this.taken.set(key, w.result);
          this.prewarm();
          return Promise.resolve(w.local);
        }
        if (w && performance.now() - w.at >= (this.opts.warmMaxAgeMs ?? 20_000)) {
          this.warm = undefined;
          w.hold?.release();
          this.prewarm();
        }
        return heldFor(family).allocate();
      },
      discover: (local: Endpoint, signal: AbortSignal): Promise<DiscoveryResult> => {
        const key = `${local.address}|${local.port}`;
        const pre = this.taken.get(key);
        if (pre) {
          this.taken.delete(key);
          return Promise.resolve(pre);
        }
        return this.discoverFor(local, signal);
      },
      zeroRtt: (family) => {
        const w = this.freshWarmPort();
        return w && (w.local.address.includes(':') ? 6 : 4) === family ? w : undefined;
      },
      natVerdict: () => this.verdict(),
      policy: { ...(this.opts.policy ?? {}), ...(lab ? { allowLab: true } : {}) },
      ...(this.opts.limits?.maxSynsPerSession !== undefined
        ? { maxSynsPerSession: this.opts.limits.maxSynsPerSession }
        : {}),
      ...(this.opts.tuning ? { tuning: this.opts.tuning } : {}),
      ...(this.opts.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: this.opts.handshakeTimeoutMs } : {}),
      ...(this.opts.stepTimeoutMs !== undefined ? { stepTimeoutMs: this.opts.stepTimeoutMs } : {}),
      ...(l.sessionDeadlineMs !== undefined ? { sessionDeadlineMs: l.sessionDeadlineMs } : {}),
      ...(l.requestDeadlineMs !== undefined ? { requestDeadlineMs: l.requestDeadlineMs } : {}),
      ...(l.maxIgnoredMessages !== undefined ? { maxIgnoredMessages: l.maxIgnoredMessages } : {}),
      targetBudget: this.targetBudget,
      ...(fallbackMs !== undefined ? { fireFallbackMs: fallbackMs } : {}),
      fireMarginMs: (this.readLag.quantile(FIRE_MARGIN_QUANTILE, FIRE_MARGIN_MIN_SAMPLES) ?? 0) - FIRE_MARGIN_NOISE_MS,
      onReadLag: (ms) => this.readLag.record(ms),
      // The session bucket is charged when B's request is valid and A is about to work (discover, punch):
      // a connection that never sends one costs a slot (bounded by eviction and the request deadline) but
      // no budget, so stalled connections cannot starve legitimate requests of it.
      ...(this.opts.spray ? { spray: this.opts.spray } : {}),
      admitSpray: () => this.sprayBucket.tryTake(),
      admit: () => {
        if (this.sessionBucket.tryTake()) return true;
        this.stats.rejectedRate++;
        return false;
      },
      onPhase: (p) => {
        rec.phase = p;
        rec.phaseAt = performance.now();
      },
      signal: sac.signal,
      timeline: tl,
    })
      .then((c: PunchedConnection) => {
        this.stats.connected++;
        // Verified: its opendpoint-to-opfire delay may move the fallback (fire-fallback.ts).
        this.fireFallback.recordSession(c.timeline, c.zeroRtt === true);
        const info2: ConnectionInfo = {
          remote: c.remote,
          local: c.local,
          sessionId: c.sessionId,
          timeline: c.timeline,
          engineTimeline: c.engineTimeline,
          overlay: info,
          ...(c.spray ? { spray: c.spray } : {}),
          ...(c.zeroRtt ? { zeroRtt: true } : {}),
        };
        if (this.listenerCount('connection') === 0) c.socket.destroy();
        else this.emit('connection', c.socket as Socket, info2);
      })
      .catch((err: unknown) => {
        this.stats.failed++;
        let e =
          err instanceof PunchSessionError ? err : new PunchSessionError('PUNCH_ENGINE', String(err), { cause: err });
        if (rec.evicted) {
          const why = `A evicted the session while it waited for ${rec.evictedIn} (all slots were held)`;
          e = new PunchSessionError('PUNCH_EVICTED', why, { side: 'B', step: rec.evictedIn!, cause: e, timeline: tl });
        }
        if (this.listenerCount('failure') > 0) this.emit('failure', e);
      })
      .finally(() => {
        for (const h of held.values()) h.releaseAll();
        rec.finish();
      });
  }

  /**
   * The session to evict for a newcomer when every slot is held: among sessions only waiting for B (never one
   * in discovery or punching, where A works or the SYNs are out) that waited at least `evictAfterMs` in their
   * current step, those of a source holding several sessions first, then the one waiting longest. A honest B
   * answers each step within an overlay round trip; a stalling one is the longest waiter, so attackers evict
   * each other first. Undefined when none qualifies (the newcomer is then refused `busy`).
   */
  private pickVictim(): SessionRecord | undefined {
    const now = performance.now();
    const minWait = this.opts.limits?.evictAfterMs ?? 1000;
    const perSource = new Map<string, number>();
    for (const r of this.sessions) {
      if (r.source !== undefined) perSource.set(r.source, (perSource.get(r.source) ?? 0) + 1);
    }
    let best: SessionRecord | undefined;
    let bestKey: [number, number] = [-1, -1];
    for (const r of this.sessions) {
      if (!EVICTABLE.has(r.phase) || now - r.phaseAt < minWait) continue;
      const crowded = r.source !== undefined && (perSource.get(r.source) ?? 0) > 1 ? 1 : 0;
      const key: [number, number] = [crowded, now - r.phaseAt];
      if (key[0] > bestKey[0] || (key[0] === bestKey[0] && key[1] > bestKey[1])) {
        best = r;
        bestKey = key;
      }
    }
    return best;
  }

  /** Stops serving: detaches from the endpoint, aborts sessions in progress. Does not close the endpoint. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.zrttTimer) clearInterval(this.zrttTimer);
    this.warm?.hold?.release();
    this.warm = undefined;
    this.announcedHold?.release();
    this.announcedHold = undefined;
    this.opts.endpoint?.off('stream', this.onStream);
    this.ac.abort();
  }
}

/** Creates a listener (see PunchListener). */
export async function createPunchListener(opts: PunchListenerOptions): Promise<PunchListener> {
  return new PunchListener(opts);
}
