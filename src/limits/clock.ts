/**
 * Millisecond clocks for the limiters. The default is monotonic (performance.now()): wall-clock jumps
 * (NTP, suspend) must never refill a bucket or expire a cap early. Tests inject a manual clock.
 */
import { performance } from 'node:perf_hooks';

/** Returns milliseconds from an arbitrary origin; must never go backwards. */
export type Clock = () => number;

/** The process-wide monotonic clock. */
export const monotonicMs: Clock = () => performance.now();

/** A clock that moves only when told to; for tests. */
export class ManualClock {
  private t: number;
  constructor(start = 0) {
    this.t = start;
  }
  /** The clock function to pass to limiters. */
  readonly now: Clock = () => this.t;
  /** Moves time forward by `ms` (negative values are refused: clocks are monotonic). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('ManualClock.advance: ms must be >= 0');
    this.t += ms;
  }
}
