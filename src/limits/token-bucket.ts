/**
 * Token bucket: holds at most `capacity` tokens, refilled continuously at `ratePerSec`. Lazy refill on each
 * call (no timers), so an idle bucket costs nothing and a million of them cost only memory.
 */
import { type Clock, monotonicMs } from './clock.js';
import { LimitError } from './errors.js';

export interface TokenBucketOptions {
  /** Tokens added per second (may be fractional, e.g. 0.1). */
  ratePerSec: number;
  /** Maximum tokens held; also the burst size. */
  capacity: number;
  /** Tokens at creation; defaults to `capacity` (a new peer may burst). */
  initial?: number;
  clock?: Clock;
}

export class TokenBucket {
  readonly ratePerSec: number;
  readonly capacity: number;
  private readonly clock: Clock;
  private tokens: number;
  private last: number;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.ratePerSec >= 0) || !Number.isFinite(opts.ratePerSec)) {
      throw new LimitError('LIMIT_BAD_CONFIG', `ratePerSec must be a finite number >= 0, got ${opts.ratePerSec}`);
    }
    if (!(opts.capacity > 0) || !Number.isFinite(opts.capacity)) {
      throw new LimitError('LIMIT_BAD_CONFIG', `capacity must be a finite number > 0, got ${opts.capacity}`);
    }
    this.ratePerSec = opts.ratePerSec;
    this.capacity = opts.capacity;
    this.clock = opts.clock ?? monotonicMs;
    this.tokens = Math.min(opts.initial ?? opts.capacity, opts.capacity);
    this.last = this.clock();
  }

  private refill(): void {
    const now = this.clock();
    const dt = now - this.last;
    // A clock that went backwards (should not happen) just refills nothing.
    if (dt > 0) {
      // A credit above the capacity (see credit) is kept until taken; refill itself never passes the capacity.
      if (this.tokens < this.capacity) {
        this.tokens = Math.min(this.capacity, this.tokens + (dt / 1000) * this.ratePerSec);
      }
      this.last = now;
    }
  }

  /** Tokens available now (fractional). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Takes `n` tokens if all are available; returns whether it did. Never goes negative. */
  tryTake(n = 1): boolean {
    this.refill();
    if (this.tokens + 1e-9 >= n) {
      this.tokens = Math.max(0, this.tokens - n);
      return true;
    }
    return false;
  }

  /**
   * Adds `n` tokens, allowed above the capacity up to `max` (Bitcoin Core's credit of MAX_ADDR_TO_SEND when it
   * sends `getaddr`: the solicited answer must not be cut by the unsolicited rate). Refill stays capped as before.
   */
  credit(n: number, max: number): void {
    this.refill();
    if (this.tokens < max) this.tokens = Math.min(max, this.tokens + n);
  }

  /** Like tryTake but throws LimitError('LIMIT_RATE') when empty. */
  take(n = 1, what = 'operation'): void {
    if (!this.tryTake(n)) throw new LimitError('LIMIT_RATE', `${what}: rate limit reached`);
  }

  /** Milliseconds until `n` tokens will be available (0 if now; Infinity if never). */
  msUntil(n = 1): number {
    this.refill();
    if (this.tokens >= n) return 0;
    if (n > this.capacity || this.ratePerSec === 0) return Infinity;
    return ((n - this.tokens) / this.ratePerSec) * 1000;
  }

  /** True when the bucket is full, i.e. forgetting it loses nothing (used by keyed eviction). */
  isFull(): boolean {
    return this.available() >= this.capacity;
  }
}
