/**
 * Typed errors of the wire layer. Every decoder and the stream parser report bad input with a
 * {@link WireError} whose `code` is stable and whose message names the offending field.
 */
import { OnionpunchError } from '../errors.js';

/** Stable error codes of the wire layer. */
export type WireErrorCode =
  | 'WIRE_BAD_MAGIC'
  | 'WIRE_BAD_CHECKSUM'
  | 'WIRE_OVERSIZE'
  | 'WIRE_TRUNCATED'
  | 'WIRE_BAD_FIELD'
  | 'WIRE_BAD_COMMAND'
  | 'WIRE_BAD_ADDRESS';

/** A malformed, oversize or truncated message (or a bad address string given to a parse helper). */
export class WireError extends OnionpunchError {
  declare readonly code: WireErrorCode;
  constructor(code: WireErrorCode, message: string) {
    super(code, message);
  }
}
