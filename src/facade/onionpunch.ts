/**
 * The high-level API: one {@link Onionpunch} per node owns the NAT verdict, the coordination overlay and a
 * punch engine, and offers the two roles as two calls — `listen()` (A: verified inbound sockets) and
 * `punch(target)` (B: one outbound socket with its timeline). It is only wiring over the layer classes
 * (`createPunchListener`, `PunchClient`, `eimCheck`, the Tor/I2P endpoints and dialers); anything it does not
 * cover is reachable through them, exported from the package root as well.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { CoordinationDialer, CoordinationEndpoint, OverlayKind } from '../overlay/types.js';
import type { TorAuthOptions, TorControlAddress } from '../overlay/tor/control.js';
import type { SamAddress } from '../overlay/i2p/sam.js';
import { TorCoordinationEndpoint } from '../overlay/tor/endpoint.js';
import { TorCoordinationDialer } from '../overlay/tor/dialer.js';
import { I2pCoordinationEndpoint } from '../overlay/i2p/endpoint.js';
import { I2pCoordinationDialer } from '../overlay/i2p/dialer.js';
import { EimCache, defaultGateway4, eimCheck, type EimVerdict } from '../nat/eim-check.js';
import { nativeObserver } from '../nat/observe.js';
import { parseEndpoint, type Endpoint, type Observer } from '../nat/types.js';
import type { TargetPolicy } from '../nat/address.js';
import type { DiscoveryMethod } from '../nat/mapping.js';
import { PunchEngine, probeBind } from '../native/engine.js';
import {
  createPunchListener,
  type ConnectionInfo,
  type ListenerLimits,
  type ListenerStats,
  type PunchListener,
} from '../punch/listener.js';
import { PunchClient, type PunchTarget } from '../punch/client.js';
import type { PunchSessionError } from '../punch/errors.js';
import { wireCodec } from '../punch/wire-codec.js';
import { SPRAY_LIMITS } from '../punch/spray.js';
import type { PunchEngineLike } from '../punch/engine-port.js';
import type { PlanTuning, PunchedConnection } from '../punch/session-common.js';
import { makeAnnouncement, type Announcement } from '../relay/index.js';
import type { AddrV2Entry, NetworkName } from '../wire/index.js';
import { ApiError } from './errors.js';

/** `host:port` text (`[v6]:port` for IPv6) or an endpoint object. */
export type HostPortLike = string | Endpoint;

/** Tor: the control port publishes our endpoint (A), the SOCKS port dials others' (B). Either may be left out. */
export interface TorOverlayOptions {
  control?: HostPortLike | (TorControlAddress & TorAuthOptions);
  socks?: HostPortLike;
  /** Virtual port of our onion endpoint (default 8333). */
  virtualPort?: number;
}

/** I2P: one SAM bridge (usually 127.0.0.1:7656) serves both roles, each with its own destination. */
export interface I2pOverlayOptions {
  sam: HostPortLike;
  /** I2CP options of the SAM sessions (tunnel lengths and quantities). */
  sessionOptions?: Record<string, string | number>;
  /** Bound on one SAM session creation (default 90 s: a fresh router takes ~20 s or more) and attempts. */
  timeoutMs?: number;
  attempts?: number;
}

/**
 * Any transport that carries a byte stream: a listening endpoint (A) and/or a dialer (B) supplied by the
 * caller. The instance never closes them; they stay the caller's.
 */
export interface CustomOverlayOptions {
  endpoint?: CoordinationEndpoint;
  dialer?: CoordinationDialer;
}

export type OverlayOptions = { tor: TorOverlayOptions } | { i2p: I2pOverlayOptions } | CustomOverlayOptions;

/** Every limit of both roles in one place (A: sessions and discovery budget; B: attempts at once). */
export interface OnionpunchLimits extends ListenerLimits {
  /** B: attempts at once per coordination endpoint (default 1). */
  perEndpoint?: number;
  /** B: attempts at once per clearnet netgroup, /16 v4 or /32 v6 (default 2). */
  perNetgroup?: number;
}

/**
 * Hard-NAT punching (birthday sprays, docs/PUNCH.md "Hard NATs"), opt-in. The daemon's `spray*` config keys
 * mean the same, with the same defaults and ceilings (SPRAY_LIMITS): a cap can be lowered freely, a value above
 * its ceiling (or not a whole number) is API_BAD_OPTION naming the option.
 */
export interface HardNatOptions {
  /** A (`listen()`): most SYNs a peer can make us send in one spray (default 256, at most 1,024; `spraymaxsyns`). */
  maxSynsA?: number;
  /** B (`punch()`): most SYNs our own side of a spray sends (default 2,048, at most 4,096; `spraydialsyns`). */
  maxSynsB?: number;
  /** A: spray sessions a minute (default 4, at most 60; `sprayrate`). */
  sessionsPerMinute?: number;
  /** A: spray sessions at once before the rate refills (default 2, at most 16; `sprayburst`). */
  burst?: number;
  /** B: the pacing window asked for, µs (default 250,000, at most 2,000,000; `sprayspread`). */
  spreadUs?: number;
}

/** Each HardNatOptions field: its least value, default and ceiling (one source with the config keys). */
const HARD_NAT_BOUNDS: Record<keyof HardNatOptions, readonly [min: number, def: number, max: number]> = {
  maxSynsA: [1, SPRAY_LIMITS.aSynsPerSession, SPRAY_LIMITS.aSynsCeiling],
  maxSynsB: [1, SPRAY_LIMITS.bSynsPerSession, SPRAY_LIMITS.maxSockets],
  sessionsPerMinute: [1, SPRAY_LIMITS.aSessionsPerMinute, SPRAY_LIMITS.aSessionsPerMinuteCeiling],
  burst: [1, SPRAY_LIMITS.aSessionBurst, SPRAY_LIMITS.aSessionBurstCeiling],
  spreadUs: [0, SPRAY_LIMITS.spreadUs, SPRAY_LIMITS.maxSpreadUs],
};

/** `h` with every field filled in (defaults) and checked against its bounds. */
function hardNatCaps(h: HardNatOptions): Required<HardNatOptions> {
  const out = {} as Required<HardNatOptions>;
  for (const k of Object.keys(HARD_NAT_BOUNDS) as (keyof HardNatOptions)[]) {
    const [min, def, max] = HARD_NAT_BOUNDS[k];
    const v = h[k] ?? def;
    if (!Number.isInteger(v) || v < min || v > max) {
      const why = `hardNat.${k}: ${String(v)} is not a whole number in ${min}..${max}`;
      throw new ApiError('API_BAD_OPTION', why, { option: `hardNat.${k}` });
    }
    out[k] = v;
  }
  return out;
}

/** Options of {@link Onionpunch.open}. Only `overlay` is required. */
export interface OnionpunchOptions {
  overlay: OverlayOptions;
  /** Bitcoin network: the message magic on the coordination stream and in the NAT check (default 'main'). */
  network?: NetworkName;
  /**
   * NAT-check servers (two or more, run by different parties): the EIM check at `open()` and, per session,
   * mapping discovery when prediction is not possible.
   */
  natcheck?: HostPortLike[];
  /** A verdict known already (e.g. kept from an earlier run on this network) instead of checking at open. */
  nat?: EimVerdict;
  /** Discovery methods in order (default `['predict', 'natcheck']`; see docs/PUNCH.md). */
  discovery?: DiscoveryMethod[];
  /** Known Bitcoin peers for the `feeler` discovery method. */
  feelers?: HostPortLike[];
  /** Local address to punch and check from (default the wildcard; an IPv6 address makes the instance v6). */
  bind?: string;
  limits?: OnionpunchLimits;
  /** Which peer addresses are acceptable (default: public unicast only). */
  policy?: TargetPolicy;
  /** Engine plan knobs (profile, re-SYN interval, ...), bounded by `limits.maxSynsPerSession`. */
  tuning?: PlanTuning;
  /** B: margin A gets between `opfire` and firing (default 20 ms) and the engine deadline (default 5 s). */
  fireDelayMs?: number;
  deadlineMs?: number;
  /** B: bound on the overlay dial (default 60 s; a cold Tor client needs tens of seconds). */
  dialTimeoutMs?: number;
  /** The engine to use (default: one of this instance's own, stopped by `close()`). */
  engine?: PunchEngineLike;
  /** Take part in birthday sprays when one side is behind an endpoint-dependent NAT (off by default). */
  hardNat?: HardNatOptions | boolean;
}

/** `punch()`'s target: `host[:port]` text, a {@link PunchTarget}, or an announcement from a directory. */
export type PunchTargetLike = string | PunchTarget | Announcement;

/**
 * A listening coordination endpoint with its punch listener (see {@link Onionpunch.listen}).
 * Events: `connection` (socket: net.Socket, info: ConnectionInfo) — a verified punched socket (B sends the
 * Bitcoin `version` first on it; without a `connection` listener it is closed); `failure` (err:
 * PunchSessionError) — one session failed; `down` (err) / `up` () — the overlay endpoint was lost / is back;
 * `error` (err) — the endpoint's own errors, only when someone listens.
 */
export class OnionpunchListener extends EventEmitter {
  private closed = false;

  /** @internal Made by {@link Onionpunch.listen}. */
  constructor(
    /** The coordination endpoint requests arrive on. */
    readonly endpoint: CoordinationEndpoint,
    private readonly listener: PunchListener,
    private readonly ownsEndpoint: boolean,
    private readonly verdict: () => EimVerdict | undefined,
  ) {
    super();
    listener.on('connection', (socket: Socket, info: ConnectionInfo) => {
      if (this.listenerCount('connection') === 0) socket.destroy();
      else this.emit('connection', socket, info);
    });
    listener.on('failure', (err: PunchSessionError) => {
      if (this.listenerCount('failure') > 0) this.emit('failure', err);
    });
    endpoint.on('down', this.onDown);
    endpoint.on('up', this.onUp);
    endpoint.on('error', this.onError);
  }

  private readonly onDown = (err: unknown): boolean => this.emit('down', err);
  private readonly onUp = (): boolean => this.emit('up');
  private readonly onError = (err: unknown): void => {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  };

  /** The events of the class comment, typed; any other name as for EventEmitter. */
  override on(event: 'connection', listener: (socket: Socket, info: ConnectionInfo) => void): this;
  override on(event: 'failure', listener: (err: PunchSessionError) => void): this;
  override on(event: 'down' | 'error', listener: (err: unknown) => void): this;
  override on(event: 'up', listener: () => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  /** As {@link OnionpunchListener.on}, once. */
  override once(event: 'connection', listener: (socket: Socket, info: ConnectionInfo) => void): this;
  override once(event: 'failure', listener: (err: PunchSessionError) => void): this;
  override once(event: 'down' | 'error', listener: (err: unknown) => void): this;
  override once(event: 'up', listener: () => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /** `xxx.onion` or `xxx.b32.i2p`: what B dials (and what an announcement names). */
  get address(): string {
    return this.endpoint.address;
  }

  /** The endpoint's virtual port. */
  get port(): number {
    return this.endpoint.port;
  }

  get kind(): OverlayKind {
    return this.endpoint.kind;
  }

  /** Session counters (accepted, rejected by rate or concurrency, connected, failed, active). */
  get stats(): Readonly<ListenerStats> {
    return this.listener.stats;
  }

  /**
   * The addrv2 entry that announces this endpoint (relay it to clearnet peers). `clearnet` defaults to the
   * public address of the NAT verdict with the endpoint's port; throws API_BAD_OPTION when neither is known.
   */
  announcement(clearnet?: Endpoint): AddrV2Entry {
    const pub = this.verdict()?.publicAddress;
    const c = clearnet ?? (pub !== undefined ? { address: pub, port: this.port } : undefined);
    if (!c) throw new ApiError('API_BAD_OPTION', 'nothing to announce: the NAT check found no public address');
    return makeAnnouncement({ coordination: this.address, coordinationPort: this.port, clearnet: c });
  }

  /** Stops serving, aborts sessions in progress and closes the endpoint if this instance made it. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener.close();
    this.endpoint.off('down', this.onDown).off('up', this.onUp).off('error', this.onError);
    if (this.ownsEndpoint) await this.endpoint.close();
  }
}

function hostPort(v: HostPortLike, what: string): Endpoint {
  if (typeof v !== 'string') return v;
  const e = parseEndpoint(v);
  if (!e) throw new ApiError('API_BAD_OPTION', `${what}: '${v}' is not host:port`, { option: what });
  return e;
}

/** The SAM session settings of `overlay.i2p`, for both the endpoint and the dialer. */
function i2pSessionOptions(o: I2pOverlayOptions): Pick<I2pOverlayOptions, 'sessionOptions' | 'timeoutMs' | 'attempts'> {
  return {
    ...(o.sessionOptions ? { sessionOptions: o.sessionOptions } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.attempts !== undefined ? { attempts: o.attempts } : {}),
  };
}

/** Splits `overlay.tor.control` into the control address and the authentication options. */
function torControl(c: NonNullable<TorOverlayOptions['control']>): { addr: TorControlAddress; auth: TorAuthOptions } {
  if (typeof c === 'string' || 'address' in c) {
    const e = hostPort(c, 'tor.control');
    return { addr: { host: e.address, port: e.port }, auth: {} };
  }
  const { method, password, cookieFile, ...addr } = c;
  const auth: TorAuthOptions = {
    ...(method !== undefined ? { method } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(cookieFile !== undefined ? { cookieFile } : {}),
  };
  return { addr, auth };
}

/** The high-level API (see the module comment and docs/PUNCH.md). Make one with {@link Onionpunch.open}. */
export class Onionpunch {
  private readonly listeners = new Set<OnionpunchListener>();
  private readonly cache = new EimCache();
  private readonly natcheck: Endpoint[];
  private readonly feelers: Endpoint[];
  private readonly network: NetworkName;
  private readonly engine: PunchEngineLike;
  private readonly observer: Observer;
  private readonly ownEngine: PunchEngine | undefined;
  private verdict: EimVerdict | undefined;
  private client: Promise<{ client: PunchClient; dialer: CoordinationDialer; owned: boolean }> | undefined;
  private closed = false;
  /** `hardNat` with its defaults filled in, checked at open(); undefined when hard-NAT punching is off. */
  private readonly hardNatCaps: Required<HardNatOptions> | undefined;

  private constructor(private readonly opts: OnionpunchOptions) {
    this.network = opts.network ?? 'main';
    this.natcheck = (opts.natcheck ?? []).map((n) => hostPort(n, 'natcheck'));
    this.feelers = (opts.feelers ?? []).map((n) => hostPort(n, 'feelers'));
    this.observer = nativeObserver({ network: this.network });
    const o = opts.overlay as Partial<{ tor: TorOverlayOptions; i2p: I2pOverlayOptions }>;
    if (o.tor) {
      if (o.tor.control !== undefined) torControl(o.tor.control);
      if (o.tor.socks !== undefined) hostPort(o.tor.socks, 'tor.socks');
    }
    if (o.i2p) hostPort(o.i2p.sam, 'i2p.sam');
    const h = opts.hardNat;
    this.hardNatCaps = h === true ? hardNatCaps({}) : h ? hardNatCaps(h) : undefined;
    if (opts.engine) this.engine = opts.engine;
    else this.engine = this.ownEngine = new PunchEngine();
    this.verdict = opts.nat;
  }

  /**
   * Makes an instance and, unless `nat` is given, runs the EIM check against the `natcheck` servers (a few
   * seconds; never throws for network failures: the verdict is then `unknown` with the reason). Nothing is
   * published or dialed yet: `listen()` and the first `punch()` do that.
   */
  static async open(opts: OnionpunchOptions): Promise<Onionpunch> {
    const op = new Onionpunch(opts);
    if (!opts.nat) await op.nat();
    return op;
  }

  private sprayA() {
    const h = this.hardNatCaps!;
    return { maxSyns: h.maxSynsA, sessionsPerMinute: h.sessionsPerMinute, burst: h.burst };
  }

  private sprayB() {
    const h = this.hardNatCaps!;
    return { maxSyns: h.maxSynsB, spreadUs: h.spreadUs };
  }

  private family(): 4 | 6 {
    return this.opts.bind?.includes(':') ? 6 : 4;
  }

  /**
   * The EIM verdict of this network: cached (30 min, and only while the local address and gateway stay the
   * same), checked again when `refresh` is set or the cache expired. `edm` means punching cannot work here.
   */
  async nat(o: { refresh?: boolean } = {}): Promise<EimVerdict> {
    this.assertOpen();
    // A verdict given to open() stands until the first refresh; from then on the cache decides.
    if (this.opts.nat && !o.refresh && this.verdict === this.opts.nat) return this.opts.nat;
    const id = { localAddress: this.opts.bind ?? '', gateway: defaultGateway4() };
    if (o.refresh) this.cache.clear();
    const local = () => probeBind({ address: this.opts.bind ?? (this.family() === 6 ? '::' : '0.0.0.0'), port: 0 });
    const v = await this.cache.getOrCheck(id, () =>
      eimCheck({ local: local(), peers: this.natcheck, observe: this.observer, timeoutMs: 5000 }),
    );
    this.verdict = v;
    return v;
  }

  private discovery() {
    return {
      methods: this.opts.discovery ?? (['predict', 'natcheck'] as DiscoveryMethod[]),
      natcheckServers: this.natcheck,
      ...(this.feelers.length ? { feelerPeers: this.feelers } : {}),
      observe: this.observer,
    };
  }

  private async makeEndpoint(virtualPort?: number): Promise<{ endpoint: CoordinationEndpoint; owned: boolean }> {
    const o = this.opts.overlay as Partial<{ tor: TorOverlayOptions; i2p: I2pOverlayOptions }> & CustomOverlayOptions;
    if (o.tor?.control !== undefined) {
      const { addr, auth } = torControl(o.tor.control);
      const endpoint = await TorCoordinationEndpoint.create({
        control: { ...addr, auth },
        virtualPort: virtualPort ?? o.tor.virtualPort ?? 8333,
      });
      return { endpoint, owned: true };
    }
    if (o.i2p) {
      const sam: SamAddress = this.sam(o.i2p.sam);
      const endpoint = await I2pCoordinationEndpoint.create({ sam, ...i2pSessionOptions(o.i2p) });
      return { endpoint, owned: true };
    }
    if (o.endpoint) return { endpoint: o.endpoint, owned: false };
    throw new ApiError('API_NO_ENDPOINT', 'listen() needs overlay.tor.control, overlay.i2p.sam or overlay.endpoint');
  }

  private sam(v: HostPortLike): SamAddress {
    const e = hostPort(v, 'i2p.sam');
    return { host: e.address, port: e.port };
  }

  /**
   * A side: publishes a coordination endpoint (a new onion service or I2P destination, or the caller's
   * endpoint) and serves punch requests on it; each verified punched socket is a `connection` event.
   * `listen()` more than once makes more endpoints (each with its own key).
   */
  async listen(o: { virtualPort?: number } = {}): Promise<OnionpunchListener> {
    this.assertOpen();
    const { endpoint, owned } = await this.makeEndpoint(o.virtualPort);
    if (!owned && [...this.listeners].some((l) => l.endpoint === endpoint)) {
      throw new ApiError('API_ALREADY_LISTENING', 'the caller-supplied endpoint is served already: close its listener');
    }
    const bind = this.opts.bind;
    const listener = await createPunchListener({
      endpoint,
      engine: this.engine,
      codec: wireCodec(this.network),
      discovery: this.discovery(),
      eim: () => this.verdict,
      ...(this.opts.limits ? { limits: this.opts.limits } : {}),
      ...(this.opts.policy ? { policy: this.opts.policy } : {}),
      ...(bind ? { localAddress: bind.includes(':') ? { v6: bind } : { v4: bind } } : {}),
      ...(this.opts.tuning ? { tuning: this.opts.tuning } : {}),
      ...(this.hardNatCaps ? { spray: this.sprayA() } : {}),
    });
    const l = new OnionpunchListener(endpoint, listener, owned, () => this.verdict);
    this.listeners.add(l);
    if (this.closed) {
      await this.closeListener(l);
      this.assertOpen();
    }
    return l;
  }

  private async closeListener(l: OnionpunchListener): Promise<void> {
    this.listeners.delete(l);
    await l.close();
  }

  private async makeDialer(): Promise<{ dialer: CoordinationDialer; owned: boolean }> {
    const o = this.opts.overlay as Partial<{ tor: TorOverlayOptions; i2p: I2pOverlayOptions }> & CustomOverlayOptions;
    if (o.tor?.socks !== undefined) {
      const s = hostPort(o.tor.socks, 'tor.socks');
      return { dialer: new TorCoordinationDialer({ socksHost: s.address, socksPort: s.port }), owned: true };
    }
    if (o.i2p) {
      const sam = this.sam(o.i2p.sam);
      const dialer = await I2pCoordinationDialer.create({ sam, ...i2pSessionOptions(o.i2p) });
      return { dialer, owned: true };
    }
    if (o.dialer) return { dialer: o.dialer, owned: false };
    throw new ApiError('API_NO_DIALER', 'punch() needs overlay.tor.socks, overlay.i2p.sam or overlay.dialer');
  }

  /** The one client (its per-endpoint and per-netgroup caps span every punch), made on first use. */
  private getClient(): Promise<{ client: PunchClient; dialer: CoordinationDialer; owned: boolean }> {
    if (!this.client) {
      const l = this.opts.limits ?? {};
      const made = this.makeDialer().then(({ dialer, owned }) => ({
        dialer,
        owned,
        client: new PunchClient({
          dialer,
          engine: this.engine,
          codec: wireCodec(this.network),
          discovery: this.discovery(),
          eim: () => this.verdict,
          family: this.family(),
          ...(this.opts.bind ? { localAddress: this.opts.bind } : {}),
          ...(this.opts.policy ? { policy: this.opts.policy } : {}),
          limits: {
            ...(l.perEndpoint !== undefined ? { perEndpoint: l.perEndpoint } : {}),
            ...(l.perNetgroup !== undefined ? { perNetgroup: l.perNetgroup } : {}),
            ...(l.maxSynsPerSession !== undefined ? { maxSynsPerSession: l.maxSynsPerSession } : {}),
          },
          ...(this.opts.tuning ? { tuning: this.opts.tuning } : {}),
          ...(this.hardNatCaps ? { spray: this.sprayB() } : {}),
          ...(this.opts.fireDelayMs !== undefined ? { fireDelayMs: this.opts.fireDelayMs } : {}),
          ...(this.opts.deadlineMs !== undefined ? { deadlineMs: this.opts.deadlineMs } : {}),
          ...(this.opts.dialTimeoutMs !== undefined ? { dialTimeoutMs: this.opts.dialTimeoutMs } : {}),
        }),
      }));
      // A failed dialer set-up (e.g. the SAM bridge was down) is retried by the next punch().
      made.catch(() => {
        if (this.client === made) this.client = undefined;
      });
      this.client = made;
    }
    return this.client;
  }

  private target(t: PunchTargetLike, expectIp: string | null | undefined): PunchTarget {
    if (typeof t !== 'string') {
      if ('coordination' in t) {
        // The announcement's services and time decide whether B may use zero-round-trip coordination.
        const announcement = { services: t.services, time: t.time };
        return { address: t.coordination, port: t.coordinationPort, clearnet: t.clearnet, announcement };
      }
      return expectIp === undefined ? t : { ...t, expectIp };
    }
    const base = !t.includes(':') ? { address: t, port: /\.i2p$/i.test(t) ? 0 : 8333 } : hostPort(t, 'punch target');
    // A bare coordination address names no clearnet IP: the caller says which one it expects, or `null` for
    // none (else the client refuses with PUNCH_BAD_TARGET: an unchecked punch lets the coordinator pick the peer).
    return { ...base, expectIp: expectIp as string | null };
  }

  /**
   * B side: punches to `target` (`xxx.onion:8333`, a PunchTarget, or an Announcement) and resolves to the
   * verified socket with its timeline (`socket`, `remote`, `local`, `timeline`, `overlayRttMs`). Send the
   * Bitcoin `version` first on it. Rejects with PunchSessionError (`code`, `side`, `step`), or ApiError.
   * An Announcement carries A's clearnet IP and B accepts no other; for `host:port` text or a target without
   * `clearnet`, `o.expectIp` names the IP A must punch from, or is `null` to say that none is checked
   * (missing: PUNCH_BAD_TARGET).
   */
  async punch(
    target: PunchTargetLike,
    o: { signal?: AbortSignal; expectIp?: string | null } = {},
  ): Promise<PunchedConnection> {
    this.assertOpen();
    const t = this.target(target, o.expectIp);
    const { client } = await this.getClient();
    this.assertOpen();
    return client.punch(t, o.signal ? { signal: o.signal } : {});
  }

  private assertOpen(): void {
    if (this.closed) throw new ApiError('API_CLOSED', 'this Onionpunch instance is closed');
  }

  /**
   * Closes every listener (and the endpoints this instance made), the dialer it made, and its own engine
   * (punches in progress reject). Caller-supplied endpoints, dialers and engines are left alone. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.listeners].map((l) => this.closeListener(l)));
    const c = this.client;
    this.client = undefined;
    if (c) {
      const got = await c.catch(() => undefined);
      if (got?.owned) await got.dialer.close();
    }
    await this.ownEngine?.stop();
  }
}
