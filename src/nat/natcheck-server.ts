/**
 * The NAT-check service: a Bitcoin-protocol TCP server that completes the version handshake as
 * responder with `addr_recv` = the address:port it saw the client come from (IPv4 clients as
 * IPv4-mapped IPv6 in the message, as the v1 address format requires), then closes. A client behind
 * NAT learns its public mapping from two such servers and compares (EIM check).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Peer } from '../peer/index.js';
import { unmapIPv4, type NetworkName } from '../wire/index.js';

export interface NatcheckServerOptions {
  /** Address to listen on ('::' = IPv4 and IPv6, '0.0.0.0', '127.0.0.1', '::1' ...). */
  host: string;
  /** Port (0 = pick a free one). */
  port: number;
  network: NetworkName;
  /** Simultaneous connections allowed per client IP (default 4); extra ones are closed at once. */
  perIpLimit?: number;
  /** Handshake timeout per connection (default 5,000 ms). */
  handshakeTimeoutMs?: number;
  /** Called once per finished connection (for logs and tests). */
  onResult?: (r: NatcheckResult) => void;
}

/** What happened to one client connection. */
export interface NatcheckResult {
  client: { address: string; port: number };
  ok: boolean;
  /** Error code when not ok (PEER_HANDSHAKE_TIMEOUT, NATCHECK_PER_IP_LIMIT, ...). */
  error?: string;
  userAgent?: string;
}

export interface NatcheckServer {
  address: string;
  port: number;
  /** Stops listening, closes every open connection, resolves when the server is closed. */
  close(): Promise<void>;
}

/** Starts the NAT-check service; resolves once it listens. */
export async function startNatcheckServer(opts: NatcheckServerOptions): Promise<NatcheckServer> {
  const perIp = opts.perIpLimit ?? 4;
  const perIpCount = new Map<string, number>();
  const live = new Set<Socket>();
  const peers = new Set<Peer>();
  const report = (r: NatcheckResult) => {
    try {
      opts.onResult?.(r);
    } catch {
      // a logging callback must not take the server down
    }
  };

  const server: Server = createServer({ noDelay: true }, (sock) => {
    const address = unmapIPv4(sock.remoteAddress ?? '');
    const port = sock.remotePort ?? 0;
    sock.on('error', () => {});
    if (!address) {
      sock.destroy();
      return;
    }
    const n = perIpCount.get(address) ?? 0;
    if (n >= perIp) {
      sock.destroy();
      report({ client: { address, port }, ok: false, error: 'NATCHECK_PER_IP_LIMIT' });
      return;
    }
    perIpCount.set(address, n + 1);
    live.add(sock);
    sock.once('close', () => {
      live.delete(sock);
      const left = (perIpCount.get(address) ?? 1) - 1;
      if (left <= 0) perIpCount.delete(address);
      else perIpCount.set(address, left);
    });
    const peer = new Peer(sock, {
      network: opts.network,
      role: 'responder',
      addrRecv: { address, port },
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5_000,
      relay: false,
    });
    peers.add(peer);
    peer.handshake().then(
      (r) => {
        // Let the verack (and anything queued) flush, then close.
        sock.end(() => peer.close());
        setTimeout(() => peer.close(), 1000).unref();
        report({ client: { address, port }, ok: true, userAgent: r.version.userAgent });
      },
      (e: { code?: string }) => {
        peer.close();
        report({ client: { address, port }, ok: false, error: e.code ?? 'ERROR' });
      },
    ).finally(() => peers.delete(peer));
  });
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
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const p of peers) p.close();
        for (const s of live) s.destroy();
      });
      return closing;
    },
  };
}
