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
    const s = await dialOnion(address, port, {
      socksHost: this.opts.socksHost ?? '127.0.0.1',
      socksPort: this.opts.socksPort,
      isolationKey: opts.isolationKey ?? randomUUID(),
      timeoutMs: opts.timeoutMs ?? this.opts.timeoutMs ?? 120_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
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
