/**
 * TorCoordinationDialer: opens coordination streams to onion endpoints through tor's SOCKS port, with one
 * circuit family per isolation key.
 */
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { CoordinationDialer, DialOptions, OverlayKind } from '../types.js';
import { dialOnion } from './socks.js';
import { TorSocksError } from './errors.js';

export interface TorDialerOptions {
  socksHost?: string;
  socksPort: number;
  /** Default dial timeout, ms (default 120000: a first onion connect on a cold client takes tens of seconds). */
  timeoutMs?: number;
}

export class TorCoordinationDialer implements CoordinationDialer {
  readonly kind: OverlayKind = 'tor';
  private closed = false;
  private readonly open = new Set<Duplex>();

  constructor(private readonly opts: TorDialerOptions) {}

  /**
   * Dials `address` (`<56 base32>.onion`) on `port`. Without `isolationKey` every dial gets a fresh random key,
   * so two coordination sessions never share a circuit. Errors: TorSocksError.
   */
  async dial(address: string, port: number, opts: DialOptions = {}): Promise<Duplex> {
    if (this.closed) throw new TorSocksError('TOR_SOCKS_ABORTED', 'dialer is closed');
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    const isolationKey = opts.isolationKey ?? randomUUID();
    const once = (ms: number) =>
      dialOnion(address, port, {
        socksHost: this.opts.socksHost ?? '127.0.0.1',
        socksPort: this.opts.socksPort,
        isolationKey,
        timeoutMs: ms,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    let s: Duplex;
    try {
      s = await once(timeoutMs);
    } catch (err) {
      // tor parks a stream whose intro points all refused while it refetches the descriptor, and ends it with a
      // plain TTL-expired (0x06) at SocksTimeout. By then it knows the intro points failed: one more attempt
      // gets the precise extended error (0xF2 ...) within seconds, or connects if the service is back.
      const left = deadline - Date.now();
      if (!(err instanceof TorSocksError && err.code === 'TOR_SOCKS_TTL_EXPIRED') || left < 1000) throw err;
      s = await once(left);
    }
    this.open.add(s);
    s.once('close', () => this.open.delete(s));
    return s;
  }

  /** Closes every stream this dialer opened. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.open) s.destroy();
    this.open.clear();
  }
}
