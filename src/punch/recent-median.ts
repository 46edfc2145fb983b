/**
 * The median (or another quantile) of the last `window` values: a ring, constant memory. Used where a session's
 * timing is judged against recent sessions' (fire-fallback.ts on A, fire-rtt.ts on B; the read lag behind A's
 * fire margin, listener.ts): a median ignores the few sessions a lost segment delayed, where a mean or a maximum
 * would follow them.
 */
export class RecentMedian {
  private readonly ring: number[] = [];
  private next = 0;

  constructor(private readonly window: number) {}

  /** Values held (at most `window`). */
  get size(): number {
    return this.ring.length;
  }

  /** Adds one value; a negative or non-finite one is ignored. */
  record(v: number): void {
    if (!Number.isFinite(v) || v < 0) return;
    if (this.ring.length < this.window) this.ring.push(v);
    else this.ring[this.next] = v;
    this.next = (this.next + 1) % this.window;
  }

  /** The median (the upper one of an even count), or undefined while fewer than `minValues` are held. */
  median(minValues = 1): number | undefined {
    return this.quantile(0.5, minValues);
  }

  /** The `q` quantile (0..1; the value at ⌊q·n⌋ of the sorted ring), or undefined below `minValues`. */
  quantile(q: number, minValues = 1): number | undefined {
    if (this.ring.length < Math.max(1, minValues)) return undefined;
    const s = [...this.ring].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.floor(q * s.length)))]!;
  }
}
