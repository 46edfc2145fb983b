/** Errors of the high-level API (src/facade/onionpunch.ts). */
import { OnionpunchError } from '../errors.js';

/**
 * - `API_BAD_OPTION`: an option of `Onionpunch.open()` is malformed (e.g. a `host:port` that does not parse);
 * - `API_NO_ENDPOINT`: `listen()` on an instance whose overlay cannot listen (no Tor control port, SAM bridge
 *   or caller-supplied endpoint);
 * - `API_NO_DIALER`: `punch()` on an instance whose overlay cannot dial (no Tor SOCKS port, SAM bridge or
 *   caller-supplied dialer);
 * - `API_ALREADY_LISTENING`: a second `listen()` on a caller-supplied endpoint that is already served (each
 *   stream would be answered twice); Tor and I2P make a new endpoint per `listen()` instead;
 * - `API_CLOSED`: the instance was closed.
 */
export type ApiErrorCode =
  'API_BAD_OPTION' | 'API_NO_ENDPOINT' | 'API_NO_DIALER' | 'API_ALREADY_LISTENING' | 'API_CLOSED';

/** A misuse of the {@link Onionpunch} facade; `code` says which. */
export class ApiError extends OnionpunchError {
  declare readonly code: ApiErrorCode;
  /** API_BAD_OPTION: the option at fault, as written in OnionpunchOptions (`natcheck`, `hardNat.maxSynsA`). */
  readonly option: string | undefined;
  constructor(code: ApiErrorCode, message: string, options?: { cause?: unknown; option?: string }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.option = options?.option;
  }
}
