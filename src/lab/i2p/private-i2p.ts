/**
 * A private I2P network of real i2pd routers, started by the code itself (tests, the lab, the demo).
 *
 * i2pd 2.45.1 refuses loopback and private peers but accepts 198.18.0.x, so the routers live on 198.18.0.x
 * addresses inside network namespaces: the lab's namespaces when `routers` is given, otherwise one isolated
 * namespace of our own with 198.18.0.1..N on its loopback. In the latter case SAM listens on the namespace end
 * of a veth pair (10.x.y.z/30, nothing else routed), so SAM clients in the root namespace (the test process,
 * the selftest) reach it directly, and a router can be killed while its clients keep running in-process.
 *
 * Bootstrap: every router starts once (~1-2 s) to create its keys and router.info, stops, a zip of all
 * router.info files becomes every router's reseed source, then all start for good. Nothing outside the
 * namespaces is ever contacted (no reseed URL, no NTP, no UPnP, no route out).
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import {
  mkdtempSync,
  mkdirSync,
  writeFileSync,
  existsSync,
  statSync,
  rmSync,
  readdirSync,
  readFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { LabError } from '../errors.js';
import { atProcessEnd } from '../process-cleanup.js';
import type { ProgressSink } from '../progress.js';
import { i2pdConf } from './private-i2p-config.js';
import { reapStalePrivateI2p, writeOwner, PRIVATE_I2P_DIR_PREFIX } from './private-i2p-reaper.js';

const execFileP = promisify(execFile);

/** Errors of the private I2P network (a {@link LabError}). */
export class PrivateI2pError extends LabError {
  constructor(
    code: 'LAB_NOT_ROOT' | 'LAB_I2P_START' | 'LAB_I2P_NETNS' | 'LAB_I2P_BAD_OPTIONS',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** A router to run inside an existing namespace (the lab's simulated internet). */
export interface PrivateI2pRouterSpec {
  netns: string;
  /** The router's address in that namespace, in 198.18.0.0/15. */
  ip: string;
  /** Where its SAM bridge listens inside `netns` (default 127.0.0.1). */
  samHost?: string;
}

/** Options of {@link startPrivateI2p}. */
export interface PrivateI2pOptions {
  /** Parent directory for the routers' data (default a fresh temp dir, removed on stop). */
  dir?: string;
  /** Run the routers in these namespaces (4 or more; the first 2 are floodfills). Default: our own namespace. */
  routers?: PrivateI2pRouterSpec[];
  /** Number of routers in our own namespace (default 4, at least 3). Ignored when `routers` is given. */
  count?: number;
  log?: (line: string) => void;
  /** Told the 2 bring-up steps (keys created, routers up with SAM answering). */
  progress?: ProgressSink;
  /** i2pd log level written to `<datadir>/i2pd.log` (default warn). */
  logLevel?: 'warn' | 'info' | 'debug';
  /** Bound on the whole bring-up (default 60 s). */
  timeoutMs?: number;
}

/** One router's SAM bridge. `netns` is where `host` is reachable (`null`: from the root namespace). */
export interface PrivateI2pSam {
  host: string;
  port: number;
  netns: string | null;
}

/** A running private I2P network. */
export interface PrivateI2p {
  /**
   * SAM bridge of each router, in router order. Routers 0 and 1 are the floodfills: put SAM clients on the others
   * (2, 3, ...); a dialer on a floodfill that holds the endpoint's unconfirmed first LeaseSet was seen to fail
   * (docs/I2P.md, "Where SAM clients go").
   */
  readonly sam: PrivateI2pSam[];
  /** Milliseconds from the call to every SAM bridge answering HELLO. */
  readonly bringUpMs: number;
  /** I2CP options SAM sessions should use on this small network (short tunnels, see LAB-FACTS.md). */
  readonly sessionOptions: Record<string, string | number>;
  /**
   * Session creation policy for this network: per-attempt bound and attempts. A session is normally ready at
   * i2pd's first readiness re-check (20 s); now and then one never is (its LeaseSet was not published), so
   * give up at 45 s (after the 40 s re-check) and create a fresh one.
   */
  readonly sessionCreate: { timeoutMs: number; attempts: number };
  /** Data directory of each router (logs in `<datadir>/i2pd.log`). */
  readonly datadirs: string[];
  /** Namespaces created by this network (empty when the caller gave `routers`). */
  readonly ownNetns: string[];
  /** Kills one router (default SIGKILL: a crash), to test what its SAM clients see. */
  killRouter(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Stops every router (SIGTERM, SIGKILL after 5 s), removes own namespaces and temp dirs. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Tunnel options for SAM sessions on the private network: zero-hop tunnels both ways (LAB-FACTS.md: outbound 0,
 * or 0/0). Why inbound 0 too: with a 1-hop inbound tunnel a session's LeaseSet lookups and its callers' streams
 * depend on a tunnel built through another router; when that build or its test failed under load, a CI run saw
 * 60 s of CANT_REACH_PEER after the session was up. Zero hops leave only the NTCP2 link between the two routers.
 */
export const PRIVATE_I2P_SESSION_OPTIONS: Record<string, string | number> = {
  'inbound.length': 0,
  'outbound.length': 0,
  'inbound.quantity': 2,
  'outbound.quantity': 2,
};

const NET_ID = 99;
const NTCP2_BASE_PORT = 12340;
const SAM_BASE_PORT = 17656;

interface Router {
  index: number;
  netns: string;
  ip: string;
  samHost: string;
  samPort: number;
  ntcp2Port: number;
  datadir: string;
  floodfill: boolean;
  proc: ChildProcess | null;
}

interface Live {
  routers: Router[];
  ownNetns: string[];
  rmDirs: string[];
}

function cleanupSync(l: Live): void {
  for (const r of l.routers) {
    if (r.proc && r.proc.exitCode === null && r.proc.signalCode === null) {
      try {
        r.proc.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  for (const ns of l.ownNetns) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  for (const d of l.rmDirs) rmSync(d, { recursive: true, force: true });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ip(args: string[]): Promise<void> {
  try {
    await execFileP('ip', args);
  } catch (err) {
    throw new PrivateI2pError('LAB_I2P_NETNS', `ip ${args.join(' ')} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** A 10.x.y.z/30 whose network is not used by any address of the root namespace. */
function pickVethSubnet(): [string, string] {
  const used = execFileSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' });
  for (let i = 0; i < 100; i++) {
    const a = 200 + (randomBytes(1)[0]! % 50);
    const b = randomBytes(1)[0]!;
    const c = (randomBytes(1)[0]! % 64) * 4;
    const prefix = `10.${a}.${b}.`;
    if (!used.includes(prefix)) return [`${prefix}${c + 1}`, `${prefix}${c + 2}`];
  }
  throw new PrivateI2pError('LAB_I2P_NETNS', 'no free 10.x.y.0/30 for the SAM veth');
}

function spawnRouter(r: Router, log: (l: string) => void): ChildProcess {
  const args = [
    'netns',
    'exec',
    r.netns,
    'i2pd',
    `--datadir=${r.datadir}`,
    `--conf=${join(r.datadir, 'i2pd.conf')}`,
    `--tunconf=${join(r.datadir, 'tunnels.conf')}`,
    `--tunnelsdir=${join(r.datadir, 'tunnels.d')}`,
  ];
  // `ip netns exec` execs i2pd in place, so the child pid is i2pd's and signals reach it directly.
  const p = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr?.on('data', (d: Buffer) => log(`i2pd[${r.index}] ${d.toString().trim()}`));
  p.on('error', (e) => log(`i2pd[${r.index}] spawn error: ${e.message}`));
  return p;
}

async function stopProc(p: ChildProcess | null, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((res) => p.once('exit', () => res()));
  p.kill(signal);
  const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

function writeRouterFiles(r: Router, reseedZip: string | undefined, logLevel: 'warn' | 'info' | 'debug'): void {
  mkdirSync(join(r.datadir, 'tunnels.d'), { recursive: true });
  writeFileSync(join(r.datadir, 'tunnels.conf'), '');
  // Empty address book sources (the address book itself stays enabled; see LAB-FACTS.md).
  mkdirSync(join(r.datadir, 'addressbook'), { recursive: true });
  writeFileSync(join(r.datadir, 'hosts.txt'), '');
  writeFileSync(join(r.datadir, 'subscriptions.txt'), '');
  writeFileSync(
    join(r.datadir, 'i2pd.conf'),
    i2pdConf({
      ip: r.ip,
      ntcp2Port: r.ntcp2Port,
      samHost: r.samHost,
      samPort: r.samPort,
      floodfill: r.floodfill,
      netId: NET_ID,
      datadir: r.datadir,
      reseedZip,
      logLevel,
    }),
  );
}

/** HELLO against a SAM bridge reachable from this namespace; true when it answers `HELLO REPLY RESULT=OK`. */
function samHello(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host, port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('connect', () => s.write('HELLO VERSION MIN=3.1 MAX=3.1\n'));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) done(buf.startsWith('HELLO REPLY RESULT=OK'));
    });
    s.on('error', () => done(false));
  });
}

/** Waits until a port accepts connections inside `netns` (for SAM bridges not reachable from here). */
async function portOpenIn(netns: string, host: string, port: number): Promise<boolean> {
  try {
    await execFileP('ip', ['netns', 'exec', netns, 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], {
      timeout: 2000,
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the private I2P network and resolves once every SAM bridge answers. Root only (`LAB_NOT_ROOT`).
 * Sessions created on it take ~20 s more (tunnel readiness); create them in parallel.
 */
export async function startPrivateI2p(opts: PrivateI2pOptions = {}): Promise<PrivateI2p> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new PrivateI2pError('LAB_NOT_ROOT', 'the private I2P network needs root (network namespaces)');
  }
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  opts.progress?.setTotal(2);
  const logLevel = opts.logLevel ?? 'warn';
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const state: Live = { routers: [], ownNetns: [], rmDirs: [] };
  reapStalePrivateI2p();
  // Last resort when the process ends without stop() (a failed test, an exception, a signal).
  const unregisterCleanup = atProcessEnd({ name: 'the private I2P network', sync: () => cleanupSync(state) });
  let stopped = false;
  const root = opts.dir ? mkdtempSync(join(opts.dir, 'i2p-')) : mkdtempSync(join(tmpdir(), PRIVATE_I2P_DIR_PREFIX));
  const record = () =>
    writeOwner(root, {
      pid: process.pid,
      netns: [...state.ownNetns],
      i2pdPids: state.routers.flatMap((r) => (r.proc?.pid ? [r.proc.pid] : [])),
    });
  record();
  state.rmDirs.push(root);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(state.routers.map((r) => stopProc(r.proc)));
    for (const ns of state.ownNetns) await ip(['netns', 'del', ns]).catch(() => {});
    if (!opts.dir) rmSync(root, { recursive: true, force: true });
    // Only now: a process that ends while stop() runs still gets the synchronous cleanup.
    unregisterCleanup();
  };
  // Keep the directory when the caller chose it (logs for a post-mortem); remove it otherwise.
  if (opts.dir) state.rmDirs.length = 0;

  try {
    let specs: { netns: string; ip: string; samHost: string }[];
    let samNetns: (string | null)[];
    if (opts.routers) {
      if (opts.routers.length < 3)
        throw new PrivateI2pError('LAB_I2P_BAD_OPTIONS', 'a private I2P network needs at least 3 routers');
      specs = opts.routers.map((r) => ({ netns: r.netns, ip: r.ip, samHost: r.samHost ?? '127.0.0.1' }));
      samNetns = specs.map((s) => s.netns);
    } else {
      const count = opts.count ?? 4;
      if (count < 3 || count > 50) throw new PrivateI2pError('LAB_I2P_BAD_OPTIONS', 'count must be 3..50');
      const tag = `op${process.pid % 10000}${randomBytes(2).toString('hex')}`;
      const ns = `${tag}-i2p`;
      state.ownNetns.push(ns);
      record();
      await ip(['netns', 'add', ns]);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      for (let i = 1; i <= count; i++) await ip(['-n', ns, 'addr', 'add', `198.18.0.${i}/32`, 'dev', 'lo']);
      const [rootIp, nsIp] = pickVethSubnet();
      const vr = `${tag}r`;
      const vn = `${tag}n`;
      await ip(['link', 'add', vr, 'type', 'veth', 'peer', 'name', vn, 'netns', ns]);
      await ip(['addr', 'add', `${rootIp}/30`, 'dev', vr]);
      await ip(['link', 'set', vr, 'up']);
      await ip(['-n', ns, 'addr', 'add', `${nsIp}/30`, 'dev', vn]);
      await ip(['-n', ns, 'link', 'set', vn, 'up']);
      specs = Array.from({ length: count }, (_, i) => ({ netns: ns, ip: `198.18.0.${i + 1}`, samHost: nsIp }));
      samNetns = specs.map(() => null);
      log(`i2p: namespace ${ns}, routers 198.18.0.1-${count}, SAM on ${nsIp} via veth ${vr}`);
    }

    state.routers = specs.map((s, i) => ({
      index: i,
      netns: s.netns,
      ip: s.ip,
      samHost: s.samHost,
      samPort: SAM_BASE_PORT + i,
      ntcp2Port: NTCP2_BASE_PORT + i,
      datadir: join(root, `r${i}`),
      floodfill: i < 2,
      proc: null,
    }));
    const deadline = Date.now() + timeoutMs;

    // 1. Key creation: each router writes router.keys + router.info on its first start.
    for (const r of state.routers) writeRouterFiles(r, undefined, logLevel);
    for (const r of state.routers) r.proc = spawnRouter(r, log);
    record();
    const riPath = (r: Router) => join(r.datadir, 'router.info');
    while (!state.routers.every((r) => existsSync(riPath(r)) && statSync(riPath(r)).size > 0)) {
      const dead = state.routers.find((r) => r.proc && r.proc.exitCode !== null);
      if (dead)
        throw new PrivateI2pError(
          'LAB_I2P_START',
          `i2pd ${dead.index} exited during key creation (see ${dead.datadir}/i2pd.log)`,
        );
      if (Date.now() > deadline)
        throw new PrivateI2pError('LAB_I2P_START', 'i2pd did not create its router.info in time');
      await sleep(100);
    }
    await Promise.all(state.routers.map((r) => stopProc(r.proc)));
    log(`i2p: keys created in ${Math.round(performance.now() - t0)} ms`);
    opts.progress?.advance('i2p: keys created');

    // 2. Reseed zip of every router.info, then the real start.
    const zip = join(root, 'reseed.zip');
    const staging = join(root, 'reseed');
    mkdirSync(staging);
    for (const r of state.routers) {
      writeFileSync(join(staging, `routerInfo-${r.index}.dat`), readFileSync(riPath(r)));
      // Start from the zip only: forget peers the key-creation start may have stored.
      rmSync(join(r.datadir, 'netDb'), { recursive: true, force: true });
    }
    await execFileP('zip', ['-q', '-j', zip, ...readdirSync(staging).map((f) => join(staging, f))]);
    for (const r of state.routers) writeRouterFiles(r, zip, logLevel);
    for (const r of state.routers) r.proc = spawnRouter(r, log);
    record();

    // 3. Every SAM bridge answers HELLO.
    for (const r of state.routers) {
      for (;;) {
        if (r.proc && r.proc.exitCode !== null)
          throw new PrivateI2pError('LAB_I2P_START', `i2pd ${r.index} exited (see ${r.datadir}/i2pd.log)`);
        const ok =
          samNetns[r.index] === null
            ? await samHello(r.samHost, r.samPort)
            : await portOpenIn(r.netns, r.samHost, r.samPort);
        if (ok) break;
        if (Date.now() > deadline)
          throw new PrivateI2pError('LAB_I2P_START', `SAM bridge of i2pd ${r.index} did not come up`);
        await sleep(100);
      }
    }
    const bringUpMs = Math.round(performance.now() - t0);
    log(`i2p: ${state.routers.length} routers up, SAM answering, in ${bringUpMs} ms`);
    opts.progress?.advance('i2p: routers up');
    return {
      sam: state.routers.map((r) => ({ host: r.samHost, port: r.samPort, netns: samNetns[r.index]! })),
      bringUpMs,
      sessionOptions: { ...PRIVATE_I2P_SESSION_OPTIONS },
      sessionCreate: { timeoutMs: 45_000, attempts: 2 },
      datadirs: state.routers.map((r) => r.datadir),
      ownNetns: [...state.ownNetns],
      async killRouter(index: number, signal: NodeJS.Signals = 'SIGKILL') {
        const r = state.routers[index];
        if (!r) throw new PrivateI2pError('LAB_I2P_BAD_OPTIONS', `no router ${index}`);
        await stopProc(r.proc, signal);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
