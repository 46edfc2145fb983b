/**
 * Typed errors of the native layer. A failed syscall becomes a `NativeError` whose `code` is the errno name
 * (`ECONNREFUSED`, `EADDRINUSE`, ...), like Node's own system errors; a punch that does not produce a
 * connection rejects with a `PunchError` carrying the plan's timeline.
 */
import { OnionpunchError } from '../errors.js';
import type { TimelineEvent } from './timeline.js';

/** A failed system call: `code` is the errno name, `errno` its number, `syscall` the call that failed. */
export class NativeError extends OnionpunchError {
  readonly errno: number;
  readonly syscall: string;
  constructor(code: string, errno: number, syscall: string, message?: string) {
    super(code, message ?? `${syscall} failed: ${code}`);
    this.errno = errno;
    this.syscall = syscall;
  }
}

/** Codes a punch can fail with. */
export type PunchErrorCode =
  | 'PUNCH_TIMEOUT'
  | 'PUNCH_ABORTED'
  | 'PUNCH_REFUSED'
  | 'PUNCH_UNREACHABLE'
  | 'PUNCH_BIND'
  | 'PUNCH_SOCKET'
  | 'PUNCH_STOPPED'
  | 'PUNCH_INVALID';

/**
 * A punch plan that ended without a connection. `timeline` has every SYN, RST, ICMP error and the final
 * timeout/abort; `cause` is the `NativeError` behind it when there was one (e.g. EADDRINUSE for PUNCH_BIND).
 */
export class PunchError extends OnionpunchError {
  readonly timeline: TimelineEvent[];
  readonly attempts: number;
  /** errno name of the last failure, if any. */
  readonly errno: string | undefined;
  constructor(
    code: PunchErrorCode,
    message: string,
    timeline: TimelineEvent[] = [],
    opts: { cause?: NativeError; attempts?: number } = {},
  ) {
    super(code, message, opts.cause ? { cause: opts.cause } : undefined);
    this.timeline = timeline;
    this.attempts = opts.attempts ?? 0;
    this.errno = opts.cause?.code;
  }
}
