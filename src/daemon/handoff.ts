/**
 * Hand-off of a verified punched socket to the local bitcoind (or any program beside it), in one of two modes:
 *
 * - **splice** (default): a new TCP connection to bitcoind's P2P port, then the bridge moves bytes both ways
 *   (B's `version` arrives on the punched socket and goes on to bitcoind, which answers as responder: the
 *   punched peer looks like an ordinary inbound peer from loopback). The bridge is the addon's splice(2)
 *   thread (src/native/splice.ts: the payload stays in the kernel, a quarter of the JS copy's CPU per GB in
 *   docs/BENCHMARKS.md); the JS copy (splice.ts) is the fallback when a socket cannot be taken over.
 * - **fd** (`--handoff unix:PATH`): the punched socket itself goes to the receiver listening on PATH, as an
 *   `SCM_RIGHTS` descriptor with an `ImportPeerSocketV1` header (the layout of willcl-ark/natcat's
 *   doc/peer-socket-import-holepunching.md), so the receiver owns the kernel socket and sees the real peer
 *   address (getpeername). onionpunch then closes its copy and is out of the data path. Nothing was read from
 *   or written to the socket: the receiver gets B's first bytes.
 */
import { connect, type Socket } from 'node:net';
import { OnionpunchError } from '../errors.js';
import { sendFd, socketFd } from '../native/handoff.js';
import { canSplice, spliceSockets, type SpliceStats } from '../native/splice.js';
import { HandoffError } from './errors.js';
import { bridge, type Bridge, type BridgeOptions, type BridgeStats } from './splice.js';
import type { HostPort } from './config.js';

/** `ImportPeerSocketV1.magic`: ASCII "BIPS" read as a little-endian uint32. */
export const IMPORT_PEER_SOCKET_MAGIC = 0x53504942;
export const IMPORT_PEER_SOCKET_VERSION = 1;
/** `sizeof(ImportPeerSocketV1)`: magic u32, version u16, role u8, transport u8, flags u32 (little-endian). */
export const IMPORT_PEER_SOCKET_V1_SIZE = 12;

/**
 * The Bitcoin P2P role the receiver takes on the socket. `responder` (0): imported as an inbound peer, waits
 * for the remote `version` — serve's role, since B dials. `initiator` (1): imported as an outbound peer.
 */
export type HandoffRole = 'responder' | 'initiator';

/** The 12-byte ImportPeerSocketV1 header: `transport` 0 (v1 P2P transport only), `flags` 0. */
export function encodeImportPeerSocketV1(role: HandoffRole): Buffer {
  const b = Buffer.alloc(IMPORT_PEER_SOCKET_V1_SIZE);
  b.writeUInt32LE(IMPORT_PEER_SOCKET_MAGIC, 0);
  b.writeUInt16LE(IMPORT_PEER_SOCKET_VERSION, 4);
  b.writeUInt8(role === 'initiator' ? 1 : 0, 6);
  b.writeUInt8(0, 7);
  b.writeUInt32LE(0, 8);
  return b;
}

/** Where punched sockets go: splice to bitcoind's P2P port, or fd hand-off to a Unix socket. */
export type HandoffTarget = { mode: 'splice' } | { mode: 'fd'; path: string };

/** Parses the `handoff` setting: `splice` or `unix:PATH` (PATH absolute, or `@name` for an abstract socket). */
export function parseHandoffTarget(text: string): HandoffTarget {
  if (text === 'splice') return { mode: 'splice' };
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    // sun_path holds 108 bytes with its terminator.
    const rooted = path.startsWith('/') || path.startsWith('@');
    if (rooted && path.length > 1 && Buffer.byteLength(path) < 108 && !path.includes('\0')) return { mode: 'fd', path };
  }
  const why = `handoff must be 'splice' or 'unix:/absolute/path' (or unix:@name), got '${text.slice(0, 128)}'`;
  throw new HandoffError('HANDOFF_BAD_TARGET', why);
}

/** What an fd hand-off delivered. */
export interface FdHandoff {
  peer: string;
  local: string;
}

/**
 * Sends the punched socket to the receiver at `path` with an ImportPeerSocketV1 header, then closes
 * onionpunch's copy (the receiver's copy is the connection from now on). On failure the socket is destroyed
 * and HandoffError is thrown (HANDOFF_NO_FD, HANDOFF_SEND with the NativeError as cause).
 */
export function handOffFd(punched: Socket, path: string, role: HandoffRole = 'responder'): FdHandoff {
  const info = {
    peer: `${punched.remoteAddress}:${punched.remotePort}`,
    local: `${punched.localAddress}:${punched.localPort}`,
  };
  const fd = socketFd(punched);
  if (fd === undefined) {
    punched.destroy();
    throw new HandoffError('HANDOFF_NO_FD', `the punched socket to ${info.peer} is closed`);
  }
  try {
    sendFd(path, fd, encodeImportPeerSocketV1(role));
  } catch (err) {
    punched.destroy();
    const code = (err as { code?: string }).code ?? String(err);
    const msg = `cannot hand the socket to ${info.peer} to unix:${path}: ${code}`;
    throw new HandoffError('HANDOFF_SEND', msg, { cause: err });
  }
  // close(2) of our descriptor only: the connection lives on in the receiver (no shutdown, no FIN).
  punched.destroy();
  return info;
}

/** Connects to `target` within `timeoutMs`; rejects with the socket error (its errno `code` kept). */
export function tcpConnect(target: HostPort, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const ms = opts.timeoutMs ?? 10_000;
    const fail = (err: Error): void => {
      cleanup();
      s.destroy();
      reject(err);
    };
    const onErr = (e: Error): void => fail(e);
    const onAbort = (): void => fail(new OnionpunchError('SOCKS_CLOSED', 'connect aborted'));
    const t = setTimeout(
      () =>
        fail(
          Object.assign(new Error(`connect to ${target.host}:${target.port} timed out after ${ms} ms`), {
            code: 'ETIMEDOUT',
          }),
        ),
      ms,
    );
    const cleanup = (): void => {
      clearTimeout(t);
      s.off('error', onErr);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    if (opts.signal?.aborted) return fail(new OnionpunchError('SOCKS_CLOSED', 'connect aborted'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    s.once('error', onErr);
    s.once('connect', () => {
      cleanup();
      s.setNoDelay(true);
      resolve(s);
    });
  });
}

/** Hands `punched` to bitcoind at `target`: returns the running bridge, or destroys `punched` and rejects. */
export async function spliceToBitcoind(
  punched: Socket,
  target: HostPort,
  opts: BridgeOptions & { connectTimeoutMs?: number } = {},
): Promise<Bridge> {
  punched.on('error', () => undefined);
  // Hold B's first bytes (its version) until bitcoind is connected.
  punched.pause();
  let local: Socket;
  try {
    local = await tcpConnect(target, { timeoutMs: opts.connectTimeoutMs ?? 10_000 });
  } catch (err) {
    punched.destroy();
    throw new OnionpunchError(
      'DAEMON_BITCOIND_UNREACHABLE',
      `cannot reach bitcoind at ${target.host}:${target.port}: ` +
        `${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }
  local.on('error', () => undefined);
  if (punched.destroyed) {
    local.destroy();
    throw new OnionpunchError('DAEMON_PEER_GONE', 'punched socket closed before bitcoind answered');
  }
  return kernelBridge(punched, local, opts) ?? bridge(punched, local, opts);
}

/**
 * The addon's splice(2) bridge between `a` and `b`, as a {@link Bridge} (byte counts arrive when it ends), or
 * undefined when a socket cannot be taken over (no descriptor, queued writes) or the addon refused it: the
 * caller then copies in JS.
 */
export function kernelBridge(a: Socket, b: Socket, opts: BridgeOptions = {}): Bridge | undefined {
  if (!canSplice(a) || !canSplice(b)) return undefined;
  try {
    const k = spliceSockets(a, b, opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {});
    const done = k.done.then((st: SpliceStats): BridgeStats => {
      const reason = st.reason === 'stopped' ? 'closed' : st.reason;
      return { aToB: st.aToB, bToA: st.bToA, reason, ...(st.error ? { error: st.error } : {}) };
    });
    return { done, stats: k.stats, close: () => k.close() };
  } catch {
    return undefined; // e.g. EMFILE on dup: the sockets are untouched, the JS copy takes them
  }
}
