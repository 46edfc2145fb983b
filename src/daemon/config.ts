/**
 * Daemon configuration: a bitcoin.conf-style file (`--conf FILE`), environment (`ONIONPUNCH_<KEY>`) and flags
 * (`--key value`, `--key=value`), precedence flags > env > file > defaults. Names follow bitcoind's where they
 * mean the same (torcontrol, torpassword, i2psam, proxy, bind, externalip). A repeatable key set in a
 * higher-precedence source replaces (does not extend) the lower sources' list, as bitcoind does.
 * Every problem is a ConfigError naming the key, the source and the file line.
 */
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { DEFAULT_PORT, NETWORKS, parseB32, parseOnion, type NetworkName } from '../wire/index.js';
import { ConfigError, type ConfigSource } from './errors.js';
import { scan } from './args.js';

/** Hard limits on what we read. */
export const CONFIG_LIMITS = {
  /** Largest config file, bytes. */
  maxFileBytes: 64 * 1024,
  /** Longest line (file) or value (env, flag), characters. */
  maxLineChars: 1024,
  /** Most key=value entries in one source. */
  maxEntries: 256,
  /** Most values of one repeatable key. */
  maxListValues: 64,
} as const;

export type { NetworkName };
export interface HostPort {
  host: string;
  port: number;
}
/** A static announcement: `COORD:PORT@CLEARHOST:PORT`. */
export interface KnownEntry {
  coordination: string;
  coordinationPort: number;
  clearnet: { address: string; port: number };
}

type Kind = 'string' | 'hostport' | 'host' | 'port' | 'int' | 'bool' | 'enum' | 'known';

/** The keys resolved so far, for a default that depends on another key (the keys above it in the table). */
export type ResolvedSoFar = Readonly<Record<string, unknown>>;

/** One configuration key: how it is read, its default, and its words for --help and docs/DAEMON.md. */
export interface KeySpec<T> {
  kind: Kind;
  list?: boolean;
  values?: readonly string[];
  min?: number;
  max?: number;
  /** Only as a flag (never from a file or the environment). */
  flagOnly?: boolean;
  /** hostport: port 0 (pick a free port) allowed. */
  zeroPort?: boolean;
  /** int: the unit, shown in the type column (`seconds`). */
  unit?: string;
  /** The type column when the kind's own words do not fit (`path` for a string naming a file). */
  typeDoc?: string;
  /** The value when no source sets the key: a constant, or computed from the keys above it. */
  default: T | ((c: ResolvedSoFar) => T);
  /** The default column when it is not the constant itself (computed defaults, `undefined`). */
  defaultDoc?: string;
  /** What the key means (one line). */
  doc: string;
}

/** Declares one key; `T` is the type the key has in {@link DaemonConfig}. */
function key<T>(spec: KeySpec<T>): KeySpec<T> {
  return spec;
}

const hp = (host: string, port: number): HostPort => ({ host, port });
const netPort = (c: ResolvedSoFar): number => DEFAULT_PORT[c.network as NetworkName];

/**
 * Every key, its type, default and meaning, in resolution order. Adding a key is one entry here: DaemonConfig,
 * loadConfig, --help and the docs/DAEMON.md table (checked by test/unit/daemon-config.test.ts) follow from it.
 */
export const CONFIG_KEYS = {
  conf: key<string | undefined>({
    kind: 'string', typeDoc: 'path', flagOnly: true, default: undefined, defaultDoc: '—',
    doc: 'the configuration file (bitcoin.conf style key=value lines)',
  }),
  overlay: key<'tor' | 'i2p'>({ kind: 'enum', values: ['tor', 'i2p'], default: 'tor', doc: 'coordination overlay' }),
  network: key<NetworkName>({
    kind: 'enum', values: NETWORKS, default: 'main',
    doc: 'Bitcoin network (magic, default ports)',
  }),
  torcontrol: key<HostPort>({
    kind: 'hostport', default: hp('127.0.0.1', 9051), doc: "Tor control port (serve), as bitcoind's -torcontrol",
  }),
  torpassword: key<string | undefined>({
    kind: 'string', default: undefined, defaultDoc: 'cookie / none',
    doc: "Tor control password, as bitcoind's -torpassword",
  }),
  i2psam: key<HostPort>({
    kind: 'hostport', default: hp('127.0.0.1', 7656),
    doc: "I2P SAM bridge, as bitcoind's -i2psam",
  }),
  proxy: key<HostPort>({
    kind: 'hostport', default: hp('127.0.0.1', 9050),
    doc: "Tor SOCKS port for coordination dials (proxy), as bitcoind's -proxy means Tor's",
  }),
  bind: key<string | undefined>({
    kind: 'host', default: undefined, defaultDoc: 'wildcard',
    doc: 'local address to punch from',
  }),
  externalip: key<string | undefined>({
    kind: 'host', default: undefined, defaultDoc: 'from the NAT check',
    doc: "clearnet address announced, as bitcoind's -externalip",
  }),
  bitcoind: key<HostPort>({
    kind: 'hostport', default: (c) => hp('127.0.0.1', netPort(c)), defaultDoc: '127.0.0.1:<network port>',
    doc: "local bitcoind's P2P port punched sockets are spliced to (serve)",
  }),
  punchport: key<number>({
    kind: 'port', default: netPort, defaultDoc: `network port (${NETWORKS.map((n) => DEFAULT_PORT[n]).join(', ')})`,
    doc: "clearnet port announced; also the onion's virtual port",
  }),
  announce: key<HostPort[]>({
    kind: 'hostport', list: true, default: [],
    doc: 'clearnet peer to announce our endpoint to (serve)',
  }),
  announceinterval: key<number>({
    kind: 'int', unit: 'seconds', min: 10, max: 590, default: 300,
    doc: "announcement period (below the 600 s freshness window); also the collector's reconnect period",
  }),
  peer: key<HostPort[]>({
    kind: 'hostport', list: true, default: (c) => c.announce as HostPort[], defaultDoc: 'the `announce` list',
    doc: 'clearnet peer to learn announcements from (proxy)',
  }),
  known: key<KnownEntry[]>({
    kind: 'known', list: true, default: [],
    doc: 'static announcement (proxy); COORD must be a valid v3 onion or b32.i2p',
  }),
  listen: key<HostPort>({
    kind: 'hostport', zeroPort: true, default: hp('127.0.0.1', 9064),
    doc: "SOCKS5 listen address for bitcoind's -proxy (proxy)",
  }),
  natcheck: key<HostPort[]>({
    kind: 'hostport', list: true, default: [],
    doc: 'NAT-check server (two give the EIM check)',
  }),
  labranges: key<boolean>({
    kind: 'bool', default: false, doc: "allow the NAT lab's address ranges as punch targets (never on a real network)",
  }),
  maxsessions: key<number>({ kind: 'int', min: 1, max: 1024, default: 8, doc: 'punch sessions at once (serve)' }),
  maxclients: key<number>({
    kind: 'int', min: 1, max: 4096, default: 128,
    doc: 'SOCKS clients (proxy) / bridges (serve) at once',
  }),
  idletimeout: key<number>({
    kind: 'int', unit: 'seconds', min: 1, max: 86400, default: 1800,
    doc: 'a bridge silent both ways this long is closed',
  }),
  shutdowngrace: key<number>({
    kind: 'int', unit: 'seconds', min: 0, max: 600, default: 5, doc: 'time bridges get to finish after SIGINT/SIGTERM',
  }),
  log: key<'json' | 'text'>({ kind: 'enum', values: ['json', 'text'], default: 'text', doc: 'log format on stderr' }),
  loglevel: key<'debug' | 'info' | 'warn' | 'error'>({
    kind: 'enum', values: ['debug', 'info', 'warn', 'error'], default: 'info', doc: 'least severe level logged',
  }),
  json: key<boolean>({ kind: 'bool', flagOnly: true, default: false, doc: 'print the ready line as JSON on stdout' }),
};

/** The daemon's configuration: one field per key of {@link CONFIG_KEYS}. */
export type DaemonConfig = {
  -readonly [K in keyof typeof CONFIG_KEYS]: (typeof CONFIG_KEYS)[K] extends KeySpec<infer T> ? T : never;
};

/** The type column of docs/DAEMON.md for one key. */
export function keyTypeText(k: KeySpec<unknown>): string {
  let t: string;
  switch (k.kind) {
    case 'enum': t = k.values!.map((v) => `\`${v}\``).join('\\|'); break;
    case 'hostport': t = k.zeroPort ? 'host:port (port 0 = any)' : 'host:port'; break;
    case 'host': t = 'IP'; break;
    case 'int': t = `${k.unit ? `${k.unit} ` : ''}${k.min ?? 0}..${k.max ?? 2 ** 31}`; break;
    case 'known': t = '`COORD:PORT@IP:PORT`'; break;
    default: t = k.kind;
  }
  if (k.typeDoc !== undefined) t = k.typeDoc;
  return `${t}${k.list ? ', repeatable' : ''}${k.flagOnly ? ' (flag only)' : ''}`;
}

/** The default column of docs/DAEMON.md for one key. */
export function keyDefaultText(k: KeySpec<unknown>): string {
  if (k.defaultDoc !== undefined) return k.defaultDoc;
  const d = k.default;
  if (typeof d === 'function') throw new TypeError('a computed default needs defaultDoc');
  if (Array.isArray(d)) return d.length === 0 ? 'none' : d.map((x) => keyValueText(x)).join(', ');
  return k.kind === 'enum' ? `\`${String(d)}\`` : keyValueText(d);
}

function keyValueText(v: unknown): string {
  if (v !== null && typeof v === 'object' && 'host' in v && 'port' in v) {
    const h = v as HostPort;
    return `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`;
  }
  return String(v);
}

/** docs/DAEMON.md's configuration table, generated from {@link CONFIG_KEYS}. */
export function configTable(): string {
  const rows = ['| key | type | default | meaning |', '|---|---|---|---|'];
  for (const [name, k] of Object.entries(CONFIG_KEYS) as Array<[string, KeySpec<unknown>]>) {
    rows.push(`| \`${name}\` | ${keyTypeText(k)} | ${keyDefaultText(k)} | ${k.doc} |`);
  }
  return rows.join('\n') + '\n';
}

/** Where to read from. Missing parts are empty. */
export interface ConfigInputs {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Base directory for a relative --conf (default cwd). */
  cwd?: string;
}

/** One raw value with where it came from. */
interface Raw {
  key: string;
  value: string;
  source: ConfigSource;
  line?: number;
  file?: string;
}

function isKey(k: string): k is keyof DaemonConfig {
  return Object.prototype.hasOwnProperty.call(CONFIG_KEYS, k);
}

/**
 * Parses flags into raw values through the CLI's scanner (args.ts, node:util parseArgs): `--key value`,
 * `--key=value`, a bool flag alone means true. Key names are case-insensitive, as in the file.
 */
export function parseFlags(args: string[]): Raw[] {
  const takesValue: Record<string, boolean> = {};
  for (const [k, spec] of Object.entries(CONFIG_KEYS)) takesValue[k] = spec.kind !== 'bool';
  // Lower-case each option's name (not its value) so `--TorControl` is `--torcontrol`.
  const lowered = args.map((a) => {
    if (!a.startsWith('--')) return a;
    const eq = a.indexOf('=');
    return eq < 0 ? a.toLowerCase() : a.slice(0, eq).toLowerCase() + a.slice(eq);
  });
  const out: Raw[] = [];
  for (const t of scan(lowered, takesValue)) {
    if (t.kind !== 'option' || !t.rawName.startsWith('--')) {
      const shown = t.kind === 'option' ? t.rawName : t.kind === 'operand' ? t.value : '--';
      const msg = `unexpected argument '${shown.slice(0, 64)}' (options are --key value or --key=value)`;
      throw new ConfigError('CONFIG_SYNTAX', msg, { source: 'flag' });
    }
    const key = t.name;
    if (!isKey(key)) throw new ConfigError('CONFIG_UNKNOWN_KEY', `unknown option --${key.slice(0, 64)}`, { source: 'flag' });
    let value: string;
    if (t.value !== undefined) value = t.value;
    else if (CONFIG_KEYS[key].kind === 'bool') value = '1';
    else throw new ConfigError('CONFIG_MISSING', 'needs a value', { key, source: 'flag' });
    out.push({ key, value, source: 'flag' });
  }
  if (out.length > CONFIG_LIMITS.maxEntries) {
    throw new ConfigError('CONFIG_LIMIT', `more than ${CONFIG_LIMITS.maxEntries} options`, { source: 'flag' });
  }
  return out;
}

/** Reads `ONIONPUNCH_<KEY>` for every known key; a list key takes comma-separated values. Other variables are ignored. */
export function parseEnv(env: NodeJS.ProcessEnv): Raw[] {
  const out: Raw[] = [];
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    if (spec.flagOnly) continue;
    const v = env[`ONIONPUNCH_${key.toUpperCase()}`];
    if (v === undefined) continue;
    if (spec.list) for (const part of v.split(',')) out.push({ key, value: part.trim(), source: 'env' });
    else out.push({ key, value: v, source: 'env' });
  }
  return out;
}

/** Parses config file text (bitcoin.conf style): `key=value`, `#` comments, blank lines. */
export function parseConfigText(text: string, file = 'config file'): Raw[] {
  const out: Raw[] = [];
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const where = { source: 'file' as const, line: n + 1, file };
    const raw = lines[n]!;
    if (raw.length > CONFIG_LIMITS.maxLineChars) throw new ConfigError('CONFIG_LIMIT', `line longer than ${CONFIG_LIMITS.maxLineChars} characters`, where);
    // A '#' starts a comment anywhere, as in bitcoin.conf.
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === '') continue;
    if (line.startsWith('[')) throw new ConfigError('CONFIG_SYNTAX', `sections ('${line.slice(0, 32)}') are not supported: use network=`, where);
    const eq = line.indexOf('=');
    if (eq < 0) throw new ConfigError('CONFIG_SYNTAX', `expected key=value, got '${line.slice(0, 64)}'`, where);
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    if (!isKey(key)) throw new ConfigError('CONFIG_UNKNOWN_KEY', `unknown key '${key.slice(0, 64)}'`, where);
    if (CONFIG_KEYS[key].flagOnly) throw new ConfigError('CONFIG_SYNTAX', 'may only be given as a flag', { ...where, key });
    out.push({ key, value, ...where });
    if (out.length > CONFIG_LIMITS.maxEntries) throw new ConfigError('CONFIG_LIMIT', `more than ${CONFIG_LIMITS.maxEntries} entries`, where);
  }
  return out;
}

/** Reads a config file with the size limit checked before reading. */
export function readConfigFile(path: string): Raw[] {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new ConfigError('CONFIG_FILE', `${path} is not a regular file`, { key: 'conf' });
    size = st.size;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('CONFIG_FILE', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { key: 'conf' });
  }
  if (size > CONFIG_LIMITS.maxFileBytes) throw new ConfigError('CONFIG_LIMIT', `${path} is ${size} bytes, more than ${CONFIG_LIMITS.maxFileBytes}`, { key: 'conf' });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('CONFIG_FILE', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { key: 'conf' });
  }
  if (Buffer.byteLength(text) > CONFIG_LIMITS.maxFileBytes) throw new ConfigError('CONFIG_LIMIT', `${path} grew past ${CONFIG_LIMITS.maxFileBytes} bytes`, { key: 'conf' });
  return parseConfigText(text, path);
}

/** `host:port` or `[v6]:port`; a host without a port takes `defPort` when given. */
export function parseHostPort(s: string, defPort?: number, zeroPort = false): HostPort | undefined {
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(s);
  let host: string;
  let portS: string | undefined;
  if (v6) {
    host = v6[1]!;
    portS = v6[2];
    if (isIP(host) !== 6) return undefined;
  } else {
    const m = /^([A-Za-z0-9.\-_]+)(?::(\d{1,5}))?$/.exec(s);
    if (!m) return undefined;
    host = m[1]!;
    portS = m[2];
  }
  const port = portS === undefined ? defPort : Number(portS);
  if (port === undefined || !Number.isInteger(port) || port < (zeroPort ? 0 : 1) || port > 65535) return undefined;
  return { host, port };
}

function parseKnown(s: string): KnownEntry | undefined {
  const at = s.indexOf('@');
  if (at < 0) return undefined;
  const coord = parseHostPort(s.slice(0, at));
  const clear = parseHostPort(s.slice(at + 1));
  if (!coord || !clear || isIP(clear.host) === 0) return undefined;
  // The wire parsers check the onion checksum/version and the b32 length, as the addrv2 codec will.
  try {
    if (/\.onion$/i.test(coord.host)) parseOnion(coord.host.toLowerCase());
    else parseB32(coord.host.toLowerCase());
  } catch {
    return undefined;
  }
  return { coordination: coord.host.toLowerCase(), coordinationPort: coord.port, clearnet: { address: clear.host, port: clear.port } };
}

function convert(r: Raw): unknown {
  const spec = CONFIG_KEYS[r.key as keyof DaemonConfig];
  const bad = (why: string): ConfigError =>
    new ConfigError('CONFIG_BAD_VALUE', `bad value '${r.value.slice(0, 64)}': ${why}`, { key: r.key, source: r.source, ...(r.line !== undefined ? { line: r.line } : {}), ...(r.file ? { file: r.file } : {}) });
  if (r.value.length > CONFIG_LIMITS.maxLineChars) throw new ConfigError('CONFIG_LIMIT', `value longer than ${CONFIG_LIMITS.maxLineChars} characters`, { key: r.key, source: r.source });
  const v = r.value;
  switch (spec.kind) {
    case 'string':
      if (v === '') throw bad('empty');
      return v;
    case 'host':
      if (isIP(v) === 0) throw bad('not an IP address');
      return v;
    case 'hostport': {
      const hp = parseHostPort(v, undefined, spec.zeroPort === true);
      if (!hp) throw bad('expected host:port or [v6]:port');
      return hp;
    }
    case 'port':
    case 'int': {
      if (!/^\d{1,9}$/.test(v)) throw bad('not a whole number');
      const n = Number(v);
      const min = spec.kind === 'port' ? 1 : spec.min ?? 0;
      const max = spec.kind === 'port' ? 65535 : spec.max ?? 2 ** 31;
      if (n < min || n > max) throw bad(`out of range ${min}..${max}`);
      return n;
    }
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(v)) return true;
      if (/^(0|false|no|off)$/i.test(v)) return false;
      throw bad('expected 1/0, true/false, yes/no, on/off');
    case 'enum':
      if (!spec.values!.includes(v)) throw bad(`expected one of ${spec.values!.join(', ')}`);
      return v;
    case 'known': {
      const k = parseKnown(v);
      if (!k) throw bad('expected COORD.onion|COORD.b32.i2p:PORT@CLEARNET-IP:PORT');
      return k;
    }
  }
}

/**
 * Loads the configuration from flags, environment and the file named by `--conf` (or `ONIONPUNCH_CONF` is NOT
 * read: the file is chosen on the command line only). Throws ConfigError.
 */
export function loadConfig(inputs: ConfigInputs = {}): DaemonConfig & { sources: Record<string, ConfigSource> } {
  const flags = parseFlags(inputs.args ?? []);
  const env = parseEnv(inputs.env ?? {});
  const confFlag = flags.filter((r) => r.key === 'conf').pop();
  let file: Raw[] = [];
  if (confFlag) {
    const p = confFlag.value.startsWith('/') ? confFlag.value : `${inputs.cwd ?? process.cwd()}/${confFlag.value}`;
    file = readConfigFile(p);
  }
  const values = new Map<string, { value: unknown; source: ConfigSource }>();
  // Lowest precedence first; a higher source replaces a key entirely.
  for (const layer of [file, env, flags]) {
    const seen = new Map<string, unknown[]>();
    for (const r of layer) {
      const spec = CONFIG_KEYS[r.key as keyof DaemonConfig];
      const v = convert(r);
      if (spec.list) {
        const arr = seen.get(r.key) ?? [];
        arr.push(v);
        if (arr.length > CONFIG_LIMITS.maxListValues) throw new ConfigError('CONFIG_LIMIT', `more than ${CONFIG_LIMITS.maxListValues} values`, { key: r.key, source: r.source, ...(r.line !== undefined ? { line: r.line, file: r.file! } : {}) });
        seen.set(r.key, arr);
        values.set(r.key, { value: arr, source: r.source });
      } else {
        values.set(r.key, { value: v, source: r.source });
      }
    }
  }
  // Table order: a computed default sees the keys above it (bitcoind and punchport see network).
  const cfg: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(CONFIG_KEYS) as Array<[string, KeySpec<unknown>]>) {
    const d = spec.default;
    if (values.has(k)) cfg[k] = values.get(k)!.value;
    else cfg[k] = typeof d === 'function' ? (d as (c: ResolvedSoFar) => unknown)(cfg) : d;
  }
  const sources: Record<string, ConfigSource> = {};
  for (const k of Object.keys(CONFIG_KEYS)) sources[k] = values.get(k)?.source ?? 'default';
  return { ...(cfg as DaemonConfig), sources };
}

/** The default P2P port of a network. */
export function networkPort(n: NetworkName): number {
  return DEFAULT_PORT[n];
}
