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
    const t = Math.round((performance.now() - this.t0) * 100) / 100;
    this.events.push(detail === undefined ? { t, event } : { t, event, detail });
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
