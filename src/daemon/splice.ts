/**
 * Splice-mode hand-off: bytes copied both ways between two sockets (the punched socket and a fresh TCP
 * connection to bitcoind's P2P port), with backpressure (stream.pipeline), half-close carried across (one
 * side's FIN ends the other side's writing; the bridge finishes when both directions have), an idle timeout,
 * and both sockets destroyed on any error.
 */
import { pipeline } from 'node:stream';
import type { Socket } from 'node:net';

export interface BridgeStats {
  /** Bytes a → b and b → a. */
  aToB: number;
  bToA: number;
  /** Why it ended: 'done' (both directions closed cleanly), 'idle', 'error', 'closed' (close() called). */
  reason: 'done' | 'idle' | 'error' | 'closed';
  error?: Error;
}

export interface BridgeOptions {
  /** Close both sockets after this long without a byte either way (default 30 min). */
  idleTimeoutMs?: number;
}

/** A running bridge; `done` resolves (never rejects) when both sockets are finished. */
export interface Bridge {
  readonly done: Promise<BridgeStats>;
  readonly stats: { aToB: number; bToA: number };
  /** Destroys both sockets now. */
  close(): void;
}

/** Starts copying between `a` and `b`. Both sockets must be connected. */
export function bridge(a: Socket, b: Socket, opts: BridgeOptions = {}): Bridge {
  const stats = { aToB: 0, bToA: 0 };
  let reason: BridgeStats['reason'] | undefined;
  let error: Error | undefined;
  let pending = 2;
  let resolve!: (s: BridgeStats) => void;
  const done = new Promise<BridgeStats>((r) => (resolve = r));
  const idleMs = opts.idleTimeoutMs ?? 30 * 60_000;
  let idle: NodeJS.Timeout | undefined;
  const touch = (): void => {
    idle?.refresh();
  };
  const destroyBoth = (why: BridgeStats['reason'], err?: Error): void => {
    if (reason === undefined) {
      reason = why;
      error = err;
    }
    a.destroy();
    b.destroy();
  };
  idle = setTimeout(() => destroyBoth('idle'), idleMs);
  idle.unref?.();
  a.on('data', (d: Buffer) => {
    stats.aToB += d.length;
    touch();
  });
  b.on('data', (d: Buffer) => {
    stats.bToA += d.length;
    touch();
  });
  // allowHalfOpen must be on for a FIN to be forwarded while the other direction keeps flowing.
  (a as Socket & { allowHalfOpen: boolean }).allowHalfOpen = true;
  (b as Socket & { allowHalfOpen: boolean }).allowHalfOpen = true;
  const finish = (err: Error | null | undefined): void => {
    if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') destroyBoth('error', err);
    else if (err) destroyBoth(reason ?? 'error', err);
    if (--pending === 0) {
      clearTimeout(idle);
      a.destroy();
      b.destroy();
      resolve({ ...stats, reason: reason ?? 'done', ...(error ? { error } : {}) });
    }
  };
  // pipeline(a, b) ends b's writable side when a ends (half-close) and destroys both on error.
  pipeline(a, b, finish);
  pipeline(b, a, finish);
  return {
    done,
    stats,
    close: () => destroyBoth('closed'),
  };
}
