/**
 * Typed errors of the I2P transport. Every SAM `RESULT=` value maps to its own code; local failures (timeouts,
 * a closed socket, a malformed reply) have theirs, so callers can tell "peer unreachable" from "router gone".
 */
import { OnionpunchError } from '../../errors.js';

/** Stable codes of {@link SamError}. */
export type SamErrorCode =
  | 'SAM_CANT_REACH_PEER'
  | 'SAM_DUPLICATED_ID'
  | 'SAM_DUPLICATED_DEST'
  | 'SAM_INVALID_KEY'
  | 'SAM_INVALID_ID'
  | 'SAM_TIMEOUT'
  | 'SAM_I2P_ERROR'
  | 'SAM_KEY_NOT_FOUND'
  | 'SAM_PEER_NOT_FOUND'
  | 'SAM_ALREADY_ACCEPTING'
  | 'SAM_LEASESET_NOT_FOUND'
  | 'SAM_NOVERSION'
  | 'SAM_UNKNOWN_RESULT'
  | 'SAM_PROTOCOL'
  | 'SAM_REPLY_TOO_LONG'
  | 'SAM_CLOSED'
  | 'SAM_UNREACHABLE'
  | 'SAM_ABORTED'
  | 'SAM_BAD_DESTINATION';

/** An error of the SAM client or of the I2P router behind it. */
export class SamError extends OnionpunchError {
  declare readonly code: SamErrorCode;
  /** The SAM `RESULT=` value when the router sent one. */
  readonly result: string | undefined;
  constructor(code: SamErrorCode, message: string, options?: { cause?: unknown; result?: string }) {
    super(code, message, options);
    this.result = options?.result;
  }
}

const RESULT_CODES: Record<string, SamErrorCode> = {
  CANT_REACH_PEER: 'SAM_CANT_REACH_PEER',
  DUPLICATED_ID: 'SAM_DUPLICATED_ID',
  DUPLICATED_DEST: 'SAM_DUPLICATED_DEST',
  INVALID_KEY: 'SAM_INVALID_KEY',
  INVALID_ID: 'SAM_INVALID_ID',
  TIMEOUT: 'SAM_TIMEOUT',
  I2P_ERROR: 'SAM_I2P_ERROR',
  KEY_NOT_FOUND: 'SAM_KEY_NOT_FOUND',
  PEER_NOT_FOUND: 'SAM_PEER_NOT_FOUND',
  ALREADY_ACCEPTING: 'SAM_ALREADY_ACCEPTING',
  LEASESET_NOT_FOUND: 'SAM_LEASESET_NOT_FOUND',
  NOVERSION: 'SAM_NOVERSION',
};

/** The error for a non-OK `RESULT=` value (unknown values get `SAM_UNKNOWN_RESULT`). */
export function samResultError(result: string, what: string, message?: string): SamError {
  const code = Object.prototype.hasOwnProperty.call(RESULT_CODES, result)
    ? RESULT_CODES[result]!
    : 'SAM_UNKNOWN_RESULT';
  const detail = message ? `: ${message}` : '';
  return new SamError(code, `${what} failed: RESULT=${result.slice(0, 64)}${detail.slice(0, 256)}`, { result });
}
