import { OnionpunchError } from '../errors.js';

/** Stable codes: LIMIT_RATE (bucket empty), LIMIT_BUSY (cap reached), LIMIT_BAD_CONFIG. */
export type LimitErrorCode = 'LIMIT_RATE' | 'LIMIT_BUSY' | 'LIMIT_BAD_CONFIG';

/** A limit refused an operation, or a limiter was configured with nonsense. */
export class LimitError extends OnionpunchError {
  declare readonly code: LimitErrorCode;
  constructor(code: LimitErrorCode, message: string) {
    super(code, message);
  }
}
