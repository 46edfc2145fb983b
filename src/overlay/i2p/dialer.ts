/**
 * The I2P coordination dialer (B side): one transient SAM STREAM session (a destination used for nothing
 * else and thrown away on close) that opens streams to `.b32.i2p` addresses (NAMING LOOKUP first) or to full
 * destinations.
 */
import type { Duplex } from 'node:stream';
import type { CoordinationDialer, DialOptions } from '../types.js';
import { SamSession, isB32Address, type SamAddress } from './sam.js';
import { SamError, type SamErrorCode } from './errors.js';

const NOT_FOUND = new Set<SamErrorCode>(['SAM_INVALID_KEY', 'SAM_KEY_NOT_FOUND', 'SAM_LEASESET_NOT_FOUND', 'SAM_PEER_NOT_FOUND']);
const LOOKUP_RETRY_MS = 500;

/** Options of {@link I2pCoordinationDialer.create}. */
export interface I2pDialerOptions {
  sam: SamAddress;
  sessionOptions?: Record<string, string | number>;
  /** Bound on session creation (default 90 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Default bound on one dial (lookup + connect). */
export const I2P_DIAL_TIMEOUT_MS = 60_000;

/** Opens coordination streams over I2P. */
export class I2pCoordinationDialer implements CoordinationDialer {
  readonly kind = 'i2p' as const;

  private constructor(readonly session: SamSession) {}

  /** Creates the transient session (~20 s on a fresh router). */
  static async create(opts: I2pDialerOptions): Promise<I2pCoordinationDialer> {
    const session = await SamSession.create(opts.sam, { options: opts.sessionOptions, timeoutMs: opts.timeoutMs, signal: opts.signal });
    return new I2pCoordinationDialer(session);
  }

  /**
   * Opens a stream to `address` (`.b32.i2p` or a full destination in I2P base64). `port` is ignored (SAM 3.1
   * has no ports). `isolationKey` is not supported: every dial uses this dialer's one destination.
   * Note that the stream may be returned before the remote side accepted: wait for its first bytes.
   * Errors: `SamError` (`SAM_CANT_REACH_PEER`, `SAM_INVALID_KEY`, `SAM_TIMEOUT`, `SAM_CLOSED`, ...).
   */
  async dial(address: string, _port: number, opts: DialOptions = {}): Promise<Duplex> {
    const timeoutMs = opts.timeoutMs ?? I2P_DIAL_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    let destination = address;
    if (isB32Address(address)) {
      // A fresh endpoint's LeaseSet may not be on the floodfills yet: retry "not found" until the deadline.
      for (;;) {
        try {
          destination = await this.session.lookup(address, { timeoutMs: Math.max(1, deadline - Date.now()), signal: opts.signal });
          break;
        } catch (err) {
          const notFound = err instanceof SamError && NOT_FOUND.has(err.code);
          if (!notFound || Date.now() + LOOKUP_RETRY_MS >= deadline) throw err;
          await new Promise((r) => setTimeout(r, LOOKUP_RETRY_MS));
        }
      }
    }
    return this.session.connect(destination, { timeoutMs: Math.max(1, deadline - Date.now()), signal: opts.signal });
  }

  /** Ends the session and every stream opened through it. */
  async close(): Promise<void> {
    await this.session.close();
  }
}
