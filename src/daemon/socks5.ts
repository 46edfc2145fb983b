/**
 * A small SOCKS5 server (RFC 1928) for bitcoind's `-proxy=`: no authentication, CONNECT only, address types
 * IPv4, IPv6 and domain name. The caller decides how each destination is reached (`connect`); the bytes are
 * then relayed by the splice bridge. Hard limits: at most 257 + 262 bytes before our final reply (greeting,
 * request and any early data together), a greeting timeout, a connect timeout, a cap on clients at once. A bad
 * client gets the RFC reply code and a closed connection; nothing it sends can throw out of the server. Lines
 * about refused clients are rate-limited (one {@link LogLimiter}), so a flood of them is not a flood of logs.
 */
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { setMaxListeners } from 'node:events';
import { OnionpunchError } from '../errors.js';
import { parseIPv6, unmapIPv4, writeIPv4 } from '../ip.js';
import { bridge, type Bridge } from './splice.js';
import type { Logger } from './log.js';
import { LogLimiter, type LogLimiterOptions } from './log-limit.js';
import { SocksServerError } from './errors.js';
import { SOCKS_REPLY, Socks5Handshake, type SocksRequest } from './socks5-parse.js';

export {
  SOCKS_REPLY,
  parseGreeting,
  parseRequest,
  Socks5Handshake,
  type SocksRequest,
  type Parse,
} from './socks5-parse.js';
export { MAX_PREAMBLE, MAX_GREETING, MAX_REQUEST } from './socks5-parse.js';

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
  /** Rate limit of the lines about refused or failed clients (default 5 per 10 s per event and reason). */
  logLimit?: LogLimiterOptions;
}

/** The SOCKS reply code for an error thrown by a connector (errno, punch and overlay codes). */
export function socksReplyFor(err: unknown): number {
  const code = (err as { code?: unknown } | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
    case 'PUNCH_REFUSED':
    case 'TOR_SOCKS_CONNECTION_REFUSED':
      return SOCKS_REPLY.connectionRefused;
    case 'ENETUNREACH':
    case 'ENETDOWN':
    // The overlay route itself is down (tor's SOCKS port or the SAM bridge not reachable, tor without a network).
    case 'TOR_SOCKS_PROXY_UNREACHABLE':
    case 'TOR_SOCKS_NETWORK_UNREACHABLE':
    case 'SAM_UNREACHABLE':
      return SOCKS_REPLY.networkUnreachable;
    case 'TOR_SOCKS_HOST_UNREACHABLE':
    case 'TOR_SOCKS_BAD_ADDRESS':
    case 'TOR_SOCKS_HS_DESC_NOT_FOUND':
    case 'TOR_SOCKS_HS_DESC_INVALID':
    case 'TOR_SOCKS_HS_INTRO_FAILED':
    case 'TOR_SOCKS_HS_REND_FAILED':
    case 'TOR_SOCKS_HS_MISSING_CLIENT_AUTH':
    case 'TOR_SOCKS_HS_BAD_CLIENT_AUTH':
    case 'TOR_SOCKS_HS_BAD_ADDRESS':
    case 'SAM_CANT_REACH_PEER':
    case 'SAM_INVALID_KEY':
    case 'SAM_KEY_NOT_FOUND':
    case 'SAM_PEER_NOT_FOUND':
    case 'SAM_LEASESET_NOT_FOUND':
      return SOCKS_REPLY.hostUnreachable;
    case 'TOR_SOCKS_TIMEOUT':
    case 'TOR_SOCKS_TTL_EXPIRED':
    case 'TOR_SOCKS_HS_INTRO_TIMEDOUT':
    case 'SAM_TIMEOUT':
      return SOCKS_REPLY.ttlExpired;
    case 'TOR_SOCKS_NOT_ALLOWED':
      return SOCKS_REPLY.notAllowed;
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
    case 'PUNCH_SPRAY_LIMIT': // A refused the spray (was rate-limited / nat-unsuitable before it had a code)
    case 'PUNCH_TARGET_REFUSED':
    case 'DAEMON_NOT_ALLOWED':
    case 'SOCKS_OVERLAY_NAME':
    case 'SOCKS_NAME_NOT_RESOLVED':
    case 'SOCKS_LOOPBACK':
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
  /** The limiter of the lines about refused and failed clients. */
  readonly logLimiter: LogLimiter;
  private readonly server: Server;
  private readonly clients = new Set<Socket>();
  private readonly bridges = new Set<Bridge>();
  private readonly ac = new AbortController();

  constructor(private readonly opts: Socks5ServerOptions) {
    this.logLimiter = new LogLimiter(opts.log, opts.logLimit);
    // Every pending connect listens for the shutdown: at most one per client.
    setMaxListeners((opts.maxClients ?? 128) + 16, this.ac.signal);
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (s) => this.onClient(s));
    this.server.on('error', (err) => opts.log?.error('socks-server-error', { error: err }));
  }

  /** Listens; resolves the bound address. */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onErr = (e: Error): void =>
        reject(
          new OnionpunchError(
            'DAEMON_LISTEN',
            `cannot listen on ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`,
            { cause: e },
          ),
        );
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
    this.ac.abort(new SocksServerError('SOCKS_SHUTDOWN', 'the proxy is shutting down'));
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
    this.logLimiter.close();
  }

  private readonly bridgedSockets = new WeakSet<Socket>();

  private onClient(s: Socket): void {
    this.stats.clients++;
    s.on('error', () => undefined);
    const max = this.opts.maxClients ?? 128;
    if (this.clients.size >= max) {
      this.stats.refusedBusy++;
      this.logLimiter.write('warn', 'socks-busy', 'busy', { max });
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
    const hs = new Socks5Handshake();
    let connecting = false;
    const timer = setTimeout(() => {
      this.stats.protocolErrors++;
      this.logLimiter.write('warn', 'socks-timeout', hs.state, { from, state: hs.state });
      s.destroy();
    }, this.opts.greetingTimeoutMs ?? 10_000);
    // A client that hung up is not a greeting timeout 10 s later.
    s.once('close', () => clearTimeout(timer));
    const fail = (rep: number | 'close', stage: 'greeting' | 'request', why: string, reason: string): void => {
      clearTimeout(timer);
      s.off('data', onData);
      this.stats.protocolErrors++;
      const reply = rep === 'close' ? undefined : rep;
      this.logLimiter.write('warn', 'socks-bad-client', reason, { from, why, reason, reply });
      if (rep === 'close') s.destroy();
      else if (stage === 'greeting') s.end(Buffer.from([5, rep]));
      else s.end(encodeReply(rep));
      // A client that never reads must not hold the socket open.
      setTimeout(() => s.destroy(), 2000).unref();
    };
    const onData = (d: Buffer): void => {
      const step = hs.push(d);
      if (step.methodReply) s.write(step.methodReply);
      // While connecting, the only possible error is too many early bytes: closing the client aborts the connect.
      if (step.error) return fail(step.error.reply, step.error.stage, step.error.why, step.error.reason);
      if (step.request && !connecting) {
        connecting = true;
        clearTimeout(timer);
        void this.connectFor(s, step.request, from, () => {
          s.off('data', onData);
          return hs.takeEarly();
        });
      }
    };
    s.on('data', onData);
  }

  private async connectFor(s: Socket, req: SocksRequest, from: string, takeEarly: () => Buffer): Promise<void> {
    const ac = new AbortController();
    const onShutdown = (): void => ac.abort(this.ac.signal.reason);
    const onClientGone = (): void => ac.abort(new SocksServerError('SOCKS_CLOSED', 'the SOCKS client went away'));
    this.ac.signal.addEventListener('abort', onShutdown, { once: true });
    // allowHalfOpen: a client that hangs up sends a FIN ('end'), and 'close' would only follow our own end.
    s.once('end', onClientGone);
    s.once('close', onClientGone);
    const ms = this.opts.connectTimeoutMs ?? 120_000;
    const timer = setTimeout(() => {
      ac.abort(new SocksServerError('SOCKS_TIMEOUT', `connect took more than ${ms} ms`));
    }, ms);
    const log = this.opts.log;
    log?.debug('socks-request', { from, host: req.host, port: req.port, atyp: req.atyp });
    let out: Socket;
    const attempt = this.opts.connect(req, ac.signal);
    // A connector that ignores the abort and connects anyway must not leak its socket.
    attempt.then(
      (sock) => {
        if (ac.signal.aborted) sock.destroy();
      },
      () => undefined,
    );
    try {
      out = await Promise.race([
        attempt,
        new Promise<never>((_r, rej) => {
          ac.signal.addEventListener('abort', () => rej(ac.signal.reason), { once: true });
        }),
      ]);
    } catch (err) {
      this.stats.failed++;
      // After an abort, say why we aborted (client gone, timeout, shutdown), not how the connector noticed.
      const cause: unknown = ac.signal.aborted ? ac.signal.reason : err;
      const rep = socksReplyFor(cause);
      const code = (cause as { code?: unknown } | undefined)?.code;
      const key = typeof code === 'string' ? code : 'unknown';
      const fields = { from, host: req.host, port: req.port, reply: rep, error: cause };
      this.logLimiter.write('info', 'socks-connect-failed', key, fields);
      if (!s.destroyed) s.end(encodeReply(rep));
      setTimeout(() => s.destroy(), 2000).unref();
      return;
    } finally {
      clearTimeout(timer);
      this.ac.signal.removeEventListener('abort', onShutdown);
      s.off('end', onClientGone);
      s.off('close', onClientGone);
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
    log?.info('socks-closed', {
      from,
      host: req.host,
      port: req.port,
      sent: st.aToB,
      received: st.bToA,
      reason: st.reason,
    });
  }
}
