/**
 * Daemon configuration: a bitcoin.conf-style file (`--conf FILE`), environment (`ONIONPUNCH_<KEY>`) and flags
 * (`--key value`, `--key=value`), precedence flags > env > file > defaults. Names follow bitcoind's where they
 * mean the same (torcontrol, torpassword, i2psam, proxy, bind, externalip). A repeatable key set in a
 * higher-precedence source replaces (does not extend) the lower sources' list, as bitcoind does.
 * Every problem is a ConfigError naming the key, the source and the file line.
 */
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseB32, parseOnion } from '../wire/index.js';
import { ConfigError, type ConfigSource } from './errors.js';

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

export type NetworkName = 'main' | 'testnet3' | 'testnet4' | 'signet' | 'regtest';
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

export interface DaemonConfig {
  conf: string | undefined;
  overlay: 'tor' | 'i2p';
  network: NetworkName;
  torcontrol: HostPort;
  torpassword: string | undefined;
  i2psam: HostPort;
  proxy: HostPort;
  bind: string | undefined;
  externalip: string | undefined;
  bitcoind: HostPort;
  punchport: number;
  announce: HostPort[];
  announceinterval: number;
  peer: HostPort[];
  known: KnownEntry[];
  listen: HostPort;
  natcheck: HostPort[];
  labranges: boolean;
  resolvenames: boolean;
  allowloopback: boolean;
  maxsessions: number;
  maxclients: number;
  idletimeout: number;
  shutdowngrace: number;
  log: 'json' | 'text';
  loglevel: 'debug' | 'info' | 'warn' | 'error';
  json: boolean;
}

type Kind = 'string' | 'hostport' | 'host' | 'port' | 'int' | 'bool' | 'enum' | 'known';
interface KeySpec {
  kind: Kind;
  list?: boolean;
  values?: readonly string[];
  min?: number;
  max?: number;
  /** Only as a flag (never from a file or the environment). */
  flagOnly?: boolean;
  /** hostport: port 0 (pick a free port) allowed. */
  zeroPort?: boolean;
  doc: string;
}

/** Every key, its type and meaning (docs/DAEMON.md is generated from the same words). */
export const CONFIG_KEYS: Record<keyof DaemonConfig, KeySpec> = {
  conf: { kind: 'string', flagOnly: true, doc: 'configuration file (bitcoin.conf style key=value lines)' },
  overlay: { kind: 'enum', values: ['tor', 'i2p'], doc: 'coordination overlay (default tor)' },
  network: { kind: 'enum', values: ['main', 'testnet3', 'testnet4', 'signet', 'regtest'], doc: 'Bitcoin network (default main)' },
  torcontrol: { kind: 'hostport', doc: "Tor control port, as bitcoind's -torcontrol (default 127.0.0.1:9051)" },
  torpassword: { kind: 'string', doc: "Tor control password, as bitcoind's -torpassword (default: cookie/none)" },
  i2psam: { kind: 'hostport', doc: "I2P SAM bridge, as bitcoind's -i2psam (default 127.0.0.1:7656)" },
  proxy: { kind: 'hostport', doc: "Tor SOCKS port, as bitcoind's -proxy (default 127.0.0.1:9050)" },
  bind: { kind: 'host', doc: 'local address to punch from (default: wildcard)' },
  externalip: { kind: 'host', doc: "our public clearnet address to announce, as bitcoind's -externalip (default: from the NAT check)" },
  bitcoind: { kind: 'hostport', doc: "local bitcoind's P2P port punched sockets are spliced to (default 127.0.0.1:<network port>)" },
  punchport: { kind: 'port', doc: 'clearnet port announced (default: the network port)' },
  announce: { kind: 'hostport', list: true, doc: 'clearnet peer to announce our endpoint to (repeatable)' },
  announceinterval: { kind: 'int', min: 10, max: 590, doc: 'seconds between announcements (default 300; < 600, the freshness window)' },
  peer: { kind: 'hostport', list: true, doc: 'proxy: clearnet peer to learn announcements from (repeatable; default: the announce list)' },
  known: { kind: 'known', list: true, doc: 'proxy: static announcement COORD:PORT@CLEARHOST:PORT (repeatable)' },
  listen: { kind: 'hostport', zeroPort: true, doc: "proxy: SOCKS5 listen address for bitcoind's -proxy (default 127.0.0.1:9064)" },
  natcheck: { kind: 'hostport', list: true, doc: 'NAT-check server (repeatable; two give the EIM check)' },
  labranges: { kind: 'bool', doc: 'allow the NAT lab address ranges as punch targets (never on a real network)' },
  resolvenames: { kind: 'bool', doc: 'proxy: resolve SOCKS domain names with the system resolver (default off)' },
  allowloopback: { kind: 'bool', doc: 'proxy: allow loopback destinations of plain SOCKS connects (default off)' },
  maxsessions: { kind: 'int', min: 1, max: 1024, doc: 'punch sessions at once (default 8)' },
  maxclients: { kind: 'int', min: 1, max: 4096, doc: 'proxy: SOCKS clients at once; serve: bridges at once (default 128)' },
  idletimeout: { kind: 'int', min: 1, max: 86400, doc: 'seconds a bridge may stay silent both ways before it is closed (default 1800)' },
  shutdowngrace: { kind: 'int', min: 0, max: 600, doc: 'seconds bridges may finish after SIGINT/SIGTERM (default 5)' },
  log: { kind: 'enum', values: ['json', 'text'], doc: 'log format on stderr (default text)' },
  loglevel: { kind: 'enum', values: ['debug', 'info', 'warn', 'error'], doc: 'least severe level logged (default info)' },
  json: { kind: 'bool', flagOnly: true, doc: 'print one JSON line on stdout when ready' },
};

const NETWORK_PORT: Record<NetworkName, number> = { main: 8333, testnet3: 18333, testnet4: 48333, signet: 38333, regtest: 18444 };

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

/** Parses flags into raw values. `--key value`, `--key=value`; a bool flag alone means true. */
export function parseFlags(args: string[]): Raw[] {
  const out: Raw[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--') || a.length === 2) throw new ConfigError('CONFIG_SYNTAX', `unexpected argument '${a.slice(0, 64)}' (options are --key value or --key=value)`, { source: 'flag' });
    const eq = a.indexOf('=');
    const key = (eq >= 0 ? a.slice(2, eq) : a.slice(2)).toLowerCase();
    if (!isKey(key)) throw new ConfigError('CONFIG_UNKNOWN_KEY', `unknown option --${key.slice(0, 64)}`, { source: 'flag' });
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (CONFIG_KEYS[key].kind === 'bool') value = '1';
    else {
      const next = args[i + 1];
      if (next === undefined) throw new ConfigError('CONFIG_MISSING', 'needs a value', { key, source: 'flag' });
      value = next;
      i++;
    }
    out.push({ key, value, source: 'flag' });
  }
  if (out.length > CONFIG_LIMITS.maxEntries) throw new ConfigError('CONFIG_LIMIT', `more than ${CONFIG_LIMITS.maxEntries} options`, { source: 'flag' });
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
  const get = <K extends keyof DaemonConfig>(k: K, def: DaemonConfig[K]): DaemonConfig[K] => (values.has(k) ? (values.get(k)!.value as DaemonConfig[K]) : def);
  const network = get('network', 'main');
  const announce = get('announce', []);
  const cfg: DaemonConfig = {
    conf: confFlag?.value,
    overlay: get('overlay', 'tor'),
    network,
    torcontrol: get('torcontrol', { host: '127.0.0.1', port: 9051 }),
    torpassword: get('torpassword', undefined),
    i2psam: get('i2psam', { host: '127.0.0.1', port: 7656 }),
    proxy: get('proxy', { host: '127.0.0.1', port: 9050 }),
    bind: get('bind', undefined),
    externalip: get('externalip', undefined),
    bitcoind: get('bitcoind', { host: '127.0.0.1', port: NETWORK_PORT[network] }),
    punchport: get('punchport', NETWORK_PORT[network]),
    announce,
    announceinterval: get('announceinterval', 300),
    peer: get('peer', announce),
    known: get('known', []),
    listen: get('listen', { host: '127.0.0.1', port: 9064 }),
    natcheck: get('natcheck', []),
    labranges: get('labranges', false),
    resolvenames: get('resolvenames', false),
    allowloopback: get('allowloopback', false),
    maxsessions: get('maxsessions', 8),
    maxclients: get('maxclients', 128),
    idletimeout: get('idletimeout', 1800),
    shutdowngrace: get('shutdowngrace', 5),
    log: get('log', 'text'),
    loglevel: get('loglevel', 'info'),
    json: get('json', false),
  };
  const sources: Record<string, ConfigSource> = {};
  for (const k of Object.keys(CONFIG_KEYS)) sources[k] = values.get(k)?.source ?? 'default';
  return { ...cfg, sources };
}

/** The default P2P port of a network. */
export function networkPort(n: NetworkName): number {
  return NETWORK_PORT[n];
}
