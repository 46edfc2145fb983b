/**
 * The NAT lab: real NAT routers in Linux network namespaces, built from a `LabSpec`.
 *
 * `const lab = await Lab.up(spec)` builds it (root only), `lab.exec(node, argv)` / `lab.spawn(node, argv)` run
 * commands inside a namespace, `await lab.down()` removes everything. A lab is also removed when its process
 * exits or gets SIGINT/SIGTERM/SIGHUP (../process-cleanup.ts); when the process is SIGKILLed its delay lines die
 * with it (PR_SET_PDEATHSIG) and `onionpunch lab down --all` (the reaper) removes the namespaces.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../errors.js';
import { atProcessEnd } from '../process-cleanup.js';
import { mustRun, pool, run, type RunOptions, type RunResult } from './run.js';
import { untilReady } from './ready.js';
import {
  planLab,
  planNamespaces,
  LAB_NS_PATTERN,
  type LabPlan,
  type LabSpec,
  type PublicHostPlan,
  type SitePlan,
} from './spec.js';
import { ownerAlive, processStart, readAllStates, removeState, stateFile, writeState, type LabState } from './state.js';
import { buildTopology, type DelayLineConfig, type NsConfig } from './topology.js';

export interface LabUpOptions {
  /** Leave the lab up when this process exits (used by `onionpunch lab up`); no exit/signal hooks. */
  detached?: boolean;
  /** Path of the delay-line executable (default: build/Release/onionpunch_delayline, or $ONIONPUNCH_DELAYLINE). */
  delayLinePath?: string;
}

/** Seconds a lab step may take before it counts as hung. */
const STEP_TIMEOUT_MS = 20000;

/** The package root (where bin/, build/ and dist/ are): one finder for the whole package. */
export { packageRoot } from '../../native/addon.js';
import { packageRoot } from '../../native/addon.js';

/** Where the delay-line helper is (built by node-gyp as target onionpunch_delayline). */
export function delayLinePath(): string {
  return process.env.ONIONPUNCH_DELAYLINE ?? join(packageRoot(), 'build', 'Release', 'onionpunch_delayline');
}

export function assertRoot(): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new LabError('LAB_NOT_ROOT', 'the NAT lab needs root (network namespaces, veth, nftables)');
  }
}

/** Applies one namespace's configuration: sysctls, then `ip -batch`, then nftables. */
async function configureNs(c: NsConfig): Promise<void> {
  if (c.sysctls.length > 0) {
    const script = c.sysctls.map(([k, v]) => `echo ${v} > /proc/sys/${k.replace(/\./g, '/')}`).join(' && ');
    await mustRun('ip', ['netns', 'exec', c.ns, 'sh', '-c', script], { timeoutMs: STEP_TIMEOUT_MS });
  }
  // Lines starting with "-6 " need the IPv6 family (ip rule cannot infer it); they run in a second batch.
  const v4 = c.ipBatch.filter((l) => !l.startsWith('-6 '));
  const v6 = c.ipBatch.filter((l) => l.startsWith('-6 ')).map((l) => l.slice(3));
  await mustRun('ip', ['-n', c.ns, '-batch', '-'], { input: v4.join('\n') + '\n', timeoutMs: STEP_TIMEOUT_MS });
  if (v6.length > 0) {
    await mustRun('ip', ['-6', '-n', c.ns, '-batch', '-'], { input: v6.join('\n') + '\n', timeoutMs: STEP_TIMEOUT_MS });
  }
  if (c.nft !== '') {
    await mustRun('ip', ['netns', 'exec', c.ns, 'nft', '-f', '-'], { input: c.nft, timeoutMs: STEP_TIMEOUT_MS });
  }
}

/** Kills every process inside a namespace, then deletes it. Never throws. */
async function removeNs(ns: string): Promise<void> {
  const pids = await run('ip', ['netns', 'pids', ns], { timeoutMs: 5000 });
  for (const p of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await run('ip', ['netns', 'del', ns], { timeoutMs: 10000 });
}

function removeNsSync(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 });
  for (const p of (pids.stdout ?? '').split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  spawnSync('ip', ['netns', 'del', ns], { timeout: 10000, stdio: 'ignore' });
}

/** Kills a helper pid recorded in a state file, but only if it still is a delay line (pid reuse). */
function killHelper(pid: number, sig: NodeJS.Signals): void {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmd.includes('onionpunch_delayline') || cmd.includes('delayline')) process.kill(pid, sig);
  } catch {
    // gone
  }
}

/** Names of all existing network namespaces. */
export async function listNamespaces(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { timeoutMs: 5000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** A running lab. Fields mirror the address plan (see `spec.ts`). */
export class Lab {
  readonly prefix: string;
  /** The lab's name: its prefix without the trailing dash. */
  readonly name: string;
  readonly plan: LabPlan;
  /** Sites by name: `lab.sites.a.host.ns`, `.host.ip`, `.host.ip6`, `.router.wanIp`, `.publicIp`, ... */
  readonly sites: Record<string, SitePlan>;
  /** Public hosts (`pub1`, `pub2`, ... then the extra ones): `.ns`, `.ip`, `.ip6`. */
  readonly publicHosts: PublicHostPlan[];
  /** Every namespace of this lab. */
  readonly namespaces: string[];
  readonly detached: boolean;
  /** Milliseconds `Lab.up` took. */
  upMs = 0;
  private readonly children = new Set<ChildProcess>();
  private readonly helpers: ChildProcess[] = [];
  private state: LabState;
  private downPromise: Promise<void> | null = null;
  /** Takes the lab off the process-end cleanup once it is down (a no-op for a detached lab). */
  private unregisterCleanup: () => void = () => {};

  private constructor(plan: LabPlan, state: LabState, detached: boolean) {
    this.plan = plan;
    this.prefix = plan.prefix;
    this.name = plan.prefix.replace(/-$/, '');
    this.sites = Object.fromEntries(plan.sites.map((s) => [s.name, s]));
    this.publicHosts = plan.publicHosts;
    this.namespaces = state.namespaces;
    this.state = state;
    this.detached = detached;
  }

  /** Builds a lab. Throws `LabError` (`LAB_NOT_ROOT`, `LAB_BAD_SPEC`, `LAB_COMMAND_FAILED`, ...); on failure
   * everything created so far is removed again. */
  static async up(spec: LabSpec, opts: LabUpOptions = {}): Promise<Lab> {
    const t0 = performance.now();
    assertRoot();
    const plan = planLab(spec);
    const topo = buildTopology(plan);
    const dlPath = opts.delayLinePath ?? delayLinePath();
    if (topo.delayLines.length > 0 && !existsSync(dlPath)) {
      throw new LabError('LAB_NO_DELAYLINE', `delay line helper not found at ${dlPath} (run \`npm run build:native\`)`);
    }
    const state: LabState = {
      prefix: plan.prefix,
      ownerPid: opts.detached ? null : process.pid,
      ownerStart: opts.detached ? null : processStart(process.pid),
      createdAt: new Date().toISOString(),
      namespaces: planNamespaces(plan),
      helperPids: [],
      plan,
    };
    // State first: from now on the reaper can find whatever we create.
    writeState(state);
    const lab = new Lab(plan, state, opts.detached === true);
    if (!lab.detached) {
      lab.unregisterCleanup = atProcessEnd({
        name: `lab ${lab.name}`,
        sync: () => lab.downSync(),
        async: () => lab.down(),
      });
    }
    try {
      await pool(state.namespaces, 8, (ns) => mustRun('ip', ['netns', 'add', ns], { timeoutMs: STEP_TIMEOUT_MS }));
      await mustRun('ip', ['-batch', '-'], { input: topo.veths.join('\n') + '\n', timeoutMs: STEP_TIMEOUT_MS });
      await pool(topo.configs, 6, configureNs);
      for (const dl of topo.delayLines) await lab.startDelayLine(dl, dlPath, plan.inOrder);
    } catch (err) {
      await lab.down();
      throw err;
    }
    lab.upMs = performance.now() - t0;
    return lab;
  }

  private async startDelayLine(dl: DelayLineConfig, path: string, inOrder: boolean): Promise<void> {
    const args = ['netns', 'exec', dl.ns, path, '--tun-a', dl.tunA, '--tun-b', dl.tunB, '--ttl-fix', '--realtime'];
    for (const d of ['ab', 'ba']) args.push(`--delay-${d}`, String(dl.delayMs), `--jitter-${d}`, String(dl.jitterMs));
    if (inOrder) args.push('--in-order');
    if (!this.detached) args.push('--parent-pid', String(process.pid));
    const child = spawn('ip', args, {
      stdio: ['ignore', 'pipe', this.detached ? 'ignore' : 'pipe'],
      detached: this.detached,
    });
    this.helpers.push(child);
    if (child.pid !== undefined) {
      this.state.helperPids.push(child.pid);
      writeState(this.state);
    }
    await untilReady(child, { what: `delay line for site ${dl.site}`, marker: 'ready', timeoutMs: 5000 });
    if (this.detached) child.stdout!.destroy();
    // A delay line never keeps the owner's event loop alive: a script that ends without down() still exits,
    // and the 'exit' hook removes the lab.
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  }

  /** The namespace name of a lab node: `a`, `a-h2`, `a-router`, `a-carrier`, `core1`, `pub1`, or a full name. */
  ns(node: string): string {
    if (this.namespaces.includes(node)) return node;
    const full = this.prefix + node;
    if (this.namespaces.includes(full)) return full;
    throw new LabError(
      'LAB_UNKNOWN_NODE',
      `no node '${node}' in lab ${this.name} (have: ` +
        `${this.namespaces.map((n) => n.slice(this.prefix.length)).join(', ')})`,
    );
  }

  /** Runs a command inside a node's namespace and waits for it (default timeout 30 s). */
  exec(node: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    if (this.downPromise) return Promise.reject(new LabError('LAB_DOWN', `lab ${this.name} is down`));
    return run('ip', ['netns', 'exec', this.ns(node), ...argv], opts);
  }

  /** Starts a long-running command inside a node's namespace. The process is killed by `down()`. */
  spawn(node: string, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.downPromise) throw new LabError('LAB_DOWN', `lab ${this.name} is down`);
    const child = spawn('ip', ['netns', 'exec', this.ns(node), ...argv], { stdio: 'pipe', ...opts });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Removes the lab: its processes, delay lines, namespaces (and with them every veth/TUN) and state file. */
  down(): Promise<void> {
    if (!this.downPromise) this.downPromise = this.doDown();
    return this.downPromise;
  }

  private async doDown(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    for (const h of this.helpers) h.kill('SIGTERM');
    for (const pid of this.state.helperPids) killHelper(pid, 'SIGTERM');
    await pool(this.namespaces, 8, removeNs);
    removeState(this.prefix);
    this.unregisterCleanup();
  }

  /** Synchronous last-resort cleanup for the process 'exit' hook. */
  downSync(): void {
    for (const c of this.children) c.kill('SIGKILL');
    for (const pid of this.state.helperPids) killHelper(pid, 'SIGKILL');
    for (const ns of this.namespaces) removeNsSync(ns);
    removeState(this.prefix);
    this.unregisterCleanup();
  }

  /** Pids of the lab's delay-line processes (one per delayed access link). */
  get helperPids(): number[] {
    return [...this.state.helperPids];
  }

  /** Plain description (the CLI's JSON). */
  describe(): LabDescription {
    return describePlan(this.plan, stateFile(this.prefix), this.namespaces);
  }
}

export interface LabDescription {
  name: string;
  prefix: string;
  stateFile: string;
  namespaces: string[];
  cores: LabPlan['cores'];
  sites: Record<string, SitePlan>;
  publicHosts: PublicHostPlan[];
}

export function describePlan(plan: LabPlan, file: string, namespaces: string[]): LabDescription {
  return {
    name: plan.prefix.replace(/-$/, ''),
    prefix: plan.prefix,
    stateFile: file,
    namespaces,
    cores: plan.cores,
    sites: Object.fromEntries(plan.sites.map((s) => [s.name, s])),
    publicHosts: plan.publicHosts,
  };
}

/** Removes a lab described by a state file (any owner). */
export async function downByState(s: LabState): Promise<void> {
  for (const pid of s.helperPids) killHelper(pid, 'SIGTERM');
  await pool(s.namespaces, 8, removeNs);
  removeState(s.prefix);
}

export interface ReapResult {
  removedLabs: string[];
  removedOrphanNamespaces: string[];
  keptLabs: string[];
}

/**
 * The stale-lab reaper: removes every lab whose owner is dead or detached, and every namespace that matches
 * the lab name pattern but belongs to no state file. Labs owned by a live process are kept.
 */
export async function reapLabs(): Promise<ReapResult> {
  assertRoot();
  const states = readAllStates();
  const res: ReapResult = { removedLabs: [], removedOrphanNamespaces: [], keptLabs: [] };
  const known = new Set<string>();
  for (const s of states) {
    for (const ns of s.namespaces) known.add(ns);
    if (ownerAlive(s)) {
      res.keptLabs.push(s.prefix.replace(/-$/, ''));
      continue;
    }
    await downByState(s);
    res.removedLabs.push(s.prefix.replace(/-$/, ''));
  }
  for (const ns of await listNamespaces()) {
    const m = LAB_NS_PATTERN.exec(ns);
    // Re-check the state file now: a lab being built right now wrote its state before its first namespace.
    if (m && !known.has(ns) && !existsSync(stateFile(m[1]!))) {
      await removeNs(ns);
      res.removedOrphanNamespaces.push(ns);
    }
  }
  return res;
}
