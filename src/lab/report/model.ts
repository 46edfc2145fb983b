/**
 * What an HTML report shows, independent of the run that produced it: `lab matrix` fills it from its pair
 * reports (src/lab/report/matrix.ts); `lab stress` is meant to fill the same shape (one group per NAT spec or
 * site class, resource samples of A and B over the run).
 */

/** One population of attempts: a NAT pair in the matrix, a site class in a stress run. */
export interface ReportGroup {
  name: string;
  attempts: number;
  connected: number;
  /** Time-to-connect of every connected attempt (ms), in any order. */
  timeToConnectMs: number[];
  medianMs: number | null;
  p90Ms: number | null;
  /** The target for the median (1.5 × overlay RTT + 2 × direct RTT), when known. */
  boundMs: number | null;
  /** How `boundMs` is made, when not the measured flow's 1.5 × overlay RTT + 2 × direct RTT. */
  boundRule?: string;
  /** Outcome → count for the attempts that did not connect (e.g. `PUNCH_NAT_UNSUITABLE (A)`). */
  failures: Record<string, number>;
  /**
   * A zero-round-trip population (`lab matrix --zrtt`): how many connected on the fast path (the rest of
   * `connected` connected on the measured-RTT flow, after a fallback or B's back-off).
   */
  fastPath?: number;
  /** Zero-round-trip: why attempts fell back to the measured-RTT flow (B's reason) → count. */
  fallbacks?: Record<string, number>;
}

/** One event of a session, on the shared wall clock of both sides. */
export interface ReportEvent {
  /** ms since the session's first event. */
  tMs: number;
  /** The side that recorded it (`A`, `B`). */
  who: string;
  event: string;
  detail?: string;
}

/** A sampled session's whole timeline. */
export interface ReportTimeline {
  group: string;
  /** Why it was sampled (fastest, median, slowest, failure) and which attempt it was. */
  label: string;
  events: ReportEvent[];
}

/** One process's resource use at one moment. */
export interface ReportResourceSample {
  /** Seconds since the first sample of the run. */
  tS: number;
  /** Whose process (`A`, `B`, a router). */
  who: string;
  /** Process generation: samples of different generations are not joined by a line (workers restart per pair). */
  segment: string;
  rssMb: number;
  threads: number;
  fds: number;
}

export interface ReportData {
  title: string;
  /** Conditions of the run, shown under the title (e.g. `5 runs per pair, 50 ms RTT, 2% loss`). */
  conditions: string;
  /** ISO time the run ended. */
  generatedAt: string;
  /** What a group is called in the legends and the table (default `pair`; e.g. `NAT spec` for stress). */
  groupLabel?: string;
  groups: ReportGroup[];
  timelines: ReportTimeline[];
  resources: ReportResourceSample[];
}
