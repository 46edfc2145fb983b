/** Shared shapes of the NAT layer. */
import type { Endpoint } from '../ip.js';
import { parseEndpoint as parseHostEndpoint } from '../wire/address.js';
import { WireError } from '../wire/errors.js';

// The one Endpoint type and its formatter are src/ip.ts; re-exported here for the NAT layer's importers.
export type { Endpoint } from '../ip.js';
export { formatEndpoint } from '../ip.js';

/** A peer's view of our endpoint, taken from `addr_recv` of the version message it sent us. */
export interface Observation {
  /** The peer asked, `host:port` (IPv6 in brackets). */
  peer: string;
  address: string;
  port: number;
}

/**
 * Makes one observation: connect from `local` (a reusable port) to `peer`, run the version handshake,
 * return the `addr_recv` the peer reported. Implemented over the native engine + Peer in observe.ts;
 * injectable so the verdict logic stays independent of sockets. `localPort` (optional): the local port the
 * connection actually left from (useful when `local.port` is 0).
 */
export type Observer = (
  local: Endpoint,
  peer: Endpoint,
  opts: { timeoutMs: number; signal?: AbortSignal },
) => Promise<Endpoint & { localPort?: number }>;

/** Parses `host:port` / `[v6]:port` (the wire layer's endpoint parser); undefined on junk or port 0. */
export function parseEndpoint(s: string): Endpoint | undefined {
  try {
    const e = parseHostEndpoint(s);
    return e.port === 0 ? undefined : { address: e.host, port: e.port };
  } catch (err) {
    if (err instanceof WireError) return undefined;
    throw err;
  }
}
