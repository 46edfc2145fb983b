/**
 * Clearnet side of hole-punch announcements (docs/PROTOCOL.md, "Relay"):
 *  - {@link Announcer} (serve, A): keeps a P2P connection to each configured clearnet peer (handshake with
 *    sendaddrv2) and sends it an `addrv2` carrying our announcement, again every interval;
 *  - {@link AnnouncementCollector} (proxy, B): keeps a P2P connection to each configured clearnet peer, sends
 *    `getaddr` on connect and again every interval (a relay answers every one with its fresh set: the pull that
 *    reaches NATed nodes, docs/SIMULATION.md), and feeds every holepunch entry of every `addrv2` it hears into an
 *    AnnouncementDirectory.
 * Of the configured peers at most `maxLinks` (the `maxrelays` key) are linked at once, chosen at random; one that
 * cannot be reached gives its place to the next spare.
 * Both use plain TCP only: announcements never travel over Tor or I2P connections, and overlay hosts are refused.
 * Given an {@link AnnouncementRelay} (`relay` option), both also relay what they hear between their peers under the
 * rules of docs/PROTOCOL.md, so that a serve or proxy that a relay picked as a fan-out target is not a dead end.
 */
import { connectPeer, type Peer } from '../peer/index.js';
import {
  GETADDR_ANSWER_MAX_ENTRIES,
  RELAY_BUCKET_INITIAL,
  RELAY_PUSH_MAX_ENTRIES,
  chunkEntries,
  toAnnouncement,
  type Announcement,
  type AnnouncementDirectory,
  type AnnouncementRelay,
  type RelayPeer,
} from '../relay/index.js';
import { randomInt } from 'node:crypto';
import { KeyedBuckets, monotonicMs, type Clock } from '../limits/index.js';
import type { AddrV2Entry, AddrV2Payload, NetworkName } from '../wire/index.js';
import type { HostPort } from './config.js';
import type { Logger } from './log.js';

/** Overlay hosts: an announcement must never be sent (or learned) over them. */
export function isOverlayHost(host: string): boolean {
  return /\.(onion|i2p)$/i.test(host);
}

interface Link {
  target: HostPort;
  peer: Peer | undefined;
  connecting: boolean;
  /** The link as the relay rules see it (set once connected). */
  rp?: RelayPeer;
}

abstract class PeerLinks {
  /** Every usable configured peer, in a random order; the first `maxLinks` are the linked ones. */
  protected readonly links: Link[];
  private readonly maxLinks: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    peers: HostPort[],
    protected readonly network: NetworkName,
    protected readonly log: Logger | undefined,
    private readonly intervalMs: number,
    protected readonly handshakeTimeoutMs: number,
    protected readonly relay: AnnouncementRelay | undefined,
    maxLinks: number | undefined,
  ) {
    this.links = peers
      .filter((p) => {
        if (!isOverlayHost(p.host)) return true;
        log?.warn('peer-refused', { peer: `${p.host}:${p.port}`, why: 'announcements travel on clearnet only' });
        return false;
      })
      .map((target) => ({ target, peer: undefined, connecting: false }));
    // A random choice, as Bitcoin Core picks among its seeds: operators who list the same relays in the same order
    // do not all load the first two.
    for (let i = this.links.length - 1; i > 0; i--) {
      const j = randomInt(i + 1);
      [this.links[i], this.links[j]] = [this.links[j]!, this.links[i]!];
    }
    this.maxLinks = maxLinks ?? this.links.length;
  }

  /** The links in use now (the first `maxLinks`). */
  protected get active(): Link[] {
    return this.links.slice(0, this.maxLinks);
  }

  /** Runs one round now, then every interval. Resolves after the first round. */
  async start(): Promise<void> {
    await this.round();
    if (this.stopped) return;
    this.timer = setInterval(() => void this.round(), this.intervalMs);
    this.timer.unref();
  }

  /** One round over every peer: connect where needed, then act. Never rejects. */
  async round(): Promise<void> {
    await Promise.all(this.active.map((l) => this.tick(l)));
  }

  /** Stops the timer and closes every connection. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const l of this.links) l.peer?.close();
  }

  private async tick(l: Link): Promise<void> {
    if (this.stopped || l.connecting) return;
    const name = `${l.target.host}:${l.target.port}`;
    if (!l.peer || l.peer.isClosed) {
      l.connecting = true;
      try {
        const { peer, receivedBeforeVerack } = await connectPeer({
          host: l.target.host,
          port: l.target.port,
          network: this.network,
          sendAddrV2: true,
          handshakeTimeoutMs: this.handshakeTimeoutMs,
        });
        if (this.stopped) {
          peer.close();
          return;
        }
        l.peer = peer;
        peer.on('close', (err) => this.log?.info('peer-closed', { peer: name, error: err }));
        this.log?.info('peer-connected', {
          peer: name,
          userAgent: peer.peerVersion?.userAgent,
          addrv2: receivedBeforeVerack.includes('sendaddrv2'),
        });
        l.rp = { id: name, clearnet: true, addrv2: receivedBeforeVerack.includes('sendaddrv2') };
        if (this.relay) this.relayFrom(l, peer);
        this.onConnected(l, peer, receivedBeforeVerack.includes('sendaddrv2'));
      } catch (err) {
        this.log?.warn('peer-connect-failed', { peer: name, error: err });
        // A spare takes its place from the next round on (it goes to the end of the list).
        const i = this.links.indexOf(l);
        if (i >= 0 && this.links.length > this.maxLinks) this.links.push(...this.links.splice(i, 1));
        return;
      } finally {
        l.connecting = false;
      }
    }
    try {
      this.act(l, l.peer!, name);
    } catch (err) {
      this.log?.warn('peer-send-failed', { peer: name, error: err });
    }
  }

  /** Entries sent on to other links by the relay rules (see the module comment). */
  relayed = 0;

  /** Runs every addrv2 from `l` through the relay and sends on what it decides, to links that are reading. */
  private relayFrom(l: Link, peer: Peer): void {
    const relay = this.relay!;
    peer.on('message', (command, payload) => {
      if (command !== 'addrv2' || !l.rp) return;
      let addrs: AddrV2Entry[];
      try {
        addrs = peer.decode('addrv2', payload).addrs;
      } catch {
        return; // the collector logs a bad addrv2; the announcer ignores what it hears
      }
      const live = this.active.filter((x) => x.rp && x.peer && !x.peer.isClosed);
      const d = relay.onAddrV2(
        l.rp,
        addrs,
        live.map((x) => x.rp!),
      );
      for (const [id, entries] of d.forward) {
        const to = live.find((x) => x.rp!.id === id)?.peer;
        if (!to || to.isClosed || to.sendPaused) continue;
        try {
          for (const m of chunkEntries(entries, RELAY_PUSH_MAX_ENTRIES)) to.send('addrv2', { addrs: m });
          this.relayed += entries.length;
          this.log?.debug('announcements-forwarded', { from: l.rp.id, to: id, count: entries.length });
        } catch {
          // closed meanwhile
        }
      }
    });
  }

  protected abstract onConnected(l: Link, peer: Peer, addrv2: boolean): void;
  protected abstract act(l: Link, peer: Peer, name: string): void;
}

export interface AnnouncerOptions {
  peers: HostPort[];
  network: NetworkName;
  /** The entry to send, built fresh for each round (makeAnnouncement with the current time). */
  announcement: () => AddrV2Entry;
  intervalMs: number;
  handshakeTimeoutMs?: number;
  log?: Logger;
  /** Relay what the peers send between them under these rules (see the module comment). */
  relay?: AnnouncementRelay;
  /** Most peers linked at once (the `maxrelays` key; default all). */
  maxLinks?: number;
}

/** Serve's announcer (see the module comment). `sent` counts addrv2 messages sent. */
export class Announcer extends PeerLinks {
  sent = 0;
  private readonly make: () => AddrV2Entry;
  private readonly addrv2Peers = new WeakSet<Peer>();

  constructor(o: AnnouncerOptions) {
    super(o.peers, o.network, o.log, o.intervalMs, o.handshakeTimeoutMs ?? 10_000, o.relay, o.maxLinks);
    this.make = o.announcement;
  }

  protected onConnected(_l: Link, peer: Peer, addrv2: boolean): void {
    if (addrv2) this.addrv2Peers.add(peer);
  }

  protected act(_l: Link, peer: Peer, name: string): void {
    if (peer.isClosed) return;
    // BIP155: addrv2 only to peers that signalled sendaddrv2.
    if (!this.addrv2Peers.has(peer)) {
      this.log?.warn('announce-skipped', { peer: name, why: 'peer did not send sendaddrv2' });
      return;
    }
    // Backpressure (Peer's send-buffer bounds): a peer that is not taking our bytes gets nothing more queued;
    // Peer disconnects it if that lasts, and the next round reconnects.
    if (peer.sendPaused) {
      this.log?.warn('announce-skipped', { peer: name, why: 'peer is not reading our messages' });
      return;
    }
    const entry = this.make();
    peer.send('addrv2', { addrs: [entry] });
    this.sent++;
    this.log?.info('announcement-sent', {
      peer: name,
      coordination: `${entry.address}:${entry.port}`,
      clearnet: entry.clearnet ? `${entry.clearnet.address}:${entry.clearnet.port}` : undefined,
    });
  }
}

export interface CollectorOptions {
  peers: HostPort[];
  network: NetworkName;
  directory: AnnouncementDirectory;
  /** How often each peer is asked for its fresh set (getaddr), and dead connections re-opened. */
  intervalMs: number;
  /** Most peers linked at once (the `maxrelays` key; default all). */
  maxLinks?: number;
  handshakeTimeoutMs?: number;
  log?: Logger;
  /**
   * Per-source meter of holepunch entries, as Bitcoin Core's addr rate limit: `ratePerSec` (default 0.1)
   * and a bucket of `burst` (default 1000, Core's getaddr answer size) that starts with RELAY_BUCKET_INITIAL (10)
   * tokens, as the relay's. Entries over it are dropped.
   */
  rate?: { ratePerSec?: number; burst?: number; clock?: Clock };
  /** Relay what the peers send between them under these rules (see the module comment). */
  relay?: AnnouncementRelay;
  /** Told every announcement the directory kept (the proxy's automatic outbound). */
  onLearned?: (a: Announcement, from: string) => void;
}

/** Collector meter defaults (Bitcoin Core: MAX_ADDR_RATE_PER_SECOND 0.1, MAX_ADDR_PROCESSING_TOKEN_BUCKET 1000). */
export const COLLECTOR_RATE_PER_SEC = 0.1;
export const COLLECTOR_BURST = 1000;

/**
 * Proxy's collector (see the module comment). `learned` counts announcements the directory kept,
 * `rateLimited` holepunch entries dropped by the per-source meter.
 */
export class AnnouncementCollector extends PeerLinks {
  learned = 0;
  rateLimited = 0;
  private readonly directory: AnnouncementDirectory;
  private readonly meter: KeyedBuckets<string>;
  private readonly burst: number;
  /** getaddr requests sent. */
  asked = 0;
  private readonly onLearned: ((a: Announcement, from: string) => void) | undefined;

  constructor(o: CollectorOptions) {
    super(o.peers, o.network, o.log, o.intervalMs, o.handshakeTimeoutMs ?? 10_000, o.relay, o.maxLinks);
    this.directory = o.directory;
    this.burst = o.rate?.burst ?? COLLECTOR_BURST;
    this.onLearned = o.onLearned;
    // One bucket per source peer; a handful are configured, the bound only guards library callers of ingest().
    this.meter = new KeyedBuckets<string>({
      ratePerSec: o.rate?.ratePerSec ?? COLLECTOR_RATE_PER_SEC,
      capacity: o.rate?.burst ?? COLLECTOR_BURST,
      // As the relay's meter: a source starts with one message's worth and earns the rest by connection time.
      initial: RELAY_BUCKET_INITIAL,
      maxKeys: 1024,
      clock: o.rate?.clock ?? monotonicMs,
    });
  }

  protected onConnected(l: Link, peer: Peer): void {
    const name = `${l.target.host}:${l.target.port}`;
    peer.on('message', (command, payload) => {
      if (command !== 'addrv2') return;
      let p: AddrV2Payload;
      try {
        p = peer.decode('addrv2', payload);
      } catch (err) {
        this.log?.warn('addrv2-bad', { peer: name, error: err });
        return;
      }
      this.ingest(p.addrs, name);
    });
  }

  /**
   * Feeds addrv2 entries (only holepunch ones matter) from source peer `from` into the directory, metered per
   * source (one summary log line per message when entries were dropped, not one per entry).
   */
  ingest(addrs: AddrV2Entry[], from: string): void {
    let limited = 0;
    for (const e of addrs) {
      if (e.network !== 'holepunch') continue;
      if (!this.meter.tryTake(from)) {
        limited++;
        continue;
      }
      try {
        const a = toAnnouncement(e);
        if (this.directory.add(a, from)) {
          this.learned++;
          this.log?.info('announcement-learned', {
            from,
            coordination: `${a.coordination}:${a.coordinationPort}`,
            clearnet: `${a.clearnet.address}:${a.clearnet.port}`,
          });
          this.onLearned?.(a, from);
        }
      } catch (err) {
        this.log?.debug('announcement-ignored', { from, error: err });
      }
    }
    if (limited > 0) {
      this.rateLimited += limited;
      this.log?.warn('announcements-rate-limited', { from, dropped: limited });
    }
  }

  protected act(l: Link, peer: Peer, name: string): void {
    if (peer.isClosed || peer.sendPaused) return;
    // Every round (getaddrinterval): a relay answers each getaddr with its fresh set, at most once per its
    // spacing per address. As Bitcoin Core does on sending getaddr, the solicited answer gets its own tokens so
    // the unsolicited rate does not cut it, and it is not relayed on as gossip.
    this.meter.credit(name, GETADDR_ANSWER_MAX_ENTRIES, this.burst + GETADDR_ANSWER_MAX_ENTRIES);
    if (this.relay && l.rp) this.relay.expectAnswer(l.rp.id);
    peer.send('getaddr');
    this.asked++;
  }
}
