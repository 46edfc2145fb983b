/**
 * A rate limiter for repeated log lines: a flood of bad clients must not become a flood of log lines (disk,
 * terminal, log shipping). Per key (an event name plus a fixed reason token, never client bytes), at most
 * `burst` lines per `intervalMs`; the rest are counted and reported once per interval as
 * `log-suppressed {of, key, suppressed, intervalMs}`. The key table is bounded; keys beyond it share one
 * overflow key.
 */
import type { Logger, LogLevel } from './log.js';

export interface LogLimiterOptions {
  /** Length of a window, ms (default 10,000). */
  intervalMs?: number;
  /** Lines per key per window (default 5). */
  burst?: number;
  /** Most keys tracked (default 256). */
  maxKeys?: number;
}

interface Slot {
  windowStart: number;
  lines: number;
  suppressed: number;
  level: LogLevel;
  event: string;
  timer: NodeJS.Timeout | undefined;
}

const OVERFLOW_KEY = '*';

/** One limiter shared by the lines of a component. `close()` reports what is still suppressed. */
export class LogLimiter {
  readonly intervalMs: number;
  readonly burst: number;
  private readonly maxKeys: number;
  private readonly slots = new Map<string, Slot>();
  /** Lines suppressed so far, all keys (observability, tests). */
  suppressedTotal = 0;

  constructor(
    private readonly log: Logger | undefined,
    opts: LogLimiterOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.burst = opts.burst ?? 5;
    this.maxKeys = opts.maxKeys ?? 256;
  }

  /** Logs `event` unless its key already used its lines in this window. Returns whether it was written. */
  write(level: LogLevel, event: string, reason: string, fields: Record<string, unknown> = {}): boolean {
    if (!this.log || !this.log.enabled(level)) return false;
    let key = `${event}/${reason}`;
    if (!this.slots.has(key) && this.slots.size >= this.maxKeys) key = OVERFLOW_KEY;
    const now = Date.now();
    let s = this.slots.get(key);
    if (!s) {
      s = { windowStart: now, lines: 0, suppressed: 0, level, event, timer: undefined };
      this.slots.set(key, s);
    } else if (now - s.windowStart >= this.intervalMs) {
      this.flush(key, s);
      s.windowStart = now;
      s.lines = 0;
    }
    if (s.lines < this.burst) {
      s.lines++;
      this.log.log(level, event, fields);
      return true;
    }
    s.suppressed++;
    this.suppressedTotal++;
    // Report the count at the end of the window even if the flood stops (no later line would carry it).
    s.timer ??= setTimeout(
      () => {
        s!.timer = undefined;
        this.flush(key, s!);
        this.slots.delete(key);
      },
      Math.max(1, s.windowStart + this.intervalMs - now),
    ).unref();
    return false;
  }

  /** Reports every pending suppressed count and stops the timers. */
  close(): void {
    for (const [key, s] of this.slots) this.flush(key, s);
    this.slots.clear();
  }

  private flush(key: string, s: Slot): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    if (s.suppressed === 0) return;
    this.log?.log(s.level, 'log-suppressed', {
      of: key === OVERFLOW_KEY ? 'other' : s.event,
      key,
      suppressed: s.suppressed,
      intervalMs: this.intervalMs,
    });
    s.suppressed = 0;
  }
}
