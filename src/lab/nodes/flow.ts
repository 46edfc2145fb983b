/**
 * Real Bitcoin nodes across the hole (issue #11), on the demo rig's lab and private Tor network (rig.ts builds
 * them and calls in here for the `nodes` option):
 *  - two relays, `onionpunch relay` on the public hosts pub1 and pub2 (pub2 keeps a link to pub1); they are also
 *    the NAT-check servers of both sides (a relay answers NAT checks on its P2P port). Every verb names its
 *    relays with `seednode`, as docs/DAEMON.md's operator's guide does;
 *  - site A: a node (bcoin 1.0.2 on regtest, memory database; Bitcoin Core when `BITCOIND` names its binary)
 *    that mines 101 blocks, and `onionpunch serve` with its own tor client of the private network, splicing
 *    punched sockets to the node and announcing to relay 1;
 *  - site B: a node configured with nothing but the proxy and RPC, and `onionpunch proxy` learning from relay 2;
 *    the proxy asks the node (`addnode onetry`) to connect, the node connects through the proxy, the proxy
 *    punches, serve splices to A's node, and B's node syncs to A's tip.
 * Every process runs in its lab namespace through `lab.spawn`, so `down()` of the lab ends them too.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Lab } from '../index.js';
import type { PrivateTor } from '../tor/private-tor.js';
import type { PrivateI2p } from '../i2p/private-i2p.js';
import { onionpunchArgv } from '../topology/observe.js';
import { wallMs } from '../demo/jsonl.js';
import { LabError } from '../errors.js';
import { BcoinProcess, type NodeInfo } from './bcoin.js';
import { CoreProcess } from './core.js';
import { parseEndpoint, type Endpoint } from '../../nat/types.js';
import { isLoopback } from '../../ip.js';

/** The P2P port of the relays (regtest's). */
export const RELAY_PORT = 18444;
/** The nodes' own P2P and RPC ports inside their site namespaces (serve keeps the network port for punching). */
export const NODE_P2P_PORT = 28444;
export const NODE_RPC_PORT = 28443;
/** Blocks A mines before B connects (the default of {@link FlowRig.blocks}). */
export const FLOW_BLOCKS = 101;
/** Most blocks one `mine` command of the bcoin worker mines. */
const MINE_CHUNK = 1000;

/** Which node implementation runs on both sides. */
export type NodeKind = 'bcoin' | 'core';

/** One step of the flow's timeline (wall ms). */
export interface FlowEvent {
  at: number;
  who: string;
  event: string;
  detail?: string;
}

/** A lab node: what the flow needs of bcoin or Core. */
export interface LabNode {
  readonly name: string;
  info(timeoutMs?: number): Promise<NodeInfo>;
  mine(n: number, timeoutMs?: number): Promise<{ height: number; hash: string }>;
  waitForHeight(height: number, timeoutMs: number): Promise<{ height: number; hash: string; at: number }>;
  /** The node's chain height now (bcoin: its last `tip` message; Core: getblockcount). */
  height(): Promise<number>;
  stop(): Promise<void>;
  kill(): void;
}

/** A daemon verb (`relay`, `serve`, `proxy`) running in a namespace, its JSON log lines collected. */
export class VerbRun {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly ready: Promise<Record<string, unknown>>;
  private readonly tail: string[] = [];
  private readonly waiters: Array<{
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }> = [];

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    onLine?: (l: Record<string, unknown>) => void,
  ) {
    let partial = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (partial + d).split('\n');
      partial = parts.pop()!;
      for (const raw of parts) {
        let l: Record<string, unknown> | undefined;
        try {
          l = raw.startsWith('{') ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
        } catch {
          l = undefined;
        }
        if (!l) {
          this.tail.push(raw);
          if (this.tail.length > 20) this.tail.shift();
          continue;
        }
        // Bounded: the flow lasts a minute or two; a flood of lines would end in the newest 20,000.
        this.lines.push(l);
        if (this.lines.length > 20_000) this.lines.shift();
        onLine?.(l);
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          if (this.waiters[i]!.pred(l)) this.waiters.splice(i, 1)[0]!.resolve(l);
        }
      }
    });
    this.ready = new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          try {
            resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
          } catch {
            reject(new LabError('LAB_COMMAND_FAILED', `${name}: bad ready line`));
          }
        }
      });
      child.once('exit', (code) =>
        reject(
          new LabError(
            'LAB_COMMAND_FAILED',
            `${name} exited (${code}) before ready: ${this.tail.join(' | ').slice(-600)}`,
          ),
        ),
      );
    });
    this.ready.catch(() => undefined);
  }

  /** The first log line with `event` (and `where`), already logged or to come. */
  waitFor(
    event: string,
    timeoutMs: number,
    where?: (l: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>> {
    const pred = (l: Record<string, unknown>): boolean => l.event === event && (where === undefined || where(l));
    const have = this.lines.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (l: Record<string, unknown>) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new LabError('LAB_TIMEOUT', `${this.name}: no '${event}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  count(event: string): number {
    return this.lines.filter((l) => l.event === event).length;
  }

  /** SIGTERM, SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }
}

/** What the rig gives the flow. */
export interface FlowRig {
  lab: Lab;
  tor: PrivateTor | undefined;
  i2p: PrivateI2p | undefined;
  family: 4 | 6;
  profile: 'plain' | 'prime';
  nodes: NodeKind;
  /** `serve --zerortt`: A announces a warm punch port and B's proxy takes the zero-round-trip path. */
  zeroRtt?: boolean;
  /** Blocks A's node mines before B's starts (default {@link FLOW_BLOCKS}); more make B's sync last longer. */
  blocks?: number;
  log: (line: string) => void;
  onEvent?: (e: FlowEvent) => void;
}

/** The outcome of {@link NodeSites.sync}. */
export interface FlowResult {
  ok: boolean;
  heightA: number;
  heightB: number;
  hashA: string;
  hashB: string;
  /** From the proxy's `punch-start` to `punch-connected` of the connection that synced. */
  timeToConnectMs?: number;
  /** From that `punch-connected` to B's node at A's tip. */
  syncMs?: number;
  /** getpeerinfo: B is an inbound peer of A (through serve's splice), A an outbound peer of B (via the proxy). */
  inboundOnA: boolean;
  outboundOnB: boolean;
  events: FlowEvent[];
  error?: { code: string; message: string };
}

const tOf = (l: Record<string, unknown>): number => Date.parse(String(l.t));

/** The relays, nodes and daemons of the flow (see the module comment). `stop()` ends them all. */
export class NodeSites {
  relays: VerbRun[] = [];
  serve: VerbRun | undefined;
  proxy: VerbRun | undefined;
  nodeA: LabNode | undefined;
  nodeB: LabNode | undefined;
  readonly events: FlowEvent[] = [];
  /** The relays' endpoints, the NAT-check servers of both sides. */
  natcheck: Endpoint[] = [];
  private readonly apiKey = randomBytes(12).toString('hex');

  constructor(private readonly rig: FlowRig) {}

  private event(who: string, event: string, detail?: string, at = wallMs()): void {
    const e: FlowEvent = { at, who, event, ...(detail !== undefined ? { detail } : {}) };
    this.events.push(e);
    this.rig.onEvent?.(e);
  }

  private verb(name: string, ns: string, args: string[]): VerbRun {
    const child = this.rig.lab.spawn(ns, onionpunchArgv(...args, '--log', 'json', '--json'));
    return new VerbRun(name, child, (l) => {
      this.rig.log(`[${name}] ${String(l.event)} ${JSON.stringify(l).slice(0, 300)}`);
      const at = tOf(l);
      switch (l.event) {
        case 'announcement-sent':
          if (this.count(name, 'announced') === 0) this.event(name, 'announced', String(l.clearnet), at);
          break;
        case 'announcement-relayed':
          this.event(name, 'relayed', `${String(l.coordination ?? '')}`.slice(0, 80), at);
          break;
        case 'announcement-learned':
          this.event(name, 'learned', `${String(l.clearnet)} from ${String(l.from)}`, at);
          break;
        case 'addnode':
          this.event(name, 'addnode', `${String(l.peer)} (ask ${String(l.ask)})`, at);
          break;
        case 'punch-start':
          this.event(name, 'punch-start', String(l.destination), at);
          break;
        case 'punch-connected':
          this.event(name, 'punched', `${String(l.remote)}`, at);
          break;
        case 'punch-failed':
          this.event(name, 'punch-failed', JSON.stringify(l.error).slice(0, 160), at);
          break;
        case 'bridge-open':
          this.event(name, 'spliced', `to the node at ${String(l.bitcoind)}`, at);
          break;
        case 'punch-peer-lost':
          this.event(name, 'peer-lost', `${String(l.peer)}: ${String(l.why)}, retry in ${String(l.retryInMs)} ms`, at);
          break;
        case 'node-rpc-failed':
          this.event(name, 'node-rpc-failed', JSON.stringify(l.error).slice(0, 160), at);
          break;
        default:
      }
    });
  }

  private count(who: string, event: string): number {
    return this.events.filter((e) => e.who === who && e.event === event).length;
  }

  /** Relays on pub1 and pub2 (relay 2 linked to relay 1). Their endpoints become the NAT-check servers. */
  async startRelays(): Promise<Endpoint[]> {
    const ph = this.rig.lab.publicHosts;
    const addr = (i: number): string => (this.rig.family === 6 ? ph[i]!.ip6! : ph[i]!.ip);
    const hp = (i: number): string =>
      this.rig.family === 6 ? `[${addr(i)}]:${RELAY_PORT}` : `${addr(i)}:${RELAY_PORT}`;
    const common = ['--network', 'regtest', '--port', String(RELAY_PORT), '--announceinterval', '10'];
    const r1 = this.verb('relay1', 'pub1', ['relay', ...common]);
    this.relays.push(r1);
    await r1.ready;
    const r2 = this.verb('relay2', 'pub2', ['relay', ...common, '--seednode', hp(0)]);
    this.relays.push(r2);
    await r2.ready;
    this.natcheck = [0, 1].map((i) => ({ address: addr(i), port: RELAY_PORT }));
    return this.natcheck;
  }

  private async startNode(side: 'a' | 'b'): Promise<LabNode> {
    const name = side === 'a' ? 'nodeA' : 'nodeB';
    const spawner = (argv: string[]): ChildProcess => this.rig.lab.spawn(side, argv);
    const proxy = side === 'b' ? `127.0.0.1:${9064}` : undefined;
    const cfg = {
      host: '127.0.0.1',
      port: NODE_P2P_PORT,
      rpcHost: '127.0.0.1',
      rpcPort: NODE_RPC_PORT,
      apiKey: this.apiKey,
      ...(proxy ? { proxy } : {}),
    };
    const opened = new Set<string>();
    if (this.rig.nodes === 'core')
      return CoreProcess.start(name, cfg, { spawner, exec: (argv) => this.rig.lab.exec(side, argv) });
    return BcoinProcess.start(name, cfg, {
      spawner,
      onMessage: (m) => {
        // Only peers that opened: bcoin also tries addresses it heard of (its own default port among them), and
        // the proxy refuses those loopback ones at once.
        if (m.type === 'peer-open') {
          opened.add(String(m.addr));
          this.event(name, 'peer-open', `${String(m.addr)} ${m.inbound ? 'inbound' : 'outbound'}`, m.at);
        }
        if (m.type === 'peer-close' && opened.delete(String(m.addr)))
          this.event(name, 'peer-close', `${String(m.addr)}`, m.at);
      },
    });
  }

  /** Nodes and daemons on both sites; A's node has mined {@link FLOW_BLOCKS} blocks when this resolves. */
  async startSites(): Promise<void> {
    const { lab, tor, i2p, family } = this.rig;
    const nc = this.natcheck.flatMap((e) => [
      '--natcheck',
      e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`,
    ]);
    const common = ['--network', 'regtest', '--labranges', '--announceinterval', '10', '--shutdowngrace', '1', ...nc];
    this.nodeA = await this.startNode('a');
    let mined = { height: 0 };
    for (let left = this.rig.blocks ?? FLOW_BLOCKS; left > 0; left -= MINE_CHUNK) {
      mined = await this.nodeA.mine(Math.min(left, MINE_CHUNK), 120_000);
    }
    this.event('nodeA', 'mined', `height ${mined.height}`);
    const overlay = tor
      ? [
          '--overlay',
          'tor',
          '--torcontrol',
          `${tor.controlA.host}:${tor.controlA.port}`,
          ...(tor.controlA.password ? ['--torpassword', tor.controlA.password] : []),
        ]
      : // Zero-hop tunnels: what the lab's 4-router I2P network needs (docs/I2P.md).
        ['--overlay', 'i2p', '--i2psam', `${i2p!.sam[2]!.host}:${i2p!.sam[2]!.port}`, '--i2phops', '0'];
    const bindA = family === 6 ? ['--bind', lab.sites.a!.host.ip6!] : [];
    this.serve = this.verb('serve', 'a', [
      'serve',
      ...common,
      ...overlay,
      ...bindA,
      '--bitcoind',
      `127.0.0.1:${NODE_P2P_PORT}`,
      '--seednode',
      this.hp(0),
      ...(this.rig.zeroRtt ? ['--zerortt'] : []),
    ]);
    await this.serve.ready;
    this.nodeB = await this.startNode('b');
    const overlayB = tor
      ? ['--overlay', 'tor', '--proxy', `${tor.socksB.host}:${tor.socksB.port}`]
      : ['--overlay', 'i2p', '--i2psam', `${i2p!.sam[3]!.host}:${i2p!.sam[3]!.port}`, '--i2phops', '0'];
    const bindB = family === 6 ? ['--bind', lab.sites.b!.host.ip6!] : [];
    this.proxy = this.verb('proxy', 'b', [
      'proxy',
      ...common,
      ...overlayB,
      ...bindB,
      '--listen',
      '127.0.0.1:9064',
      '--seednode',
      this.hp(1),
      '--punchprofile',
      this.rig.profile,
      '--rpcport',
      String(NODE_RPC_PORT),
      '--rpcpassword',
      this.apiKey,
      '--maxpunchpeers',
      '2',
    ]);
    await this.proxy.ready;
  }

  private hp(i: number): string {
    const e = this.natcheck[i]!;
    return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
  }

  /**
   * Waits until B's node is at A's tip (`height`, default A's), then reads both nodes' getpeerinfo. The
   * connection is the proxy's doing: nothing here asks B's node to connect.
   */
  async sync(timeoutMs = 150_000, height?: number): Promise<FlowResult> {
    const a = this.nodeA!;
    const b = this.nodeB!;
    const target = height ?? (await a.info()).height;
    let error: FlowResult['error'];
    let reached: { at: number } | undefined;
    try {
      reached = await b.waitForHeight(target, timeoutMs);
      this.event('nodeB', 'synced', `height ${target}`, reached.at);
    } catch (err) {
      error = { code: 'DEMO_SYNC', message: (err as Error).message };
    }
    const [ia, ib] = await Promise.all([a.info(), b.info()]);
    const publicA = this.rig.family === 6 ? this.rig.lab.sites.a!.host.ip6! : this.rig.lab.sites.a!.publicIp;
    const hostOf = (addr: string): string => parseEndpoint(addr)?.address ?? '';
    const inboundOnA = ia.peers.some((p) => p.inbound && isLoopback(hostOf(p.addr)));
    const outboundOnB = ib.peers.some((p) => !p.inbound && hostOf(p.addr) === publicA);
    // The punch of the connection that synced: the last punch-connected before B reached the tip.
    const lines = this.proxy?.lines ?? [];
    const connected = lines.filter((l) => l.event === 'punch-connected' && (!reached || tOf(l) <= reached.at)).pop();
    const start = connected
      ? lines
          .filter(
            (l) => l.event === 'punch-start' && tOf(l) <= tOf(connected) && l.destination === connected.destination,
          )
          .pop()
      : undefined;
    const ok = error === undefined && ia.hash === ib.hash && inboundOnA && outboundOnB;
    if (!ok && !error) {
      error = {
        code: 'DEMO_PEERS',
        message: `best block A ${ia.hash} B ${ib.hash}; B inbound on A: ${inboundOnA}; A outbound on B: ${outboundOnB}`,
      };
    }
    this.events.sort((x, y) => x.at - y.at);
    return {
      ok,
      heightA: ia.height,
      heightB: ib.height,
      hashA: ia.hash,
      hashB: ib.hash,
      ...(connected && start ? { timeToConnectMs: tOf(connected) - tOf(start) } : {}),
      ...(connected && reached ? { syncMs: Math.max(0, Math.round(reached.at - tOf(connected))) } : {}),
      inboundOnA,
      outboundOnB,
      events: [...this.events],
      ...(error ? { error } : {}),
    };
  }

  /** Kills B's punched TCP connection to A with `ss -K` in B's namespace (what a NAT or link failure does). */
  async killPunched(): Promise<string> {
    const publicA = this.rig.family === 6 ? this.rig.lab.sites.a!.host.ip6! : this.rig.lab.sites.a!.publicIp;
    const r = await this.rig.lab.exec('b', ['ss', '-K', '-tn', 'dst', publicA]);
    this.event('lab', 'ss -K', `B's connections to ${publicA}`);
    return r.stdout;
  }

  /**
   * Kills the punched connection while B's node syncs: polls B's height every `pollMs` until it is at least
   * `fromHeight` (default 1), then {@link killPunched}. `heightAtKill` is B's height read right after `ss -K`
   * returned (blocks B had by the kill, at most); `at` is `Date.now()` just before `ss -K` ran (the daemons'
   * log lines the kill caused are stamped after it, by the same clock); `tipA` is A's height before the wait.
   * Nothing here checks that B was still below A's tip: the caller asserts it.
   */
  async killPunchedMidSync(
    o: { fromHeight?: number; timeoutMs?: number; pollMs?: number } = {},
  ): Promise<{ tipA: number; heightAtKill: number; at: number; killed: string }> {
    const a = this.nodeA!;
    const b = this.nodeB!;
    const tipA = (await a.info()).height;
    const from = o.fromHeight ?? 1;
    const t0 = Date.now();
    for (;;) {
      const h = await b.height();
      if (h >= from) break;
      if (Date.now() - t0 > (o.timeoutMs ?? 120_000)) {
        throw new LabError('LAB_TIMEOUT', `nodeB: height ${from} not reached in ${o.timeoutMs ?? 120_000} ms`);
      }
      await new Promise((r) => setTimeout(r, o.pollMs ?? 10));
    }
    const at = Date.now();
    const killed = await this.killPunched();
    const heightAtKill = await b.height();
    this.event('nodeB', 'killed-mid-sync', `height ${heightAtKill} of ${tipA}`);
    return { tipA, heightAtKill, at, killed };
  }

  async stop(): Promise<void> {
    await Promise.all([this.proxy?.stop(), this.serve?.stop()].map((p) => p?.catch(() => undefined)));
    await Promise.all([this.nodeA?.stop(), this.nodeB?.stop()].map((p) => p?.catch(() => undefined)));
    await Promise.all(this.relays.map((r) => r.stop().catch(() => undefined)));
  }
}
