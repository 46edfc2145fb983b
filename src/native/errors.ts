/**
 * Typed errors of the native layer. A failed syscall becomes a `NativeError` whose `code` is the errno name
 * (`ECONNREFUSED`, `EADDRINUSE`, ...) and whose `syscall` is the call, like Node's own system errors; a plan
 * that does not produce a connection rejects with an `EngineError` (`ENGINE_*`) carrying the plan's timeline
 * and, when a syscall failed, that `NativeError` as its `cause`.
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

/**
 * Codes an engine plan can fail with (one per C++ `Status`, plus the facade's own): distinct from the punch
 * session's `PUNCH_*` codes, which say which step of a session failed.
 */
export type EngineErrorCode =
  | 'ENGINE_TIMEOUT' // the plan's deadline passed without a connection
  | 'ENGINE_ABORTED' // the caller's AbortSignal fired
  | 'ENGINE_REFUSED' // every candidate answered RST and retries were off
  | 'ENGINE_UNREACHABLE' // every candidate failed otherwise (ICMP, reset) and retries were off
  | 'ENGINE_BIND' // the local endpoint could not be bound (EADDRINUSE, EADDRNOTAVAIL, EACCES)
  | 'ENGINE_SOCKET' // socket()/setsockopt()/epoll_ctl() failed (EMFILE, ...), or the fd could not be wrapped
  | 'ENGINE_STOPPED' // the engine stopped before the plan ended
  | 'ENGINE_LOOP_FAILED' // epoll_wait failed: the engine thread ended every plan in flight and exited
  | 'ENGINE_INVALID' // the plan was malformed (rejected before it reached the engine thread)
  | 'ENGINE_START' // the engine thread could not be started (epoll/timerfd/eventfd creation failed)
  | 'ENGINE_FD_LIMIT'; // a spray needs more descriptors than RLIMIT_NOFILE allows (nothing was sent)

/**
 * An engine plan that ended without a connection. `timeline` has every SYN, RST, ICMP error and the final
 * timeout/abort; `cause` is the `NativeError` behind it when there was one (e.g. EADDRINUSE for ENGINE_BIND).
 */
export class EngineError extends OnionpunchError {
  declare readonly code: EngineErrorCode;
  readonly timeline: TimelineEvent[];
  readonly attempts: number;
  /** errno name of the last failure, if any (the cause's code). */
  readonly errno: string | undefined;
  constructor(
    code: EngineErrorCode,
    message: string,
    timeline: TimelineEvent[] = [],
    opts: { cause?: NativeError; attempts?: number } = {},
  ) {
    super(code, message, opts.cause ? { cause: opts.cause } : undefined);
    this.timeline = timeline;
    this.attempts = opts.attempts ?? 0;
    this.errno = opts.cause?.code;
  }

  /** The `NativeError` behind this failure, if a syscall failed. */
  get nativeCause(): NativeError | undefined {
    return this.cause instanceof NativeError ? this.cause : undefined;
  }
}

/** @deprecated The former name of {@link EngineError} (its codes were `PUNCH_*`; they are `ENGINE_*` now). */
export const PunchError = EngineError;
/** @deprecated See {@link EngineError}. */
export type PunchError = EngineError;
