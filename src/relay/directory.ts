/**
 * B's short-lived view of hole-punch announcements. Every announcement that shares one coordination
 * endpoint counts as ONE address (a coordinator must not flood B with fake peers by announcing many
 * clearnet endpoints); entries expire after 10 minutes; the table is bounded. Nothing goes to addrman.
 *
 * The table is also hard to game from one source (the peer that relayed an entry to us):
 *  - at most {@link DIRECTORY_MAX_PER_CLEARNET} coordination endpoints may claim one clearnet endpoint, so junk
 *    naming a victim's IP:port cannot bury the real claim;
 *  - when the table (or one clearnet endpoint's share) is full, the entry to drop is chosen for diversity: from
 *    the source holding the most entries, within it the clearnet netgroup (/16, /32) holding the most, the
 *    entry vouched for by the fewest sources, the most recently first seen. A newcomer that loses is refused.
 *    So a flood from one source displaces only that source's own recent entries;
 *  - a newer announcement of a known coordination endpoint that names another clearnet endpoint replaces the
 *    entry only if it comes from a source that already vouched for it (a stranger cannot re-point it);
 *  - the lookup by clearnet endpoint prefers the claim vouched for by the most sources, then the oldest.
 */
import { netgroupOf } from '../limits/index.js';
import { ANNOUNCEMENT_MAX_AGE_S, isFresh, type Announcement } from './announcement.js';

/** Coordination endpoints that may claim one clearnet endpoint at once. */
export const DIRECTORY_MAX_PER_CLEARNET = 4;
/** Sources remembered per entry (how many distinct peers vouched for it; more are not counted). */
export const DIRECTORY_MAX_SOURCES = 8;
/** Source name of entries added without one (local configuration, library use). */
export const DIRECTORY_LOCAL_SOURCE = 'local';

export interface AnnouncementDirectoryOptions {
  /** Most coordination endpoints remembered (default 1000). */
  maxEndpoints?: number;
  /** Most coordination endpoints claiming one clearnet endpoint (default {@link DIRECTORY_MAX_PER_CLEARNET}). */
  maxPerClearnet?: number;
  nowS?: () => number;
}

interface Entry {
  a: Announcement;
  key: string;
  clearnetKey: string;
  netgroup: string;
  /** The source that brought the entry first; it is accounted to this one. */
  source: string;
  /** Distinct sources that sent this coordination endpoint with this clearnet endpoint (bounded). */
  sources: Set<string>;
  /** Our clock when first seen, s, and an insertion counter to order equal times. */
  firstSeen: number;
  seq: number;
}

const clearnetKeyOf = (a: Announcement) => `${a.clearnet.address}|${a.clearnet.port}`;

function netgroupOrRaw(address: string): string {
  try {
    return netgroupOf(address);
  } catch {
    return `raw:${address}`;
  }
}

export class AnnouncementDirectory {
  private readonly byEndpoint = new Map<string, Entry>();
  private readonly byClearnet = new Map<string, Set<Entry>>();
  private readonly maxEndpoints: number;
  private readonly maxPerClearnet: number;
  private readonly nowS: () => number;
  private seq = 0;
  /** Announcements refused or dropped to keep the table diverse (observability, tests). */
  evictions = 0;

  constructor(opts: AnnouncementDirectoryOptions = {}) {
    this.maxEndpoints = opts.maxEndpoints ?? 1000;
    this.maxPerClearnet = opts.maxPerClearnet ?? DIRECTORY_MAX_PER_CLEARNET;
    this.nowS = opts.nowS ?? (() => Math.floor(Date.now() / 1000));
  }

  /**
   * Records an announcement heard from `source` (the relaying peer; default {@link DIRECTORY_LOCAL_SOURCE}).
   * A newer one for the same coordination endpoint replaces the older (see the module comment for when a
   * changed clearnet endpoint is taken). Returns whether the announcement is now in the table.
   */
  add(a: Announcement, source: string = DIRECTORY_LOCAL_SOURCE): boolean {
    const now = this.nowS();
    if (!isFresh(a, now)) return false;
    const key = `${a.coordination}:${a.coordinationPort}`;
    const clearnetKey = clearnetKeyOf(a);
    const old = this.byEndpoint.get(key);
    if (old && old.clearnetKey === clearnetKey) {
      if (old.sources.size < DIRECTORY_MAX_SOURCES) old.sources.add(source);
      if (old.a.time >= a.time) return false;
      old.a = a;
      return true;
    }
    if (old) {
      // Another clearnet endpoint for a known coordination endpoint: a stranger must not re-point it.
      if (old.a.time >= a.time || ![...old.sources].every((s) => s === source)) return false;
      this.remove(old);
    }
    const e: Entry = {
      a,
      key,
      clearnetKey,
      netgroup: netgroupOrRaw(a.clearnet.address),
      source,
      sources: new Set([source]),
      firstSeen: now,
      seq: this.seq++,
    };
    const claims = this.byClearnet.get(clearnetKey);
    if (claims && claims.size >= this.maxPerClearnet && !this.makeRoom([...claims], e)) return false;
    if (this.byEndpoint.size >= this.maxEndpoints) this.expire();
    if (this.byEndpoint.size >= this.maxEndpoints && !this.makeRoom([...this.byEndpoint.values()], e)) return false;
    this.byEndpoint.set(key, e);
    let set = this.byClearnet.get(clearnetKey);
    if (!set) this.byClearnet.set(clearnetKey, (set = new Set()));
    set.add(e);
    return true;
  }

  /**
   * The announcement whose clearnet endpoint is `address:port`, if fresh (the SOCKS proxy's lookup). Among
   * several claims: the one vouched for by the most sources, then the one first seen earliest.
   */
  findByClearnet(address: string, port: number): Announcement | undefined {
    this.expire();
    const claims = this.byClearnet.get(`${address}|${port}`);
    if (!claims) return undefined;
    let best: Entry | undefined;
    for (const e of claims) {
      const more = best !== undefined && e.sources.size > best.sources.size;
      const tieOlder = best !== undefined && e.sources.size === best.sources.size && e.seq < best.seq;
      if (!best || more || tieOlder) best = e;
    }
    return best?.a;
  }

  /** Fresh announcements, newest first. */
  list(): Announcement[] {
    this.expire();
    return [...this.byEndpoint.values()].map((e) => e.a).sort((x, y) => y.time - x.time);
  }

  get size(): number {
    return this.byEndpoint.size;
  }

  /**
   * Picks the entry to drop among `pool` plus the newcomer `e` (see the module comment). Drops it and returns
   * true, or returns false when the newcomer itself is the one to go.
   */
  private makeRoom(pool: Entry[], e: Entry): boolean {
    const all = [...pool, e];
    const bySource = countBy(all, (x) => x.source);
    const source = argMax(bySource, e.source);
    const ofSource = all.filter((x) => x.source === source);
    const byGroup = countBy(ofSource, (x) => x.netgroup);
    const group = argMax(byGroup, e.source === source ? e.netgroup : undefined);
    let victim: Entry | undefined;
    for (const x of ofSource) {
      if (x.netgroup !== group) continue;
      if (
        !victim ||
        x.sources.size < victim.sources.size ||
        (x.sources.size === victim.sources.size && x.seq > victim.seq)
      ) {
        victim = x;
      }
    }
    this.evictions++;
    if (!victim || victim === e) return false;
    this.remove(victim);
    return true;
  }

  private remove(e: Entry): void {
    this.byEndpoint.delete(e.key);
    const set = this.byClearnet.get(e.clearnetKey);
    set?.delete(e);
    if (set && set.size === 0) this.byClearnet.delete(e.clearnetKey);
  }

  private expire(): void {
    const cutoff = this.nowS() - ANNOUNCEMENT_MAX_AGE_S;
    for (const e of this.byEndpoint.values()) if (e.a.time < cutoff) this.remove(e);
  }
}

function countBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return m;
}

/** The key with the highest count; on a tie `prefer` if it is among the tied, else the first seen. */
function argMax(m: Map<string, number>, prefer: string | undefined): string {
  let best = '';
  let n = -1;
  for (const [k, v] of m) if (v > n) [best, n] = [k, v];
  if (prefer !== undefined && m.get(prefer) === n) return prefer;
  return best;
}
