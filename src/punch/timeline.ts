/** A session timeline: named events with milliseconds since the session started (monotonic). */
export interface TimelineEvent {
  t: number;
  event: string;
  detail?: string;
}

export class Timeline {
  readonly events: TimelineEvent[] = [];
  private readonly t0: number;
  constructor(t0 = performance.now()) {
    this.t0 = t0;
  }
  mark(event: string, detail?: string): number {
    return this.markAt(event, performance.now(), detail);
  }
  /**
   * An event that happened earlier than now (`atMs` on performance.now()'s clock; the arrival of data our loop
   * read late), kept in time order among the events already marked.
   */
  markAt(event: string, atMs: number, detail?: string): number {
    const t = Math.round((atMs - this.t0) * 100) / 100;
    const e = detail === undefined ? { t, event } : { t, event, detail };
    let i = this.events.length;
    while (i > 0 && this.events[i - 1]!.t > t) i--;
    this.events.splice(i, 0, e);
    return t;
  }
  /** ms since start of the first event with this name. */
  at(event: string): number | undefined {
    return this.events.find((e) => e.event === event)?.t;
  }
  get start(): number {
    return this.t0;
  }
}
