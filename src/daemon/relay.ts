/**
 * `onionpunch relay`: a publicly reachable relay of hole-punch announcements (docs/PROTOCOL.md, "Relay";
 * docs/DAEMON.md, "Running a relay").
 *
 *  - Listens for clearnet P2P connections and answers each as a Bitcoin responder (version handshake with
 *    `sendaddrv2`), with `addr_recv` = the address:port it saw the peer come from. A NAT-check client
 *    (src/nat/observe.ts) reads exactly that and closes, so the same port is also a NAT-check server.
 *  - Keeps a connection to every configured relay peer (`addnode`), re-opened every `announceinterval`.
 *  - Every `addrv2` from any of these peers goes through one {@link AnnouncementRelay} (freshness, message
 *    size, per-peer rate, deduplication, fan-out to 2 peers); what it accepts enters one
 *    {@link AnnouncementDirectory} (bounded, diverse) and what it forwards is sent on, to peers that are reading.
 *  - `getaddr` is answered with the fresh entries of the directory (at most 1000 per message), every time it is
 *    asked, but at most once per `getaddrspacing` per asker address (IPv4, IPv6 /64; a reconnect does not reset
 *    it), and the relay asks its `addnode` relays every `getaddrinterval` (docs/SIMULATION.md: the fresh set
 *    served on repeated getaddr is what reaches NATed nodes; push gossip alone reaches ~1%).
 *
 * Inbound connections have the NAT-check server's bounds: at most `maxconnections` at once and
 * {@link NATCHECK_PER_NETGROUP} per netgroup, and at the global cap a newcomer evicts the youngest connection of
 * the largest netgroup when that netgroup holds at least two more than the newcomer's (the rule of
 * src/nat/natcheck-server.ts). Every connection has the handshake deadline, a payload cap and Peer's send-buffer
 * bounds.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { connectPeer, Peer } from '../peer/index.js';
import {
  AnnouncementDirectory,
  AnnouncementRelay,
  GETADDR_ANSWER_MAX_ENTRIES,
  GetaddrMeter,
  RELAY_PUSH_MAX_ENTRIES,
  chunkEntries,
  makeAnnouncement,
  type RelayPeer,
} from '../relay/index.js';
import { NetgroupAdmission } from '../limits/index.js';
import { NATCHECK_HANDSHAKE_MS, NATCHECK_PER_NETGROUP } from '../nat/natcheck-server.js';
import { MAX_ADDR_ENTRIES, unmapIPv4, type AddrV2Entry, type AddrV2Payload } from '../wire/index.js';
import type { DaemonConfig, HostPort } from './config.js';
import { ConfigError } from './errors.js';
import type { Logger } from './log.js';
import { isOverlayHost } from './announce.js';
import { waitForShutdown } from './shutdown.js';
import type { DaemonHooks } from './punch-setup.js';
import { randomNonce } from '../wire/nonce.js';

/**
 * Largest payload accepted from a relay peer: an addrv2 of 1000 entries of up to 69 bytes (a holepunch entry
 * with an IPv6 clearnet endpoint: time 4, services up to 9, net 1, length 1, address 52, port 2) plus its count.
 * Ordinary IPv4/IPv6/Tor entries are smaller; anything bigger closes the connection at the header.
 */
export const RELAY_MAX_PAYLOAD = 80_000;
/** Most entries in a getaddr answer message (Bitcoin Core's MAX_ADDR_TO_SEND). */
export const RELAY_GETADDR_MAX = GETADDR_ANSWER_MAX_ENTRIES;

/** What the relay counts (the `stats` log event and tests). */
export interface RelayStats {
  /** Inbound handshakes completed since start (NAT-check clients included). */
  inbound: number;
  /** Outbound (`addnode`) links opened since start. */
  outbound: number;
  /** addrv2 messages received. */
  messages: number;
  accepted: number;
  forwarded: number;
  /** Forwards not sent because the target was not reading (Peer's send-buffer pause) or closed. */
  skippedBusy: number;
  dropped: { rateLimited: number; stale: number; duplicate: number; invalid: number; notHolepunch: number };
  refused: { netgroup: number; full: number; evicted: number };
  /** Connections closed because the peer sent nothing (not even a pong) for `idletimeout`. */
  idleClosed: number;
  getaddrAnswered: number;
  /** getaddr requests not answered because the asker's address had one within `getaddrspacing`. */
  getaddrLimited: number;
  /** getaddr requests sent to `addnode` relays. */
  getaddrSent: number;
}

/**
 * A connection as the relay rules see it. Every link is TCP to a clearnet address (overlay hosts are refused
 * for `addnode`; the relay is not to be published as an onion). `addrv2` is read from the handshake when asked:
 * a message in the same TCP segment as the verack is handled before a promise callback could record it.
 */
function relayPeer(id: string, peer: Peer): RelayPeer {
  return {
    id,
    clearnet: true,
    get addrv2() {
      return peer.isReady && peer.receivedBeforeVerack.includes('sendaddrv2');
    },
  };
}

interface Conn {
  id: string;
  peer: Peer;
  rp: RelayPeer;
  inbound: boolean;
  /** Inbound only: netgroup, for the caps. */
  group?: string;
  sock?: Socket;
  /** The peer's address (inbound: as seen; outbound: the addnode host): the getaddr meter's key. */
  address: string;
  /** Monotonic ms of the last message from the peer (or of the connection). */
  lastRecv: number;
}

/** The keys the relay reads. */
export type RelayConfig = Pick<
  DaemonConfig,
  | 'network'
  | 'addnode'
  | 'bind'
  | 'port'
  | 'maxconnections'
  | 'announceinterval'
  | 'idletimeout'
  | 'getaddrinterval'
  | 'getaddrspacing'
>;

/** The relay's state and connections; {@link runRelay} wraps it as the daemon verb. */
export class RelayNode {
  readonly stats: RelayStats = {
    inbound: 0,
    outbound: 0,
    messages: 0,
    accepted: 0,
    forwarded: 0,
    skippedBusy: 0,
    dropped: { rateLimited: 0, stale: 0, duplicate: 0, invalid: 0, notHolepunch: 0 },
    refused: { netgroup: 0, full: 0, evicted: 0 },
    idleClosed: 0,
    getaddrAnswered: 0,
    getaddrLimited: 0,
    getaddrSent: 0,
  };
  readonly relay = new AnnouncementRelay();
  readonly directory = new AnnouncementDirectory();
  private readonly getaddrMeter: GetaddrMeter;
  private readonly conns = new Map<string, Conn>();
  /** Inbound connections under the NAT-check service's caps and eviction rule (one admission for both). */
  private readonly inbound: NetgroupAdmission<Conn>;
  private readonly outLinks: { target: HostPort; conn: Conn | undefined; connecting: boolean }[];
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private getaddrTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly cfg: RelayConfig,
    private readonly log: Logger,
  ) {
    this.inbound = new NetgroupAdmission({ maxConnections: cfg.maxconnections, perNetgroup: NATCHECK_PER_NETGROUP });
    this.getaddrMeter = new GetaddrMeter({ spacingS: cfg.getaddrspacing });
    this.outLinks = cfg.addnode
      .filter((p) => {
        if (!isOverlayHost(p.host)) return true;
        log.warn('peer-refused', { peer: `${p.host}:${p.port}`, why: 'announcements travel on clearnet only' });
        return false;
      })
      .map((target) => ({ target, conn: undefined, connecting: false }));
  }

  /** Inbound connections open now. */
  get inboundCount(): number {
    return this.inbound.size;
  }

  /** Listens and starts the outbound links; resolves the bound address once listening. */
  async start(): Promise<{ host: string; port: number }> {
    const server = createServer({ noDelay: true }, (sock) => this.onInbound(sock));
    this.server = server;
    const host = this.cfg.bind ?? '::';
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: NodeJS.ErrnoException) => {
        const why = `cannot listen on ${host} port ${this.cfg.port}: ${e.code ?? e.message}`;
        reject(new ConfigError('CONFIG_BAD_VALUE', why, { key: 'port' }));
      };
      server.once('error', onErr);
      server.listen({ host, port: this.cfg.port }, () => {
        server.off('error', onErr);
        server.on('error', (e) => this.log.warn('listen-error', { error: e }));
        resolve();
      });
    });
    const a = server.address() as { address: string; port: number };
    void this.round();
    this.timer = setInterval(() => void this.round(), this.cfg.announceinterval * 1000);
    this.timer.unref();
    this.getaddrTimer = setInterval(() => this.askRelays(), this.cfg.getaddrinterval * 1000);
    this.getaddrTimer.unref();
    // Bitcoin Core pings every 2 minutes and drops a peer silent for 20; here: a ping every check, at most a
    // minute apart, and a peer that sent nothing (not even the pong) for `idletimeout` is closed, so a dead or
    // half-open connection does not hold a slot.
    const idleMs = this.cfg.idletimeout * 1000;
    this.idleTimer = setInterval(() => this.checkIdle(idleMs), Math.min(60_000, Math.max(250, idleMs / 4)));
    this.idleTimer.unref();
    return { host: a.address, port: a.port };
  }

  /** Stops listening and the links, closes every connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.getaddrTimer) clearInterval(this.getaddrTimer);
    if (this.idleTimer) clearInterval(this.idleTimer);
    const closed = new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    for (const c of [...this.conns.values()]) c.peer.close();
    await closed;
  }

  private checkIdle(idleMs: number): void {
    const now = performance.now();
    for (const c of [...this.conns.values()]) {
      if (!c.peer.isReady) continue; // the handshake deadline covers the rest
      if (now - c.lastRecv > idleMs) {
        this.stats.idleClosed++;
        this.log.info('peer-idle', { peer: c.id, silentMs: Math.round(now - c.lastRecv) });
        c.peer.close();
        continue;
      }
      if (c.peer.sendPaused) continue;
      try {
        c.peer.send('ping', { nonce: randomNonce() });
      } catch {
        // closed meanwhile
      }
    }
  }

  private onInbound(sock: Socket): void {
    sock.on('error', () => undefined);
    const address = unmapIPv4(sock.remoteAddress ?? '');
    const port = sock.remotePort ?? 0;
    const name = `${address.includes(':') ? `[${address}]` : address}:${port}`;
    if (this.stopped) {
      sock.destroy();
      return;
    }
    const verdict = this.inbound.admit(address);
    if (!verdict.ok) {
      if (verdict.why !== 'bad-address') {
        this.stats.refused[verdict.why === 'netgroup' ? 'netgroup' : 'full']++;
        const why = verdict.why === 'netgroup' ? 'NATCHECK_NETGROUP_LIMIT' : 'NATCHECK_FULL';
        this.log.info('inbound-refused', { peer: name, why });
      }
      sock.destroy();
      return;
    }
    const group = verdict.group;
    if (verdict.evict) {
      this.stats.refused.evicted++;
      this.log.info('inbound-evicted', { peer: verdict.evict.id, for: name });
      this.forget(verdict.evict);
      verdict.evict.peer.close();
    }
    const peer = new Peer(sock, {
      network: this.cfg.network,
      role: 'responder',
      // How we see the peer: what a NAT-check client reads.
      addrRecv: { address, port },
      handshakeTimeoutMs: NATCHECK_HANDSHAKE_MS,
      relay: false,
      maxPayload: RELAY_MAX_PAYLOAD,
    });
    const id = `in:${name}`;
    const c: Conn = {
      id,
      peer,
      inbound: true,
      group,
      sock,
      address,
      rp: relayPeer(id, peer),
      lastRecv: performance.now(),
    };
    this.add(c);
    peer.handshake().then(
      (r) => {
        this.stats.inbound++;
        this.log.debug('inbound-ready', { peer: name, addrv2: c.rp.addrv2, userAgent: r.version.userAgent });
      },
      (e: { code?: string }) => this.log.debug('inbound-handshake-failed', { peer: name, error: e.code ?? 'ERROR' }),
    );
  }

  private add(c: Conn): void {
    this.conns.set(c.id, c);
    if (c.group !== undefined) this.inbound.add(c.group, c);
    c.peer.on('message', (command, payload) => this.onMessage(c, command, payload));
    c.peer.on('close', (err) => {
      this.forget(c);
      if (c.peer.isReady) this.log.info('peer-closed', { peer: c.id, error: err });
    });
  }

  /** Removes a connection from the tables (idempotent). */
  private forget(c: Conn): void {
    if (this.conns.get(c.id) !== c) return;
    this.conns.delete(c.id);
    this.inbound.remove(c);
  }

  private onMessage(c: Conn, command: string, payload: Buffer): void {
    c.lastRecv = performance.now();
    if (!c.peer.isReady) return;
    if (command === 'addrv2') {
      let p: AddrV2Payload;
      try {
        p = c.peer.decode('addrv2', payload);
      } catch (err) {
        this.log.info('addrv2-bad', { peer: c.id, error: err });
        c.peer.close();
        return;
      }
      this.onAddrV2(c, p.addrs);
    } else if (command === 'getaddr') {
      this.onGetaddr(c);
    }
  }

  private onAddrV2(c: Conn, addrs: AddrV2Entry[]): void {
    this.stats.messages++;
    const peers = [...this.conns.values()].filter((x) => x.peer.isReady).map((x) => x.rp);
    const d = this.relay.onAddrV2(c.rp, addrs, peers);
    for (const a of d.accepted) {
      this.stats.accepted++;
      this.directory.add(a, c.id);
      this.log.info('announcement-relayed', {
        from: c.id,
        coordination: `${a.coordination}:${a.coordinationPort}`,
        clearnet: `${a.clearnet.address}:${a.clearnet.port}`,
        time: a.time,
      });
    }
    for (const [id, entries] of d.forward) {
      const to = this.conns.get(id);
      // Peer's send-buffer bound: a peer not reading gets nothing more queued (it is disconnected if that lasts).
      if (!to || to.peer.isClosed || to.peer.sendPaused) {
        this.stats.skippedBusy += entries.length;
        continue;
      }
      try {
        for (const addrs of chunkEntries(entries, RELAY_PUSH_MAX_ENTRIES)) to.peer.send('addrv2', { addrs });
        this.stats.forwarded += entries.length;
        this.log.debug('announcements-forwarded', { to: id, count: entries.length });
      } catch {
        this.stats.skippedBusy += entries.length;
      }
    }
    const dr = d.dropped;
    for (const k of Object.keys(dr) as (keyof typeof dr)[]) this.stats.dropped[k] += dr[k];
    if (dr.rateLimited + dr.stale + dr.invalid + dr.duplicate > 0) {
      // One line per message, not per entry: a flood must not become a log flood at info level.
      this.log.debug('announcements-dropped', { from: c.id, ...dr });
    }
  }

  private onGetaddr(c: Conn): void {
    // BIP155: addrv2 only to a peer that sent sendaddrv2. Bitcoin Core answers one getaddr per connection; a relay
    // answers every one (its fresh set changes within minutes), metered per asker address, not per connection.
    if (!c.rp.addrv2 || c.peer.sendPaused) return;
    if (!this.getaddrMeter.allow(c.address)) {
      this.stats.getaddrLimited++;
      this.log.debug('getaddr-limited', { peer: c.id });
      return;
    }
    const all = this.directory.list().map((a) =>
      makeAnnouncement({
        coordination: a.coordination,
        coordinationPort: a.coordinationPort,
        clearnet: a.clearnet,
        services: a.services,
        nowS: a.time,
      }),
    );
    try {
      // An empty set is answered too (an empty addrv2), so the asker knows its request was served.
      const msgs = all.length > 0 ? chunkEntries(all, Math.min(RELAY_GETADDR_MAX, MAX_ADDR_ENTRIES)) : [[]];
      for (const addrs of msgs) {
        c.peer.send('addrv2', { addrs });
      }
      this.stats.getaddrAnswered++;
      this.log.info('getaddr-answered', { peer: c.id, entries: all.length });
    } catch {
      // closed meanwhile
    }
  }

  /** Asks every open `addnode` link for its fresh set (on connect and every `getaddrinterval`). */
  private askRelays(): void {
    for (const l of this.outLinks) {
      const c = l.conn;
      if (!c || c.peer.isClosed || !c.peer.isReady || !c.rp.addrv2 || c.peer.sendPaused) continue;
      try {
        this.relay.expectAnswer(c.id);
        c.peer.send('getaddr');
        this.stats.getaddrSent++;
      } catch {
        // closed meanwhile
      }
    }
  }

  /** Opens the outbound links that are down. Never rejects. */
  private async round(): Promise<void> {
    await Promise.all(
      this.outLinks.map(async (l) => {
        if (this.stopped || l.connecting || (l.conn && !l.conn.peer.isClosed)) return;
        const name = `${l.target.host.includes(':') ? `[${l.target.host}]` : l.target.host}:${l.target.port}`;
        l.connecting = true;
        try {
          const { peer, receivedBeforeVerack, version } = await connectPeer({
            host: l.target.host,
            port: l.target.port,
            network: this.cfg.network,
            sendAddrV2: true,
            handshakeTimeoutMs: NATCHECK_HANDSHAKE_MS,
            maxPayload: RELAY_MAX_PAYLOAD,
            relay: false,
          });
          if (this.stopped) {
            peer.close();
            return;
          }
          const addrv2 = receivedBeforeVerack.includes('sendaddrv2');
          const id = `out:${name}`;
          const c: Conn = {
            id,
            peer,
            inbound: false,
            address: l.target.host,
            rp: relayPeer(id, peer),
            lastRecv: performance.now(),
          };
          this.conns.get(c.id)?.peer.close();
          this.add(c);
          l.conn = c;
          this.stats.outbound++;
          this.log.info('peer-connected', { peer: name, userAgent: version.userAgent, addrv2 });
          // Learn what the other relay holds at once (a restarted relay refills), then every getaddrinterval; the
          // answer is stored, never gossiped on (AnnouncementRelay.expectAnswer).
          if (addrv2) {
            this.relay.expectAnswer(c.id);
            peer.send('getaddr');
            this.stats.getaddrSent++;
          }
        } catch (err) {
          this.log.warn('peer-connect-failed', { peer: name, error: err });
        } finally {
          l.connecting = false;
        }
      }),
    );
  }
}

/** Runs the relay until SIGINT/SIGTERM (or `hooks.signal`). Resolves the exit code. */
export async function runRelay(cfg: DaemonConfig, log: Logger, hooks: DaemonHooks = {}): Promise<number> {
  const node = new RelayNode(cfg, log);
  const bound = await node.start();
  const ready = {
    ready: true,
    listen: `${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}`,
    port: bound.port,
    network: cfg.network,
    addnode: cfg.addnode.map((p) => `${p.host}:${p.port}`),
  };
  log.info('ready', ready);
  hooks.ready?.(ready);
  const stats = () => ({
    ...node.stats,
    open: node.inboundCount,
    directory: node.directory.size,
    rssKb: Math.round(process.memoryUsage().rss / 1024),
  });
  const statsTimer = setInterval(() => log.info('stats', stats()), 60_000);
  statsTimer.unref();
  const why = await waitForShutdown(hooks.signal);
  clearInterval(statsTimer);
  log.info('shutdown', { signal: why, ...stats() });
  await node.stop();
  log.info('stopped');
  return 0;
}
