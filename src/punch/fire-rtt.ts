/**
 * The RTT B fires on, bounded by B's recent sessions with the same A.
 *
 * B fires its SYN half a round trip after its `opfire` (A fires on receipt), on the smaller of this session's
 * ping RTT and its overlay dial's time (initiator.ts). Both can be far off for one session: a lost SYN of the
 * dial's own TCP handshake (the kernel re-sends it after 1 s) puts a second into the dial, and an A that reads
 * its requests late (a burst of them) puts its backlog into every ping alike. B then fired hundreds of ms after
 * A — `lab stress --overlay direct`, 10,000 sessions at 1% loss: 374 sessions with a 1 s dial, every one of them
 * B firing 525–560 ms after its `opfire`, most of the run's p99 (docs/BENCHMARKS.md).
 *
 * So B remembers, per A (its coordination endpoint), the estimate of its last FIRE_RTT_WINDOW verified sessions
 * and fires on at most FIRE_RTT_FACTOR × their median. The cost of being wrong is small either way: firing early
 * (A's path really slowed down for good) sends B's SYN to A's NAT before A's SYN has opened it — dropped, or a RST
 * the engine's re-SYN grid answers — while the samples that follow raise the median; firing late costs the whole
 * delay. Only verified sessions count, so only A itself moves the estimate B uses towards A. Memory is bounded:
 * at most FIRE_RTT_MAX_KEYS endpoints (least recently used evicted), and an endpoint unused for FIRE_RTT_TTL_MS
 * starts afresh (its path — a Tor circuit, an I2P tunnel — has likely changed).
 */
import { RecentMedian } from './recent-median.js';

export const FIRE_RTT_FACTOR = 2;
export const FIRE_RTT_WINDOW = 15;
export const FIRE_RTT_MIN_SAMPLES = 3;
export const FIRE_RTT_MAX_KEYS = 256;
export const FIRE_RTT_TTL_MS = 10 * 60_000;
/**
 * Slowest recent median a pre-timed fire counts on (ms): its `delay_us` (half of it) must stay well inside what
 * any A accepts (5 s here); a path this slow gains little from half a round trip next to its own jitter.
 */
export const PRETIME_MAX_RTT_MS = 4000;

interface Entry {
  recent: RecentMedian;
  lastAt: number;
  /** The last verified session with this endpoint was a birthday spray (A was hard, or B was). */
  sprayed: boolean;
}

export class FireRttMemory {
  private readonly map = new Map<string, Entry>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Endpoints remembered (at most FIRE_RTT_MAX_KEYS). */
  get size(): number {
    return this.map.size;
  }

  /**
   * One verified session to `key`: the RTT estimate it had before any bound (the smaller of pings and dial), and
   * whether it was a spray.
   */
  record(key: string, rttMs: number, sprayed = false): void {
    if (!Number.isFinite(rttMs) || rttMs <= 0) return;
    let e = this.fresh(key);
    if (e)
      this.map.delete(key); // to the most recent end
    else {
      if (this.map.size >= FIRE_RTT_MAX_KEYS) this.map.delete(this.map.keys().next().value!);
      e = { recent: new RecentMedian(FIRE_RTT_WINDOW), lastAt: 0, sprayed: false };
    }
    e.recent.record(rttMs);
    e.lastAt = this.now();
    e.sprayed = sprayed;
    this.map.set(key, e);
  }

  /** The most B fires on towards `key` (ms), or undefined while fewer than FIRE_RTT_MIN_SAMPLES are known. */
  boundMs(key: string): number | undefined {
    const m = this.fresh(key)?.recent.median(FIRE_RTT_MIN_SAMPLES);
    return m === undefined ? undefined : FIRE_RTT_FACTOR * m;
  }

  /**
   * The RTT a pre-timed spray fire counts on (ms; docs/PROTOCOL.md "Pre-timed spray fire"): the median estimate of
   * the recent verified sessions with `key` — not the bound, whose factor 2 would spend the round trip the
   * pre-timing saves — when at least FIRE_RTT_MIN_SAMPLES are known and this session will be a spray: B is the
   * hard side (`bHard`), or the last verified session with `key` was a spray (A was hard then, and a NAT rarely
   * changes its kind between sessions), and the median is at most PRETIME_MAX_RTT_MS. Undefined otherwise: B
   * sends its `opfire` after A's `opendpoint`.
   */
  pretimeRttMs(key: string, bHard: boolean): number | undefined {
    const e = this.fresh(key);
    if (!e || !(bHard || e.sprayed)) return undefined;
    const m = e.recent.median(FIRE_RTT_MIN_SAMPLES);
    return m !== undefined && m <= PRETIME_MAX_RTT_MS ? m : undefined;
  }

  private fresh(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (e && this.now() - e.lastAt > FIRE_RTT_TTL_MS) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }
}
