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
 *
 * Cost: `add` is O(log n) amortised, also into a full table (a 1000-entry getaddr answer is ~10^4 steps, not
 * 10^6): entries expire in time order from a heap, and the counts the eviction rule ranks by (entries per source,
 * per netgroup within a source) are kept up to date, with the victims of each (source, netgroup) in a heap.
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

/**
 * A binary min-heap with lazy deletion: `stale(x)` says that an element no longer stands for what it was pushed
 * for (the caller pushes a new element instead of updating one in place). Compacted when stale elements outnumber
 * live ones, so its size stays within twice the live count plus a constant.
 */
class LazyHeap<T> {
  private a: T[] = [];
  constructor(
    private readonly less: (x: T, y: T) => boolean,
    private readonly stale: (x: T) => boolean,
  ) {}

  get length(): number {
    return this.a.length;
  }

  push(x: T, live: number): void {
    if (this.a.length > 2 * live + 64) {
      // Amortised: at least `live + 64` pushes happened since the last compaction.
      this.a = this.a.filter((y) => !this.stale(y));
      for (let i = (this.a.length >> 1) - 1; i >= 0; i--) this.down(i);
    }
    this.a.push(x);
    this.up(this.a.length - 1);
  }

  /** The least live element (stale ones on top are dropped), or undefined. */
  peek(): T | undefined {
    while (this.a.length > 0 && this.stale(this.a[0]!)) this.pop();
    return this.a[0];
  }

  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      this.down(0);
    }
    return top;
  }

  private up(i: number): void {
    const a = this.a;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  private down(i: number): void {
    const a = this.a;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
      if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m]!, a[i]!];
      i = m;
    }
  }
}

/** Keys counted, with the largest count found in O(1) (counts change by one at a time). */
class Counts {
  private readonly count = new Map<string, number>();
  /** count -> keys with that count, in the order they reached it. */
  private readonly byCount = new Map<number, Set<string>>();
  max = 0;

  get(k: string): number {
    return this.count.get(k) ?? 0;
  }

  /** A key with the largest count (the first to reach it), or undefined when empty. */
  top(): string | undefined {
    return this.byCount.get(this.max)?.values().next().value;
  }

  inc(k: string): void {
    const c = this.get(k);
    this.move(k, c, c + 1);
    if (c + 1 > this.max) this.max = c + 1;
  }

  dec(k: string): void {
    const c = this.get(k);
    if (c === 0) return;
    this.move(k, c, c - 1);
    while (this.max > 0 && !this.byCount.has(this.max)) this.max--;
  }

  private move(k: string, from: number, to: number): void {
    const f = this.byCount.get(from);
    f?.delete(k);
    if (f && f.size === 0) this.byCount.delete(from);
    if (to === 0) {
      this.count.delete(k);
      return;
    }
    this.count.set(k, to);
    let t = this.byCount.get(to);
    if (!t) this.byCount.set(to, (t = new Set()));
    t.add(k);
  }
}

/** An element of the heaps: the entry and the value it was pushed with. */
interface HeapItem {
  e: Entry;
  /** Expiry heap: the announcement time; victim heap: the number of sources. */
  v: number;
}

/** Per source: its entries per netgroup, and per netgroup the eviction order of its entries. */
interface SourceState {
  groups: Counts;
  victims: Map<string, LazyHeap<HeapItem>>;
}

const clearnetKeyOf = (a: Announcement) => `${a.clearnet.address}|${a.clearnet.port}`;

/**
 * The table keys of an announcement object, computed once per object: a relay's getaddr answer hands the same
 * objects to every asker in one process (the simulator ingests each answer into up to 1000 directories), and
 * building and hashing two ~70-character strings per add was most of its cost. An object added to a directory is
 * kept by it and must not be changed afterwards anyway (the table indexes its fields).
 */
const keyCache = new WeakMap<Announcement, readonly [string, string]>();
function keysOf(a: Announcement): readonly [string, string] {
  let k = keyCache.get(a);
  if (!k) keyCache.set(a, (k = [`${a.coordination}:${a.coordinationPort}`, clearnetKeyOf(a)]));
  return k;
}

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
  /** Entries per source (the first source of each entry). */
  private readonly perSource = new Counts();
  private readonly sourceState = new Map<string, SourceState>();
  /** Entries by announcement time, oldest first (an entry whose time changed is pushed again). */
  private readonly byTime = new LazyHeap<HeapItem>(
    (x, y) => x.v < y.v,
    (x) => this.byEndpoint.get(x.e.key) !== x.e || x.e.a.time !== x.v,
  );
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
    const [key, clearnetKey] = keysOf(a);
    const old = this.byEndpoint.get(key);
    if (old && old.clearnetKey === clearnetKey) {
      if (old.sources.size < DIRECTORY_MAX_SOURCES && !old.sources.has(source)) {
        old.sources.add(source);
        this.victimHeap(old).push({ e: old, v: old.sources.size }, this.groupSize(old));
      }
      const t = a.time;
      if (old.a.time >= t) return false;
      old.a = a;
      this.byTime.push({ e: old, v: t }, this.byEndpoint.size);
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
    if (this.byEndpoint.size >= this.maxEndpoints && !this.makeRoomInTable(e)) return false;
    this.insert(e);
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

  private insert(e: Entry): void {
    this.byEndpoint.set(e.key, e);
    let set = this.byClearnet.get(e.clearnetKey);
    if (!set) this.byClearnet.set(e.clearnetKey, (set = new Set()));
    set.add(e);
    this.perSource.inc(e.source);
    let st = this.sourceState.get(e.source);
    if (!st) this.sourceState.set(e.source, (st = { groups: new Counts(), victims: new Map() }));
    st.groups.inc(e.netgroup);
    this.victimHeap(e).push({ e, v: e.sources.size }, this.groupSize(e));
    this.byTime.push({ e, v: e.a.time }, this.byEndpoint.size);
  }

  /** Entries in the table of `e`'s (source, netgroup). */
  private groupSize(e: Entry): number {
    return this.sourceState.get(e.source)?.groups.get(e.netgroup) ?? 0;
  }

  /**
   * Eviction order within one (source, netgroup): fewest sources first, then the most recently first seen. An
   * element is stale once its entry left the table or gained a source (it was pushed again then).
   */
  private victimHeap(e: Entry): LazyHeap<HeapItem> {
    const st = this.sourceState.get(e.source)!;
    let h = st.victims.get(e.netgroup);
    if (!h) {
      h = new LazyHeap<HeapItem>(
        (x, y) => x.v < y.v || (x.v === y.v && x.e.seq > y.e.seq),
        (x) => this.byEndpoint.get(x.e.key) !== x.e || x.e.sources.size !== x.v,
      );
      st.victims.set(e.netgroup, h);
    }
    return h;
  }

  /**
   * {@link makeRoom} over the whole table plus the newcomer `e`, from the maintained counts instead of a scan:
   * the source with the most entries (the newcomer's on a tie), its netgroup with the most (the newcomer's on a
   * tie, when it is the newcomer's source), its entry with the fewest sources, most recently first seen. The
   * newcomer, with one source and the newest, is that entry whenever it falls in the chosen netgroup.
   */
  private makeRoomInTable(e: Entry): boolean {
    this.evictions++;
    const mine = this.perSource.get(e.source) + 1;
    const source = mine >= this.perSource.max ? e.source : this.perSource.top()!;
    const st = this.sourceState.get(source);
    let group: string | undefined;
    if (source === e.source) {
      const g = st ? st.groups.get(e.netgroup) + 1 : 1;
      if (!st || g >= st.groups.max) return false; // the newcomer's own netgroup: it goes
      group = st.groups.top();
    } else {
      group = st!.groups.top();
    }
    const victim = group === undefined ? undefined : st!.victims.get(group)?.peek()?.e;
    if (!victim) return false;
    this.remove(victim);
    return true;
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
    if (this.byEndpoint.get(e.key) !== e) return;
    this.byEndpoint.delete(e.key);
    const set = this.byClearnet.get(e.clearnetKey);
    set?.delete(e);
    if (set && set.size === 0) this.byClearnet.delete(e.clearnetKey);
    this.perSource.dec(e.source);
    const st = this.sourceState.get(e.source);
    if (st) {
      st.groups.dec(e.netgroup);
      if (st.groups.get(e.netgroup) === 0) st.victims.delete(e.netgroup);
      if (this.perSource.get(e.source) === 0) this.sourceState.delete(e.source);
    }
  }

  /** Drops expired entries, oldest first: O(expired x log n). */
  private expire(): void {
    const cutoff = this.nowS() - ANNOUNCEMENT_MAX_AGE_S;
    for (let top = this.byTime.peek(); top && top.v < cutoff; top = this.byTime.peek()) {
      this.byTime.pop();
      this.remove(top.e);
    }
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
