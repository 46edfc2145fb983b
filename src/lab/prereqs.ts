/**
 * Prerequisites of the lab tooling (`onionpunch demo`, `lab`, `overlay selftest`, the lab tests): root and a few
 * system binaries. Checked before anything is built; as root on Debian or Ubuntu the missing packages are
 * installed with apt-get after saying what and why, elsewhere a PrereqError names the packages.
 * The decision (`checkPrereqs`) is pure over a {@link PrereqEnv}, so it can be tested with any PATH.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { LabError, PrereqError } from './errors.js';

/** What a tool needs: the NAT lab itself, a private Tor network, a private I2P network, the test suite's extras. */
export type PrereqNeed = 'lab' | 'tor' | 'i2p' | 'test' | 'conntrack';

/** One binary, the Debian/Ubuntu package that ships it, and why we need it. */
export interface Requirement {
  binary: string;
  package: string;
  why: string;
}

/** Every binary each need requires (Debian/Ubuntu package names). */
export const REQUIREMENTS: Readonly<Record<PrereqNeed, readonly Requirement[]>> = {
  lab: [
    { binary: 'ip', package: 'iproute2', why: 'network namespaces, veth links, routes' },
    { binary: 'nft', package: 'nftables', why: 'the NAT routers and firewalls' },
  ],
  tor: [
    { binary: 'tor', package: 'tor', why: 'the private Tor network (authority, relays, clients)' },
    { binary: 'tor-gencert', package: 'tor', why: "the private Tor network's authority keys" },
  ],
  i2p: [
    { binary: 'ip', package: 'iproute2', why: 'the private I2P routers run in network namespaces' },
    { binary: 'i2pd', package: 'i2pd', why: 'the private I2P network (routers with SAM bridges)' },
    { binary: 'zip', package: 'zip', why: "the private I2P network's reseed file" },
  ],
  conntrack: [
    {
      binary: 'conntrack',
      package: 'conntrack',
      why: "lab stress: routers' conntrack counts, --fault conntrack-flush",
    },
  ],
  test: [
    { binary: 'cmake', package: 'cmake', why: 'the sanitizer build of the engine core (test/native)' },
    { binary: 'python3', package: 'python3', why: 'test helpers (a SYN black hole, a flooder)' },
    { binary: 'pgrep', package: 'procps', why: 'the lab tests look for leftover processes' },
  ],
};

/** Needs that only work as root (network namespaces); a private Tor network alone runs on loopback. */
export const ROOT_NEEDS: readonly PrereqNeed[] = ['lab', 'i2p'];

/** Directories a root shell normally has; added to the search when PATH lacks them (e.g. `sudo` without sbin). */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** What the decision depends on. */
export interface PrereqEnv {
  /** Directories searched for binaries, PATH syntax. */
  path: string;
  isRoot: boolean;
  /** Text of /etc/os-release ('' when absent). */
  osRelease: string;
}

/** This process's environment: PATH plus the usual system directories, uid, /etc/os-release. */
export function currentEnv(): PrereqEnv {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of SYSTEM_DIRS) if (!dirs.includes(d)) dirs.push(d);
  let osRelease = '';
  try {
    osRelease = readFileSync('/etc/os-release', 'utf8').slice(0, 16 * 1024);
  } catch {
    // no os-release: not a distribution we know how to install on
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return { path: dirs.join(delimiter), isRoot, osRelease };
}

/** The first executable `name` on `path`, or undefined. */
export function findBinary(name: string, path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True on Debian, Ubuntu and their derivatives (os-release ID or ID_LIKE). */
export function isDebianLike(osRelease: string): boolean {
  const field = (k: string): string[] => {
    const m = new RegExp(`^${k}=(.*)$`, 'm').exec(osRelease);
    return m ? m[1]!.replace(/["']/g, '').toLowerCase().split(/\s+/) : [];
  };
  return [...field('ID'), ...field('ID_LIKE')].some((id) => id === 'debian' || id === 'ubuntu');
}

/** What is missing and what would install it. */
export interface PrereqCheck {
  /** The requirements whose binary is not on the path, in table order. */
  missing: Requirement[];
  /** Their packages, each once. */
  packages: string[];
  /** The apt-get commands that install them (Debian/Ubuntu with apt-get on the path), else null. */
  install: string[][] | null;
  /** Why `install` is null when something is missing. */
  cannotInstall?: string;
}

/** Checks the binaries of `needs` against `env` (pure apart from looking at the file system). */
export function checkPrereqs(needs: readonly PrereqNeed[], env: PrereqEnv): PrereqCheck {
  const missing: Requirement[] = [];
  for (const n of new Set(needs)) {
    for (const r of REQUIREMENTS[n]) {
      if (!missing.some((m) => m.binary === r.binary) && !findBinary(r.binary, env.path)) missing.push(r);
    }
  }
  const packages = [...new Set(missing.map((r) => r.package))];
  if (packages.length === 0) return { missing, packages, install: null };
  let cannotInstall: string | undefined;
  if (!isDebianLike(env.osRelease)) cannotInstall = 'not Debian or Ubuntu: install them with your package manager';
  else if (!findBinary('apt-get', env.path)) cannotInstall = 'apt-get not found';
  if (cannotInstall !== undefined) return { missing, packages, install: null, cannotInstall };
  const install = [
    ['apt-get', 'update', '-qq'],
    ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...packages],
  ];
  return { missing, packages, install };
}

/** A command line as one would type it. */
export function commandText(cmds: readonly string[][]): string {
  return cmds.map((c) => c.join(' ')).join(' && ');
}

export interface EnsureOptions {
  /** Who asks, for the messages (`onionpunch demo`). */
  what: string;
  /** Install what is missing (default true); false only prints the command. */
  install?: boolean;
  /** Where messages go (default stderr). */
  log?: (line: string) => void;
  /** Default: this process ({@link currentEnv}); then PATH is extended by the system directories we searched. */
  env?: PrereqEnv;
  /** Longest an apt-get step may take (default 15 min). */
  aptTimeoutMs?: number;
}

function runApt(argv: readonly string[], env: PrereqEnv, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const exe = findBinary(argv[0]!, env.path) ?? argv[0]!;
    // apt-get's output goes to stderr: stdout may carry a --json contract line.
    const child = spawn(exe, argv.slice(1), {
      stdio: ['ignore', 2, 2],
      env: { ...process.env, PATH: env.path, DEBIAN_FRONTEND: 'noninteractive' },
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', () => {
      clearTimeout(t);
      resolve(127);
    });
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

/**
 * Makes sure root (for {@link ROOT_NEEDS}) and the binaries of `needs` are there: LabError `LAB_NOT_ROOT` when
 * not root; when something
 * is missing, says what and why, then installs it (as root on Debian/Ubuntu, unless `install` is false) or
 * throws PrereqError `LAB_PREREQ_MISSING` naming the packages; `LAB_PREREQ_INSTALL_FAILED` if apt-get fails.
 */
export async function ensurePrereqs(needs: readonly PrereqNeed[], opts: EnsureOptions): Promise<void> {
  const own = opts.env === undefined;
  const env = opts.env ?? currentEnv();
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const c = checkPrereqs(needs, env);
  const list = c.missing.map((r) => `${r.binary} (${r.why}; package ${r.package})`).join(', ');
  if (!env.isRoot && needs.some((n) => ROOT_NEEDS.includes(n))) {
    const also = c.missing.length ? `; it also needs ${list}` : '';
    const why = 'network namespaces, nftables, private Tor/I2P networks';
    throw new LabError('LAB_NOT_ROOT', `${opts.what} needs root (${why}); run it as root, e.g. with sudo${also}`);
  }
  if (c.missing.length > 0) {
    const pkgs = `package${c.packages.length > 1 ? 's' : ''} ${c.packages.join(', ')}`;
    log(`${opts.what}: missing ${list}`);
    if (!env.isRoot) {
      const how = c.install ? `: ${commandText(c.install)}` : '';
      throw new PrereqError('LAB_PREREQ_MISSING', `missing ${pkgs} (install as root${how})`, c.packages);
    }
    if (c.install === null) {
      throw new PrereqError('LAB_PREREQ_MISSING', `missing ${pkgs} (${c.cannotInstall})`, c.packages);
    }
    const cmd = commandText(c.install);
    if (opts.install === false) {
      log(`${opts.what}: install with: ${cmd}`);
      throw new PrereqError('LAB_PREREQ_MISSING', `missing ${pkgs}; install with: ${cmd}`, c.packages);
    }
    log(`${opts.what}: installing ${c.packages.join(', ')} (Debian/Ubuntu, as root): ${cmd}`);
    const timeout = opts.aptTimeoutMs ?? 15 * 60_000;
    // A failed `update` (no network to one mirror) may still leave usable lists: the install decides.
    await runApt(c.install[0]!, env, timeout);
    const code = await runApt(c.install[1]!, env, timeout);
    if (code !== 0) {
      throw new PrereqError('LAB_PREREQ_INSTALL_FAILED', `${cmd} failed (exit ${code ?? 'signal'})`, c.packages);
    }
    const after = checkPrereqs(needs, env);
    if (after.missing.length > 0) {
      const still = after.missing.map((r) => r.binary).join(', ');
      throw new PrereqError('LAB_PREREQ_INSTALL_FAILED', `still missing after apt-get: ${still}`, after.packages);
    }
    log(`${opts.what}: installed ${c.packages.join(', ')}`);
  }
  // The tools are spawned by name: give children the directories we found them in (sudo often drops sbin).
  if (own) process.env.PATH = env.path;
}
