/**
 * A small SOCKS5 server (RFC 1928) for bitcoind's `-proxy=`: no authentication, CONNECT only, address types
 * IPv4, IPv6 and domain name. The caller decides how each destination is reached (`connect`); the bytes are
 * then relayed by the splice bridge. Hard limits: greeting/request size (they are bounded by the protocol:
 * at most 257 and 262 bytes), a greeting timeout, a cap on clients at once. A bad client gets the RFC reply
 * code and a closed connection; nothing it sends can throw out of the server.
 */
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { OnionpunchError } from '../errors.js';
import { formatIP16, parseIPv6, unmapIPv4, writeIPv4 } from '../ip.js';
import { bridge, type Bridge } from './splice.js';
import type { Logger } from './log.js';

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

/** Opens the outbound connection for one request; a rejection becomes a reply code via {@link socksReplyFor}. */
export type SocksConnector = (req: SocksRequest, signal: AbortSignal) => Promise<Socket>;

export interface Socks5ServerOptions {
  connect: SocksConnector;
  /** Most clients at once (default 128); more are closed at once. */
  maxClients?: number;
  /** Bound on greeting + request (default 10 s). */
  greetingTimeoutMs?: number;
  /** Bound on `connect` (default 120 s: a punch may take a while over Tor). */
  connectTimeoutMs?: number;
  /** Bridge idle timeout (default 30 min). */
  idleTimeoutMs?: number;
  log?: Logger;
}

/** The SOCKS reply code for an error thrown by a connector (errno, punch and overlay codes). */
export function socksReplyFor(err: unknown): number {
  const code = (err as { code?: unknown } | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
    case 'PUNCH_REFUSED':
      return SOCKS_REPLY.connectionRefused;
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return SOCKS_REPLY.networkUnreachable;
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'PUNCH_OVERLAY_DIAL':
    case 'PUNCH_REMOTE_FAILED':
    case 'PUNCH_VERIFY_FAILED':
      return SOCKS_REPLY.hostUnreachable;
    case 'ETIMEDOUT':
    case 'SOCKS_TIMEOUT':
    case 'PUNCH_TIMEOUT':
    case 'PUNCH_CONNECT_TIMEOUT':
      return SOCKS_REPLY.ttlExpired;
    case 'PUNCH_RATE_LIMITED':
    case 'PUNCH_REJECTED':
    case 'PUNCH_NAT_UNSUITABLE':
    case 'PUNCH_TARGET_REFUSED':
    case 'DAEMON_NOT_ALLOWED':
      return SOCKS_REPLY.notAllowed;
    default:
      return SOCKS_REPLY.generalFailure;
  }
}

/** Encodes a reply with a bound address (all-zero IPv4 when unknown). */
export function encodeReply(rep: number, bound?: { address: string; port: number }): Buffer {
  const addr = bound?.address !== undefined ? unmapIPv4(bound.address) : undefined;
  const v6 = addr !== undefined && isIP(addr) === 6 ? parseIPv6(addr) : undefined;
  if (v6) {
    const b = Buffer.alloc(22);
    b.set([5, rep, 0, 4]);
    v6.copy(b, 4);
    b.writeUInt16BE(bound!.port, 20);
    return b;
  }
  const b = Buffer.alloc(10);
  b.set([5, rep, 0, 1]);
  if (addr !== undefined && !writeIPv4(addr, b, 4)) b.fill(0, 4, 8);
  b.writeUInt16BE(bound?.port ?? 0, 8);
  return b;
}

type Parse<T> = { need: true } | { value: T; used: number } | { error: number | 'close'; why: string };

/** Parses the method greeting: VER NMETHODS METHODS. */
export function parseGreeting(b: Buffer): Parse<number[]> {
  if (b.length < 1) return { need: true };
  if (b[0] !== 5) return { error: 'close', why: `version ${b[0]} is not SOCKS5` };
  if (b.length < 2) return { need: true };
  const n = b[1]!;
  if (n === 0) return { error: 0xff, why: 'no methods offered' };
  if (b.length < 2 + n) return { need: true };
  return { value: [...b.subarray(2, 2 + n)], used: 2 + n };
}

/** Parses the request: VER CMD RSV ATYP DST.ADDR DST.PORT. */
export function parseRequest(b: Buffer): Parse<SocksRequest> {
  if (b.length < 4) return b.length >= 1 && b[0] !== 5 ? { error: 'close', why: `request version ${b[0]}` } : { need: true };
  if (b[0] !== 5) return { error: 'close', why: `request version ${b[0]}` };
  const cmd = b[1]!;
  const atyp = b[3]!;
  if (cmd !== 1) return { error: SOCKS_REPLY.commandNotSupported, why: `command ${cmd} not supported (CONNECT only)` };
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
    host = formatIP16(b.subarray(4, 20));
    kind = isIP(host) === 4 ? 'ipv4' : 'ipv6';
    off = 20;
  } else if (atyp === 3) {
    if (b.length < 5) return { need: true };
    const len = b[4]!;
    if (len === 0) return { error: SOCKS_REPLY.generalFailure, why: 'empty domain name' };
    if (b.length < 5 + len + 2) return { need: true };
    host = b.subarray(5, 5 + len).toString('latin1');
    if (!/^[A-Za-z0-9.\-_]+$/.test(host)) return { error: SOCKS_REPLY.hostUnreachable, why: 'domain name with bad characters' };
    off = 5 + len;
    kind = 'domain';
  } else {
    return { error: SOCKS_REPLY.addressTypeNotSupported, why: `address type ${atyp} not supported` };
  }
  const port = b.readUInt16BE(off);
  if (port === 0) return { error: SOCKS_REPLY.generalFailure, why: 'port 0' };
  return { value: { atyp: kind, host, port }, used: off + 2 };
}

/** Longest legal greeting + request (2+255 and 4+1+255+2): anything more before the reply is a bad client. */
const MAX_PREAMBLE = 257 + 262 + 64 * 1024;

export interface Socks5Stats {
  clients: number;
  active: number;
  connected: number;
  failed: number;
  protocolErrors: number;
  refusedBusy: number;
}

/** A SOCKS5 server. `listen()` then `close()`. Events are logs, not emitter events. */
export class Socks5Server {
  readonly stats: Socks5Stats = { clients: 0, active: 0, connected: 0, failed: 0, protocolErrors: 0, refusedBusy: 0 };
  private readonly server: Server;
  private readonly clients = new Set<Socket>();
  private readonly bridges = new Set<Bridge>();
  private readonly ac = new AbortController();

  constructor(private readonly opts: Socks5ServerOptions) {
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (s) => this.onClient(s));
    this.server.on('error', (err) => opts.log?.error('socks-server-error', { error: err }));
  }

  /** Listens; resolves the bound address. */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onErr = (e: Error): void => reject(new OnionpunchError('DAEMON_LISTEN', `cannot listen on ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e }));
      this.server.once('error', onErr);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onErr);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port });
      });
    });
  }

  /** Bridges currently relaying. */
  get activeBridges(): ReadonlySet<Bridge> {
    return this.bridges;
  }

  /** Stops listening, aborts pending connects; bridges get `graceMs` to finish, then are closed. */
  async close(graceMs = 0): Promise<void> {
    this.ac.abort();
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const c of this.clients) if (!this.bridgedSockets.has(c)) c.destroy();
    if (this.bridges.size > 0) {
      const all = Promise.all([...this.bridges].map((b) => b.done));
      const t = new Promise<void>((r) => setTimeout(r, graceMs).unref());
      await Promise.race([all, t]);
      for (const b of this.bridges) b.close();
      await all;
    }
    for (const c of this.clients) c.destroy();
    await closed;
  }

  private readonly bridgedSockets = new WeakSet<Socket>();

  private onClient(s: Socket): void {
    this.stats.clients++;
    s.on('error', () => undefined);
    const max = this.opts.maxClients ?? 128;
    if (this.clients.size >= max) {
      this.stats.refusedBusy++;
      this.opts.log?.warn('socks-busy', { max });
      s.destroy();
      return;
    }
    this.clients.add(s);
    this.stats.active = this.clients.size;
    s.once('close', () => {
      this.clients.delete(s);
      this.stats.active = this.clients.size;
    });
    const from = `${s.remoteAddress}:${s.remotePort}`;
    let buf: Buffer = Buffer.alloc(0);
    let state: 'greeting' | 'request' | 'connecting' = 'greeting';
    const timer = setTimeout(() => {
      this.stats.protocolErrors++;
      this.opts.log?.warn('socks-timeout', { from, state });
      s.destroy();
    }, this.opts.greetingTimeoutMs ?? 10_000);
    const fail = (rep: number | 'close', why: string): void => {
      clearTimeout(timer);
      s.off('data', onData);
      this.stats.protocolErrors++;
      this.opts.log?.warn('socks-bad-client', { from, why, reply: rep === 'close' ? undefined : rep });
      if (rep === 'close') s.destroy();
      else if (state === 'greeting') s.end(Buffer.from([5, rep]));
      else s.end(encodeReply(rep));
      // A client that never reads must not hold the socket open.
      setTimeout(() => s.destroy(), 2000).unref();
    };
    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (buf.length > MAX_PREAMBLE) return fail('close', 'too many bytes before the reply');
      if (state === 'greeting') {
        const g = parseGreeting(buf);
        if ('need' in g) return;
        if ('error' in g) return fail(g.error, g.why);
        if (!g.value.includes(0)) return fail(0xff, 'no acceptable method (only "no authentication" is offered)');
        s.write(Buffer.from([5, 0]));
        buf = buf.subarray(g.used);
        state = 'request';
      }
      if (state === 'request') {
        const r = parseRequest(buf);
        if ('need' in r) return;
        if ('error' in r) return fail(r.error, r.why);
        buf = buf.subarray(r.used);
        state = 'connecting';
        clearTimeout(timer);
        void this.connectFor(s, r.value, from, () => {
          const early = buf;
          buf = Buffer.alloc(0);
          s.off('data', onData);
          return early;
        });
      }
    };
    s.on('data', onData);
  }

  private async connectFor(s: Socket, req: SocksRequest, from: string, takeEarly: () => Buffer): Promise<void> {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    this.ac.signal.addEventListener('abort', onAbort, { once: true });
    s.once('close', onAbort);
    const ms = this.opts.connectTimeoutMs ?? 120_000;
    const timer = setTimeout(() => ac.abort(new OnionpunchError('SOCKS_TIMEOUT', `connect took more than ${ms} ms`)), ms);
    const log = this.opts.log;
    log?.debug('socks-request', { from, host: req.host, port: req.port, atyp: req.atyp });
    let out: Socket;
    const attempt = this.opts.connect(req, ac.signal);
    // A connector that ignores the abort and connects anyway must not leak its socket.
    attempt.then((sock) => {
      if (ac.signal.aborted) sock.destroy();
    }, () => undefined);
    try {
      out = await Promise.race([
        attempt,
        new Promise<never>((_r, rej) => ac.signal.addEventListener('abort', () => rej(ac.signal.reason instanceof Error ? ac.signal.reason : new OnionpunchError('SOCKS_CLOSED', 'client went away')), { once: true })),
      ]);
    } catch (err) {
      this.stats.failed++;
      const rep = socksReplyFor(err);
      log?.info('socks-connect-failed', { from, host: req.host, port: req.port, reply: rep, error: err });
      if (!s.destroyed) s.end(encodeReply(rep));
      setTimeout(() => s.destroy(), 2000).unref();
      return;
    } finally {
      clearTimeout(timer);
      this.ac.signal.removeEventListener('abort', onAbort);
      s.off('close', onAbort);
    }
    if (s.destroyed || this.ac.signal.aborted) {
      out.destroy();
      return;
    }
    out.on('error', () => undefined);
    this.stats.connected++;
    s.write(encodeReply(SOCKS_REPLY.succeeded, { address: out.localAddress ?? '0.0.0.0', port: out.localPort ?? 0 }));
    const early = takeEarly();
    if (early.length > 0) out.write(early);
    this.bridgedSockets.add(s);
    const b = bridge(s, out, { idleTimeoutMs: this.opts.idleTimeoutMs ?? 30 * 60_000 });
    this.bridges.add(b);
    log?.info('socks-connected', { from, host: req.host, port: req.port });
    const st = await b.done;
    this.bridges.delete(b);
    log?.info('socks-closed', { from, host: req.host, port: req.port, sent: st.aToB, received: st.bToA, reason: st.reason });
  }
}
