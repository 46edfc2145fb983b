import { OnionpunchError } from '../errors.js';

export type RelayErrorCode = 'RELAY_NOT_ANNOUNCEMENT' | 'RELAY_BAD_CONFIG';

/** A malformed announcement or a bad relay configuration. */
export class RelayError extends OnionpunchError {
  declare readonly code: RelayErrorCode;
  constructor(code: RelayErrorCode, message: string) {
    super(code, message);
  }
}
