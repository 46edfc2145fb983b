/**
 * A private Tor network started by our own code for tests, the lab and the demo (recipe: PRIVATE-TOR.md):
 * one directory authority + three relays (onion-service circuits need 4 distinct relays), node A (a client with
 * a ControlPort that hosts onion services) and node B (a client with a SocksPort that dials them) — or several
 * B clients (`roles.bs`), one per B home: each builds its own circuits over its own access link.
 *
 * Loopback mode (default): every tor on 127.0.0.1 with free ports. Namespace mode: a role with `netns` runs as
 * `ip netns exec NS tor -f torrc` and binds/advertises its `ip`; A's ControlPort and B's SocksPort then listen
 * on 127.0.0.1 inside their namespaces (the processes using them run there too).
 *
 * Bring-up is staged and polled, never slept: keys (in parallel), authority + relays, wait until every relay
 * holds a consensus listing all four relays with descriptors, then A and B, wait for "Bootstrapped 100%".
 */
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  authorityTorrc,
  relayTorrc,
  clientATorrc,
  clientBTorrc,
  type AuthorityRef,
  type CommonTorrc,
} from './private-tor-torrc.js';
import {
  PrivateTorError,
  TorProcess,
  freePort,
  pollUntil,
  readText,
  registerDir,
  run,
  unregisterDir,
} from './private-tor-process.js';
import type { ProgressSink } from '../progress.js';

export { PrivateTorError } from './private-tor-process.js';

/** Where one role runs: a network namespace (optional) and the address it binds and advertises. */
export interface PrivateTorRole {
  netns?: string;
  ip?: string;
}

export interface PrivateTorOptions {
  /** Parent of the network's temp dir (default os.tmpdir()); the temp dir is removed by stop(). */
  dir?: string;
  roles?: {
    authority?: PrivateTorRole;
    relays?: PrivateTorRole[];
    a?: PrivateTorRole;
    b?: PrivateTorRole;
    /** B clients after the first (`b2`, `b3`, ...; at most {@link MAX_B_CLIENTS} in all), each its own tor. */
    bs?: PrivateTorRole[];
  };
  /** A's control-port authentication: cookie (default) or a password (HashedControlPassword). */
  controlPassword?: string;
  /**
   * When to start A and B: 'relays' (default, PRIVATE-TOR.md's staged start) once every relay holds a consensus
   * listing all four relays as Running, Valid and HSDir with descriptors; 'consensus' as soon as the authority
   * has published such a consensus (measured no faster: the clients then often wait for the next consensus).
   */
  clientsStart?: 'consensus' | 'relays';
  /** Extra torrc lines per role (e.g. `{ b: ['Log info file /tmp/b.log'] }` to debug). */
  extraTorrc?: Partial<Record<PrivateTorRoleName, string[]>>;
  /** Whole bring-up timeout, ms (default 120000). */
  timeoutMs?: number;
  log?: (line: string) => void;
  /** Told each of the 4 bring-up steps (keys, first consensus, relays ready, clients bootstrapped). */
  progress?: ProgressSink;
}

/** A's control port as seen from inside A's namespace (or loopback). */
export interface PrivateTorControl {
  host: string;
  port: number;
  netns?: string;
  /** Set with cookie auth (default): the cookie tor writes (readable by root / the user running the test). */
  cookieFile?: string;
  /** Set when `controlPassword` was given. */
  password?: string;
}

export interface PrivateTorSocks {
  host: string;
  port: number;
  netns?: string;
}

/** `b` is the first B client; `b2`, `b3`, ... the further ones (`roles.bs`). */
export type PrivateTorRoleName = 'authority' | 'relay1' | 'relay2' | 'relay3' | 'a' | 'b' | `b${number}`;

/** B clients one network runs at most (each ≈ 13 MB RSS; the lab has at most 25 B sites). */
export const MAX_B_CLIENTS = 25;

export interface PrivateTorNode {
  role: PrivateTorRoleName;
  nickname: string;
  ip: string;
  netns?: string;
  dataDir: string;
  orPort?: number;
  pid: number | undefined;
}

/** Bring-up timings, ms from the call to startPrivateTor. */
export interface PrivateTorTimings {
  keysMs: number;
  firstConsensusMs: number;
  relaysReadyMs: number;
  clientsReadyMs: number;
}

export interface PrivateTor {
  controlA: PrivateTorControl;
  socksB: PrivateTorSocks;
  /** Every B client's SocksPort: `socksBs[0]` is `socksB`, then `roles.bs`' in order. */
  socksBs: PrivateTorSocks[];
  /** Total bring-up time (= timings.clientsReadyMs). */
  bringUpMs: number;
  timings: PrivateTorTimings;
  dir: string;
  nodes(): PrivateTorNode[];
  /** Stops one client's tor (SIGKILL with `hard`, else SIGTERM). */
  stopClient(role: 'a' | 'b', hard?: boolean): Promise<void>;
  /** Starts it again with the same torrc, data dir and ports; waits for bootstrap unless `wait` is false. */
  startClient(role: 'a' | 'b', wait?: boolean): Promise<number>;
  /** Stops every tor and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

interface NodeSpec {
  role: PrivateTorRoleName;
  nickname: string;
  ip: string;
  netns: string | undefined;
  dataDir: string;
  torrc: string;
  orPort?: number;
  proc?: TorProcess;
}

/**
 * Port allocator: free ports below the ephemeral range on loopback; a private counter inside namespaces (own
 * port space), also kept below the ephemeral range (32768) so tor's outgoing connections never take them.
 */
function portAllocator(): (role: PrivateTorRole) => Promise<number> {
  let next = 20000 + Math.floor(Math.random() * 10000);
  return async (role) => {
    if (role.netns) return next++;
    return freePort(role.ip ?? '127.0.0.1');
  };
}

/** Starts the private network; resolves when A and B have bootstrapped. Cleans up on failure. */
export async function startPrivateTor(opts: PrivateTorOptions = {}): Promise<PrivateTor> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  opts.progress?.setTotal(4);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const deadline = () => Math.max(1000, timeoutMs - (Date.now() - t0));
  await mkdir(opts.dir ?? tmpdir(), { recursive: true });
  const dir = await mkdtemp(join(opts.dir ?? tmpdir(), 'onionpunch-tor-'));
  registerDir(dir);
  const tag = randomBytes(2).toString('hex');
  const roles = opts.roles ?? {};
  const relayRoles = [0, 1, 2].map((i) => roles.relays?.[i] ?? {});
  const specs: NodeSpec[] = [];
  const ipOf = (r: PrivateTorRole) => r.ip ?? '127.0.0.1';
  const alloc = portAllocator();

  const stopAll = async () => {
    await Promise.all(specs.map((s) => s.proc?.stop()));
  };

  try {
    // ---- keys: authority certificate + RSA fingerprints of the four relays, in parallel ----
    const authRole = roles.authority ?? {};
    const auth: NodeSpec = mk('authority', `auth${tag}`, authRole);
    const relays = relayRoles.map((r, i) => mk(`relay${i + 1}` as PrivateTorRoleName, `relay${i + 1}${tag}`, r));
    const aRole = roles.a ?? {};
    const bRole = roles.b ?? {};
    const bRoles = [bRole, ...(roles.bs ?? [])];
    if (bRoles.length > MAX_B_CLIENTS) {
      throw new PrivateTorError('LAB_TOR_SPEC', `at most ${MAX_B_CLIENTS} B clients (asked for ${bRoles.length})`);
    }
    const a = mk('a', `clienta${tag}`, aRole);
    const bClients = bRoles.map((r, i) => {
      const role = i === 0 ? 'b' : (`b${i + 1}` as const);
      return mk(role, `client${role}${tag}`, r);
    });
    const b = bClients[0]!;
    for (const s of specs) await mkdir(join(s.dataDir, 'keys'), { recursive: true, mode: 0o700 });
    const dirPort = await alloc(authRole);
    auth.orPort = await alloc(authRole);
    for (let i = 0; i < 3; i++) relays[i]!.orPort = await alloc(relayRoles[i]!);
    const keysDir = join(auth.dataDir, 'keys');
    const [, ...fps] = await Promise.all([
      run(
        'tor-gencert',
        [
          '--create-identity-key',
          '--passphrase-fd',
          '0',
          '-i',
          join(keysDir, 'authority_identity_key'),
          '-s',
          join(keysDir, 'authority_signing_key'),
          '-c',
          join(keysDir, 'authority_certificate'),
          '-m',
          '12',
          '-a',
          `${ipOf(authRole)}:${dirPort}`,
        ],
        '\n',
      ),
      // Only the authority's RSA fingerprint appears in a torrc (DirAuthority); relays make their keys at start.
      run('tor', [
        '--list-fingerprint',
        '--DataDirectory',
        auth.dataDir,
        '--ORPort',
        '1',
        '--ignore-missing-torrc',
        '-f',
        '/dev/null',
        '--Log',
        'err stdout',
      ]),
    ]);
    const cert = await readText(join(keysDir, 'authority_certificate'));
    const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
    const rsa = /([0-9A-F]{4}(?: [0-9A-F]{4}){9})/.exec(fps[0]!)?.[1]?.replace(/ /g, '');
    if (!v3ident || !rsa)
      throw new PrivateTorError('LAB_TOR_KEYS', `cannot read the authority's fingerprints (${fps[0]})`);
    const authority: AuthorityRef = {
      nickname: auth.nickname,
      ip: ipOf(authRole),
      orPort: auth.orPort,
      dirPort,
      v3ident,
      fingerprint: rsa,
    };
    const keysMs = Date.now() - t0;
    log(`private tor: keys in ${keysMs} ms (authority ${v3ident.slice(0, 8)}… at ${authority.ip}:${dirPort})`);
    opts.progress?.advance('tor: keys made');

    // ---- torrc files ----
    const c = (s: NodeSpec): CommonTorrc => ({
      nickname: s.nickname,
      dataDir: s.dataDir,
      ownerPid: process.pid,
      authority,
    });
    const extra = (s: NodeSpec) => (opts.extraTorrc?.[s.role] ?? []).map((l) => l + '\n').join('');
    await writeFile(auth.torrc, authorityTorrc(c(auth)) + extra(auth));
    for (const r of relays) await writeFile(r.torrc, relayTorrc(c(r), r.ip, r.orPort!) + extra(r));
    const controlPort = await alloc(aRole.netns ? aRole : {});
    const socksPorts: number[] = [];
    for (const r of bRoles) socksPorts.push(await alloc(r.netns ? r : {}));
    let hashedPassword: string | undefined;
    if (opts.controlPassword !== undefined) {
      const out = await run('tor', ['--quiet', '--hash-password', opts.controlPassword]);
      hashedPassword = out.trim().split('\n').pop()!.trim();
    }
    await writeFile(
      a.torrc,
      clientATorrc(c(a), { host: '127.0.0.1', port: controlPort, ...(hashedPassword ? { hashedPassword } : {}) }) +
        extra(a),
    );
    for (const [i, s] of bClients.entries()) {
      await writeFile(s.torrc, clientBTorrc(c(s), { host: '127.0.0.1', port: socksPorts[i]! }) + extra(s));
    }

    // ---- stage 1: authority + relays ----
    const servers = [auth, ...relays];
    for (const s of servers) launch(s);
    const serverProcs = () => servers.map((s) => s.proc!);
    let firstConsensusMs = -1;
    await pollUntil(
      'the first consensus',
      async () => {
        const text = await readText(join(auth.dataDir, 'cached-consensus'));
        if (text.includes('\nr ')) firstConsensusMs = Date.now() - t0;
        return firstConsensusMs >= 0;
      },
      serverProcs(),
      deadline(),
    );
    log(`private tor: first consensus at ${firstConsensusMs} ms`);
    opts.progress?.advance('tor: first consensus');
    const nicks = servers.map((s) => s.nickname);
    const readyDirs = (opts.clientsStart ?? 'relays') === 'relays' ? servers.map((s) => s.dataDir) : [auth.dataDir];
    await pollUntil(
      'a consensus listing all 4 relays with descriptors',
      async () => {
        const ok = await Promise.all(readyDirs.map((d) => relayReady(d, nicks)));
        return ok.every(Boolean);
      },
      serverProcs(),
      deadline(),
    );
    const relaysReadyMs = Date.now() - t0;
    log(`private tor: relays ready at ${relaysReadyMs} ms`);
    opts.progress?.advance('tor: relays ready');

    // ---- stage 2: clients ----
    launch(a);
    for (const s of bClients) launch(s);
    await Promise.all([a, ...bClients].map((s) => waitBootstrapped(s, 0, deadline())));
    const clientsReadyMs = Date.now() - t0;
    const bs = bClients.length > 1 ? ` (${bClients.length} B clients)` : '';
    log(`private tor: A and B bootstrapped at ${clientsReadyMs} ms${bs}`);
    opts.progress?.advance('tor: A and B bootstrapped');

    let stopped = false;
    const socksOf = (i: number): PrivateTorSocks => {
      const r = bRoles[i]!;
      return { host: '127.0.0.1', port: socksPorts[i]!, ...(r.netns ? { netns: r.netns } : {}) };
    };
    const net: PrivateTor = {
      controlA: {
        host: '127.0.0.1',
        port: controlPort,
        ...(aRole.netns ? { netns: aRole.netns } : {}),
        ...(opts.controlPassword !== undefined
          ? { password: opts.controlPassword }
          : { cookieFile: join(a.dataDir, 'control_auth_cookie') }),
      },
      socksB: socksOf(0),
      socksBs: bRoles.map((_r, i) => socksOf(i)),
      bringUpMs: clientsReadyMs,
      timings: { keysMs, firstConsensusMs, relaysReadyMs, clientsReadyMs },
      dir,
      nodes: () =>
        specs.map((s) => ({
          role: s.role,
          nickname: s.nickname,
          ip: s.ip,
          dataDir: s.dataDir,
          pid: s.proc?.child.pid,
          ...(s.netns ? { netns: s.netns } : {}),
          ...(s.orPort ? { orPort: s.orPort } : {}),
        })),
      async stopClient(role, hard = false) {
        const s = role === 'a' ? a : b;
        await s.proc?.stop(3000, hard ? 'SIGKILL' : 'SIGTERM');
      },
      async startClient(role, wait = true) {
        const s = role === 'a' ? a : b;
        if (s.proc?.running) throw new PrivateTorError('LAB_TOR_SPAWN', `tor ${role} is already running`);
        const t = Date.now();
        const from = (await readText(join(s.dataDir, 'notice.log'))).length;
        launch(s);
        if (wait) await waitBootstrapped(s, from, 60_000);
        return Date.now() - t;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
        await rm(dir, { recursive: true, force: true });
        unregisterDir(dir);
      },
    };
    return net;
  } catch (err) {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
    unregisterDir(dir);
    throw err;
  }

  function mk(role: PrivateTorRoleName, nickname: string, r: PrivateTorRole): NodeSpec {
    const dataDir = join(dir, role);
    const s: NodeSpec = { role, nickname, ip: ipOf(r), netns: r.netns, dataDir, torrc: join(dir, `${role}.torrc`) };
    specs.push(s);
    return s;
  }

  function launch(s: NodeSpec): void {
    s.proc = new TorProcess(s.nickname, s.torrc, join(s.dataDir, 'notice.log'), s.netns);
  }
}

/** Waits for "Bootstrapped 100%" in the notice log after byte offset `from`. */
async function waitBootstrapped(s: NodeSpec, from: number, timeoutMs: number): Promise<void> {
  const logFile = join(s.dataDir, 'notice.log');
  await pollUntil(
    `tor ${s.role} to bootstrap`,
    async () => (await readText(logFile)).slice(from).includes('Bootstrapped 100%'),
    [s.proc!],
    timeoutMs,
  );
}

/**
 * A relay is ready when its cached consensus lists every relay (by nickname) as Running and Valid, and it holds
 * a descriptor of each (router descriptors are what relays fetch as directory caches).
 */
async function relayReady(dataDir: string, nicks: string[]): Promise<boolean> {
  const cons = await readText(join(dataDir, 'cached-consensus'));
  if (!cons) return false;
  const entries = cons.split('\nr ').slice(1);
  for (const n of nicks) {
    const e = entries.find((x) => x.startsWith(n + ' '));
    if (!e) return false;
    const flags = /\ns ([^\n]*)/.exec(e)?.[1] ?? '';
    if (!flags.includes('Running') || !flags.includes('Valid') || !flags.includes('HSDir')) return false;
  }
  const descs =
    (await readText(join(dataDir, 'cached-descriptors'))) + (await readText(join(dataDir, 'cached-descriptors.new')));
  return nicks.every((n) => descs.includes(`\nrouter ${n} `) || descs.startsWith(`router ${n} `));
}
