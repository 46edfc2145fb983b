/**
 * Concurrency cap: at most `max` holders at once. `tryAcquire` returns a release function that is
 * idempotent, so a release in both a `finally` and an error path never frees a slot twice.
 */
import { LimitError } from './errors.js';

/** Frees the slot; calling it again does nothing. */
export type Release = () => void;

export class ConcurrencyCap {
  readonly max: number;
  private held = 0;
  /** Called whenever a slot is freed (used by keyed caps to forget idle keys). */
  onIdle?: () => void;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 0) {
      throw new LimitError('LIMIT_BAD_CONFIG', `max must be an integer >= 0, got ${max}`);
    }
    this.max = max;
  }

  /** Slots in use. */
  get active(): number {
    return this.held;
  }

  /** Takes a slot, or returns undefined when all `max` are held. */
  tryAcquire(): Release | undefined {
    if (this.held >= this.max) return undefined;
    this.held++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.held--;
      if (this.held === 0) this.onIdle?.();
    };
  }

  /** Like tryAcquire but throws LimitError('LIMIT_BUSY') when full. */
  acquire(what = 'operation'): Release {
    const r = this.tryAcquire();
    if (!r) throw new LimitError('LIMIT_BUSY', `${what}: at most ${this.max} at once`);
    return r;
  }

  /** Runs `fn` holding a slot and frees it however `fn` ends. Throws LIMIT_BUSY without running it if full. */
  async run<T>(fn: () => Promise<T> | T, what = 'operation'): Promise<T> {
    const release = this.acquire(what);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
