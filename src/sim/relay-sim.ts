/**
 * Discrete-event simulation of hole-punch announcement relay over a Bitcoin-shaped network (docs/SIMULATION.md).
 *
 * Every onionpunch-aware node runs the library's own {@link AnnouncementRelay} (and, where its contents are
 * observed or served, an {@link AnnouncementDirectory}) with the classes' defaults, driven by a virtual clock
 * through their `nowS` and `clock` options; the simulator decides nothing about relaying itself. It only supplies
 * what the daemons' sockets would: who is connected to whom, when a message arrives, and the Core-like trickle of
 * outgoing addr messages. Stock nodes hold no relay object: they drop holepunch entries, as Bitcoin Core does with
 * an unknown network id, and only their traffic counters move.
 *
 * Topology (typed arrays): `reachable` share of nodes accept inbound (125 slots); every node opens 8 full-relay
 * and 2 block-relay-only outbound connections to reachable nodes (block-relay-only carry no addr, so they only
 * take slots). `relays` reachable nodes run the relay daemon; every other aware node also connects to
 * `relaysPerNode` of them (configured like DNS seeds) and relays mesh with each other. Announcers (aware NATed
 * nodes) send their announcement to their relays every `announceIntervalS`, as the daemon's Announcer does.
 *
 * With `getaddrS`, aware NATed nodes ask their relays, and relays ask each other, for the fresh set every
 * `getaddrS`; the answer goes into the asker's directory (as the proxy's collector does), never through the relay.
 *
 * What is not instantiated, because nothing downstream can see it: a directory at NATed nodes that are neither
 * observed nor asked for a getaddr answer (the relay object still decides what they forward).
 */
import { createHash } from 'node:crypto';
import {
  AnnouncementDirectory,
  AnnouncementRelay,
  GETADDR_ANSWER_MAX_ENTRIES,
  GETADDR_INTERVAL_S,
  GetaddrMeter,
  RELAY_PUSH_MAX_ENTRIES,
  chunkEntries,
  makeAnnouncement,
  type Announcement,
  type AnnouncementDirectoryOptions,
  type RelayOptions,
  type RelayPeer,
} from '../relay/index.js';
import { addrV2Bytes, compactSizeLength, formatOnion, type AddrV2Entry } from '../wire/index.js';
import { EventHeap } from './heap.js';
import { Prng, mix32 } from './prng.js';
import { SimError } from './errors.js';

/**
 * An explicit small topology (the lab comparison, docs/SIMULATION.md "Validation"): relays are ids 0..relays-1,
 * node i is id relays+i; every node is onionpunch-aware; there are no organic links.
 */
export interface SimTopology {
  relays: number;
  /** Relay pairs linked (`addnode`); both ends pull each other's fresh set. */
  relayLinks: [number, number][];
  nodes: {
    /** The relays (ids) this node links to. */
    relays: number[];
    /** Announces itself to its relays every announce interval. */
    announce?: boolean;
    /** Its directory is observed for coverage and it pulls (getaddr) its relays, as a proxy does. */
    observe?: boolean;
    /** Time of its first announcement, s (default: a seeded uniform offset within the interval). */
    startS?: number;
    /** Time of its first getaddr, s (default: a seeded uniform offset within the getaddr period). */
    pullStartS?: number;
  }[];
  /** Per relay, the time of its first getaddr to its relay links, s (default: seeded, as for nodes). */
  relayPullStartS?: number[];
}

function checkTopology(t: SimTopology): void {
  check(Number.isInteger(t.relays) && t.relays >= 1 && t.relays <= 1000, 'topology.relays must be in [1, 1000]');
  check(Array.isArray(t.nodes) && t.nodes.length >= 2 && t.nodes.length <= 100_000, 'topology.nodes: 2..100000');
  const isRelay = (r: unknown): boolean => Number.isInteger(r) && (r as number) >= 0 && (r as number) < t.relays;
  check(
    Array.isArray(t.relayLinks) &&
      t.relayLinks.every((l) => Array.isArray(l) && l.length === 2 && isRelay(l[0]) && isRelay(l[1]) && l[0] !== l[1]),
    'topology.relayLinks: pairs of distinct relay ids',
  );
  for (const n of t.nodes) {
    check(Array.isArray(n.relays) && n.relays.length >= 1 && n.relays.every(isRelay), 'topology node: relays ids');
    check(n.startS === undefined || (Number.isFinite(n.startS) && n.startS >= 0), 'topology node: startS >= 0');
    check(
      n.pullStartS === undefined || (Number.isFinite(n.pullStartS) && n.pullStartS >= 0),
      'topology node: pullStartS >= 0',
    );
  }
  check(t.nodes.some((n) => n.announce) && t.nodes.some((n) => n.observe), 'topology: an announcer and an observer');
}

/** Options of {@link runRelaySim}. */
export interface RelaySimOptions {
  /** Nodes in the network. */
  nodes: number;
  /** Share of nodes accepting inbound connections (today about 0.2). */
  reachable: number;
  /** Share of nodes that are onionpunch-aware (relay holepunch entries); the rest are stock and drop them. */
  adoption: number;
  /** Relay daemons (on reachable hosts). */
  relays: number;
  /** Relays each aware node keeps a connection to (like seednodes). */
  relaysPerNode: number;
  /** NATed aware nodes that announce themselves. */
  announcers: number;
  /** Simulated time, s. */
  durationS: number;
  seed: string;
  /** Seconds between announcements (the daemon's `announceinterval`). */
  announceIntervalS: number;
  /** Mean of the Poisson trickle of addr messages to a peer, s (Bitcoin Core: 30 s). */
  trickleS?: number;
  /** Most entries a node puts in one relayed addrv2 message (default: the relay's, RELAY_PUSH_MAX_ENTRIES). */
  sendBatch?: number;
  /**
   * Aware NATed nodes ask their relays for the fresh set (getaddr) every this many s; 0 = never (push only).
   * Default {@link GETADDR_INTERVAL_S}, the daemons' `getaddrinterval`.
   */
  getaddrS?: number;
  /** A relay's least time between two getaddr answers to one asker, s (default: GetaddrMeter's, 60). */
  getaddrSpacingS?: number;
  /** Passed to every node's AnnouncementRelay (the simulator sets secret, nowS and clock). */
  relayOptions?: Omit<RelayOptions, 'secret' | 'nowS' | 'clock'>;
  /** Overrides of relayOptions for the relay daemons only (e.g. a larger fanout towards their clients). */
  relayDaemonOptions?: Omit<RelayOptions, 'secret' | 'nowS' | 'clock'>;
  /** Passed to every AnnouncementDirectory (the simulator sets nowS). */
  directoryOptions?: Omit<AnnouncementDirectoryOptions, 'nowS'>;
  /** One attacker peer sends this many fake announcements a minute (0 = none). */
  floodPerMin?: number;
  /** Aware reachable non-relay nodes the attacker connects to, besides every relay. */
  floodPeers?: number;
  /** This many relays are the attacker's: they accept and never forward or answer getaddr. */
  suppressRelays?: number;
  /** Aware NATed nodes whose directories are observed for coverage (a seeded sample). */
  observers?: number;
  /** Coverage sampling period, s. */
  sampleS?: number;
  /** An explicit topology instead of the generated one (nodes, reachable, adoption, relays... are then ignored). */
  topology?: SimTopology;
  /** Median and log-sigma of one-way link latency (log-normal), ms. */
  latencyMedianMs?: number;
  latencySigma?: number;
}

/** Summary statistics of a per-node quantity. */
export interface Dist {
  mean: number;
  p99: number;
  max: number;
}

/** What {@link runRelaySim} measured. */
export interface RelaySimResult {
  nodes: number;
  adoption: number;
  seed: string;
  durationS: number;
  params: Record<string, unknown>;
  topology: {
    reachable: number;
    aware: number;
    awareNated: number;
    relays: number;
    announcers: number;
    observers: number;
    /** Mean number of aware peers (addr-relaying connections to aware nodes) of an aware NATed node. */
    meanAwarePeersNated: number;
  };
  coverage: {
    /** Median over announcers of the time from first announcement until 50% of observers had it (null: never). */
    p50Ms: number | null;
    p90Ms: number | null;
    /** Share of (observer, announcer) pairs where the observer got the announcer's entry within 10 min. */
    at10min: number;
    /** Share of announcers that reached 50% / 90% of observers at all. */
    reached50: number;
    reached90: number;
    /** Mean share of observers holding a fresh entry, per announcer that has started, over time. */
    series: { tS: number; coverage: number; fakeShare: number }[];
    /** Mean of the series over its second half (steady state). */
    steady: number;
    /**
     * Explicit topology only: per (observer, announcer) pair, the time from the announcer's first announcement
     * until the observer held its entry, ms, sorted (null: never).
     */
    pairDelaysMs?: (number | null)[];
  };
  perNodeMsgsPerHour: Dist;
  perNodeBytesPerHour: Dist;
  busiestRelay: { msgsPerHour: number; bytesPerHour: number };
  stockNodes: { msgsPerHourMean: number; msgsPerHourMax: number; bytesPerHourMean: number };
  drops: {
    rateLimited: number;
    stale: number;
    duplicate: number;
    invalid: number;
    toStock: number;
    /** getaddr requests a relay did not answer (its GetaddrMeter). */
    getaddrLimited: number;
  };
  flood?: { perMin: number; sent: number; acceptedNetworkWide: number; fakeShareInDirectories: number };
  suppress?: { relays: number };
  events: number;
  wallMs: number;
}

const F_REACH = 1;
const F_AWARE = 2;
const F_RELAY = 4;
const F_ANNOUNCER = 8;
const F_OBSERVER = 16;
const F_SUPPRESS = 32;

const EV_DELIVER = 1;
const EV_TICK = 2;
const EV_ANNOUNCE = 3;
const EV_FLOOD = 4;
const EV_SAMPLE = 5;
const EV_PULL = 6;
const EV_GETADDR_REQ = 7;
const EV_GETADDR_RESP = 8;

/** Wire header of a P2P message. */
const HEADER_BYTES = 24;
/** Virtual epoch, s: fixed so that a run does not depend on the wall clock. */
const EPOCH_S = 1_800_000_000;
const INBOUND_SLOTS = 125;
const FULL_OUTBOUND = 8;
const BLOCK_OUTBOUND = 2;

/**
 * AnnouncementDirectory.add with the relaying peer as the entry's source. Directories that meter and evict per
 * source take it as a second argument; one that does not ignores it, so the simulator follows either version.
 */
function addFrom(dir: AnnouncementDirectory, a: Announcement, source: string): boolean {
  return (dir.add as (a: Announcement, source?: string) => boolean).call(dir, a, source);
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new SimError('SIM_BAD_OPTION', what);
}

function pctl(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function dist(xs: Float64Array): Dist {
  if (xs.length === 0) return { mean: 0, p99: 0, max: 0 };
  const s = Float64Array.from(xs).sort();
  let sum = 0;
  for (const x of s) sum += x;
  return { mean: sum / s.length, p99: pctl(s, 0.99), max: s[s.length - 1]! };
}

/** Runs one simulation. Synchronous and deterministic for a given seed and options. */
export function runRelaySim(o: RelaySimOptions): RelaySimResult {
  const wall0 = performance.now();
  const T = o.topology;
  if (T) checkTopology(T);
  const N = T ? T.relays + T.nodes.length : o.nodes;
  if (!T) {
    check(Number.isInteger(N) && N >= 10 && N <= 2_000_000, 'nodes must be an integer in [10, 2000000]');
    check(o.reachable > 0 && o.reachable <= 1, 'reachable must be in (0, 1]');
    check(o.adoption >= 0 && o.adoption <= 1, 'adoption must be in [0, 1]');
    check(Number.isInteger(o.relays) && o.relays >= 0, 'relays must be an integer >= 0');
    check(Number.isInteger(o.relaysPerNode) && o.relaysPerNode >= 0, 'relaysPerNode must be an integer >= 0');
    check(Number.isInteger(o.announcers) && o.announcers >= 1, 'announcers must be an integer >= 1');
  }
  check(o.durationS > 0 && o.durationS <= 7 * 86400, 'duration must be in (0, 7 days]');
  check(o.announceIntervalS > 0, 'announce interval must be > 0');
  const trickleMs = (o.trickleS ?? 30) * 1000;
  const sendBatch = o.sendBatch ?? o.relayOptions?.maxEntriesToRelay ?? RELAY_PUSH_MAX_ENTRIES;
  check(Number.isInteger(sendBatch) && sendBatch >= 1, 'sendBatch must be an integer >= 1');
  const getaddrMs = (o.getaddrS ?? GETADDR_INTERVAL_S) * 1000;
  const floodPerMin = o.floodPerMin ?? 0;
  const suppress = o.suppressRelays ?? 0;
  check(suppress <= (T ? T.relays : o.relays), 'suppressRelays must be <= relays');
  const sampleMs = (o.sampleS ?? 60) * 1000;
  const latMed = o.latencyMedianMs ?? 40;
  const latSigma = o.latencySigma ?? 0.5;
  const endMs = o.durationS * 1000;
  const seed = o.seed;
  const topo = new Prng(seed, 'topology');
  const timers = new Prng(seed, 'timers');

  // ---- roles ----
  // An explicit topology: ids 0..relays-1 are the relays (reachable), then the nodes (NATed), all aware.
  const R = T ? T.relays : Math.max(1, Math.round(N * o.reachable));
  check(T !== undefined || o.relays <= R, 'more relays than reachable nodes');
  const ATT = N; // the attacker's id (one past the last node)
  const flags = new Uint8Array(N + 1);
  for (let i = 0; i < R; i++) flags[i] |= F_REACH;
  for (let i = 0; i < N; i++) if (T || topo.next() < o.adoption) flags[i] |= F_AWARE;
  const relayIds: number[] = [];
  if (T) {
    for (let k = 0; k < R; k++) {
      relayIds.push(k);
      flags[k] |= F_RELAY | (k < suppress ? F_SUPPRESS : 0);
    }
  } else {
    const pool = Int32Array.from({ length: R }, (_, i) => i);
    topo.shuffle(pool);
    for (let k = 0; k < o.relays; k++) {
      const id = pool[k]!;
      relayIds.push(id);
      flags[id] |= F_AWARE | F_RELAY;
      if (k < suppress) flags[id] |= F_SUPPRESS;
    }
  }
  const awareNated: number[] = [];
  for (let i = R; i < N; i++) if (flags[i]! & F_AWARE) awareNated.push(i);
  check(awareNated.length >= 2, `only ${awareNated.length} aware NATed nodes: raise nodes or adoption`);
  const announcerIds = T ? awareNated.filter((u) => T.nodes[u - R]!.announce) : awareNated.slice();
  if (!T) {
    topo.shuffle(announcerIds);
    announcerIds.length = Math.min(o.announcers, announcerIds.length);
  }
  for (const id of announcerIds) flags[id] |= F_ANNOUNCER;
  const observerIds = T ? awareNated.filter((u) => T.nodes[u - R]!.observe) : awareNated.slice();
  if (!T) {
    topo.shuffle(observerIds);
    observerIds.length = Math.min(o.observers ?? 1000, observerIds.length);
  }
  const obsIndex = new Int32Array(N + 1).fill(-1);
  observerIds.forEach((id, k) => {
    flags[id] |= F_OBSERVER;
    obsIndex[id] = k;
  });

  // ---- organic connections: edges with at least one aware end (the others never carry a holepunch entry) ----
  const inbound = new Uint8Array(R);
  const eu: number[] = [];
  const ev: number[] = [];
  const chosen = new Int32Array(FULL_OUTBOUND + BLOCK_OUTBOUND);
  // An explicit topology has no organic links: only its relay links.
  for (let u = 0; u < (T ? 0 : N); u++) {
    let n = 0;
    for (let tries = 0; n < FULL_OUTBOUND + BLOCK_OUTBOUND && tries < 200; tries++) {
      const v = topo.int(R);
      if (v === u || inbound[v]! >= INBOUND_SLOTS) continue;
      let dup = false;
      for (let j = 0; j < n; j++) if (chosen[j] === v) dup = true;
      if (dup) continue;
      chosen[n++] = v;
      inbound[v]!++;
      // The first 8 are full-relay, the last 2 block-relay-only (no addr: not an edge of the addr graph).
      if (n <= FULL_OUTBOUND && (flags[u]! & F_AWARE || flags[v]! & F_AWARE)) {
        eu.push(u);
        ev.push(v);
      }
    }
  }
  // Relay links: every aware node to relaysPerNode relays; relays in a full mesh. Explicit: as listed.
  if (T) {
    T.nodes.forEach((n, i) => {
      for (const r of new Set(n.relays)) {
        eu.push(R + i);
        ev.push(r);
      }
    });
    for (const [a, b] of T.relayLinks) {
      eu.push(a);
      ev.push(b);
    }
  } else if (relayIds.length > 0) {
    for (let u = 0; u < N; u++) {
      if (!(flags[u]! & F_AWARE) || flags[u]! & F_RELAY) continue;
      const k = Math.min(o.relaysPerNode, relayIds.length);
      const picked = new Set<number>();
      while (picked.size < k) picked.add(relayIds[topo.int(relayIds.length)]!);
      for (const r of picked) {
        eu.push(u);
        ev.push(r);
      }
    }
    for (let a = 0; a < relayIds.length; a++) {
      for (let b = a + 1; b < relayIds.length; b++) {
        eu.push(relayIds[a]!);
        ev.push(relayIds[b]!);
      }
    }
  }
  // The flooding attacker: an inbound peer of every relay and of floodPeers aware reachable nodes.
  const attackerPeers: number[] = [];
  if (floodPerMin > 0) {
    attackerPeers.push(...relayIds);
    const cands: number[] = [];
    for (let i = 0; i < R; i++) if (flags[i]! & F_AWARE && !(flags[i]! & F_RELAY)) cands.push(i);
    topo.shuffle(cands);
    attackerPeers.push(...cands.slice(0, o.floodPeers ?? 8));
    for (const v of attackerPeers) {
      eu.push(ATT);
      ev.push(v);
    }
  }
  // CSR adjacency of aware nodes (deduplicated: an organic link may coincide with a relay link).
  const deg = new Int32Array(N + 2);
  for (let i = 0; i < eu.length; i++) {
    if (flags[eu[i]!]! & F_AWARE) deg[eu[i]!]!++;
    if (flags[ev[i]!]! & F_AWARE) deg[ev[i]!]!++;
  }
  const off = new Int32Array(N + 2);
  for (let i = 0; i <= N; i++) off[i + 1] = off[i]! + deg[i]!;
  const adj = new Int32Array(off[N + 1]!);
  const fill = off.slice(0, N + 1);
  for (let i = 0; i < eu.length; i++) {
    const a = eu[i]!;
    const b = ev[i]!;
    if (flags[a]! & F_AWARE) adj[fill[a]!++] = b;
    if (flags[b]! & F_AWARE) adj[fill[b]!++] = a;
  }

  // ---- aware nodes: the real relay (and directory where it is read) ----
  const peerObj: RelayPeer[] = new Array(N + 1);
  const peerOf = (id: number): RelayPeer => (peerObj[id] ??= { id: String(id), clearnet: true, addrv2: true });
  let nowMs = 0;
  const nowS = (): number => EPOCH_S + Math.floor(nowMs / 1000);
  const clock = (): number => nowMs;
  const relayOf: (AnnouncementRelay | undefined)[] = new Array(N + 1);
  const dirOf: (AnnouncementDirectory | undefined)[] = new Array(N + 1);
  const peersOf: (RelayPeer[] | undefined)[] = new Array(N + 1);
  let awareCount = 0;
  let awarePeersNated = 0;
  for (let u = 0; u < N; u++) {
    if (!(flags[u]! & F_AWARE)) continue;
    awareCount++;
    const ids = [...new Set(adj.subarray(off[u]!, fill[u]!))].sort((x, y) => x - y);
    peersOf[u] = ids.map(peerOf);
    if (!(flags[u]! & F_REACH)) for (const v of ids) if (flags[v]! & F_AWARE) awarePeersNated++;
    const secret = createHash('sha256').update(seed).update('\0relay-secret\0').update(String(u)).digest();
    const extra = flags[u]! & F_RELAY ? o.relayDaemonOptions : undefined;
    relayOf[u] = new AnnouncementRelay({ ...o.relayOptions, ...extra, secret, nowS, clock });
    if (flags[u]! & (F_RELAY | F_OBSERVER)) dirOf[u] = new AnnouncementDirectory({ ...o.directoryOptions, nowS });
  }

  // ---- announcements ----
  const entryBytes = (e: AddrV2Entry): number =>
    4 + compactSizeLength(e.services) + 1 + compactSizeLength(addrV2Bytes(e).length) + addrV2Bytes(e).length + 2;
  const ipOf = (p: Prng): string => `${1 + p.int(222)}.${p.int(256)}.${p.int(256)}.${1 + p.int(254)}`;
  const onionOf = (p: Prng): string => {
    const k = Buffer.alloc(32);
    for (let i = 0; i < 32; i += 4) k.writeUInt32LE(p.u32(), i);
    return formatOnion(k);
  };
  const annPrng = new Prng(seed, 'announcers');
  const annCoord: string[] = [];
  const annClear: { address: string; port: number }[] = [];
  const annIndex = new Map<string, number>();
  for (let k = 0; k < announcerIds.length; k++) {
    annCoord.push(onionOf(annPrng));
    annClear.push({ address: ipOf(annPrng), port: 8333 });
    annIndex.set(annCoord[k]!, k);
  }
  const announcement = (coordination: string, clearnet: { address: string; port: number }, t: number): AddrV2Entry =>
    makeAnnouncement({ coordination, coordinationPort: 8333, clearnet, nowS: t });
  const ENTRY_BYTES = entryBytes(announcement(annCoord[0]!, annClear[0]!, EPOCH_S));
  const msgBytes = (n: number): number => HEADER_BYTES + compactSizeLength(n) + n * ENTRY_BYTES;
  const A = announcerIds.length;
  const O = observerIds.length;
  const t0 = new Float64Array(A).fill(-1);
  const firstHeld = new Float64Array(O * A).fill(-1);

  // ---- counters ----
  const sentMsgs = new Float64Array(N + 1);
  const sentBytes = new Float64Array(N + 1);
  const recvMsgs = new Float64Array(N + 1);
  const recvBytes = new Float64Array(N + 1);
  const drops = { rateLimited: 0, stale: 0, duplicate: 0, invalid: 0, toStock: 0 };
  let fakeSent = 0;
  let fakeAccepted = 0;

  // ---- messages in flight ----
  const heap = new EventHeap();
  const msgFrom: number[] = [];
  const msgTo: number[] = [];
  const msgBody: (AddrV2Entry[] | Announcement[] | null)[] = [];
  const freeSlots: number[] = [];
  const newMsg = (from: number, to: number, body: AddrV2Entry[] | Announcement[] | null): number => {
    const s = freeSlots.length > 0 ? freeSlots.pop()! : msgFrom.length;
    msgFrom[s] = from;
    msgTo[s] = to;
    msgBody[s] = body;
    return s;
  };
  const salt = new Prng(seed, 'latency').u32();
  const latencyMs = (a: number, b: number): number => {
    const x = a < b ? a : b;
    const y = a < b ? b : a;
    const u1 = (mix32(x, y, salt) + 1) / 4294967297;
    const u2 = (mix32(y, x, salt ^ 0x5bd1e995) + 1) / 4294967297;
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    return Math.min(2000, latMed * Math.exp(latSigma * z));
  };

  /** Sends `entries` from u to v now, in messages of at most sendBatch entries. */
  const send = (u: number, v: number, entries: AddrV2Entry[]): void => {
    for (let i = 0; i < entries.length; i += sendBatch) {
      const chunk = entries.slice(i, i + sendBatch);
      const b = msgBytes(chunk.length);
      sentMsgs[u]!++;
      sentBytes[u]! += b;
      recvMsgs[v]!++;
      recvBytes[v]! += b;
      if (!(flags[v]! & F_AWARE)) {
        drops.toStock += chunk.length; // a stock node (or the attacker) ignores the unknown network id
        continue;
      }
      heap.push(nowMs + latencyMs(u, v), EV_DELIVER, newMsg(u, v, chunk));
    }
  };

  const pending: (Map<number, AddrV2Entry[]> | undefined)[] = new Array(N + 1);
  const enqueue = (u: number, v: number, entries: AddrV2Entry[]): void => {
    let m = pending[u];
    if (!m) {
      pending[u] = m = new Map();
      heap.push(nowMs + timers.exp(trickleMs), EV_TICK, u);
    }
    const q = m.get(v);
    if (q) q.push(...entries);
    else m.set(v, entries.slice());
  };

  const deliver = (s: number): void => {
    const u = msgFrom[s]!;
    const v = msgTo[s]!;
    const entries = msgBody[s] as AddrV2Entry[];
    msgBody[s] = null;
    freeSlots.push(s);
    if (flags[v]! & F_SUPPRESS) return;
    const d = relayOf[v]!.onAddrV2(peerOf(u), entries, peersOf[v]!);
    drops.rateLimited += d.dropped.rateLimited;
    drops.stale += d.dropped.stale;
    drops.duplicate += d.dropped.duplicate;
    drops.invalid += d.dropped.invalid;
    const dir = dirOf[v];
    for (const a of d.accepted) {
      const k = annIndex.get(a.coordination);
      if (k === undefined) fakeAccepted++;
      if (dir && addFrom(dir, a, String(u))) {
        const ob = obsIndex[v]!;
        if (ob >= 0 && k !== undefined && firstHeld[ob * A + k]! < 0) firstHeld[ob * A + k] = nowMs;
      }
    }
    for (const [pid, list] of d.forward) enqueue(v, +pid, list);
  };

  // ---- schedule ----
  for (let k = 0; k < A; k++) {
    const startS = T?.nodes[announcerIds[k]! - R]!.startS;
    heap.push((startS ?? timers.next() * o.announceIntervalS) * 1000, EV_ANNOUNCE, k);
  }
  for (let t = sampleMs; t <= endMs; t += sampleMs) heap.push(t, EV_SAMPLE, 0);
  const floodBatchMs = floodPerMin > 0 ? 60_000 / (floodPerMin / sendBatch) : 0;
  if (floodPerMin > 0 && attackerPeers.length > 0) heap.push(0, EV_FLOOD, 0);
  if (getaddrMs > 0 && relayIds.length > 0) {
    // Explicit topology: the nodes that observe are the ones that pull (a proxy's collector; an announcer is not).
    for (const u of T ? observerIds : awareNated) {
      const at = T?.nodes[u - R]!.pullStartS;
      heap.push(at !== undefined ? at * 1000 : timers.next() * getaddrMs, EV_PULL, u);
    }
    // Relays keep each other's fresh sets the same way (a relay's configured relay peers).
    for (const u of relayIds) {
      const at = T?.relayPullStartS?.[u];
      heap.push(at !== undefined ? at * 1000 : timers.next() * getaddrMs, EV_PULL, u);
    }
  }
  const floodPrng = new Prng(seed, 'flood');
  let floodRound = 0;
  const listCache = new Map<number, { at: number; list: Announcement[] }>();
  const getaddrMeters = new Map<number, GetaddrMeter>();
  const getaddrMeterOf = (r: number): GetaddrMeter => {
    let m = getaddrMeters.get(r);
    if (!m) getaddrMeters.set(r, (m = new GetaddrMeter({ clock, spacingS: o.getaddrSpacingS })));
    return m;
  };
  let getaddrLimited = 0;
  const freshSet = (r: number): Announcement[] => {
    const c = listCache.get(r);
    const sec = Math.floor(nowMs / 1000);
    if (c && c.at === sec) return c.list;
    const list = dirOf[r]!.list();
    listCache.set(r, { at: sec, list });
    return list;
  };

  const series: RelaySimResult['coverage']['series'] = [];
  const held = new Int32Array(A);
  const sample = (): void => {
    held.fill(0);
    let fake = 0;
    let total = 0;
    for (const id of observerIds) {
      for (const a of dirOf[id]!.list()) {
        total++;
        const k = annIndex.get(a.coordination);
        if (k === undefined) fake++;
        else if (announcerIds[k] !== id) held[k]!++;
      }
    }
    let sum = 0;
    let started = 0;
    for (let k = 0; k < A; k++) {
      if (t0[k]! < 0) continue;
      started++;
      sum += held[k]! / (O - (flags[announcerIds[k]!]! & F_OBSERVER ? 1 : 0));
    }
    series.push({ tS: nowMs / 1000, coverage: started ? sum / started : 0, fakeShare: total ? fake / total : 0 });
  };

  let events = 0;
  while (heap.size > 0 && heap.peekTime() <= endMs) {
    heap.pop();
    nowMs = heap.lastTime;
    events++;
    const arg = heap.lastArg;
    switch (heap.lastKind) {
      case EV_DELIVER:
        deliver(arg);
        break;
      case EV_TICK: {
        const m = pending[arg]!;
        pending[arg] = undefined;
        for (const [v, list] of m) send(arg, v, list);
        break;
      }
      case EV_ANNOUNCE: {
        const u = announcerIds[arg]!;
        if (t0[arg]! < 0) t0[arg] = nowMs;
        const e = announcement(annCoord[arg]!, annClear[arg]!, nowS());
        // The daemon's Announcer sends straight to its configured peers (the relays); without relays, to all.
        const targets = peersOf[u]!.filter((p) => relayIds.length === 0 || flags[+p.id]! & F_RELAY);
        for (const p of targets) send(u, +p.id, [e]);
        heap.push(nowMs + o.announceIntervalS * 1000, EV_ANNOUNCE, arg);
        break;
      }
      case EV_FLOOD: {
        const v = attackerPeers[floodRound++ % attackerPeers.length]!;
        const batch: AddrV2Entry[] = [];
        for (let i = 0; i < sendBatch; i++) {
          batch.push(announcement(onionOf(floodPrng), { address: ipOf(floodPrng), port: 8333 }, nowS()));
        }
        fakeSent += batch.length;
        send(ATT, v, batch);
        heap.push(nowMs + floodBatchMs, EV_FLOOD, 0);
        break;
      }
      case EV_SAMPLE:
        sample();
        break;
      case EV_PULL: {
        for (const p of peersOf[arg]!) {
          const r = +p.id;
          if (!(flags[r]! & F_RELAY)) continue;
          sentMsgs[arg]!++;
          sentBytes[arg]! += HEADER_BYTES;
          recvMsgs[r]!++;
          recvBytes[r]! += HEADER_BYTES;
          heap.push(nowMs + latencyMs(arg, r), EV_GETADDR_REQ, newMsg(arg, r, null));
        }
        heap.push(nowMs + getaddrMs, EV_PULL, arg);
        break;
      }
      case EV_GETADDR_REQ: {
        const u = msgFrom[arg]!;
        const r = msgTo[arg]!;
        freeSlots.push(arg);
        if (flags[r]! & F_SUPPRESS) break;
        // The relay daemon's meter: one answer per asker address per GETADDR_MIN_SPACING_S.
        if (!getaddrMeterOf(r).allow(String(u))) {
          getaddrLimited++;
          break;
        }
        const list = freshSet(r);
        // As the relay daemon: in messages of at most GETADDR_ANSWER_MAX_ENTRIES (an empty set: one empty message).
        for (const chunk of list.length > 0 ? chunkEntries(list, GETADDR_ANSWER_MAX_ENTRIES) : [list]) {
          const b = msgBytes(chunk.length);
          sentMsgs[r]!++;
          sentBytes[r]! += b;
          recvMsgs[u]!++;
          recvBytes[u]! += b;
        }
        // Only an observed or served directory can show the answer; for the others only the traffic counts.
        if (flags[u]! & (F_OBSERVER | F_RELAY)) heap.push(nowMs + latencyMs(u, r), EV_GETADDR_RESP, newMsg(r, u, list));
        break;
      }
      case EV_GETADDR_RESP: {
        const u = msgTo[arg]!;
        const source = String(msgFrom[arg]);
        const list = msgBody[arg] as Announcement[];
        msgBody[arg] = null;
        freeSlots.push(arg);
        // As the proxy's collector: a getaddr answer goes to the directory, not through the relay.
        const dir = dirOf[u]!;
        const ob = obsIndex[u]!;
        for (const a of list) {
          if (!addFrom(dir, a, source)) continue;
          const k = annIndex.get(a.coordination);
          if (ob >= 0 && k !== undefined && firstHeld[ob * A + k]! < 0) firstHeld[ob * A + k] = nowMs;
        }
        break;
      }
    }
  }
  nowMs = endMs;

  // ---- metrics ----
  const t50: number[] = [];
  const t90: number[] = [];
  let within10 = 0;
  let pairs10 = 0;
  const times = new Float64Array(O);
  const pairDelays: number[] = [];
  for (let k = 0; k < A; k++) {
    if (t0[k]! < 0) continue;
    let n = 0;
    for (let ob = 0; ob < O; ob++) {
      if (observerIds[ob] === announcerIds[k]) continue;
      const f = firstHeld[ob * A + k]!;
      const dt = f < 0 ? Infinity : f - t0[k]!;
      times[n++] = dt;
      if (T) pairDelays.push(dt);
      if (t0[k]! + 600_000 <= endMs) {
        pairs10++;
        if (dt <= 600_000) within10++;
      }
    }
    const s = times.subarray(0, n).sort();
    t50.push(pctl(s, 0.5));
    t90.push(pctl(s, 0.9));
  }
  const med = (xs: number[]): number | null => {
    const s = Float64Array.from(xs).sort();
    const m = pctl(s, 0.5);
    return Number.isFinite(m) ? Math.round(m) : null;
  };
  const hours = o.durationS / 3600;
  const awareIds: number[] = [];
  for (let u = 0; u < N; u++) if (flags[u]! & F_AWARE) awareIds.push(u);
  const perMsgs = Float64Array.from(awareIds, (u) => (sentMsgs[u]! + recvMsgs[u]!) / hours);
  const perBytes = Float64Array.from(awareIds, (u) => (sentBytes[u]! + recvBytes[u]!) / hours);
  let busiest = { msgsPerHour: 0, bytesPerHour: 0 };
  for (const r of relayIds) {
    const m = (sentMsgs[r]! + recvMsgs[r]!) / hours;
    if (m > busiest.msgsPerHour) busiest = { msgsPerHour: m, bytesPerHour: (sentBytes[r]! + recvBytes[r]!) / hours };
  }
  let stockN = 0;
  let stockMsgs = 0;
  let stockMax = 0;
  let stockBytes = 0;
  for (let u = 0; u < N; u++) {
    if (flags[u]! & F_AWARE) continue;
    stockN++;
    stockMsgs += recvMsgs[u]!;
    stockBytes += recvBytes[u]!;
    if (recvMsgs[u]! > stockMax) stockMax = recvMsgs[u]!;
  }
  const half = series.slice(Math.floor(series.length / 2));
  const last = series[series.length - 1];
  const round = (x: number, d = 4): number => Math.round(x * 10 ** d) / 10 ** d;
  const rd = (x: Dist): Dist => ({ mean: round(x.mean, 1), p99: round(x.p99, 1), max: round(x.max, 1) });
  return {
    nodes: N,
    adoption: o.adoption,
    seed,
    durationS: o.durationS,
    params: {
      reachable: o.reachable,
      relays: o.relays,
      relaysPerNode: o.relaysPerNode,
      announcers: o.announcers,
      announceIntervalS: o.announceIntervalS,
      trickleS: trickleMs / 1000,
      sendBatch,
      getaddrS: getaddrMs / 1000,
      relayOptions: o.relayOptions ?? {},
      relayDaemonOptions: o.relayDaemonOptions ?? {},
      directoryOptions: o.directoryOptions ?? {},
    },
    topology: {
      reachable: R,
      aware: awareCount,
      awareNated: awareNated.length,
      relays: relayIds.length,
      announcers: A,
      observers: O,
      meanAwarePeersNated: round(awarePeersNated / awareNated.length, 2),
    },
    coverage: {
      p50Ms: med(t50),
      p90Ms: med(t90),
      at10min: pairs10 ? round(within10 / pairs10) : 0,
      reached50: round(t50.filter(Number.isFinite).length / Math.max(1, t50.length)),
      reached90: round(t90.filter(Number.isFinite).length / Math.max(1, t90.length)),
      series: series.map((p) => ({ tS: p.tS, coverage: round(p.coverage), fakeShare: round(p.fakeShare) })),
      steady: half.length ? round(half.reduce((s, p) => s + p.coverage, 0) / half.length) : 0,
      ...(T
        ? { pairDelaysMs: pairDelays.sort((x, y) => x - y).map((d) => (Number.isFinite(d) ? Math.round(d) : null)) }
        : {}),
    },
    perNodeMsgsPerHour: rd(dist(perMsgs)),
    perNodeBytesPerHour: rd(dist(perBytes)),
    busiestRelay: { msgsPerHour: round(busiest.msgsPerHour, 1), bytesPerHour: round(busiest.bytesPerHour, 1) },
    stockNodes: {
      msgsPerHourMean: round(stockN ? stockMsgs / stockN / hours : 0, 2),
      msgsPerHourMax: round(stockMax / hours, 1),
      bytesPerHourMean: round(stockN ? stockBytes / stockN / hours : 0, 1),
    },
    drops: { ...drops, getaddrLimited },
    ...(floodPerMin > 0
      ? {
          flood: {
            perMin: floodPerMin,
            sent: fakeSent,
            acceptedNetworkWide: fakeAccepted,
            fakeShareInDirectories: last ? last.fakeShare : 0,
          },
        }
      : {}),
    ...(suppress > 0 ? { suppress: { relays: suppress } } : {}),
    events,
    wallMs: Math.round(performance.now() - wall0),
  };
}
