/**
 * Dialing `.onion:port` through tor's SOCKS5 port with the `socks` package. tor's reply byte (including the
 * extended onion-service errors 0xF0-0xF7 of SocksPort ... ExtendedErrors) is read off the wire, because the
 * package reports only names for the RFC 1928 codes, and turned into a typed TorSocksError.
 */
import { createConnection, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { SocksClient } from 'socks';
import { TorSocksError } from './errors.js';

/** `<56 base32>.onion` (v3). */
export const ONION_V3_RE = /^[a-z2-7]{56}\.onion$/;

export interface OnionDialOptions {
  socksHost?: string;
  socksPort: number;
  /** Distinct keys give distinct SOCKS credentials, hence distinct circuits (IsolateSOCKSAuth, tor's default). */
  isolationKey?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** SOCKS username/password for an isolation key: a hash, so the key itself never reaches tor's memory. */
export function isolationCredentials(key: string): { userId: string; password: string } {
  const h = createHash('sha256')
    .update('onionpunch-isolation\0' + key)
    .digest('hex');
  return { userId: 'op-' + h.slice(0, 32), password: h.slice(32) };
}

/**
 * Extracts the SOCKS5 reply byte from what the proxy sent: method selection (2 bytes), the username/password
 * sub-negotiation reply (2 bytes) when method 0x02 was chosen, then the request reply `05 REP ...`.
 */
export function socksReplyByte(received: Buffer): number | undefined {
  if (received.length < 2 || received[0] !== 0x05) return undefined;
  let off = 2;
  if (received[1] === 0x02) {
    if (received.length < 4) return undefined;
    if (received[3] !== 0x00) return undefined;
    off = 4;
  }
  if (received.length < off + 2 || received[off] !== 0x05) return undefined;
  return received[off + 1];
}

/** Connects to `host:port` (an onion) through tor. Resolves with the connected stream. */
export async function dialOnion(host: string, port: number, opts: OnionDialOptions): Promise<Socket> {
  const target = `${host}:${port}`;
  if (!ONION_V3_RE.test(host)) throw new TorSocksError('TOR_SOCKS_BAD_ADDRESS', `${host} is not a v3 onion address`);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new TorSocksError('TOR_SOCKS_BAD_ADDRESS', `bad port ${port}`);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const socksHost = opts.socksHost ?? '127.0.0.1';
  if (opts.signal?.aborted) throw new TorSocksError('TOR_SOCKS_ABORTED', `dial to ${target} aborted`);

  const socket = createConnection({ host: socksHost, port: opts.socksPort });
  const received: Buffer[] = [];
  let receivedLen = 0;
  // Tap the proxy's bytes until the handshake ends (the package consumes the same bytes itself).
  const tap = (b: Buffer) => {
    if (receivedLen < 64) {
      received.push(b);
      receivedLen += b.length;
    }
  };
  socket.on('data', tap);

  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      socket.destroy();
      reject(new TorSocksError('TOR_SOCKS_TIMEOUT', `dial to ${target} through tor timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    onAbort = () => {
      socket.destroy();
      reject(new TorSocksError('TOR_SOCKS_ABORTED', `dial to ${target} aborted`));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  const cleanup = () => {
    clearTimeout(timer);
    if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    socket.off('data', tap);
  };

  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', (err) =>
      reject(
        new TorSocksError(
          'TOR_SOCKS_PROXY_UNREACHABLE',
          `cannot reach tor's SOCKS port ${socksHost}:${opts.socksPort}: ${err.message}`,
          { cause: err },
        ),
      ),
    );
  });
  try {
    await Promise.race([connected, guard]);
    const creds = opts.isolationKey !== undefined ? isolationCredentials(opts.isolationKey) : undefined;
    const handshake = SocksClient.createConnection({
      proxy: { host: socksHost, port: opts.socksPort, type: 5, ...(creds ?? {}) },
      command: 'connect',
      destination: { host, port },
      existing_socket: socket,
      timeout: timeoutMs,
    }).then(
      (info) => info.socket,
      (err: Error) => {
        const rep = socksReplyByte(Buffer.concat(received));
        if (rep !== undefined && rep !== 0) throw TorSocksError.fromReply(rep, target);
        throw new TorSocksError('TOR_SOCKS_PROTOCOL', `SOCKS handshake with tor for ${target} failed: ${err.message}`, {
          cause: err,
        });
      },
    );
    const s = await Promise.race([handshake, guard]);
    cleanup();
    socket.removeAllListeners('error');
    return s;
  } catch (err) {
    cleanup();
    socket.destroy();
    throw err;
  } finally {
    guard.catch(() => {});
  }
}
