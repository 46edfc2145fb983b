/**
 * Keeps the whole timelines of the sessions worth looking at after a long run: the `slowest` slowest and the
 * first `failed` failures. Bounded whatever the run's length (a stress run of 10,000 sessions must not grow the
 * worker it measures), and cheap per session: a timeline is serialized only when it enters the set.
 */
export interface TailSample<T> {
  /** The session's measure (ms; larger is slower), or undefined for a failure. */
  ms: number | undefined;
  data: T;
}

export class TailSampler<T> {
  private readonly slow: Array<TailSample<T> & { ms: number }> = [];
  private readonly fails: TailSample<T>[] = [];

  constructor(
    private readonly slowest: number,
    private readonly failed: number,
  ) {}

  /** Offers a finished session that took `ms`; `make` runs only when it is among the slowest so far. */
  offer(ms: number, make: () => T): void {
    if (this.slowest <= 0 || !Number.isFinite(ms)) return;
    if (this.slow.length >= this.slowest && ms <= this.slow[this.slow.length - 1]!.ms) return;
    const entry = { ms, data: make() };
    const at = this.slow.findIndex((s) => s.ms < ms);
    if (at < 0) this.slow.push(entry);
    else this.slow.splice(at, 0, entry);
    if (this.slow.length > this.slowest) this.slow.pop();
  }

  /** Offers a failed session; kept while fewer than `failed` are. */
  offerFailure(make: () => T): void {
    if (this.fails.length < this.failed) this.fails.push({ ms: undefined, data: make() });
  }

  /** The kept sessions: slowest first, then the failures in the order they happened. */
  samples(): TailSample<T>[] {
    return [...this.slow, ...this.fails];
  }
}
