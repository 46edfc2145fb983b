/**
 * When A fires without B's `opfire`.
 *
 * A fires at B's `opfire` receipt plus its delay; B fires at its own planned instant whether or not the `opfire`
 * got through. When the overlay loses the segment carrying it, the coordination stream's retransmission (TCP's
 * RTO, 200 ms at the least, usually more early in a connection) holds it back and B's SYN waits at A's NAT for
 * A's: `lab stress --report` showed 5 of the 8 slowest of 300 sessions at 1% loss with the `opfire` 500-560 ms
 * late and everything else on time. So A fires anyway once the `opfire` is clearly late: B has fired by then
 * (it fires about half a round trip after A's `opendpoint` reaches it), B's NAT holds the mapping, and A's SYN
 * goes straight through. A late `opfire` is then ignored.
 *
 * "Clearly late" is measured, not configured: the overlay's round trip differs by orders of magnitude (a lab
 * link, a Tor circuit, an I2P tunnel). The estimator keeps the delay from A's `opendpoint` to B's `opfire` of
 * recent sessions that ended verified (a stranger has to complete real punches to move it, and the bounds hold
 * whatever it does) and answers FALLBACK_FACTOR × their median + FALLBACK_MARGIN_MS, within
 * [FALLBACK_MIN_MS, FALLBACK_MAX_MS]. With fewer than FALLBACK_MIN_SAMPLES there is no fallback (A waits, as
 * before). A session that fell back contributes its fallback time × FALLBACK_FACTOR, so if the overlay slows for
 * good the estimate rises instead of keeping A firing early.
 */
import { RecentMedian } from './recent-median.js';
import type { Timeline } from './timeline.js';

export const FALLBACK_FACTOR = 2;
export const FALLBACK_MARGIN_MS = 50;
export const FALLBACK_MIN_MS = 150;
export const FALLBACK_MAX_MS = 5_000;
export const FALLBACK_MIN_SAMPLES = 3;
/** The engine deadline of a fallback fire: B's default (initiator `deadlineMs`), B's opfire being unknown. */
export const FALLBACK_DEADLINE_MS = 5_000;
/** Recent sessions the median is taken over (a ring: constant memory). */
export const FALLBACK_WINDOW = 31;

export class FireFallback {
  private readonly recent = new RecentMedian(FALLBACK_WINDOW);

  /**
   * One verified session: the `opendpoint` to `opfire` delay A saw (ms), or, when A fell back, the fallback it
   * used (recorded as FALLBACK_FACTOR × that, the opfire being later still).
   */
  record(opfireDelayMs: number | undefined, fellBackAfterMs?: number): void {
    const v = opfireDelayMs ?? (fellBackAfterMs !== undefined ? fellBackAfterMs * FALLBACK_FACTOR : undefined);
    if (v !== undefined) this.recent.record(v);
  }

  /**
   * Records one verified session from its timeline (A's marks `endpoints-sent`, `fire-received`,
   * `fire-fallback`). Not a zero-round-trip or pre-timed one (`fire-pretimed`): their `opfire` rode B's first
   * write and was read right after our answer, a delay of ~0 that says nothing of the overlay — enough of them
   * would pull the fallback down to FALLBACK_MIN_MS and make A fire early on a slow circuit.
   */
  recordSession(tl: Timeline, zeroRtt: boolean): void {
    const sent = tl.at('endpoints-sent');
    if (zeroRtt || sent === undefined || tl.at('fire-pretimed') !== undefined) return;
    const got = tl.at('fire-received');
    const fb = tl.at('fire-fallback');
    this.record(got !== undefined ? got - sent : undefined, fb !== undefined ? fb - sent : undefined);
  }

  /** How long A waits for `opfire` before it fires anyway (ms), or undefined while too few sessions are known. */
  afterMs(): number | undefined {
    const median = this.recent.median(FALLBACK_MIN_SAMPLES);
    if (median === undefined) return undefined;
    const ms = FALLBACK_FACTOR * median + FALLBACK_MARGIN_MS;
    return Math.round(Math.min(FALLBACK_MAX_MS, Math.max(FALLBACK_MIN_MS, ms)));
  }
}
