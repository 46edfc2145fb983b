/**
 * The EIM check: two connections from the same local port to two different peers. If both peers report the
 * same public address and port in `addr_recv`, the NAT maps endpoint-independently (EIM) and a mapping
 * learned from one peer is valid toward any other — the precondition for hole punching. Verdicts are cached
 * per network (local address, gateway, public IP) with an expiry and dropped when the network changes.
 */
import { readFileSync } from 'node:fs';
import { classifyAddress } from './address.js';
import { type Endpoint, type Observation, type Observer, formatEndpoint } from './types.js';

export type MappingVerdict = 'eim' | 'edm' | 'unknown';

/** One spread sample: a connection from its own (fresh) local port. */
export interface SpreadObservation extends Observation {
  localPort: number;
}

/**
 * How widely an endpoint-dependent NAT scatters its public ports over new connections, with the range a
 * birthday sprayer should probe. Samples are connections from distinct local ports (see `eimCheck`).
 */
export interface PortSpread {
  /** Public ports seen, one per sample (the two EIM-check observations included). */
  ports: number[];
  min: number;
  max: number;
  /** `max - min + 1`. */
  observedRange: number;
  /**
   * Estimated size of the range the NAT picks from: the unbiased estimate for k uniform samples,
   * `(max - min) * (k + 1) / (k - 1) + 1`, at least `observedRange`, at most 65535 - 1024 + 1.
   */
  estimatedRange: number;
  /** True when the estimate is at most {@link NARROW_SPREAD} ports: a port block (PBA CGNAT) or similar. */
  narrow: boolean;
  /**
   * The range to probe (narrow): {@link blockUpperBound} ports centred on the observed midrange, never less than
   * the observed span; 1024..65535 when wide. Wider than `estimatedRange` on purpose: an estimate centred on
   * ten samples missed part of a 1,024-port block in 60% of draws (7% of it on average; a lab run saw 716 ports).
   */
  probeLow: number;
  probeHigh: number;
}

/** A spread estimate at most this wide counts as a port block (real PBA blocks are 64..4096 ports). */
export const NARROW_SPREAD = 8192;
/**
 * Spread samples taken by default. With k samples from a block of B ports the observed span is Beta(k-1, 2)
 * times B: with 6 samples in all (4 more) it fell under half the block in a lab run (11% of the time in
 * theory), so the probe range missed a third of the block; with 10 samples that happens about 1% of the time.
 */
export const DEFAULT_SPREAD_SAMPLES = 8;
/**
 * The probe range's confidence: the block is larger than {@link blockUpperBound}'s answer with this probability
 * (given the samples), so the probe range misses part of the block about this often, and then only a sliver.
 */
export const SPREAD_MISS_ODDS = 0.01;
/** Where Linux NAT (and most others) picks random ports for sources >= 1024. */
const WIDE_LOW = 1024;
const WIDE_HIGH = 65535;

export interface EimVerdict {
  mapping: MappingVerdict;
  /** EIM and the public port equals the local port (port prediction works). null when not EIM. */
  portPreserving: boolean | null;
  /** Public address seen by the peers (when they agree). */
  publicAddress?: string;
  localPort: number;
  observed: Observation[];
  /**
   * Whether every observation (spread samples included) saw one public IP: required before any spraying,
   * since the peer aims its probes at that IP. null with fewer than two observations.
   */
  publicIpStable: boolean | null;
  /** edm only, with at least three distinct samples: the spread of the public ports. */
  portSpread?: PortSpread;
  /** The spread samples (fresh local ports), when taken. */
  spreadObserved?: SpreadObservation[];
  /** Why the verdict is `unknown` (or what made it `edm`). */
  reason?: string;
  /** Monotonic ms when checked. */
  checkedAt: number;
}

/**
 * An upper confidence bound on the size of a block from which `k` uniform samples spanned `observed` ports
 * (`max - min + 1`): the span over the block is Beta(k - 1, 2), whose CDF is k·x^(k-1) - (k-1)·x^k, so the bound
 * is `observed / x` for the x where that CDF equals `miss`. Ten samples: about twice the span. Pure.
 */
export function blockUpperBound(observed: number, k: number, miss = SPREAD_MISS_ODDS): number {
  if (k < 2 || observed <= 0) return observed;
  const cdf = (x: number): number => k * x ** (k - 1) - (k - 1) * x ** k;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (cdf(mid) < miss) lo = mid;
    else hi = mid;
  }
  return Math.ceil(observed / hi);
}

/** The spread of public ports; undefined with fewer than three samples. Pure. */
export function portSpreadOf(ports: number[]): PortSpread | undefined {
  const ok = ports.filter((p) => Number.isInteger(p) && p > 0 && p <= 65535);
  if (ok.length < 3) return undefined;
  const min = Math.min(...ok);
  const max = Math.max(...ok);
  const k = ok.length;
  const observedRange = max - min + 1;
  const est = Math.round(((max - min) * (k + 1)) / (k - 1)) + 1;
  const estimatedRange = Math.min(WIDE_HIGH - WIDE_LOW + 1, Math.max(observedRange, est));
  const narrow = estimatedRange <= NARROW_SPREAD;
  // Centred on the midrange (the block's centre estimate, far tighter than either end) and as wide as the block
  // can be, not as wide as it probably is: a block the probes half cover halves the spray's odds.
  const size = Math.max(observedRange, blockUpperBound(observedRange, k));
  const low = Math.min(min, Math.floor((min + max + 1 - size) / 2));
  return {
    ports: ok,
    min,
    max,
    observedRange,
    estimatedRange,
    narrow,
    probeLow: narrow ? Math.max(1, low) : WIDE_LOW,
    probeHigh: narrow ? Math.min(WIDE_HIGH, Math.max(max, low + size - 1)) : WIDE_HIGH,
  };
}

function ipStable(obs: Observation[]): boolean | null {
  return obs.length < 2 ? null : obs.every((o) => o.address === obs[0]!.address);
}

/**
 * Pure verdict from two (or more) observations from one local port, plus optional spread samples from
 * fresh local ports (they add `publicIpStable` evidence and, for edm, `portSpread`). Spread samples from one
 * local port toward different peers that saw different public ports overrule an EIM reading of `observed`: a
 * random-port NAT gave the checked port's two connections one port by chance ({@link confirmPair}).
 */
export function verdictFrom(
  localPort: number,
  observed: Observation[],
  failures: string[] = [],
  spread: SpreadObservation[] = [],
): Omit<EimVerdict, 'checkedAt'> {
  const all = [...observed, ...spread].filter((o) => {
    const k = classifyAddress(o.address).kind;
    return k !== 'unspecified' && k !== 'invalid' && o.port !== 0;
  });
  const base = {
    localPort,
    observed,
    publicIpStable: ipStable(all),
    ...(spread.length ? { spreadObserved: spread } : {}),
  };
  if (observed.length < 2) {
    return {
      ...base,
      mapping: 'unknown',
      portPreserving: null,
      reason: failures.length ? failures.join('; ') : 'fewer than two observations',
    };
  }
  for (const o of observed) {
    const k = classifyAddress(o.address);
    if (k.kind === 'unspecified' || k.kind === 'invalid' || o.port === 0) {
      return {
        ...base,
        mapping: 'unknown',
        portPreserving: null,
        reason: `peer ${o.peer} did not report our address (addr_recv ${o.address}:${o.port})`,
      };
    }
  }
  const first = observed[0]!;
  const sameAddr = observed.every((o) => o.address === first.address);
  const samePort = observed.every((o) => o.port === first.port);
  if (!sameAddr) {
    return {
      ...base,
      mapping: 'unknown',
      portPreserving: null,
      reason:
        `peers saw different public addresses (${observed.map((o) => o.address).join(', ')}): address pooling ` +
        `or multihoming`,
    };
  }
  const split = samePort ? splitPair(spread.filter((o) => o.address === first.address)) : undefined;
  if (!samePort || split) {
    const samePublic = spread.filter((o) => o.address === first.address);
    const spreadOf = portSpreadOf([...observed, ...samePublic].map((o) => o.port));
    return {
      ...base,
      mapping: 'edm',
      portPreserving: null,
      publicAddress: first.address,
      ...(spreadOf ? { portSpread: spreadOf } : {}),
      reason: split
        ? `one local port met one public port toward both peers (${first.port}), but local port ${split.localPort} ` +
          `met ${split.ports.join(' and ')}: endpoint-dependent mapping (the first pair agreed by chance)`
        : `mapped port differs per destination (${observed.map((o) => o.port).join(', ')}): endpoint-dependent ` +
          `mapping`,
    };
  }
  return { ...base, mapping: 'eim', portPreserving: first.port === localPort, publicAddress: first.address };
}

/** Two samples from one local port toward different peers that saw different public ports, if any. */
function splitPair(spread: SpreadObservation[]): { localPort: number; ports: number[] } | undefined {
  for (const a of spread) {
    const b = spread.find((o) => o.localPort === a.localPort && o.peer !== a.peer && o.port !== a.port);
    if (a.localPort !== 0 && b) return { localPort: a.localPort, ports: [a.port, b.port] };
  }
  return undefined;
}

export interface EimCheckOptions {
  local: Endpoint;
  /** Two (or more) distinct peers. */
  peers: Endpoint[];
  observe: Observer;
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * edm only: this many more connections, each from a fresh local port, round-robin over `peers`, to measure
   * the port spread (default 8; 0 = none). Fresh local ports, not more servers: a sprayer's hard side opens
   * its sockets from distinct local ports, and an edm NAT picks each connection's port regardless of the
   * destination, so two servers sample the very distribution the sprayer meets; re-using the checked local
   * port toward a server it just closed would clash with that connection's conntrack entry instead.
   */
  spreadSamples?: number;
  /** Run the observations one after the other (default true: some NATs treat simultaneous SYNs oddly). */
  sequential?: boolean;
  clock?: () => number;
}

/** Runs the EIM check; never throws for network failures (they give `unknown` with the reason). */
export async function eimCheck(opts: EimCheckOptions): Promise<EimVerdict> {
  const clock = opts.clock ?? (() => performance.now());
  const timeoutMs = opts.timeoutMs ?? 5000;
  const distinct = new Set(opts.peers.map(formatEndpoint));
  if (distinct.size < 2) {
    return {
      localPort: opts.local.port,
      observed: [],
      mapping: 'unknown',
      portPreserving: null,
      publicIpStable: null,
      reason: 'the EIM check needs two different peers',
      checkedAt: clock(),
    };
  }
  const observed: Observation[] = [];
  const failures: string[] = [];
  const one = async (p: Endpoint): Promise<void> => {
    try {
      const got = await opts.observe(opts.local, p, { timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
      observed.push({ peer: formatEndpoint(p), address: got.address, port: got.port });
    } catch (err) {
      failures.push(`${formatEndpoint(p)}: ${(err as Error).message}`);
    }
  };
  if (opts.sequential === false) await Promise.all(opts.peers.map(one));
  else for (const p of opts.peers) await one(p);
  // Keep the peers' order stable for output.
  const order = opts.peers.map(formatEndpoint);
  observed.sort((a, b) => order.indexOf(a.peer) - order.indexOf(b.peer));
  let first = verdictFrom(opts.local.port, observed, failures);
  const confirm = first.mapping === 'eim' && first.portPreserving === false ? await confirmPair(opts, failures) : [];
  if (confirm.length) first = verdictFrom(opts.local.port, observed, failures, confirm);
  const samples = Math.max(0, Math.min(64, Math.floor(opts.spreadSamples ?? DEFAULT_SPREAD_SAMPLES)));
  if (first.mapping !== 'edm' || samples === 0) return { ...first, checkedAt: clock() };
  const spread: SpreadObservation[] = [...confirm];
  for (let i = 0; i < samples && !opts.signal?.aborted; i++) {
    const p = opts.peers[i % opts.peers.length]!;
    // Port 0: the engine gives every plan its own free port, never the checked one (which it still holds).
    const local = { address: opts.local.address, port: 0 };
    try {
      const got = await opts.observe(local, p, { timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
      spread.push({ peer: formatEndpoint(p), address: got.address, port: got.port, localPort: got.localPort ?? 0 });
    } catch (err) {
      failures.push(`spread ${formatEndpoint(p)}: ${(err as Error).message}`);
    }
  }
  return { ...verdictFrom(opts.local.port, observed, failures, spread), checkedAt: clock() };
}

/**
 * A port-translating EIM reading is checked once more: a NAT that picks a random port per connection gives the
 * checked port's two connections one port by chance (1 in its range: 1 in 1,024 in a port block, which a lab
 * run met), and such a verdict would make the peer punch a mapping that is not there until the next check.
 * So one fresh local port connects to the first two peers in turn: an EIM NAT maps it to one port toward
 * both, a random one almost never again (1 in the range squared for both pairs). A port-preserving reading
 * needs no second pair: a random NAT picking the local port twice is 1 in the range squared already. Two
 * connections more, only for port-translating NATs; failures only join `failures` (the EIM reading stands).
 */
async function confirmPair(opts: EimCheckOptions, failures: string[]): Promise<SpreadObservation[]> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const got: SpreadObservation[] = [];
  // Port 0 the first time: the engine picks a free port, never the checked one; the second reuses it.
  let local: Endpoint = { address: opts.local.address, port: 0 };
  for (const p of opts.peers.slice(0, 2)) {
    if (opts.signal?.aborted) break;
    try {
      const o = await opts.observe(local, p, { timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
      const localPort = o.localPort ?? local.port;
      if (localPort === 0) break; // the observer cannot tell its port: no pair to compare
      got.push({ peer: formatEndpoint(p), address: o.address, port: o.port, localPort });
      local = { address: opts.local.address, port: localPort };
    } catch (err) {
      failures.push(`confirm ${formatEndpoint(p)}: ${(err as Error).message}`);
      break;
    }
  }
  return got.length === 2 ? got : [];
}

/** What identifies "the same network" for the cache. */
export interface NetworkId {
  localAddress: string;
  gateway: string;
}

/** The IPv4 default gateway from /proc/net/route ('' if none or not Linux). */
export function defaultGateway4(): string {
  try {
    const lines = readFileSync('/proc/net/route', 'utf8').trim().split('\n').slice(1);
    for (const l of lines) {
      const f = l.trim().split(/\s+/);
      if (f[1] === '00000000' && f[2]) {
        const h = parseInt(f[2], 16);
        return [h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff, h >>> 24].join('.');
      }
    }
  } catch {
    /* not Linux: no gateway known */
  }
  return '';
}

/**
 * Verdict cache per network. An entry is valid until `ttlMs` passes, the network id changes (other local
 * address / gateway), or a later observation shows another public IP (`notePublicAddress`).
 */
export class EimCache {
  private readonly entries = new Map<string, EimVerdict>();
  constructor(
    private readonly ttlMs = 30 * 60_000,
    private readonly clock: () => number = () => performance.now(),
    private readonly maxEntries = 16,
  ) {}

  private key(n: NetworkId): string {
    return `${n.localAddress}|${n.gateway}`;
  }

  get(n: NetworkId): EimVerdict | undefined {
    const k = this.key(n);
    const v = this.entries.get(k);
    if (!v) return undefined;
    if (this.clock() - v.checkedAt > this.ttlMs) {
      this.entries.delete(k);
      return undefined;
    }
    return v;
  }

  set(n: NetworkId, v: EimVerdict): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(this.key(n), v);
  }

  /** A fresh observation of our public address: if it differs from the cached one, drop the entry. */
  notePublicAddress(n: NetworkId, address: string): void {
    const v = this.entries.get(this.key(n));
    if (v?.publicAddress !== undefined && v.publicAddress !== address) this.entries.delete(this.key(n));
  }

  clear(): void {
    this.entries.clear();
  }

  /** Cached verdict, or a new check (stored) when missing/expired. */
  async getOrCheck(n: NetworkId, run: () => Promise<EimVerdict>): Promise<EimVerdict> {
    const hit = this.get(n);
    if (hit) return hit;
    const v = await run();
    if (v.mapping !== 'unknown') this.set(n, v);
    return v;
  }
}
