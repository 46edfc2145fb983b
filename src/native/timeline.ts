/**
 * Per-plan timelines: what the engine did and when, on the CLOCK_MONOTONIC scale of `PunchEngine.now()`.
 */
import type { Endpoint } from './endpoint.js';
import { EVENT_KIND, enumName } from './enums.js';

/** What happened. `prime` is a low-TTL SYN; `rst`/`icmp`/`error` are attempt failures. */
export type TimelineKind = (typeof EVENT_KIND)[number];

export interface TimelineEvent {
  kind: TimelineKind;
  /** When it was scheduled to happen (SYNs, timeout); absent for reactive events. */
  targetNs?: bigint;
  /** When it happened (for a SYN: just before connect()). */
  actualNs: bigint;
  /** The candidate the event concerns; absent for plan-wide events. */
  remote?: Endpoint;
  /** errno name for failures (ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT, ...). */
  errno?: string;
}

/** Decodes the addon's packed rows (kind, remote index, errno, target or -1, actual). */
export function decodeTimeline(
  rows: BigInt64Array,
  remotes: readonly Endpoint[],
  errnoName: (n: number) => string,
): TimelineEvent[] {
  const out: TimelineEvent[] = [];
  for (let i = 0; i + 4 < rows.length; i += 5) {
    const ev: TimelineEvent = { kind: enumName(EVENT_KIND, Number(rows[i]), 'error'), actualNs: rows[i + 4]! };
    const remote = Number(rows[i + 1]);
    if (remote >= 0 && remote < remotes.length) ev.remote = remotes[remote]!;
    const err = Number(rows[i + 2]);
    if (err !== 0) ev.errno = errnoName(err);
    if (rows[i + 3]! >= 0n) ev.targetNs = rows[i + 3]!;
    out.push(ev);
  }
  return out;
}
