/**
 * Automatic outbound on B (issue #11): the proxy picks up to `maxpunchpeers` fresh announcements and asks the
 * local node over JSON-RPC to connect to each one's clearnet endpoint (`addnode "<ip:port>" "onetry"`, which
 * bitcoind and bcoin both have). The node then dials that endpoint through the proxy (its `proxy=`), and the
 * proxy punches it. A peer whose connection fails or later drops is asked for again with exponential backoff
 * while its announcement stays fresh.
 *
 * Which announcements (B's filters, so that one coordinator cannot take B's few punch slots):
 *  - at most one chosen peer per clearnet netgroup (/16, /32), as bitcoind's outbound diversity;
 *  - one address per coordination endpoint: only the directory's preferred claim of a clearnet endpoint, and a
 *    coordination endpoint is chosen once;
 *  - at most `maxPeers` at once; a peer that failed {@link OUTBOUND_YIELD_AFTER} times in a row gives its slot
 *    to a waiting candidate and rests for {@link OUTBOUND_REST_MS}.
 *
 * Whether a peer is up is read from the node's `getpeerinfo` (polled every {@link OUTBOUND_POLL_MS} while peers
 * are chosen) and from the proxy's own punch outcomes ({@link PunchOutbound.punchFailed}).
 */
import { canonicalAddress, formatEndpoint, netgroup } from '../ip.js';
import type { Announcement, AnnouncementDirectory } from '../relay/index.js';
import type { Logger } from './log.js';
import { LogLimiter } from './log-limit.js';
import { NodeRpcError, type NodeRpc } from './node-rpc.js';
import { parseEndpoint } from '../nat/types.js';

/** getpeerinfo poll period while peers are chosen. */
export const OUTBOUND_POLL_MS = 5_000;
/** First retry delay; doubled per failure in a row up to {@link OUTBOUND_BACKOFF_MAX_MS}. */
export const OUTBOUND_BACKOFF_BASE_MS = 5_000;
/** Longest retry delay (below the 600 s freshness window, so a live peer is retried before it expires). */
export const OUTBOUND_BACKOFF_MAX_MS = 160_000;
/**
 * A connection asked for and not up after this long counts as failed (bitcoind waits up to ~120 s on a SOCKS
 * connect; the proxy's punch ends before that).
 */
export const OUTBOUND_CONNECT_WAIT_MS = 150_000;
/** A connection that lasted this long resets the failure count. */
export const OUTBOUND_STABLE_MS = 60_000;
/** Failures in a row after which a peer yields its slot to a waiting candidate. */
export const OUTBOUND_YIELD_AFTER = 3;
/** How long a peer that yielded its slot is not chosen again. */
export const OUTBOUND_REST_MS = 600_000;

type State = 'asking' | 'asked' | 'connected' | 'backoff';

/** One chosen peer (observability, tests). */
export interface OutboundPeer {
  /** `ip:port` / `[v6]:port`, as addnode takes it and getpeerinfo shows it. */
  addr: string;
  /** The clearnet endpoint as the announcement has it (the directory's key). */
  clearnet: { address: string; port: number };
  coordination: string;
  netgroup: string;
  state: State;
  /** Failures in a row. */
  failures: number;
  /** addnode calls made for it. */
  asks: number;
  since: number;
  retryAt: number;
}

/** What the manager needs of the node's RPC (a {@link NodeRpc}). */
export type OutboundRpc = Pick<NodeRpc, 'call' | 'endpoint'>;

export interface PunchOutboundOptions {
  rpc: OutboundRpc;
  directory: AnnouncementDirectory;
  /** Most peers chosen at once (`maxpunchpeers`). */
  maxPeers: number;
  log?: Logger;
  /** ms clock (default Date.now). */
  now?: () => number;
}

interface PeerInfoEntry {
  addr?: unknown;
  inbound?: unknown;
  version?: unknown;
}

const keyOf = (address: string, port: number): string => `${canonicalAddress(address)}|${port}`;

/** `ip:port` / `[v6]:port` text (getpeerinfo's `addr`) as a key; undefined for other text. */
function keyOfAddr(addr: string): string | undefined {
  const e = parseEndpoint(addr);
  return e ? keyOf(e.address, e.port) : undefined;
}

/** The automatic outbound manager (see the module comment). `start()` begins; `stop()` ends its timer. */
export class PunchOutbound {
  /** The chosen peers by clearnet key. */
  readonly peers = new Map<string, OutboundPeer>();
  /** Peers that yielded their slot, until when (ms). Bounded by the directory's size. */
  private readonly resting = new Map<string, number>();
  private readonly now: () => number;
  private readonly limiter: LogLimiter;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;

  constructor(private readonly o: PunchOutboundOptions) {
    this.now = o.now ?? Date.now;
    this.limiter = new LogLimiter(o.log, { intervalMs: 60_000, burst: 2 });
  }

  /** Starts the poll timer and runs a first round. */
  start(): void {
    if (this.o.maxPeers <= 0) return;
    this.timer = setInterval(() => this.kick(), OUTBOUND_POLL_MS);
    this.timer.unref();
    this.kick();
  }

  /** Stops the timer (the node keeps the connections it has). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.limiter.close();
  }

  /** A fresh announcement was learned: consider it now. */
  learned(_a: Announcement): void {
    this.kick();
  }

  /** The proxy's punch (or plain bridge) for `address:port` failed: a chosen peer is retried with backoff. */
  punchFailed(address: string, port: number): void {
    const p = this.peers.get(keyOf(address, port));
    if (p && (p.state === 'asked' || p.state === 'connected')) {
      this.fail(p, 'punch failed');
      this.kick();
    }
  }

  /**
   * The proxy punched `address:port` and handed the socket to the node: a chosen peer is up now (getpeerinfo
   * polls may miss a connection that lasts less than a poll period; its drop is then still seen).
   */
  punchConnected(address: string, port: number): void {
    const p = this.peers.get(keyOf(address, port));
    if (p && p.state !== 'connected') {
      p.state = 'connected';
      p.since = this.now();
      this.o.log?.info('punch-peer-connected', { peer: p.addr, coordination: p.coordination, asks: p.asks });
    }
  }

  /** Runs a round soon; rounds never overlap (a request during one runs another after it). */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.round()
      .catch((err) => this.o.log?.warn('outbound-round-failed', { error: err }))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** One round: forget stale peers, read getpeerinfo, update states, fill free slots, ask the node. */
  async round(): Promise<void> {
    const now = this.now();
    for (const [k, until] of this.resting) if (until <= now) this.resting.delete(k);
    for (const [k, p] of this.peers) {
      const a = this.o.directory.findByClearnet(p.clearnet.address, p.clearnet.port);
      if (!a || a.coordination !== p.coordination) {
        this.peers.delete(k);
        this.o.log?.info('punch-peer-expired', { peer: p.addr, coordination: p.coordination });
      }
    }
    const live = this.peers.size > 0 ? await this.peerInfo() : undefined;
    if (live) {
      for (const [k, p] of this.peers) {
        const e = live.get(k);
        const up = e !== undefined && Number(e.version) > 0;
        if (p.state === 'asked' && up) {
          p.state = 'connected';
          p.since = now;
          this.o.log?.info('punch-peer-connected', { peer: p.addr, coordination: p.coordination, asks: p.asks });
        } else if (p.state === 'connected' && e === undefined) {
          this.fail(p, 'dropped');
        } else if (p.state === 'asked' && now - p.since > OUTBOUND_CONNECT_WAIT_MS) {
          this.fail(p, 'not connected in time');
        }
      }
    }
    this.fill(now, live);
    const due = [...this.peers.values()].filter((p) => p.state === 'backoff' && p.retryAt <= now);
    await Promise.all(due.map((p) => this.ask(p)));
  }

  private fill(now: number, live: Map<string, PeerInfoEntry> | undefined): void {
    const groups = new Set([...this.peers.values()].map((p) => p.netgroup));
    const coords = new Set([...this.peers.values()].map((p) => p.coordination));
    for (const a of this.o.directory.list()) {
      const k = keyOf(a.clearnet.address, a.clearnet.port);
      const g = netgroup(a.clearnet.address);
      if (g === undefined || this.peers.has(k) || this.resting.has(k) || groups.has(g) || coords.has(a.coordination))
        continue;
      const preferred = this.o.directory.findByClearnet(a.clearnet.address, a.clearnet.port);
      if (preferred?.coordination !== a.coordination) continue;
      if (this.peers.size >= this.o.maxPeers && !this.yieldSlot(now)) break;
      const addr = formatEndpoint({ address: canonicalAddress(a.clearnet.address), port: a.clearnet.port });
      const p: OutboundPeer = {
        addr,
        clearnet: { ...a.clearnet },
        coordination: a.coordination,
        netgroup: g,
        state: 'backoff',
        failures: 0,
        asks: 0,
        since: now,
        retryAt: now,
      };
      // Already connected (the node found it by itself, or we asked before a restart): nothing to ask.
      if (live?.get(k) !== undefined) {
        p.state = 'connected';
        this.o.log?.info('punch-peer-connected', { peer: addr, coordination: a.coordination, asks: 0 });
      }
      this.peers.set(k, p);
      groups.add(g);
      coords.add(a.coordination);
    }
  }

  /** Frees a slot held by a peer that keeps failing; true when one was freed. */
  private yieldSlot(now: number): boolean {
    for (const [k, p] of this.peers) {
      if (p.state === 'backoff' && p.failures >= OUTBOUND_YIELD_AFTER) {
        this.peers.delete(k);
        this.resting.set(k, now + OUTBOUND_REST_MS);
        this.o.log?.info('punch-peer-yielded', { peer: p.addr, failures: p.failures, restMs: OUTBOUND_REST_MS });
        return true;
      }
    }
    return false;
  }

  private fail(p: OutboundPeer, why: string): void {
    const now = this.now();
    if (p.state === 'connected' && now - p.since >= OUTBOUND_STABLE_MS) p.failures = 0;
    p.failures++;
    const delay = Math.min(OUTBOUND_BACKOFF_BASE_MS * 2 ** (p.failures - 1), OUTBOUND_BACKOFF_MAX_MS);
    p.state = 'backoff';
    p.since = now;
    p.retryAt = now + delay;
    this.o.log?.info('punch-peer-lost', { peer: p.addr, why, failures: p.failures, retryInMs: delay });
  }

  private async ask(p: OutboundPeer): Promise<void> {
    p.state = 'asking';
    p.asks++;
    try {
      await this.o.rpc.call('addnode', [p.addr, 'onetry']);
      p.state = 'asked';
      p.since = this.now();
      this.o.log?.info('addnode', {
        peer: p.addr,
        coordination: p.coordination,
        ask: p.asks,
        rpc: this.o.rpc.endpoint,
      });
    } catch (err) {
      p.state = 'asked'; // fail() below reads the state: an RPC failure counts as a failed attempt
      this.rpcFailed('addnode', err);
      this.fail(p, 'addnode failed');
    }
  }

  /** getpeerinfo as a map by clearnet key; undefined when the RPC failed (logged). */
  private async peerInfo(): Promise<Map<string, PeerInfoEntry> | undefined> {
    let r: unknown;
    try {
      r = await this.o.rpc.call('getpeerinfo');
    } catch (err) {
      this.rpcFailed('getpeerinfo', err);
      return undefined;
    }
    if (!Array.isArray(r)) {
      this.limiter.write('warn', 'node-rpc-failed', 'shape', { method: 'getpeerinfo', why: 'not an array' });
      return undefined;
    }
    const m = new Map<string, PeerInfoEntry>();
    for (const e of r as PeerInfoEntry[]) {
      // Only our outbound connections count: an inbound one from the same IP is another socket.
      if (e === null || typeof e !== 'object' || typeof e.addr !== 'string' || e.inbound === true) continue;
      const k = keyOfAddr(e.addr);
      if (k !== undefined) m.set(k, e);
    }
    return m;
  }

  private rpcFailed(method: string, err: unknown): void {
    const code = err instanceof NodeRpcError ? err.code : 'ERROR';
    this.limiter.write('warn', 'node-rpc-failed', code, {
      method,
      rpc: this.o.rpc.endpoint,
      error: err,
      fix:
        code === 'RPC_AUTH' || code === 'RPC_COOKIE'
          ? "set rpcuser/rpcpassword or rpccookiefile to the node's"
          : code === 'RPC_CONNECT'
            ? "set rpcconnect/rpcport to the node's RPC server (bitcoind -server)"
            : undefined,
    });
  }
}
