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
import { Lab } from '../index.js';
import { routerRuleset } from '../topology/nft.js';
import type { NatKind, InboundPolicy, SiteSpec } from '../topology/spec.js';
import { startPrivateTor, type PrivateTor } from '../tor/private-tor.js';
import { startPrivateI2p, type PrivateI2p } from '../i2p/private-i2p.js';
import { MessageQueue, readMessages, wallMs, type WorkerMessage } from './jsonl.js';
import type { WorkerConfig } from './worker-config.js';
import type { Endpoint } from '../../nat/types.js';
import type { ProgressSink } from '../progress.js';
import { NodeSites, type FlowEvent, type FlowResult, type NodeKind } from '../nodes/flow.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'worker.js');

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
  overlay?: 'tor' | 'i2p';
  profile?: 'plain' | 'prime';
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
  /** A birthday spray: SYNs each side sent (attempt sockets), the hard side and the winning port pair. */
  synsA?: number;
  synsB?: number;
  spray?: {
    hard: string; sockets: number; probes: number; probeLow: number; probeHigh: number; pairA?: string; pairB?: string;
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
}

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
    const child = this.lab.spawn(node, [process.execPath, WORKER, JSON.stringify(cfg)]);
    const w: Worker = { name, child, q: new MessageQueue(), stderr: [] };
    readMessages(child.stdout!, (m) => {
      this.opts.onMessage?.(name, m);
      w.q.push(m);
    }, (line) => this.log(`[${name}] ${line}`));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      w.stderr.push(d);
      if (w.stderr.length > 50) w.stderr.shift();
      this.log(`[${name}!] ${d.trimEnd()}`);
    });
    child.on('exit', (code, sig) => w.q.end(new Error(`${name} worker exited (${code ?? sig}): ${w.stderr.join('').trim().slice(-400)}`)));
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
    this.log('lab: building two sites, 2 NAT-check hosts, 4 Tor hosts');
    this.lab = await Lab.up({
      sites: [this.site('a', o.a), this.site('b', o.b)],
      delayMs: o.delayMs ?? 0,
      jitterMs: o.jitterMs ?? 0,
      lossPct: o.lossPct ?? 0,
      publicHosts: 2,
      extraPublicHosts: 4,
    });
    this.mark('labUp');
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
        log: (l) => this.log(l),
        ...(o.onFlowEvent ? { onEvent: o.onFlowEvent } : {}),
      });
      this.natcheck = await this.nodeSites.startRelays();
    } else {
      // NAT-check servers on pub1, pub2 (dual stack).
      const nc = [1, 2].map((i) => this.spawnWorker(`natcheck${i}`, `pub${i}`, { role: 'natcheck', network: 'regtest', listen: { address: '::', port: 8333 } }));
      await Promise.all(nc.map((w) => this.ready(w, 15_000)));
      this.natcheck = this.lab.publicHosts.slice(0, 2).map((p) => ({ address: fam === 6 ? p.ip6! : p.ip, port: 8333 }));
    }
    this.mark('natcheckUp');
    if ((o.overlay ?? 'tor') === 'tor') {
      this.log('tor: starting a private network (authority + 3 relays on public hosts, clients in A and B)');
      const ph = this.lab.publicHosts;
      this.tor = await startPrivateTor({
        roles: {
          authority: { netns: ph[2]!.ns, ip: ph[2]!.ip },
          relays: [3, 4, 5].map((i) => ({ netns: ph[i]!.ns, ip: ph[i]!.ip })),
          a: { netns: this.lab.sites.a!.host.ns, ip: this.lab.sites.a!.host.ip },
          b: { netns: this.lab.sites.b!.host.ns, ip: this.lab.sites.b!.host.ip },
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

  private workerConfig(side: 'a' | 'b'): WorkerConfig {
    const o = this.opts;
    const fam = o.family ?? 4;
    const s = side === 'a' ? o.a : o.b;
    const host = this.lab.sites[side]!.host;
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
    };
  }

  /** (Re)starts the A and B workers: EIM checks, A's onion endpoint, B's dialer. */
  async startWorkers(): Promise<void> {
    const tor = this.tor;
    const i2p = this.i2p;
    const ca = this.workerConfig('a');
    if (tor) ca.control = { host: tor.controlA.host, port: tor.controlA.port, ...(tor.controlA.cookieFile ? { cookieFile: tor.controlA.cookieFile } : {}), ...(tor.controlA.password ? { password: tor.controlA.password } : {}) };
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
    this.target = { address: String(ra.address), port: Number(ra.port), expectIp };
    this.mark('endpointUp');
    const cb = this.workerConfig('b');
    if (tor) cb.socks = { host: tor.socksB.host, port: tor.socksB.port };
    if (i2p) {
      cb.sam = { host: i2p.sam[3]!.host, port: i2p.sam[3]!.port };
      cb.samOptions = i2p.sessionOptions;
    }
    cb.target = this.target;
    this.b = this.spawnWorker('B', 'b', cb);
    this.eimB = await this.b.q.waitFor(['eim', 'fatal'], 30_000);
    await this.ready(this.b, 150_000);
    this.mark('workersUp');
  }

  private async stopWorkers(): Promise<void> {
    for (const w of [this.a, this.b]) {
      if (!w) continue;
      w.child.stdin?.write('{"cmd":"quit"}\n');
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const w of [this.a, this.b]) if (w && w.child.exitCode === null) w.child.kill('SIGKILL');
    this.workers = this.workers.filter((w) => w !== this.a && w !== this.b);
    this.a = this.b = undefined;
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
      this.natcheck = this.lab.publicHosts.slice(0, 2).map((p) => ({ address: family === 6 ? p.ip6! : p.ip, port: 8333 }));
    }
    for (const [name, s] of [['a', a], ['b', b]] as const) {
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
  async attempt(timeoutMs = 90_000): Promise<AttemptResult> {
    const a = this.a!;
    const b = this.b!;
    const events: AttemptResult['events'] = [];
    b.child.stdin!.write('{"cmd":"punch"}\n');
    const res = await b.q.waitFor(['punched', 'punch-failed', 'fatal'], timeoutMs);
    const pushTl = (who: string, m: WorkerMessage): void => {
      const tl = m.timeline as { start: number; events: Array<{ t: number; event: string; detail?: string }> } | undefined;
      if (tl) for (const e of tl.events) events.push({ at: tl.start + e.t, who, event: e.event, ...(e.detail ? { detail: e.detail } : {}) });
      const eng = m.engine as Array<{ kind: string; at: number; remote?: string; errno?: string }> | undefined;
      if (eng) for (const e of eng) events.push({ at: e.at, who, event: `engine:${e.kind}`, ...(e.remote || e.errno ? { detail: [e.remote, e.errno].filter(Boolean).join(' ') } : {}) });
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
    const ac = (await a.q.waitFor('connected', 10_000, sameSession).catch(() => undefined))
      ?? (await a.q.waitFor('failure', 100).catch(() => undefined));
    if (ac) pushTl('A', ac);
    const hb = await b.q.waitFor(['handshake', 'handshake-failed'], 20_000).catch(() => undefined);
    const ha = await a.q.waitFor(['handshake', 'handshake-failed'], 5_000).catch(() => undefined);
    if (hb) events.push({ at: hb.at, who: 'B', event: hb.type === 'handshake' ? 'bitcoin-handshake' : 'bitcoin-handshake-failed', detail: hb.type === 'handshake' ? `A says ${String(hb.userAgent)} in ${Number(hb.elapsedMs).toFixed(1)} ms` : String(hb.message) });
    if (ha) events.push({ at: ha.at, who: 'A', event: ha.type === 'handshake' ? 'bitcoin-handshake' : 'bitcoin-handshake-failed', detail: ha.type === 'handshake' ? `B says ${String(ha.userAgent)}` : String(ha.message) });
    events.sort((x, y) => x.at - y.at);
    let ttc: number | undefined;
    if (ac?.type === 'connected') {
      const tl = ac.timeline as { events: Array<{ t: number; event: string }> };
      const req = tl.events.find((e) => e.event === 'request')?.t;
      const est = tl.events.find((e) => e.event === 'established')?.t;
      if (req !== undefined && est !== undefined) ttc = est - req;
    }
    const ok = ac?.type === 'connected' && hb?.type === 'handshake' && ha?.type === 'handshake';
    type Rep = { hard: string; sockets: number; probes: number; probeLow: number; probeHigh: number; syns: number;
      pair: { localPort: number; remotePort: number } };
    const spB = res.spray as Rep | undefined;
    const spA = (ac?.type === 'connected' ? ac.spray : undefined) as Rep | undefined;
    const sp = spB ?? spA;
    const spray = sp ? {
      synsB: spB?.syns ?? 0,
      synsA: spA?.syns ?? 0,
      spray: {
        hard: sp.hard, sockets: sp.sockets, probes: sp.probes, probeLow: sp.probeLow, probeHigh: sp.probeHigh,
        ...(spA ? { pairA: `${spA.pair.localPort}->${spA.pair.remotePort}` } : {}),
        ...(spB ? { pairB: `${spB.pair.localPort}->${spB.pair.remotePort}` } : {}),
      },
    } : {};
    return {
      ...spray,
      ok,
      ...(ok ? {} : { error: { code: 'DEMO_HANDSHAKE', message: `bitcoin handshake over the punched socket failed: ${String(hb?.message ?? ha?.message ?? 'no answer')}` } }),
      ...(ttc !== undefined ? { timeToConnectMs: ttc } : {}),
      totalMs: Number(res.totalMs),
      ...(res.overlayRttMs !== undefined ? { overlayRttMs: Number(res.overlayRttMs) } : {}),
      ...(hb?.directRttMs !== undefined ? { directRttMs: Number(hb.directRttMs) } : {}),
      handshake: hb?.type === 'handshake',
      events,
    };
  }

  /** A's and B's RSS, threads and open descriptors now (empty on a platform without /proc or before `up`). */
  resources(): ResourceSample[] {
    const out: ResourceSample[] = [];
    for (const w of [this.a, this.b]) {
      const pid = w?.child.pid;
      if (!w || pid === undefined || w.child.exitCode !== null) continue;
      try {
        const st = readFileSync(`/proc/${pid}/status`, 'utf8');
        const field = (k: string): number => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(st)?.[1] ?? NaN);
        const fds = readdirSync(`/proc/${pid}/fd`).length;
        out.push({ at: wallMs(), who: w.name, rssKb: field('VmRSS'), threads: field('Threads'), fds });
      } catch {
        // The worker exited between the check and the read: no sample.
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
