/**
 * A two-site punch rig in the NAT lab: the lab (sites `a` and `b`, two NAT-check public hosts, four more
 * public hosts for the private Tor network), NAT-check servers, the private Tor network (authority and
 * relays on public hosts, A's and B's tor clients inside the NATed hosts' namespaces), and the A and B
 * workers as child node processes in their namespaces, driven over JSON lines. Used by `onionpunch demo`,
 * `onionpunch lab matrix` and the lab tests. `down()` removes everything, also after failures.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, LabError } from '../index.js';
import { routerRuleset } from '../topology/nft.js';
import type { NatKind, InboundPolicy, SiteSpec } from '../topology/spec.js';
import { startPrivateTor, type PrivateTor } from '../tor/private-tor.js';
import { startPrivateI2p, type PrivateI2p } from '../i2p/private-i2p.js';
import { MessageQueue, readMessages, wallMs, type WorkerMessage } from './jsonl.js';
import type { WorkerConfig } from './worker-config.js';
import type { Endpoint } from '../../nat/types.js';
import type { ProgressSink } from '../progress.js';
import { NodeSites, type FlowEvent, type FlowResult, type NodeKind } from '../nodes/flow.js';
import { FALLBACK_MIN_SAMPLES } from '../../punch/fire-fallback.js';
import { FIRE_RTT_MIN_SAMPLES } from '../../punch/fire-rtt.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'worker.js');
/** The TCP port of A's coordination server with `overlay: 'direct'` (forwarded by A's router). */
export const DIRECT_PORT = 9333;
/**
 * Sessions after which a fresh A and B have warm estimates (A's fire fallback, B's fire-RTT bound: both need this
 * many verified sessions): lab matrix and lab stress run that many uncounted first, as a running daemon is warm.
 */
export const WARM_SESSIONS = Math.max(FALLBACK_MIN_SAMPLES, FIRE_RTT_MIN_SAMPLES);
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

export interface SiteBehaviour {
  nat: NatKind;
  inbound: InboundPolicy;
}

/** A site of the rig: its router's behaviour, a carrier NAT, routed IPv6 behind a firewall. */
export type RigSite = SiteBehaviour & { cgnat?: boolean; ipv6?: 'fw6' };

export interface RigOptions {
  a: RigSite;
  b: RigSite;
  /** IPv6 (fw6) on both sites (a site's own `ipv6` gives it to that site); punch over IPv6 when `family` is 6. */
  ipv6?: boolean;
  family?: 4 | 6;
  /** One-way delay per access link (ms); A↔B RTT is 4× this. */
  delayMs?: number;
  jitterMs?: number;
  lossPct?: number;
  /**
   * The coordination overlay. `direct` (lab stress) is no overlay: plain TCP to a port A's router forwards to
   * A, to load the engine and the protocol past what the private Tor network carries.
   */
  overlay?: 'tor' | 'i2p' | 'direct';
  /**
   * How many B sites (b, c, d, ...; default 1), each behaving as `b` with its own B worker — over Tor also with
   * its own tor client in its host (one B home each: its own circuits over its own access link).
   */
  bSites?: number;
  /** A's listener limits and B's client limits instead of the lab's defaults (lab stress). */
  aLimits?: Record<string, number>;
  bLimits?: { perEndpoint?: number; perNetgroup?: number; maxKeys?: number };
  /** A attaches whole timelines only to its first this many connections and failures (default: all). */
  timelines?: number;
  /** A and every B also keep their slowest sessions' and first failures' timelines (WorkerConfig.tail). */
  tail?: { slowest: number; failed: number };
  /** Every session's compact steps on A's and B's lines (lab stress: explains the tail). */
  steps?: boolean;
  /** B's whole-session deadline and overlay dial timeout (ms; default the client's). */
  sessionDeadlineMs?: number;
  /** Called when a worker exits (a fault: `lab stress --fault b-kill`). */
  onExit?: (who: string, code: number | null, signal: NodeJS.Signals | null) => void;
  profile?: 'plain' | 'prime';
  /** A keeps a warm announced port for zero-round-trip coordination; `attempt({ zeroRtt })` picks the path. */
  zeroRtt?: boolean;
  log?: (line: string) => void;
  /** Told the bring-up's steps (the lab, NAT-check servers, the overlay's own steps, the workers). */
  progress?: ProgressSink;
  /** Called with every worker message (for live timelines). */
  onMessage?: (who: string, m: WorkerMessage) => void;
  /**
   * Real Bitcoin nodes instead of the A/B punch workers (src/lab/nodes/flow.ts): relays on pub1/pub2 (also the
   * NAT-check servers), a node + `serve` on A, a node + `proxy` on B. `bcoin`, or `core` with `BITCOIND` set.
   */
  nodes?: NodeKind;
  /** Nodes flow: blocks A's node mines before B's starts (default 101). */
  nodeBlocks?: number;
  /** Called with every step of the nodes flow (for live timelines). */
  onFlowEvent?: (e: FlowEvent) => void;
}

export interface AttemptResult {
  ok: boolean;
  error?: { code: string; message: string; side?: string; step?: string };
  /** From B's request reaching A (A's `request`) to A's `established`. */
  timeToConnectMs?: number;
  /** B: from punch() to established (includes the overlay dial). */
  totalMs?: number;
  overlayRttMs?: number;
  directRttMs?: number;
  handshake?: boolean;
  /** Zero-round-trip coordination was asked for (`zeroRtt`) and used (`zeroRttUsed`: B's fast path connected). */
  zeroRtt?: boolean;
  zeroRttUsed?: boolean;
  /** Why B fell back to the measured-RTT flow (its `zero-rtt-fallback` event). */
  zeroRttFallback?: string;
  /** A birthday spray: SYNs each side sent (attempt sockets), the hard side and the winning port pair. */
  synsA?: number;
  synsB?: number;
  spray?: {
    hard: string;
    sockets: number;
    probes: number;
    probeLow: number;
    probeHigh: number;
    pairA?: string;
    pairB?: string;
  };
  /** Wall-clock events of both sides (ms, absolute). */
  events: Array<{ at: number; who: string; event: string; detail?: string }>;
}

/** One process's resource use at a moment (from /proc; `ip netns exec` execs, so the child's pid is the worker's). */
export interface ResourceSample {
  at: number;
  who: string;
  rssKb: number;
  threads: number;
  fds: number;
  /** CPU time used so far (user + system, ms). */
  cpuMs?: number;
}

/** USER_HZ: Linux reports process times in 1/100 s on every architecture Node runs on. */
const CLOCK_TICKS = 100;

interface Worker {
  name: string;
  child: ChildProcess;
  q: MessageQueue;
  stderr: string[];
}

export class PunchRig {
  lab!: Lab;
  tor: PrivateTor | undefined;
  i2p: PrivateI2p | undefined;
  natcheck: Endpoint[] = [];
  private workers: Worker[] = [];
  private a: Worker | undefined;
  private b: Worker | undefined;
  /** Every B worker (the first is `b`), by B site. */
  private bs: Array<Worker | undefined> = [];
  target: { address: string; port: number; expectIp: string | null } | undefined;
  eimA: WorkerMessage | undefined;
  eimB: WorkerMessage | undefined;
  readonly t0 = wallMs();
  timings: Record<string, number> = {};
  /** The nodes flow's relays, nodes and daemons (with the `nodes` option). */
  nodeSites: NodeSites | undefined;
  private downP: Promise<void> | undefined;

  private constructor(readonly opts: RigOptions) {}

  private log(s: string): void {
    this.opts.log?.(s);
  }

  /** Builds a rig. `onCreated` gets the rig before the build starts, so a SIGINT handler can `down()` it. */
  static async up(opts: RigOptions, onCreated?: (rig: PunchRig) => void): Promise<PunchRig> {
    const rig = new PunchRig(opts);
    onCreated?.(rig);
    try {
      await rig.build();
      return rig;
    } catch (err) {
      await rig.down();
      throw err;
    }
  }

  private site(name: string, s: RigSite): SiteSpec {
    const v6 = this.opts.ipv6 === true || s.ipv6 === 'fw6';
    const extra = { ...(s.cgnat ? { cgnat: true } : {}), ...(v6 ? { ipv6: 'fw6' as const } : {}) };
    return { name, nat: s.nat, inbound: s.inbound, ...extra };
  }

  private spawnWorker(name: string, node: string, cfg: WorkerConfig): Worker {
    // --expose-gc: a worker collects before it reports its resources (lab stress's leak check).
    const child = this.lab.spawn(node, [process.execPath, '--expose-gc', WORKER, JSON.stringify(cfg)]);
    const w: Worker = { name, child, q: new MessageQueue(), stderr: [] };
    readMessages(
      child.stdout!,
      (m) => {
        this.opts.onMessage?.(name, m);
        w.q.push(m);
      },
      (line) => this.log(`[${name}] ${line}`),
    );
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      w.stderr.push(d);
      if (w.stderr.length > 50) w.stderr.shift();
      this.log(`[${name}!] ${d.trimEnd()}`);
    });
    child.on('exit', (code, sig) => {
      w.q.end(new Error(`${name} worker exited (${code ?? sig}): ${w.stderr.join('').trim().slice(-400)}`));
      this.opts.onExit?.(name, code, sig);
    });
    this.workers.push(w);
    return w;
  }

  private async ready(w: Worker, timeoutMs: number): Promise<WorkerMessage> {
    const m = await w.q.waitFor(['ready', 'fatal'], timeoutMs);
    if (m.type === 'fatal') throw new Error(`${w.name}: ${String(m.code)}: ${String(m.message)}`);
    return m;
  }

  private mark(name: string): void {
    this.timings[name] = Math.round(wallMs() - this.t0);
    this.opts.progress?.status(`rig: ${name} at ${(this.timings[name] / 1000).toFixed(1)} s`);
  }

  private async build(): Promise<void> {
    const o = this.opts;
    const stopped = (): boolean => this.downP !== undefined;
    const overlay = o.overlay ?? 'tor';
    const nb = o.bSites ?? 1;
    if (nb < 1 || nb > 25) throw new LabError('LAB_BAD_SPEC', `bSites must be 1..25 (got ${nb})`);
    if (overlay === 'direct' && o.a.cgnat) {
      throw new LabError('LAB_BAD_SPEC', "direct coordination needs a port forward on A's router: A cannot be cgnat");
    }
    const bNames = [...LETTERS.slice(1, 1 + nb)];
    this.log(`lab: building ${1 + nb} sites, 2 NAT-check hosts${overlay === 'direct' ? '' : `, 4 ${overlay} hosts`}`);
    this.lab = await Lab.up({
      sites: [this.site('a', o.a), ...bNames.map((n) => this.site(n, o.b))],
      delayMs: o.delayMs ?? 0,
      jitterMs: o.jitterMs ?? 0,
      lossPct: o.lossPct ?? 0,
      publicHosts: 2,
      extraPublicHosts: overlay === 'direct' ? 0 : 4,
    });
    this.mark('labUp');
    if (overlay === 'direct') await this.forwardDirectPort();
    if (stopped()) throw new Error('rig stopped during bring-up');
    const fam = o.family ?? 4;
    if (o.nodes) {
      // Relays on pub1, pub2: they answer the NAT checks on their P2P port too.
      const rig = this;
      this.nodeSites = new NodeSites({
        lab: this.lab,
        get tor() {
          return rig.tor;
        },
        get i2p() {
          return rig.i2p;
        },
        family: fam,
        profile: o.profile ?? 'plain',
        nodes: o.nodes,
        ...(o.zeroRtt ? { zeroRtt: true } : {}),
        ...(o.nodeBlocks !== undefined ? { blocks: o.nodeBlocks } : {}),
        log: (l) => this.log(l),
        ...(o.onFlowEvent ? { onEvent: o.onFlowEvent } : {}),
      });
      this.natcheck = await this.nodeSites.startRelays();
    } else {
      // NAT-check servers on pub1, pub2 (dual stack).
      const nc = [1, 2].map((i) =>
        this.spawnWorker(`natcheck${i}`, `pub${i}`, {
          role: 'natcheck',
          network: 'regtest',
          listen: { address: '::', port: 8333 },
        }),
      );
      await Promise.all(nc.map((w) => this.ready(w, 15_000)));
      this.natcheck = this.lab.publicHosts.slice(0, 2).map((p) => ({ address: fam === 6 ? p.ip6! : p.ip, port: 8333 }));
    }
    this.mark('natcheckUp');
    if (overlay === 'direct') {
      this.log(`direct: plain TCP coordination to ${this.lab.sites.a!.publicIp}:${DIRECT_PORT} (forwarded to A)`);
    } else if (overlay === 'tor') {
      const bHosts = bNames.map((n) => this.lab.sites[n]!.host);
      const clients = nb > 1 ? `A and ${nb} B sites` : 'A and B';
      this.log(`tor: starting a private network (authority + 3 relays on public hosts, clients in ${clients})`);
      const ph = this.lab.publicHosts;
      this.tor = await startPrivateTor({
        roles: {
          authority: { netns: ph[2]!.ns, ip: ph[2]!.ip },
          relays: [3, 4, 5].map((i) => ({ netns: ph[i]!.ns, ip: ph[i]!.ip })),
          a: { netns: this.lab.sites.a!.host.ns, ip: this.lab.sites.a!.host.ip },
          b: { netns: bHosts[0]!.ns, ip: bHosts[0]!.ip },
          bs: bHosts.slice(1).map((h) => ({ netns: h.ns, ip: h.ip })),
        },
        log: (l) => this.log(`[tor] ${l}`),
        ...(o.progress ? { progress: o.progress } : {}),
      });
      this.mark('torUp');
      if (stopped()) throw new Error('rig stopped during bring-up');
    } else {
      // i2pd refuses private addresses: the four routers run on public hosts (198.18/15) with their SAM bridges
      // on those addresses, and A and B reach them through their NATs (as a node using a router elsewhere).
      this.log('i2p: starting a private network (4 routers on public hosts)');
      const ph = this.lab.publicHosts;
      this.i2p = await startPrivateI2p({
        routers: [2, 3, 4, 5].map((i) => ({ netns: ph[i]!.ns, ip: ph[i]!.ip, samHost: ph[i]!.ip })),
        log: (l) => this.log(`[i2p] ${l}`),
        ...(o.progress ? { progress: o.progress } : {}),
        timeoutMs: 120_000,
      });
      this.mark('i2pUp');
    }
    if (this.nodeSites) {
      await this.nodeSites.startSites();
      this.mark('sitesUp');
    } else await this.startWorkers();
  }

  /** Nodes flow: waits until B's node has A's tip (the proxy made it connect) and checks both nodes' peers. */
  async syncNodes(timeoutMs = 150_000, height?: number): Promise<FlowResult> {
    if (!this.nodeSites) throw new Error('this rig has no nodes (build it with nodes: "bcoin")');
    return this.nodeSites.sync(timeoutMs, height);
  }

  /**
   * `direct`: A's router forwards DIRECT_PORT to A (a node with a port forward for coordination only). The
   * accept goes first in the firewall's forward chain: its `ct state new drop` would drop the forwarded SYN.
   */
  private async forwardDirectPort(): Promise<void> {
    const site = this.lab.sites.a!;
    const rules = [
      'table ip lab_direct {',
      '  chain prerouting {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      `    iifname "wan" tcp dport ${DIRECT_PORT} dnat to ${site.host.ip}:${DIRECT_PORT}`,
      '  }',
      '}',
      '',
    ].join('\n');
    const r = await this.lab.exec(site.router.ns, ['nft', '-f', '-'], { input: rules });
    const ns = site.router.ns;
    if (r.code !== 0) throw new LabError('LAB_COMMAND_FAILED', `nft (direct port forward) on ${ns}: ${r.stderr}`);
    const accept = ['insert', 'rule', 'inet', 'lab_fw', 'forward', 'iifname', 'wan', 'ct', 'status', 'dnat', 'accept'];
    const r2 = await this.lab.exec(ns, ['nft', ...accept]);
    if (r2.code !== 0) throw new LabError('LAB_COMMAND_FAILED', `nft (direct forward accept) on ${ns}: ${r2.stderr}`);
  }

  /** The B sites' names (`b`, `c`, ...). */
  get bSiteNames(): string[] {
    return [...LETTERS.slice(1, 1 + (this.opts.bSites ?? 1))];
  }

  private workerConfig(side: 'a' | 'b', siteName: string = side): WorkerConfig {
    const o = this.opts;
    const fam = o.family ?? 4;
    const s = side === 'a' ? o.a : o.b;
    const host = this.lab.sites[siteName]!.host;
    return {
      role: side,
      network: 'regtest',
      natcheck: this.natcheck,
      family: fam,
      ...(fam === 6 ? { localAddress: host.ip6! } : {}),
      overlay: o.overlay ?? 'tor',
      profile: o.profile ?? 'prime',
      // The prime SYN must leave every NAT of its own side and die before the far NAT: one hop more
      // behind a carrier NAT.
      primeTtl: s.cgnat ? 3 : 2,
      // The lab is a trial setup: both sides spray through endpoint-dependent NATs (opt-in on a real node).
      hardNat: true,
      ...(o.zeroRtt && side === 'a' ? { zeroRtt: true } : {}),
    };
  }

  /** (Re)starts the A and B workers: EIM checks, A's onion endpoint, B's dialer. */
  async startWorkers(): Promise<void> {
    const tor = this.tor;
    const i2p = this.i2p;
    const ca = this.workerConfig('a');
    if (this.opts.overlay === 'direct') ca.directPort = DIRECT_PORT;
    if (this.opts.aLimits) ca.limits = this.opts.aLimits;
    if (this.opts.timelines !== undefined) ca.timelines = this.opts.timelines;
    if (this.opts.tail) ca.tail = this.opts.tail;
    if (this.opts.steps) ca.steps = true;
    if (tor)
      ca.control = {
        host: tor.controlA.host,
        port: tor.controlA.port,
        ...(tor.controlA.cookieFile ? { cookieFile: tor.controlA.cookieFile } : {}),
        ...(tor.controlA.password ? { password: tor.controlA.password } : {}),
      };
    if (i2p) {
      ca.sam = { host: i2p.sam[2]!.host, port: i2p.sam[2]!.port };
      ca.samOptions = i2p.sessionOptions;
    }
    this.a = this.spawnWorker('A', 'a', ca);
    this.eimA = await this.a.q.waitFor(['eim', 'fatal'], 30_000);
    const ra = await this.ready(this.a, 150_000);
    // B checks that A punches from the public IP A's own EIM check saw (what an announcement would carry).
    const pubA = this.eimA?.publicAddress;
    const expectIp = typeof pubA === 'string' ? pubA : null;
    const address = this.opts.overlay === 'direct' ? this.lab.sites.a!.publicIp : String(ra.address);
    this.target = { address, port: Number(ra.port), expectIp };
    const z = ra.zeroRtt as { port?: number } | undefined;
    this.zeroRttPort = typeof z?.port === 'number' ? z.port : undefined;
    this.mark('endpointUp');
    this.bs = [];
    const started = await Promise.all(this.bSiteNames.map((_n, i) => this.startB(i)));
    this.b = started[0];
    this.eimB = this.eimBs[0];
    this.mark('workersUp');
  }

  /** EIM verdicts of every B worker, by B site. */
  eimBs: Array<WorkerMessage | undefined> = [];
  /** A's warm announced port (zero-round-trip coordination), when A holds one. */
  zeroRttPort: number | undefined;

  /** (Re)starts the B worker of B site `i` (0 = `b`) and waits until it is ready. */
  async startB(i: number): Promise<Worker> {
    const tor = this.tor;
    const i2p = this.i2p;
    const site = this.bSiteNames[i]!;
    const cb = this.workerConfig('b', site);
    const socks = tor?.socksBs[i];
    if (socks) cb.socks = { host: socks.host, port: socks.port };
    if (i2p) {
      // B sites spread over two routers A does not use (lab stress --fault i2pd-kill kills router 0).
      const sam = i2p.sam[[3, 1][i % 2]!]!;
      cb.sam = { host: sam.host, port: sam.port };
      cb.samOptions = i2p.sessionOptions;
    }
    if (this.opts.overlay === 'direct') cb.overlay = 'direct';
    if (this.opts.bLimits) cb.clientLimits = this.opts.bLimits;
    if (this.opts.sessionDeadlineMs !== undefined) cb.sessionDeadlineMs = this.opts.sessionDeadlineMs;
    if (this.opts.timelines !== undefined) cb.timelines = this.opts.timelines;
    if (this.opts.tail) cb.tail = this.opts.tail;
    if (this.opts.steps) cb.steps = true;
    cb.target = this.target!;
    if (this.zeroRttPort !== undefined) cb.zeroRtt = { port: this.zeroRttPort };
    const w = this.spawnWorker(i === 0 ? 'B' : `B${i + 1}`, site, cb);
    this.bs[i] = w;
    if (i === 0) this.b = w;
    this.eimBs[i] = await w.q.waitFor(['eim', 'fatal'], 30_000);
    await this.ready(w, 150_000);
    return w;
  }

  /** Writes one command line to a worker (`A`, `B`, `B2`, ...); false when it is gone. */
  send(who: string, cmd: Record<string, unknown>): boolean {
    const w = who === 'A' ? this.a : this.bs.find((x) => x?.name === who);
    if (!w || w.child.exitCode !== null || w.child.signalCode !== null || !w.child.stdin?.writable) return false;
    w.child.stdin.write(JSON.stringify(cmd) + '\n');
    return true;
  }

  /** The B workers' names, by B site (`B`, `B2`, ...). */
  get bWorkerNames(): string[] {
    return this.bSiteNames.map((_n, i) => (i === 0 ? 'B' : `B${i + 1}`));
  }

  /** SIGKILLs the B worker of B site `i` (a fault of lab stress); `startB(i)` brings it back. */
  killB(i: number): void {
    const w = this.bs[i];
    if (!w) return;
    w.child.kill('SIGKILL');
    this.workers = this.workers.filter((x) => x !== w);
    this.bs[i] = undefined;
  }

  private async stopWorkers(): Promise<void> {
    const ws = [this.a, ...this.bs].filter((w): w is Worker => w !== undefined);
    for (const w of ws) w.child.stdin?.write('{"cmd":"quit"}\n');
    await new Promise((r) => setTimeout(r, 300));
    for (const w of ws) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    this.workers = this.workers.filter((w) => !ws.includes(w));
    this.a = this.b = undefined;
    this.bs = [];
  }

  /**
   * Changes both home routers' NAT behaviour in place (no rebuild: the lab, the NAT-check servers and the
   * Tor network stay) and restarts the workers, optionally over the other address family.
   */
  async reconfigure(a: SiteBehaviour, b: SiteBehaviour, family?: 4 | 6): Promise<void> {
    await this.stopWorkers();
    if (family !== undefined && family !== (this.opts.family ?? 4)) {
      if (family === 6 && !this.opts.ipv6) throw new Error('this rig has no IPv6 (build it with ipv6: true)');
      this.opts.family = family;
      this.natcheck = this.lab.publicHosts
        .slice(0, 2)
        .map((p) => ({ address: family === 6 ? p.ip6! : p.ip, port: 8333 }));
    }
    for (const [name, s] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const site = this.lab.sites[name]!;
      const ns = site.router.ns;
      await this.lab.exec(ns, ['nft', 'delete', 'table', 'ip', 'lab_nat']);
      await this.lab.exec(ns, ['nft', 'delete', 'table', 'inet', 'lab_fw']);
      const rules = routerRuleset({ nat: s.nat, inbound: s.inbound, wanIp: site.router.wanIp, seed: site.index + 1 });
      const r = await this.lab.exec(ns, ['nft', '-f', '-'], { input: rules });
      if (r.code !== 0) throw new Error(`nft on ${ns}: ${r.stderr}`);
      await this.lab.exec(ns, ['sh', '-c', 'command -v conntrack >/dev/null && conntrack -F || true']);
    }
    this.opts.a.nat = a.nat;
    this.opts.a.inbound = a.inbound;
    this.opts.b.nat = b.nat;
    this.opts.b.inbound = b.inbound;
    await this.startWorkers();
  }

  /** One punch from B to A plus the Bitcoin handshake over the punched socket. */
  async attempt(timeoutMs = 90_000, how: { zeroRtt?: boolean } = {}): Promise<AttemptResult> {
    const a = this.a!;
    const b = this.b!;
    const events: AttemptResult['events'] = [];
    b.child.stdin!.write(JSON.stringify({ cmd: 'punch', ...(how.zeroRtt ? { zeroRtt: true } : {}) }) + '\n');
    const res = await b.q.waitFor(['punched', 'punch-failed', 'fatal'], timeoutMs);
    const pushTl = (who: string, m: WorkerMessage): void => {
      const tl = m.timeline as
        { start: number; events: Array<{ t: number; event: string; detail?: string }> } | undefined;
      if (tl)
        for (const e of tl.events)
          events.push({ at: tl.start + e.t, who, event: e.event, ...(e.detail ? { detail: e.detail } : {}) });
      const eng = m.engine as Array<{ kind: string; at: number; remote?: string; errno?: string }> | undefined;
      if (eng)
        for (const e of eng)
          events.push({
            at: e.at,
            who,
            event: `engine:${e.kind}`,
            ...(e.remote || e.errno ? { detail: [e.remote, e.errno].filter(Boolean).join(' ') } : {}),
          });
    };
    pushTl('B', res);
    if (res.type !== 'punched') {
      // A's side of the story, if it has one.
      const af = await a.q.waitFor(['failure', 'connected'], 3000).catch(() => undefined);
      if (af) pushTl('A', af);
      events.sort((x, y) => x.at - y.at);
      const err = (res.error ?? { code: String(res.code), message: String(res.message) }) as AttemptResult['error'];
      return { ok: false, ...(err ? { error: err } : {}), totalMs: Number(res.totalMs ?? 0), events };
    }
    // A's outcome for this session: a failure A reports meanwhile may belong to another stream (a Tor dial that
    // B retried reaches A and closes), so only `connected` with B's session id counts, else a failure.
    const sameSession = (m: WorkerMessage): boolean => m.sessionId === res.sessionId;
    const ac =
      (await a.q.waitFor('connected', 10_000, sameSession).catch(() => undefined)) ??
      (await a.q.waitFor('failure', 100).catch(() => undefined));
    if (ac) pushTl('A', ac);
    const hb = await b.q.waitFor(['handshake', 'handshake-failed'], 20_000).catch(() => undefined);
    // A's handshake on this session's socket (a zero-RTT connection B gave up on may end on A meanwhile).
    const ha = await a.q.waitFor(['handshake', 'handshake-failed'], 5_000, sameSession).catch(() => undefined);
    if (hb)
      events.push({
        at: hb.at,
        who: 'B',
        event: hb.type === 'handshake' ? 'bitcoin-handshake' : 'bitcoin-handshake-failed',
        detail:
          hb.type === 'handshake'
            ? `A says ${String(hb.userAgent)} in ${Number(hb.elapsedMs).toFixed(1)} ms`
            : String(hb.message),
      });
    if (ha)
      events.push({
        at: ha.at,
        who: 'A',
        event: ha.type === 'handshake' ? 'bitcoin-handshake' : 'bitcoin-handshake-failed',
        detail: ha.type === 'handshake' ? `B says ${String(ha.userAgent)}` : String(ha.message),
      });
    events.sort((x, y) => x.at - y.at);
    const fellBack = events.find((e) => e.who === 'B' && e.event === 'zero-rtt-fallback');
    let ttc: number | undefined;
    if (ac?.type === 'connected') {
      const tl = ac.timeline as { events: Array<{ t: number; event: string }> };
      const req = tl.events.find((e) => e.event === 'request')?.t;
      const est = tl.events.find((e) => e.event === 'established')?.t;
      if (req !== undefined && est !== undefined) ttc = est - req;
    }
    const ok = ac?.type === 'connected' && hb?.type === 'handshake' && ha?.type === 'handshake';
    type Rep = {
      hard: string;
      sockets: number;
      probes: number;
      probeLow: number;
      probeHigh: number;
      syns: number;
      pair: { localPort: number; remotePort: number };
    };
    const spB = res.spray as Rep | undefined;
    const spA = (ac?.type === 'connected' ? ac.spray : undefined) as Rep | undefined;
    const sp = spB ?? spA;
    const spray = sp
      ? {
          synsB: spB?.syns ?? 0,
          synsA: spA?.syns ?? 0,
          spray: {
            hard: sp.hard,
            sockets: sp.sockets,
            probes: sp.probes,
            probeLow: sp.probeLow,
            probeHigh: sp.probeHigh,
            ...(spA ? { pairA: `${spA.pair.localPort}->${spA.pair.remotePort}` } : {}),
            ...(spB ? { pairB: `${spB.pair.localPort}->${spB.pair.remotePort}` } : {}),
          },
        }
      : {};
    return {
      ...spray,
      ok,
      ...(ok
        ? {}
        : {
            error: {
              code: 'DEMO_HANDSHAKE',
              message:
                `bitcoin handshake over the punched socket failed: ` +
                `${String(hb?.message ?? ha?.message ?? 'no answer')}`,
            },
          }),
      ...(ttc !== undefined ? { timeToConnectMs: ttc } : {}),
      totalMs: Number(res.totalMs),
      ...(res.overlayRttMs !== undefined ? { overlayRttMs: Number(res.overlayRttMs) } : {}),
      ...(hb?.directRttMs !== undefined ? { directRttMs: Number(hb.directRttMs) } : {}),
      handshake: hb?.type === 'handshake',
      ...(how.zeroRtt ? { zeroRtt: true, zeroRttUsed: res.zeroRtt === true } : {}),
      ...(fellBack ? { zeroRttFallback: fellBack.detail ?? '?' } : {}),
      events,
    };
  }

  /** A's and B's RSS, threads and open descriptors now (empty on a platform without /proc or before `up`). */
  resources(): ResourceSample[] {
    const out: ResourceSample[] = [];
    for (const w of [this.a, ...this.bs]) {
      const pid = w?.child.pid;
      if (!w || pid === undefined || w.child.exitCode !== null) continue;
      try {
        const st = readFileSync(`/proc/${pid}/status`, 'utf8');
        const field = (k: string): number => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(st)?.[1] ?? NaN);
        const fds = readdirSync(`/proc/${pid}/fd`).length;
        // utime + stime (fields 14, 15 of /proc/PID/stat, after the parenthesised command) in clock ticks.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const cpuMs = ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
        out.push({ at: wallMs(), who: w.name, rssKb: field('VmRSS'), threads: field('Threads'), fds, cpuMs });
      } catch {
        // The worker exited between the check and the read: no sample.
      }
    }
    return out;
  }

  /**
   * Each router's conntrack entry count now (`nf_conntrack_count` of `a-router`, `b-router`, carriers too): what a
   * spray leaves behind (every SYN a SYN_SENT entry until nf_conntrack_tcp_timeout_syn_sent, 120 s). A router
   * whose count cannot be read is left out.
   */
  async conntrackCounts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [name, site] of Object.entries(this.lab?.sites ?? {})) {
      for (const node of [`${name}-router`, ...(site.carrier ? [`${name}-carrier`] : [])]) {
        const r = await this.lab.exec(node, ['cat', '/proc/sys/net/netfilter/nf_conntrack_count']).catch(() => null);
        const n = Number(r?.stdout.trim());
        if (r && r.stdout.trim() !== '' && Number.isFinite(n)) out[node] = n;
      }
    }
    return out;
  }

  down(): Promise<void> {
    if (!this.downP) this.downP = this.doDown();
    return this.downP;
  }

  private async doDown(): Promise<void> {
    await this.stopWorkers().catch(() => undefined);
    await this.nodeSites?.stop().catch(() => undefined);
    for (const w of this.workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    if (this.tor) await this.tor.stop().catch(() => undefined);
    if (this.i2p) await this.i2p.stop().catch(() => undefined);
    if (this.lab) await this.lab.down().catch(() => undefined);
  }
}
