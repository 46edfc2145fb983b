/** Shared shapes of the NAT layer. */

/** An IP endpoint. `address` is text (IPv4 dotted or IPv6 without brackets). */
export interface Endpoint {
  address: string;
  port: number;
}

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
 * injectable so the verdict logic stays independent of sockets.
 */
export type Observer = (local: Endpoint, peer: Endpoint, opts: { timeoutMs: number; signal?: AbortSignal }) => Promise<Endpoint>;

export function formatEndpoint(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** Parses `host:port` / `[v6]:port`; undefined on junk. */
export function parseEndpoint(s: string): Endpoint | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { address: m[1]!, port };
}
