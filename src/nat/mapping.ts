/**
 * Mapping discovery: the public endpoint our punch port maps to. Three methods, selectable and combinable:
 *  - `feeler`: a feeler-like handshake from the punch port to a known-good peer, reading `addr_recv`;
 *  - `predict`: port prediction — mapped port = local port, public IP from the cached EIM verdict (no
 *    packet at all; wrong when the NAT already has a mapping on that port);
 *  - `natcheck`: the same handshake against a NAT-check server (which always fills `addr_recv`).
 * Observed endpoints rank before predicted ones; each observation spends one token of the discovery budget.
 */
import type { TokenBucket } from '../limits/token-bucket.js';
import { NatError } from './errors.js';
import type { EimVerdict } from './eim-check.js';
import { type Endpoint, type Observer, formatEndpoint } from './types.js';

export type DiscoveryMethod = 'feeler' | 'predict' | 'natcheck';

export interface DiscoveryOptions {
  /** The punch port's local endpoint (the address may be the wildcard for prediction). */
  local: Endpoint;
  /** Methods in order of preference; all listed are tried (observations in parallel), results combined. */
  methods: DiscoveryMethod[];
  feelerPeers?: Endpoint[];
  natcheckServers?: Endpoint[];
  /** Cached EIM verdict (needed for `predict`). */
  eim?: EimVerdict;
  observe?: Observer;
  /** Spends one token per discovery connection; none left → that method fails with NAT_BUDGET. */
  budget?: TokenBucket;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Stop after the first method that yields an endpoint (default true: fastest). */
  firstOnly?: boolean;
}

export interface DiscoveredEndpoint extends Endpoint {
  method: DiscoveryMethod;
  /** Who reported it (observed methods). */
  via?: string;
}

export interface DiscoveryResult {
  /** Distinct endpoints, best first (observed before predicted). */
  endpoints: DiscoveredEndpoint[];
  /** True when the only endpoint is predicted, not observed (opendpoint flag bit1). */
  predicted: boolean;
  /** EIM known port-preserving (opendpoint flag bit0). */
  portPreserving: boolean;
  /** Per-method failures (method: reason). */
  failures: string[];
  elapsedMs: number;
}

function predict(opts: DiscoveryOptions): DiscoveredEndpoint {
  const v = opts.eim;
  if (!v || v.mapping !== 'eim' || v.publicAddress === undefined) {
    throw new NatError('NAT_NO_MAPPING', 'port prediction needs a cached EIM verdict with the public address');
  }
  if (v.portPreserving !== true)
    throw new NatError('NAT_NO_MAPPING', 'port prediction needs a port-preserving EIM NAT');
  return { address: v.publicAddress, port: opts.local.port, method: 'predict' };
}

async function observeFirst(
  opts: DiscoveryOptions,
  method: DiscoveryMethod,
  peers: Endpoint[],
): Promise<DiscoveredEndpoint> {
  if (!opts.observe) throw new NatError('NAT_OBSERVE_FAILED', `${method}: no observer configured`);
  if (peers.length === 0) throw new NatError('NAT_OBSERVE_FAILED', `${method}: no peers configured`);
  const errors: string[] = [];
  const causes: unknown[] = [];
  for (const p of peers) {
    if (opts.budget && !opts.budget.tryTake())
      throw new NatError('NAT_BUDGET', `${method}: discovery connection budget exhausted`);
    try {
      const got = await opts.observe(opts.local, p, {
        timeoutMs: opts.timeoutMs ?? 3000,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      if (got.port === 0 || got.address === '0.0.0.0' || got.address === '::') {
        const why = new NatError('NAT_OBSERVE_FAILED', `${formatEndpoint(p)} did not report our address`);
        errors.push(why.message);
        causes.push(why);
        continue;
      }
      return { address: got.address, port: got.port, method, via: formatEndpoint(p) };
    } catch (err) {
      errors.push(`${formatEndpoint(p)}: ${(err as Error).message}`);
      causes.push(err);
      if (opts.signal?.aborted) break;
    }
  }
  throw new NatError('NAT_OBSERVE_FAILED', `${method}: ${errors.join('; ')}`, { causes });
}

/**
 * Runs the selected methods and combines their endpoints. Throws NAT_NO_MAPPING when none works, with each
 * method's failure in `causes` (e.g. NAT_BUDGET: `err.has('NAT_BUDGET')`).
 */
export async function discoverMapping(opts: DiscoveryOptions): Promise<DiscoveryResult> {
  const t0 = performance.now();
  const failures: string[] = [];
  const causes: unknown[] = [];
  const found: DiscoveredEndpoint[] = [];
  const firstOnly = opts.firstOnly ?? true;
  for (const m of opts.methods) {
    try {
      if (m === 'predict') found.push(predict(opts));
      else if (m === 'feeler') found.push(await observeFirst(opts, m, opts.feelerPeers ?? []));
      else if (m === 'natcheck') found.push(await observeFirst(opts, m, opts.natcheckServers ?? []));
      else throw new NatError('NAT_NO_MAPPING', `unknown discovery method ${String(m)}`);
      if (firstOnly) break;
    } catch (err) {
      failures.push(`${m}: ${(err as Error).message}`);
      causes.push(err);
    }
  }
  // Observed first; dedup by endpoint.
  const ranked = [...found.filter((e) => e.method !== 'predict'), ...found.filter((e) => e.method === 'predict')];
  const seen = new Set<string>();
  const endpoints = ranked.filter((e) => {
    const k = formatEndpoint(e);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  if (endpoints.length === 0) {
    const why = failures.join(' | ') || 'no method selected';
    throw new NatError('NAT_NO_MAPPING', `no mapping discovered (${why})`, { causes });
  }
  return {
    endpoints,
    predicted: endpoints.every((e) => e.method === 'predict'),
    portPreserving: opts.eim?.mapping === 'eim' && opts.eim.portPreserving === true,
    failures,
    elapsedMs: performance.now() - t0,
  };
}
