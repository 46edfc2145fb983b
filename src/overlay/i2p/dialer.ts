/**
 * The I2P coordination dialer (B side): one transient SAM STREAM session (a destination used for nothing
 * else and thrown away on close) that opens streams to `.b32.i2p` addresses (NAMING LOOKUP first) or to full
 * destinations.
 */
import type { Duplex } from 'node:stream';
import type { CoordinationDialer, DialOptions } from '../types.js';
import { SamSession, isB32Address, type SamAddress } from './sam.js';
import { SamError, type SamErrorCode } from './errors.js';

const NOT_FOUND = new Set<SamErrorCode>([
  'SAM_INVALID_KEY',
  'SAM_KEY_NOT_FOUND',
  'SAM_LEASESET_NOT_FOUND',
  'SAM_PEER_NOT_FOUND',
]);
const LOOKUP_RETRY_MS = 500;
const CONNECT_RETRY_MS = 1000;

/** Options of {@link I2pCoordinationDialer.create}. */
export interface I2pDialerOptions {
  sam: SamAddress;
  sessionOptions?: Record<string, string | number>;
  /** Bound on session creation, per attempt (default 90 s). */
  timeoutMs?: number;
  /** Session creation attempts after `SAM_TIMEOUT` (default 1; see `SamSessionOptions.attempts`). */
  attempts?: number;
  signal?: AbortSignal;
}

/** Default bound on one dial (lookup + connect). */
export const I2P_DIAL_TIMEOUT_MS = 60_000;

/** Opens coordination streams over I2P. */
export class I2pCoordinationDialer implements CoordinationDialer {
  readonly kind = 'i2p' as const;
  /** Lookups and connects retried so far (a fresh endpoint is not reachable at once). */
  retries = 0;

  private constructor(readonly session: SamSession) {}

  /** Creates the transient session (~20 s on a fresh router). */
  static async create(opts: I2pDialerOptions): Promise<I2pCoordinationDialer> {
    const session = await SamSession.create(opts.sam, {
      options: opts.sessionOptions,
      timeoutMs: opts.timeoutMs,
      attempts: opts.attempts,
      signal: opts.signal,
    });
    return new I2pCoordinationDialer(session);
  }

  /**
   * Opens a stream to `address` (`.b32.i2p` or a full destination in I2P base64). `port` is ignored (SAM 3.1
   * has no ports). `isolationKey` is not supported: every dial uses this dialer's one destination.
   * Note that the stream may be returned before the remote side accepted: wait for its first bytes.
   * Errors: `SamError` (`SAM_CANT_REACH_PEER` / `SAM_INVALID_KEY` when still so at the deadline, `SAM_TIMEOUT`,
   * `SAM_CLOSED`, ...).
   */
  async dial(address: string, _port: number, opts: DialOptions = {}): Promise<Duplex> {
    const timeoutMs = opts.timeoutMs ?? I2P_DIAL_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    let destination = isB32Address(address) ? undefined : address;
    // A fresh endpoint's LeaseSet may not be on the floodfills yet ("not found"), and its first tunnels may not
    // carry a stream yet (CANT_REACH_PEER): both are retried until the dial deadline.
    for (;;) {
      try {
        destination ??= await this.session.lookup(address, { timeoutMs: left(), signal: opts.signal });
        return await this.session.connect(destination, { timeoutMs: left(), signal: opts.signal });
      } catch (err) {
        const code = err instanceof SamError ? err.code : undefined;
        const pause =
          code === 'SAM_CANT_REACH_PEER' ? CONNECT_RETRY_MS : code && NOT_FOUND.has(code) ? LOOKUP_RETRY_MS : -1;
        if (pause < 0 || Date.now() + pause >= deadline || opts.signal?.aborted) throw err;
        this.retries++;
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  /** Ends the session and every stream opened through it. */
  async close(): Promise<void> {
    await this.session.close();
  }
}
