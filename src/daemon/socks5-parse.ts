/**
 * The pure half of the SOCKS5 server (RFC 1928): bytes in, decisions out, no sockets, no timers. The server
 * (socks5.ts) feeds every byte a client sends before the final reply through {@link Socks5Handshake}; the
 * fuzzer (test/fuzz) feeds it arbitrary bytes. Everything here is total: bad input is a result, never a throw.
 *
 * Also here: the destination policy of the proxy (which names and addresses a SOCKS client may ask for),
 * because it is a pure function of the parsed request.
 */
import { isIP } from 'node:net';
import { formatIP16, reachesThisHost } from '../ip.js';

/** RFC 1928 reply codes. */
export const SOCKS_REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export interface SocksRequest {
  atyp: 'ipv4' | 'ipv6' | 'domain';
  /** Address as text (IPv4-mapped IPv6 is unmapped to IPv4). */
  host: string;
  port: number;
}

/**
 * Why a client was refused, as a short fixed token: log lines are rate-limited per (event, reason), so the
 * reason must come from a small fixed set, never from client bytes.
 */
export type SocksRefusal =
  | 'not-socks5'
  | 'no-methods'
  | 'no-acceptable-method'
  | 'bad-request-version'
  | 'bad-command'
  | 'bad-address-type'
  | 'empty-domain'
  | 'bad-domain'
  | 'port-zero'
  | 'too-many-bytes';

/** A parse step: more bytes needed, a value and the bytes it used, or a refusal (reply code or plain close). */
export type Parse<T> =
  { need: true } | { value: T; used: number } | { error: number | 'close'; why: string; reason: SocksRefusal };

/** Longest legal greeting: VER NMETHODS and 255 methods. */
export const MAX_GREETING = 2 + 255;
/** Longest legal request: VER CMD RSV ATYP, a 255-byte name with its length byte, the port. */
export const MAX_REQUEST = 4 + 1 + 255 + 2;
/**
 * Most bytes a client may send before our final reply (docs/DAEMON.md: 257 + 262 = 519). Data a client
 * sends early (after its request, before the reply) counts too: the proxy holds it while a punch runs (up to
 * the connect timeout), so it must be small.
 */
export const MAX_PREAMBLE = MAX_GREETING + MAX_REQUEST;

/** Parses the method greeting: VER NMETHODS METHODS. */
export function parseGreeting(b: Buffer): Parse<number[]> {
  if (b.length < 1) return { need: true };
  if (b[0] !== 5) return { error: 'close', why: `version ${b[0]} is not SOCKS5`, reason: 'not-socks5' };
  if (b.length < 2) return { need: true };
  const n = b[1]!;
  if (n === 0) return { error: 0xff, why: 'no methods offered', reason: 'no-methods' };
  if (b.length < 2 + n) return { need: true };
  return { value: [...b.subarray(2, 2 + n)], used: 2 + n };
}

/** Parses the request: VER CMD RSV ATYP DST.ADDR DST.PORT. */
export function parseRequest(b: Buffer): Parse<SocksRequest> {
  if (b.length >= 1 && b[0] !== 5)
    return { error: 'close', why: `request version ${b[0]}`, reason: 'bad-request-version' };
  if (b.length < 4) return { need: true };
  const cmd = b[1]!;
  const atyp = b[3]!;
  if (cmd !== 1)
    return {
      error: SOCKS_REPLY.commandNotSupported,
      why: `command ${cmd} not supported (CONNECT only)`,
      reason: 'bad-command',
    };
  let host: string;
  let off: number;
  let kind: SocksRequest['atyp'];
  if (atyp === 1) {
    if (b.length < 10) return { need: true };
    host = `${b[4]}.${b[5]}.${b[6]}.${b[7]}`;
    off = 8;
    kind = 'ipv4';
  } else if (atyp === 4) {
    if (b.length < 22) return { need: true };
    host = formatIP16(b.subarray(4, 20)); // IPv4-mapped comes out as a dotted quad
    kind = isIP(host) === 4 ? 'ipv4' : 'ipv6';
    off = 20;
  } else if (atyp === 3) {
    if (b.length < 5) return { need: true };
    const len = b[4]!;
    if (len === 0) return { error: SOCKS_REPLY.generalFailure, why: 'empty domain name', reason: 'empty-domain' };
    if (b.length < 5 + len + 2) return { need: true };
    host = b.subarray(5, 5 + len).toString('latin1');
    if (!/^[A-Za-z0-9.\-_]+$/.test(host)) {
      return { error: SOCKS_REPLY.hostUnreachable, why: 'domain name with bad characters', reason: 'bad-domain' };
    }
    off = 5 + len;
    kind = 'domain';
  } else {
    return {
      error: SOCKS_REPLY.addressTypeNotSupported,
      why: `address type ${atyp} not supported`,
      reason: 'bad-address-type',
    };
  }
  const port = b.readUInt16BE(off);
  if (port === 0) return { error: SOCKS_REPLY.generalFailure, why: 'port 0', reason: 'port-zero' };
  return { value: { atyp: kind, host, port }, used: off + 2 };
}

/** What one {@link Socks5Handshake.push} produced. At most one of `request` and `error` is set. */
export interface HandshakeStep {
  /** Bytes to send now (the method selection reply `05 00`). */
  methodReply?: Buffer;
  /** The parsed CONNECT request (once per handshake). */
  request?: SocksRequest;
  /** The client is refused: send `reply` (at the stage it failed in) or just close. */
  error?: { reply: number | 'close'; stage: 'greeting' | 'request'; why: string; reason: SocksRefusal };
}

const METHOD_OK = Buffer.from([5, 0]);

/**
 * The client side of a SOCKS5 conversation up to our final reply, bytes in any chunking. Counts every byte
 * (greeting, request and early data) against {@link MAX_PREAMBLE}; holds the early data for the caller.
 * After an error the handshake is dead and ignores further input.
 */
export class Socks5Handshake {
  private buf: Buffer = Buffer.alloc(0);
  private stage: 'greeting' | 'request' | 'requested' | 'dead' = 'greeting';
  private total = 0;

  /** Bytes received so far (never more than {@link MAX_PREAMBLE} while alive). */
  get received(): number {
    return this.total;
  }

  /** Where the handshake is. */
  get state(): 'greeting' | 'request' | 'requested' | 'dead' {
    return this.stage;
  }

  push(chunk: Buffer): HandshakeStep {
    if (this.stage === 'dead') return {};
    this.total += chunk.length;
    const out: HandshakeStep = {};
    if (this.total > MAX_PREAMBLE) {
      const stage = this.stage === 'greeting' ? 'greeting' : 'request';
      this.kill();
      out.error = {
        reply: 'close',
        stage,
        why: `more than ${MAX_PREAMBLE} bytes before the reply`,
        reason: 'too-many-bytes',
      };
      return out;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.stage === 'greeting') {
      const g = parseGreeting(this.buf);
      if ('need' in g) return out;
      if ('error' in g) return this.refuse(out, g.error, 'greeting', g.why, g.reason);
      if (!g.value.includes(0)) {
        return this.refuse(
          out,
          0xff,
          'greeting',
          'no acceptable method (only "no authentication" is offered)',
          'no-acceptable-method',
        );
      }
      out.methodReply = METHOD_OK;
      this.buf = this.buf.subarray(g.used);
      this.stage = 'request';
    }
    if (this.stage === 'request') {
      const r = parseRequest(this.buf);
      if ('need' in r) return out;
      if ('error' in r) return this.refuse(out, r.error, 'request', r.why, r.reason);
      this.buf = this.buf.subarray(r.used);
      this.stage = 'requested';
      out.request = r.value;
    }
    return out;
  }

  /** The bytes the client sent after its request (to forward once connected); empties the buffer. */
  takeEarly(): Buffer {
    if (this.stage !== 'requested') return Buffer.alloc(0);
    const early = this.buf;
    this.buf = Buffer.alloc(0);
    return early;
  }

  private refuse(
    out: HandshakeStep,
    reply: number | 'close',
    stage: 'greeting' | 'request',
    why: string,
    reason: SocksRefusal,
  ): HandshakeStep {
    this.kill();
    out.error = { reply, stage, why, reason };
    return out;
  }

  private kill(): void {
    this.stage = 'dead';
    this.buf = Buffer.alloc(0);
  }
}

/** Which destinations the proxy's plain-connect path may reach. */
export interface DestinationPolicy {
  /** Resolve domain names with the system resolver (default false: a name is refused). */
  resolveNames: boolean;
  /** Allow loopback (and unspecified) destinations (default false). */
  allowLoopback: boolean;
}

/** Why a destination is refused (a fixed token, for logs and error codes). */
export type DestinationRefusal = 'overlay-name' | 'name-not-resolved' | 'loopback';

/** Overlay names: they must never reach a DNS resolver (a `.onion` lookup is a leak). */
export function isOverlayName(host: string): boolean {
  return /\.(onion|i2p)\.?$/i.test(host) || /^(onion|i2p)\.?$/i.test(host);
}

/**
 * The name policy for a parsed request, before any lookup: overlay names are refused, other names unless
 * `resolveNames`. `undefined` = go on. Addresses (literal, or resolved) are checked with {@link checkAddress}
 * on the plain-connect path only: an announced destination is punched, and the punch client's own target
 * policy applies to it (the lab announces loopback endpoints).
 */
export function checkDestination(req: SocksRequest, policy: DestinationPolicy): DestinationRefusal | undefined {
  if (req.atyp !== 'domain' || isIP(req.host) !== 0) return undefined;
  if (isOverlayName(req.host)) return 'overlay-name';
  if (!policy.resolveNames) return 'name-not-resolved';
  return undefined;
}

/** The policy decision for an IP address (literal or resolved). */
export function checkAddress(ip: string, policy: DestinationPolicy): DestinationRefusal | undefined {
  if (!policy.allowLoopback && reachesThisHost(ip)) return 'loopback';
  return undefined;
}
