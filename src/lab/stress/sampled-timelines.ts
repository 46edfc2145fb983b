/**
 * Which sessions of a stress run the report draws whole, and their events on one wall clock: the first few
 * (as they came), then the tail the workers kept (TailSampler): A's slowest with B's side joined where B kept
 * the same session, B's slowest whole sessions A did not keep, and the first failures of each side. Pure: the
 * harness collects the workers' samples, this decides and labels (each label unique: it names the series).
 */

/** Events of one session, both sides, wall-clock ms. */
export type Events = Array<{ at: number; who: string; event: string; detail?: string }>;
/** One session a worker's TailSampler kept: its measure (ms; none for a failure) and its message fields. */
export type Sample = { ms?: number; data: Record<string, unknown> };

/** What a sampled session needs of the harness's per-session outcome. */
export interface OutcomeLike {
  id: number;
  b: string;
  ok: boolean;
  timeToConnectMs?: number;
  code?: string;
  side?: string;
}

export interface SampledTimeline {
  label: string;
  /** The B worker (the report's group); `unknown B` for A's failures, which carry no session id. */
  b: string;
  events: Events;
}

export interface SampleInput {
  outcomes: OutcomeLike[];
  /** Session number → B's session id. */
  sessionIds: Map<number, string>;
  /** Whole timelines sent as they happened (the first few), per session id. */
  aDetailed: Map<string, Events>;
  bDetailed: Map<string, Events>;
  /** A's kept samples (slowest, then failures). */
  aTail: Sample[];
  /** Each live B's kept samples: `samples` by A's measure seen from B plus failures; `totals` by its whole session. */
  bTails: Array<{ who: string; samples: Sample[]; totals: Sample[] }>;
  first: number;
  bOnly: number;
}

/** Engine and session timelines of a worker message → one list of wall-clock events. */
export function eventsOf(who: string, m: Record<string, unknown>): Events {
  const out: Events = [];
  const tl = m.timeline as { start: number; events: Array<{ t: number; event: string; detail?: string }> } | undefined;
  for (const e of tl?.events ?? []) {
    out.push({ at: tl!.start + e.t, who, event: e.event, ...(e.detail ? { detail: e.detail } : {}) });
  }
  const eng = m.engine as Array<{ kind: string; at: number; remote?: string; errno?: string }> | undefined;
  if (eng) {
    for (const e of eng) {
      const d = [e.remote, e.errno].filter(Boolean).join(' ');
      out.push({ at: e.at, who, event: `engine:${e.kind}`, ...(d ? { detail: d } : {}) });
    }
  }
  return out;
}

/** `connected`, or the failure code with the side it concerns. */
export function outcomeLabel(o: OutcomeLike): string {
  return o.ok ? 'connected' : `${o.code ?? '?'}${o.side ? ` (${o.side})` : ''}`;
}

export function sampleTimelines(x: SampleInput): SampledTimeline[] {
  const idOf = new Map([...x.sessionIds].map(([id, sid]) => [sid, id]));
  const byId = new Map(x.outcomes.map((o) => [o.id, o]));
  const what = (o: OutcomeLike): string => (o.ok ? `${o.timeToConnectMs ?? '?'} ms` : outcomeLabel(o));
  const sorted = (e: Events): Events => e.sort((p, q) => p.at - q.at);
  const out: SampledTimeline[] = [];
  const shown = new Set<string>();
  for (const [sid, ev] of x.aDetailed) {
    if (out.length >= x.first) break;
    const o = byId.get(idOf.get(sid) ?? NaN);
    if (!o) continue;
    shown.add(sid);
    out.push({
      label: `first #${o.id + 1} (${what(o)})`,
      b: o.b,
      events: sorted([...ev, ...(x.bDetailed.get(sid) ?? [])]),
    });
  }
  const bKept = new Map<string, { who: string; data: Record<string, unknown> }>();
  const bSlow: Array<{ who: string; ms: number; data: Record<string, unknown> }> = [];
  const bFailed: Array<{ who: string; data: Record<string, unknown> }> = [];
  for (const t of x.bTails) {
    for (const s of t.samples) {
      if (typeof s.data.sessionId === 'string') bKept.set(s.data.sessionId, { who: t.who, data: s.data });
      if (typeof s.ms !== 'number') bFailed.push({ who: t.who, data: s.data });
    }
    for (const s of t.totals) if (typeof s.ms === 'number') bSlow.push({ who: t.who, ms: s.ms, data: s.data });
  }
  for (const s of x.aTail) {
    const sid = s.data.sessionId;
    if (typeof s.ms !== 'number' || typeof sid !== 'string' || shown.has(sid)) continue;
    const o = byId.get(idOf.get(sid) ?? NaN);
    if (!o) continue; // the warm-up
    shown.add(sid);
    const b = bKept.get(sid);
    const events = sorted([...eventsOf('A', s.data), ...(b ? eventsOf(b.who, b.data) : [])]);
    out.push({ label: `slowest #${o.id + 1} (${what(o)}${b ? '' : ', A only'})`, b: o.b, events });
  }
  bSlow.sort((p, q) => q.ms - p.ms);
  let bOnly = 0;
  for (const s of bSlow) {
    const sid = s.data.sessionId;
    if (bOnly >= x.bOnly || (typeof sid === 'string' && shown.has(sid))) continue;
    const o = byId.get(Number(s.data.id));
    if (!o) continue;
    if (typeof sid === 'string') shown.add(sid);
    bOnly++;
    const label = `slowest on B #${o.id + 1} (B ${Math.round(s.ms)} ms, A ${what(o)}, B only)`;
    out.push({ label, b: o.b, events: sorted(eventsOf(s.who, s.data)) });
  }
  for (const s of bFailed) {
    const o = byId.get(Number(s.data.id));
    if (!o) continue;
    out.push({ label: `failed #${o.id + 1} (${outcomeLabel(o)}, B)`, b: o.b, events: sorted(eventsOf(s.who, s.data)) });
  }
  // A's failures carry no session id (the error has none): numbered, or the report would draw them as one.
  const aFailed = x.aTail.filter((s) => typeof s.ms !== 'number');
  aFailed.forEach((s, i) => {
    const e = s.data.error as { code?: string } | undefined;
    const label = `failed on A ${i + 1}/${aFailed.length} (${e?.code ?? 'unknown'}, A only)`;
    out.push({ label, b: 'unknown B', events: sorted(eventsOf('A', s.data)) });
  });
  return out;
}
