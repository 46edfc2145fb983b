/**
 * Kernel bridging of two connected TCP sockets (native/splice.cc): splice(2) through a pipe per direction on
 * the addon's own thread, so the payload never enters user space nor the JS thread. The two `net.Socket`s are
 * taken over: whatever Node had already read from them is written across first, their descriptors are
 * duplicated into the addon, and the JS sockets are destroyed (close(2) of Node's copies only: no FIN). Half-
 * close is carried across (one side's FIN becomes shutdown(SHUT_WR) of the other once its bytes are out); an
 * error on either socket closes both. JS learns the byte counts and how it ended. Sockets, not Bitcoin.
 */
import type { Socket } from 'node:net';
import { loadNative } from './addon.js';
import { NativeError } from './errors.js';
import { SPLICE_END, SYSCALL, enumName, type SpliceEndName } from './enums.js';
import { socketFd } from './handoff.js';

export { SPLICE_END, type SpliceEndName } from './enums.js';

/** How a kernel bridge ended. */
export interface SpliceStats {
  /** Bytes delivered a → b and b → a (what Node had buffered included). */
  aToB: number;
  bToA: number;
  /**
   * 'done' (both directions closed cleanly), 'idle' (timeout), 'error' (a socket failed: `error`, `errorOn`),
   * 'closed' (close() called), 'stopped' (the process is shutting the addon down).
   */
  reason: SpliceEndName;
  error?: NativeError;
  /** Which socket the error came from. */
  errorOn?: 'a' | 'b';
}

/** A running kernel bridge; `done` resolves (never rejects) once both sockets are closed. */
export interface SpliceBridge {
  readonly done: Promise<SpliceStats>;
  /** Byte counts, filled in when the bridge ends (the bytes never pass through JS while it runs). */
  readonly stats: { aToB: number; bToA: number };
  /** Closes both sockets now (reason 'closed'). */
  close(): void;
}

interface NativeResult {
  id: number;
  aToB: number;
  bToA: number;
  end: number;
  errno: number;
  code: string;
  syscall: number;
  onA: boolean;
}

interface SplicerBinding {
  add(
    fdA: number,
    fdB: number,
    headA: Buffer | undefined,
    headB: Buffer | undefined,
    idleMs: number,
  ): number | { errno: number; code: string; syscall: number };
  close(id: number): void;
  drain(): NativeResult[];
  stop(): void;
}

type SplicerCtor = new (wake: () => void) => SplicerBinding;

interface Pending {
  resolve(s: SpliceStats): void;
  stats: { aToB: number; bToA: number };
}

let splicer: SplicerBinding | undefined;
const waiting = new Map<number, Pending>();

function wake(): void {
  if (!splicer) return;
  for (const r of splicer.drain()) {
    const p = waiting.get(r.id);
    if (!p) continue;
    waiting.delete(r.id);
    p.stats.aToB = r.aToB;
    p.stats.bToA = r.bToA;
    const reason = SPLICE_END[r.end] ?? 'error';
    const out: SpliceStats = { aToB: r.aToB, bToA: r.bToA, reason };
    if (r.errno !== 0) {
      out.error = new NativeError(r.code || `E${r.errno}`, r.errno, enumName(SYSCALL, r.syscall, '') || 'splice');
      out.errorOn = r.onA ? 'a' : 'b';
    }
    p.resolve(out);
  }
}

function theSplicer(): SplicerBinding {
  if (!splicer) {
    const Ctor = (loadNative() as unknown as { Splicer: SplicerCtor }).Splicer;
    try {
      splicer = new Ctor(wake);
    } catch (err) {
      const e = err as { errno?: number; code?: string; syscall?: number };
      throw new NativeError(e.code ?? 'EIO', e.errno ?? 0, enumName(SYSCALL, e.syscall ?? 0, '') || 'epoll_create1');
    }
  }
  return splicer;
}

/** True when `s` can be taken over: open, with a descriptor, nothing queued for writing. */
export function canSplice(s: Socket): boolean {
  return socketFd(s) !== undefined && s.writableLength === 0 && !s.writableEnded;
}

/** What Node has read from `s` but nobody consumed yet (the stream must be paused). */
function buffered(s: Socket): Buffer | undefined {
  const parts: Buffer[] = [];
  for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) parts.push(c);
  return parts.length ? Buffer.concat(parts) : undefined;
}

/**
 * Starts a kernel bridge between `a` and `b` (both connected, {@link canSplice}) and destroys the two JS
 * sockets. Throws `NativeError` (EBADF when a socket has no descriptor, EMFILE from dup, ...) with both
 * sockets left as they were, so the caller can fall back to a copy in JS.
 */
export function spliceSockets(a: Socket, b: Socket, opts: { idleTimeoutMs?: number } = {}): SpliceBridge {
  const s = theSplicer();
  const fa = socketFd(a);
  const fb = socketFd(b);
  if (fa === undefined || fb === undefined) throw new NativeError('EBADF', 9, 'dup', 'a socket to splice is closed');
  a.pause();
  b.pause();
  // Everything Node read is taken out now, synchronously: libuv reads nothing more before destroy() below,
  // so the rest is still in the kernel, where the addon's duplicate of the descriptor finds it.
  const headA = buffered(a);
  const headB = buffered(b);
  const r = s.add(fa, fb, headA, headB, opts.idleTimeoutMs ?? 30 * 60_000);
  if (typeof r !== 'number') {
    if (headA) a.unshift(headA);
    if (headB) b.unshift(headB);
    throw new NativeError(r.code, r.errno, enumName(SYSCALL, r.syscall, '') || 'dup');
  }
  const stats = { aToB: 0, bToA: 0 };
  const done = new Promise<SpliceStats>((resolve) => waiting.set(r, { resolve, stats }));
  a.destroy();
  b.destroy();
  return { done, stats, close: () => s.close(r) };
}
