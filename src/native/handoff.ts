/**
 * File-descriptor hand-off for the daemon's `--handoff unix:PATH` mode: Node's net module cannot send a
 * descriptor (SCM_RIGHTS), the addon can (native/handoff.cc). Sockets, not Bitcoin: the metadata bytes are
 * the caller's.
 */
import type { Socket } from 'node:net';
import { loadNative } from './addon.js';
import { NativeError } from './errors.js';
import { SYSCALL, enumName } from './enums.js';

interface HandoffBinding {
  sendFd(path: string, fd: number, meta: Buffer): { errno?: number; code?: string; syscall?: number };
}

/**
 * Sends `meta` with a duplicate of `fd` to the Unix stream socket at `path` ('@name' = abstract), then closes
 * that connection. Never blocks (a full receiver backlog is EAGAIN). The caller still owns `fd`. Throws
 * `NativeError` (ENOENT / ECONNREFUSED when nobody listens, EAGAIN, EMSGSIZE, ...) naming the failing call.
 */
export function sendFd(path: string, fd: number, meta: Buffer): void {
  const r = (loadNative() as unknown as HandoffBinding).sendFd(path, fd, meta);
  if (r.errno !== undefined) {
    throw new NativeError(r.code ?? `E${r.errno}`, r.errno, enumName(SYSCALL, r.syscall ?? 0, '') || 'sendmsg');
  }
}

/**
 * The kernel descriptor behind a connected `net.Socket`, or undefined once it is closed. Node exposes it on
 * the socket's TCP handle (`_handle.fd`, Unix only); the engine's punched sockets always have one.
 */
export function socketFd(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 && !socket.destroyed ? fd : undefined;
}
