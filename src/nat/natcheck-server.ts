/**
 * The NAT-check service: a Bitcoin-protocol TCP server that completes the version handshake as
 * responder with `addr_recv` = the address:port it saw the client come from (IPv4 clients as
 * IPv4-mapped IPv6 in the message, as the v1 address format requires), then closes. A client behind
 * NAT learns its public mapping from two such servers and compares (EIM check).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Peer } from '../peer/index.js';
import { NetgroupAdmission } from '../limits/netgroup-admission.js';
import { MAX_USER_AGENT, unmapIPv4, type NetworkName } from '../wire/index.js';

/** Connections open at once, all clients together; at the cap a newcomer may evict (see the module comment). */
export const NATCHECK_MAX_CONNECTIONS = 256;
/**
 * Connections open at once per netgroup (/16 IPv4, /32 IPv6, /36 in he.net's 2001:470::/32). A netgroup can be a
 * whole ISP (or the NAT lab's simulated internet, one /16), and a check lasts one round trip, so this is a share of
 * the global cap rather than a per-host limit; at the global cap eviction by netgroup keeps other networks served.
 */
export const NATCHECK_PER_NETGROUP = 16;
/** Handshake timeout per connection (ms). */
export const NATCHECK_HANDSHAKE_MS = 5_000;
/**
 * Largest payload accepted: a version with a 256-byte user agent and the relay byte (4 + 8 + 8 + 26 + 26 + 8 +
 * 3 + 256 + 4 + 1 = 344). The server needs nothing bigger, so a larger declared length closes the connection at
 * the header, before a payload byte is buffered.
 */
export const NATCHECK_MAX_PAYLOAD = 4 + 8 + 8 + 26 + 26 + 8 + 3 + MAX_USER_AGENT + 4 + 1;
/** Most messages accepted before the client's verack (Bitcoin Core sends 3 to 5). */
export const NATCHECK_MAX_MESSAGES = 8;
/** Commands a client may send: the handshake and its feature negotiation. Anything else closes the connection. */
const ALLOWED = new Set(['version', 'verack', 'wtxidrelay', 'sendaddrv2', 'sendtxrcncl']);

export interface NatcheckServerOptions {
  /** Address to listen on ('::' = IPv4 and IPv6, '0.0.0.0', '127.0.0.1', '::1' ...). */
  host: string;
  /** Port (0 = pick a free one). */
  port: number;
  network: NetworkName;
  /** Connections open at once, all clients (default {@link NATCHECK_MAX_CONNECTIONS}). */
  maxConnections?: number;
  /** Connections open at once per client netgroup (default {@link NATCHECK_PER_NETGROUP}); extra ones are closed. */
  perNetgroupLimit?: number;
  /** Handshake timeout per connection (default {@link NATCHECK_HANDSHAKE_MS}). */
  handshakeTimeoutMs?: number;
  /** Called once per finished connection (for logs and tests). */
  onResult?: (r: NatcheckResult) => void;
}

/**
 * Why a connection was refused or closed early (besides the PeerError codes of a failed handshake):
 * NATCHECK_NETGROUP_LIMIT (its netgroup has `perNetgroupLimit` open), NATCHECK_FULL (at `maxConnections` and no
 * netgroup to evict from), NATCHECK_EVICTED (made room for a client of a less represented netgroup),
 * NATCHECK_UNEXPECTED_MESSAGE (a command other than the handshake's).
 */
export type NatcheckRefusal =
  'NATCHECK_NETGROUP_LIMIT' | 'NATCHECK_FULL' | 'NATCHECK_EVICTED' | 'NATCHECK_UNEXPECTED_MESSAGE';

/** What happened to one client connection. */
export interface NatcheckResult {
  client: { address: string; port: number };
  ok: boolean;
  /** Error code when not ok (PEER_HANDSHAKE_TIMEOUT, PEER_WIRE, a {@link NatcheckRefusal}, ...). */
  error?: string;
  /** The client's user agent, as sent: untrusted bytes, escape before printing. */
  userAgent?: string;
}

export interface NatcheckServer {
  address: string;
  port: number;
  /** Connections open now. */
  readonly connections: number;
  /** Stops listening, closes every open connection, resolves when the server is closed. */
  close(): Promise<void>;
}

interface Conn {
  sock: Socket;
  peer: Peer;
  address: string;
  port: number;
  /** Set once a result was reported, so an evicted or refused connection reports exactly once. */
  reported: boolean;
}

/**
 * Starts the NAT-check service; resolves once it listens.
 *
 * Bounds (a flood must not cost fds or memory, and must not lock legitimate clients out): at most
 * `maxConnections` open; at most `perNetgroupLimit` per netgroup; at the global cap a newcomer evicts the youngest
 * connection of the netgroup holding the most, if that netgroup holds at least two more than the newcomer's
 * (Bitcoin Core's inbound eviction, reduced to its netgroup rule), otherwise it is refused. Every connection has
 * the handshake deadline; payloads over {@link NATCHECK_MAX_PAYLOAD} and commands other than the handshake's
 * close it.
 */
export async function startNatcheckServer(opts: NatcheckServerOptions): Promise<NatcheckServer> {
  const maxConns = opts.maxConnections ?? NATCHECK_MAX_CONNECTIONS;
  const perGroup = opts.perNetgroupLimit ?? NATCHECK_PER_NETGROUP;
  /** Open connections per netgroup, with the caps and the eviction rule every public listener shares. */
  const admission = new NetgroupAdmission<Conn>({ maxConnections: maxConns, perNetgroup: perGroup });
  const report = (c: Conn | { address: string; port: number }, r: Omit<NatcheckResult, 'client'>) => {
    if ('reported' in c) {
      if (c.reported) return;
      c.reported = true;
    }
    try {
      opts.onResult?.({ client: { address: c.address, port: c.port }, ...r });
    } catch {
      // a logging callback must not take the server down
    }
  };
  const drop = (c: Conn, error: string) => {
    report(c, { ok: false, error });
    c.peer.close();
    c.sock.destroy();
  };
  const server: Server = createServer({ noDelay: true }, (sock) => {
    const address = unmapIPv4(sock.remoteAddress ?? '');
    const port = sock.remotePort ?? 0;
    sock.on('error', () => {});
    const verdict = admission.admit(address);
    if (!verdict.ok) {
      sock.destroy();
      if (verdict.why !== 'bad-address') {
        const error = verdict.why === 'netgroup' ? 'NATCHECK_NETGROUP_LIMIT' : 'NATCHECK_FULL';
        report({ address, port }, { ok: false, error });
      }
      return;
    }
    if (verdict.evict) {
      forget(verdict.evict);
      drop(verdict.evict, 'NATCHECK_EVICTED');
    }
    const peer = new Peer(sock, {
      network: opts.network,
      role: 'responder',
      addrRecv: { address, port },
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? NATCHECK_HANDSHAKE_MS,
      relay: false,
      maxPayload: NATCHECK_MAX_PAYLOAD,
      maxPreVerackMessages: NATCHECK_MAX_MESSAGES,
    });
    const c: Conn = { sock, peer, address, port, reported: false };
    admission.add(verdict.group, c);
    sock.once('close', () => forget(c));
    peer.on('message', (command) => {
      if (!ALLOWED.has(command)) drop(c, 'NATCHECK_UNEXPECTED_MESSAGE');
    });
    peer.handshake().then(
      (r) => {
        // Let the verack (and anything queued) flush, then close.
        sock.end(() => peer.close());
        setTimeout(() => peer.close(), 1000).unref();
        report(c, { ok: true, userAgent: r.version.userAgent });
      },
      (e: { code?: string }) => {
        peer.close();
        report(c, { ok: false, error: e.code ?? 'ERROR' });
      },
    );
  });
  /** Removes a connection from the counts (idempotent: eviction and the socket's close both call it). */
  function forget(c: Conn): void {
    admission.remove(c);
  }
  server.on('error', () => {}); // per-connection errors are handled per socket; listen errors below

  await new Promise<void>((resolve, reject) => {
    const onErr = (e: Error) => reject(e);
    server.once('error', onErr);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off('error', onErr);
      resolve();
    });
  });
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('natcheck server has no TCP address');
  let closing: Promise<void> | undefined;
  return {
    address: a.address,
    port: a.port,
    get connections() {
      return admission.size;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const c of admission.all()) {
          c.peer.close();
          c.sock.destroy();
        }
      });
      return closing;
    },
  };
}
