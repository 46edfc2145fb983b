import { OnionpunchError } from '../errors.js';

/** Stable codes of {@link NatError}. */
export type NatErrorCode =
  | 'NAT_OBSERVE_FAILED' // a discovery connection failed (its causes: one per peer tried)
  | 'NAT_BUDGET' // the discovery connection budget is exhausted
  | 'NAT_NO_MAPPING' // no method produced an endpoint (its causes: one per method)
  | 'NAT_TARGET_REFUSED'; // address policy refused a target

/**
 * A NAT-layer failure. A failure that sums up several (discovery tries methods, a method tries peers) keeps
 * each as a typed error in `causes`, so a caller asks {@link NatError.has} instead of reading the message.
 */
export class NatError extends OnionpunchError {
  declare readonly code: NatErrorCode;
  /** The failures this one sums up (each a NatError, or the engine/socket error behind it). */
  readonly causes: readonly unknown[];
  constructor(code: NatErrorCode, message: string, options?: { cause?: unknown; causes?: readonly unknown[] }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.causes = options?.causes ?? [];
  }

  /** True when this error or any NatError among its causes (recursively) has `code`. */
  has(code: NatErrorCode): boolean {
    if (this.code === code) return true;
    const inner = [...this.causes, this.cause];
    return inner.some((c) => c instanceof NatError && c.has(code));
  }
}
