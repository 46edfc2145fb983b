/**
 * Best-effort relay of hole-punch announcements, modelled on Bitcoin Core's addr relay but never storing
 * anything in an address manager: an announcement is relayed only while fresh (10 min), only out of
 * messages of at most 10 entries, to at most 2 peers chosen deterministically from a secret, the announced
 * address (never its sender-chosen time) and an hourly bucket of our own clock, as Bitcoin Core's RelayAddress
 * does with a 24 h bucket; once (deduplicated); and each peer's contribution is metered by a token bucket
 * (0.1/s, up to 1000, starting at {@link RELAY_BUCKET_INITIAL}: a new peer, or a reconnected one, must earn its
 * budget, as with Bitcoin Core's addr token bucket).
 * Only clearnet peers that negotiated sendaddrv2 take part: announcements never cross Tor/I2P/CJDNS links,
 * which would link the coordination identity to the node's other identities.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { AddrV2Entry } from '../wire/index.js';
import { KeyedBuckets, type Clock, monotonicMs } from '../limits/index.js';
import { announcementAddressKey, announcementKey, isFresh, toAnnouncement, type Announcement } from './announcement.js';
import { RelayError } from './errors.js';
import { GETADDR_ANSWER_MAX_ENTRIES, RELAY_BUCKET_INITIAL, RELAY_FANOUT, RELAY_PUSH_MAX_ENTRIES } from './defaults.js';

/**
 * Length of the time bucket in the relay-target hash, seconds: one hour. The bucket comes from our clock, not
 * the entry, so varying `time` cannot change the targets. Bitcoin Core uses 24 h for addr; announcements are
 * re-sent every ~10 minutes and live 10 minutes, so one hour keeps six consecutive announcements (and any resend
 * of them) on the same 2 peers per relay, while an announcement whose 2 targets happen to be dead ends reaches
 * other peers within the hour instead of the next day. Over a day one address reaches at most 2 x 25 peers
 * from one relay.
 */
export const RELAY_TARGET_BUCKET_S = 3600;

/** Addresses whose last target choice is remembered (a few MB at most on a relay with hundreds of peers). */
const TARGET_MEMO_MAX = 2048;

/** A connected peer as the relay sees it. */
export interface RelayPeer {
  id: string;
  /** True for clearnet (IPv4/IPv6) connections; false for Tor, I2P, CJDNS. */
  clearnet: boolean;
  /** The peer sent `sendaddrv2` before `verack`. */
  addrv2: boolean;
}

export interface RelayOptions {
  /** Secret that makes the choice of relay targets unpredictable to outsiders (random by default). */
  secret?: Buffer;
  /** Relay targets per announcement (default {@link RELAY_FANOUT}; Bitcoin Core: 2 for reachable networks). */
  fanout?: number;
  /** Most entries in a message for its entries to be relayed (default {@link RELAY_PUSH_MAX_ENTRIES}; Core: 10). */
  maxEntriesToRelay?: number;
  /**
   * Per-peer token bucket (Bitcoin Core: 0.1 address/s, bucket of 1000); a peer's bucket starts with
   * {@link RELAY_BUCKET_INITIAL} tokens (at most the capacity).
   */
  ratePerSec?: number;
  bucketCapacity?: number;
  /** Most peers whose buckets are remembered. */
  maxPeers?: number;
  /** Most announcement keys remembered for deduplication. */
  maxSeen?: number;
  /** Wall clock in seconds (announcement times are wall-clock). */
  nowS?: () => number;
  /** Monotonic ms clock for the token buckets. */
  clock?: Clock;
  /** Length of the time bucket of the target choice, s (default {@link RELAY_TARGET_BUCKET_S}). */
  targetBucketS?: number;
}

/** What happened to one incoming addrv2 message. */
export interface RelayDecision {
  /** Fresh, valid announcements from the message (for the local punch logic). */
  accepted: Announcement[];
  /** Entries to send on, per peer id. */
  forward: Map<string, AddrV2Entry[]>;
  /** Counts of entries dropped and why. */
  dropped: { rateLimited: number; stale: number; duplicate: number; invalid: number; notHolepunch: number };
}

export class AnnouncementRelay {
  private readonly secret: Buffer;
  private readonly fanout: number;
  private readonly maxEntriesToRelay: number;
  private readonly buckets: KeyedBuckets<string>;
  private readonly seen = new Map<string, number>();
  private readonly maxSeen: number;
  private readonly nowS: () => number;
  private readonly bucketS: number;
  /** Last target choice per announced address (see chooseTargets), bounded by {@link TARGET_MEMO_MAX}. */
  private readonly targetMemo = new Map<string, { offset: number; bucket: string; ids: string; chosen: number[] }>();
  /** Peers we sent `getaddr` to whose answer has not come yet (bounded like the buckets). */
  private readonly awaiting = new Set<string>();
  private readonly maxPeers: number;
  private readonly bucketCapacity: number;

  constructor(opts: RelayOptions = {}) {
    this.secret = opts.secret ?? randomBytes(32);
    this.fanout = opts.fanout ?? RELAY_FANOUT;
    this.maxEntriesToRelay = opts.maxEntriesToRelay ?? RELAY_PUSH_MAX_ENTRIES;
    this.maxPeers = opts.maxPeers ?? 10_000;
    this.maxSeen = opts.maxSeen ?? 50_000;
    if (!Number.isInteger(this.fanout) || this.fanout < 0)
      throw new RelayError('RELAY_BAD_CONFIG', 'fanout must be an integer >= 0');
    if (!Number.isInteger(this.maxSeen) || this.maxSeen < 1)
      throw new RelayError('RELAY_BAD_CONFIG', 'maxSeen must be an integer >= 1');
    this.bucketCapacity = opts.bucketCapacity ?? 1000;
    this.buckets = new KeyedBuckets<string>({
      ratePerSec: opts.ratePerSec ?? 0.1,
      capacity: this.bucketCapacity,
      initial: RELAY_BUCKET_INITIAL,
      maxKeys: this.maxPeers,
      clock: opts.clock ?? monotonicMs,
    });
    this.nowS = opts.nowS ?? (() => Math.floor(Date.now() / 1000));
    this.bucketS = opts.targetBucketS ?? RELAY_TARGET_BUCKET_S;
    if (!Number.isInteger(this.bucketS) || this.bucketS < 1) {
      throw new RelayError('RELAY_BAD_CONFIG', 'targetBucketS must be an integer >= 1');
    }
  }

  /**
   * Call when sending `getaddr` to `peerId`: as Bitcoin Core, the peer's bucket gets
   * {@link GETADDR_ANSWER_MAX_ENTRIES} extra tokens (at most that above its capacity) so that the solicited answer
   * is not cut by the unsolicited rate, and the next addrv2 from it is taken as the answer, which is not gossip:
   * stored by the caller, never relayed on, whatever its size.
   */
  expectAnswer(peerId: string): void {
    this.buckets.credit(peerId, GETADDR_ANSWER_MAX_ENTRIES, this.bucketCapacity + GETADDR_ANSWER_MAX_ENTRIES);
    if (this.awaiting.size >= this.maxPeers) {
      const oldest = this.awaiting.values().next().value;
      if (oldest !== undefined) this.awaiting.delete(oldest);
    }
    this.awaiting.add(peerId);
  }

  /**
   * Handles the holepunch entries of one addrv2 message from `from`; other entries are ignored here
   * (the node's ordinary addr logic owns them). `peers` are the currently connected peers.
   */
  onAddrV2(from: RelayPeer, entries: readonly AddrV2Entry[], peers: readonly RelayPeer[]): RelayDecision {
    const d: RelayDecision = {
      accepted: [],
      forward: new Map(),
      dropped: { rateLimited: 0, stale: 0, duplicate: 0, invalid: 0, notHolepunch: 0 },
    };
    // Announcements that reached us over an overlay link are not ours to spread: ignore them entirely.
    if (!from.clearnet) return d;
    const now = this.nowS();
    const answer = this.awaiting.delete(from.id);
    const relayable = !answer && entries.length <= this.maxEntriesToRelay;
    const targets = peers.filter((p) => p.id !== from.id && p.clearnet && p.addrv2);
    for (const e of entries) {
      if (e.network !== 'holepunch') {
        d.dropped.notHolepunch++;
        continue;
      }
      if (!this.buckets.tryTake(from.id)) {
        d.dropped.rateLimited++;
        continue;
      }
      let a: Announcement;
      try {
        a = toAnnouncement(e);
      } catch {
        d.dropped.invalid++;
        continue;
      }
      if (!isFresh(a, now)) {
        d.dropped.stale++;
        continue;
      }
      const key = announcementKey(a);
      if (this.seen.has(key)) {
        d.dropped.duplicate++;
        continue;
      }
      this.remember(key, a.time);
      d.accepted.push(a);
      if (!relayable) continue;
      for (const p of this.chooseTargets(a, now, targets)) {
        let list = d.forward.get(p.id);
        if (!list) d.forward.set(p.id, (list = []));
        list.push(e);
      }
    }
    return d;
  }

  /** Number of announcement keys currently remembered (bounded by maxSeen). */
  get seenCount(): number {
    return this.seen.size;
  }

  private remember(key: string, time: number): void {
    if (this.seen.size >= this.maxSeen) {
      // Drop expired keys first; if none, the oldest inserted (Map keeps insertion order).
      const cutoff = this.nowS() - 2 * 600;
      for (const [k, t] of this.seen) {
        if (t < cutoff) this.seen.delete(k);
      }
      if (this.seen.size >= this.maxSeen) {
        const oldest = this.seen.keys().next().value;
        if (oldest !== undefined) this.seen.delete(oldest);
      }
    }
    this.seen.set(key, time);
  }

  /**
   * The `fanout` peers with the smallest HMAC(secret, address | time bucket | peer id). The address excludes the
   * entry's time and the bucket is of OUR clock, offset per address (as Core does) so that buckets do not all
   * turn over at once: within a bucket every announcement of one address, whatever its `time`, reaches the same
   * peers (limiting amplification); the choice is unpredictable to others.
   */
  private chooseTargets(a: Announcement, nowS: number, peers: readonly RelayPeer[]): RelayPeer[] {
    if (peers.length <= this.fanout) return [...peers];
    const addr = announcementAddressKey(a);
    // The choice is a function of (address, bucket, eligible peer ids): remembered, so that the re-announcements
    // of one address within a bucket over an unchanged peer set cost one string comparison instead of an HMAC
    // per peer (a relay has hundreds of peers). Exact: any change of the set recomputes.
    const ids = peers.map((p) => p.id).join('\n');
    let m = this.targetMemo.get(addr);
    const offset = m?.offset ?? this.hmac('offset', addr).readUInt32BE(0) % this.bucketS;
    const bucket = String(Math.floor((nowS + offset) / this.bucketS));
    if (m && m.bucket === bucket && m.ids === ids) return m.chosen.map((i) => peers[i]!);
    const ranked = peers.map((p, i) => ({ i, h: this.hmac('target', addr, bucket, p.id).readBigUInt64BE(0) }));
    ranked.sort((x, y) => (x.h < y.h ? -1 : x.h > y.h ? 1 : 0));
    const chosen = ranked.slice(0, this.fanout).map((r) => r.i);
    if (!m && this.targetMemo.size >= TARGET_MEMO_MAX) {
      const oldest = this.targetMemo.keys().next().value;
      if (oldest !== undefined) this.targetMemo.delete(oldest);
    }
    m = { offset, bucket, ids, chosen };
    this.targetMemo.set(addr, m);
    return chosen.map((i) => peers[i]!);
  }

  private hmac(...parts: string[]): Buffer {
    const h = createHmac('sha256', this.secret);
    for (const part of parts) h.update(part).update('\0');
    return h.digest();
  }
}
