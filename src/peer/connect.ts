/** Opens a TCP connection and runs the handshake as initiator. */
import { connect } from 'node:net';
import { Peer, type HandshakeResult, type PeerOptions } from './peer.js';
import { PeerError } from './errors.js';

export interface ConnectPeerOptions extends Omit<PeerOptions, 'role'> {
  host: string;
  port: number;
  /** TCP connect timeout (default: the handshake timeout, 10,000 ms). */
  connectTimeoutMs?: number;
}

/**
 * Connects to `host:port`, completes the handshake as initiator and returns the live peer. Rejects
 * with PeerError: PEER_SOCKET (refused, unreachable), PEER_HANDSHAKE_TIMEOUT (connect or handshake
 * too slow), PEER_WIRE (not Bitcoin), PEER_CLOSED ...; the socket is closed on failure.
 */
export async function connectPeer(opts: ConnectPeerOptions): Promise<{ peer: Peer } & HandshakeResult> {
  const sock = connect({ host: opts.host, port: opts.port });
  const ms = opts.connectTimeoutMs ?? opts.handshakeTimeoutMs ?? 10_000;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      cleanup();
      sock.destroy();
      reject(
        new PeerError('PEER_HANDSHAKE_TIMEOUT', `TCP connect to ${opts.host}:${opts.port} timed out after ${ms} ms`),
      );
    }, ms);
    const onErr = (e: NodeJS.ErrnoException) => {
      cleanup();
      sock.destroy();
      reject(
        new PeerError('PEER_SOCKET', `connect to ${opts.host}:${opts.port} failed: ${e.code ?? e.message}`, {
          cause: e,
        }),
      );
    };
    const onOk = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(t);
      sock.off('error', onErr);
      sock.off('connect', onOk);
    };
    sock.once('error', onErr);
    sock.once('connect', onOk);
  });
  sock.setNoDelay(true);
  const peer = new Peer(sock, { ...opts, role: 'initiator' });
  const r = await peer.handshake();
  return { peer, ...r };
}
