/**
 * Limiters per key (peer address, netgroup, coordination endpoint) with a bounded number of keys.
 * Keys are kept in least-recently-used order; when the table is full the oldest key that carries no
 * state worth keeping (full bucket / no holders) is evicted first, then the oldest bucket. Keys with
 * active holders are never evicted (that would leak slots); if every key is busy, new keys are refused.
 */
import { type Clock, monotonicMs } from './clock.js';
import { ConcurrencyCap, type Release } from './concurrency-cap.js';
import { TokenBucket } from './token-bucket.js';
import { LimitError } from './errors.js';

export interface KeyedBucketsOptions {
  ratePerSec: number;
  capacity: number;
  /** Tokens of a key's bucket when it is first used (default `capacity`; see TokenBucketOptions.initial). */
  initial?: number;
  /** Most keys remembered (memory bound). */
  maxKeys: number;
  clock?: Clock;
}

/** One token bucket per key, at most `maxKeys` keys (LRU). */
export class KeyedBuckets<K = string> {
  private readonly map = new Map<K, TokenBucket>();
  private readonly opts: KeyedBucketsOptions;
  private readonly clock: Clock;
  /** Evictions so far (observability, tests). */
  evictions = 0;

  constructor(opts: KeyedBucketsOptions) {
    if (!Number.isInteger(opts.maxKeys) || opts.maxKeys < 1) {
      throw new LimitError('LIMIT_BAD_CONFIG', `maxKeys must be an integer >= 1, got ${opts.maxKeys}`);
    }
    // Validate rate/capacity once, now, rather than at the first key.
    new TokenBucket({ ratePerSec: opts.ratePerSec, capacity: opts.capacity });
    this.opts = opts;
    this.clock = opts.clock ?? monotonicMs;
  }

  get size(): number {
    return this.map.size;
  }

  private bucket(key: K): TokenBucket {
    let b = this.map.get(key);
    if (b) {
      this.map.delete(key); // move to the most-recent end
      this.map.set(key, b);
      return b;
    }
    if (this.map.size >= this.opts.maxKeys) this.evictOne();
    b = new TokenBucket({
      ratePerSec: this.opts.ratePerSec,
      capacity: this.opts.capacity,
      initial: this.opts.initial,
      clock: this.clock,
    });
    this.map.set(key, b);
    return b;
  }

  private evictOne(): void {
    // Prefer a full bucket among the oldest few (forgetting it changes nothing, or, with `initial` below the
    // capacity, makes the key start again with less); else the oldest.
    let scanned = 0;
    for (const [k, b] of this.map) {
      if (b.isFull()) {
        this.map.delete(k);
        this.evictions++;
        return;
      }
      if (++scanned >= 16) break;
    }
    const oldest = this.map.keys().next();
    if (!oldest.done) {
      this.map.delete(oldest.value);
      this.evictions++;
    }
  }

  tryTake(key: K, n = 1): boolean {
    return this.bucket(key).tryTake(n);
  }

  /** {@link TokenBucket.credit} on `key`'s bucket. */
  credit(key: K, n: number, max: number): void {
    this.bucket(key).credit(n, max);
  }

  /**
   * Whether `tryTake(key, n)` would succeed now, without taking anything or adding the key (an unknown key
   * starts full). Lets a caller refuse early and take only when the work really happens.
   */
  wouldAllow(key: K, n = 1): boolean {
    const b = this.map.get(key);
    return b ? b.available() + 1e-9 >= n : n <= this.opts.capacity;
  }
}

export interface KeyedCapsOptions {
  /** Holders per key. */
  perKey: number;
  /** Most keys tracked at once; keys with holders count, idle keys are dropped at once. */
  maxKeys: number;
}

/** One concurrency cap per key. Idle keys are forgotten immediately, so memory is bounded by holders. */
export class KeyedCaps<K = string> {
  private readonly map = new Map<K, ConcurrencyCap>();
  private readonly opts: KeyedCapsOptions;

  constructor(opts: KeyedCapsOptions) {
    if (!Number.isInteger(opts.maxKeys) || opts.maxKeys < 1) {
      throw new LimitError('LIMIT_BAD_CONFIG', `maxKeys must be an integer >= 1, got ${opts.maxKeys}`);
    }
    new ConcurrencyCap(opts.perKey);
    this.opts = opts;
  }

  get size(): number {
    return this.map.size;
  }

  active(key: K): number {
    return this.map.get(key)?.active ?? 0;
  }

  /** Takes a slot for `key`; undefined when the key is at its cap or the key table is full of busy keys. */
  tryAcquire(key: K): Release | undefined {
    let cap = this.map.get(key);
    if (!cap) {
      if (this.map.size >= this.opts.maxKeys) return undefined;
      cap = new ConcurrencyCap(this.opts.perKey);
      const c = cap;
      cap.onIdle = () => {
        if (this.map.get(key) === c) this.map.delete(key);
      };
      this.map.set(key, cap);
    }
    const r = cap.tryAcquire();
    if (!r && cap.active === 0) this.map.delete(key); // perKey 0: never keep an empty entry
    return r;
  }
}
