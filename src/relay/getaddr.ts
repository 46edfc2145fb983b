/**
 * The relay's meter of getaddr answers: at most one answer per `spacingS` to one asker, keyed by the asker's
 * address (IPv4 address, IPv6 /64) rather than by connection, so that reconnecting does not earn another answer
 * (docs/PROTOCOL.md, "Relay"). A getaddr answer is up to 1000 entries; without the meter one peer asking in a loop
 * would make the relay send ~77 kB per request.
 */
import { KeyedBuckets, monotonicMs, type Clock } from '../limits/index.js';
import { parseIPv6, unmapIPv4 } from '../ip.js';
import { GETADDR_MIN_SPACING_S } from './defaults.js';

export interface GetaddrMeterOptions {
  /** Least seconds between two answers to one asker (default {@link GETADDR_MIN_SPACING_S}). */
  spacingS?: number;
  /** Most askers remembered (the least recently seen full ones are forgotten first). */
  maxKeys?: number;
  clock?: Clock;
}

/** The key of an asker: its IPv4 address, or the /64 of its IPv6 address; anything else as given. */
export function getaddrAskerKey(address: string): string {
  const a = unmapIPv4(address);
  if (!a.includes(':')) return a;
  const b = parseIPv6(a);
  return b ? `${b.subarray(0, 8).toString('hex')}/64` : a;
}

export class GetaddrMeter {
  private readonly buckets: KeyedBuckets<string>;

  constructor(opts: GetaddrMeterOptions = {}) {
    const spacingS = opts.spacingS ?? GETADDR_MIN_SPACING_S;
    this.buckets = new KeyedBuckets<string>({
      ratePerSec: 1 / spacingS,
      capacity: 1,
      maxKeys: opts.maxKeys ?? 10_000,
      clock: opts.clock ?? monotonicMs,
    });
  }

  /** Whether the asker at `address` may have an answer now; takes its turn if so. */
  allow(address: string): boolean {
    return this.buckets.tryTake(getaddrAskerKey(address));
  }
}
