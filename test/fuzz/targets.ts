/**
 * The fuzz targets: every parser of bytes an adversary controls. Each `run` feeds one input to the real code
 * (compiled dist/src, no stand-ins) and checks its contract: only the listed OnionpunchError subclasses may be
 * thrown (anything else — a TypeError, a RangeError, a plain Error, a base OnionpunchError — is a finding), and
 * the target's invariants hold (a violated invariant throws a plain Error, hence a finding too).
 *
 * Inputs are raw bytes; where a target needs a mode (chunk size, network, which command) it takes it from the
 * first byte, so the fuzzer can mutate the mode like any other byte.
 */
import { existsSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { OnionpunchError } from '../../src/errors.js';
import {
  CODECS,
  FrameParser,
  MAGIC,
  WireError,
  checksum,
  decodePayload,
  encodePayload,
  isKnownCommand,
  type Frame,
  type KnownCommand,
} from '../../src/wire/index.js';
import { wireCodec } from '../../src/punch/wire-codec.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { ReplyParser, parseKeywords } from '../../src/overlay/tor/reply.js';
import { parseHsDesc } from '../../src/overlay/tor/control.js';
import { TorControlError } from '../../src/overlay/tor/errors.js';
import { parseSamReply } from '../../src/overlay/i2p/reply.js';
import { checkReply } from '../../src/overlay/i2p/connection.js';
import { b32Address, publicDestination } from '../../src/overlay/i2p/address.js';
import { SamError } from '../../src/overlay/i2p/errors.js';
import { MAX_PREAMBLE, Socks5Handshake, checkAddress, checkDestination } from '../../src/daemon/socks5-parse.js';
import { encodeReply } from '../../src/daemon/socks5.js';
import { loadConfig, parseConfigText } from '../../src/daemon/config.js';
import { ConfigError } from '../../src/daemon/errors.js';

type ErrorClass = abstract new (...args: never[]) => OnionpunchError;

export interface FuzzTarget {
  name: string;
  /** What it feeds where (docs/FUZZING.md lists the same). */
  about: string;
  /** Longest input the mutator builds. */
  maxLen: number;
  /** The only error classes `run` may throw. */
  errors: readonly ErrorClass[];
  /** Tokens the mutator inserts. */
  dict?: readonly Buffer[];
  /** Repairs an input after mutation (e.g. recomputes checksums) so it gets past integrity checks. */
  fixup?: (b: Buffer) => Buffer;
  run(data: Buffer): void;
  /** Frees what the target holds (temporary files). */
  close?(): void;
}

/** A contract violation found by a target's own checks (always a finding). */
export class InvariantViolation extends Error {}

/** True when `err` is an allowed, typed error of `t`. */
export function allowedError(t: FuzzTarget, err: unknown): boolean {
  return (
    err instanceof OnionpunchError && err.constructor !== OnionpunchError && t.errors.some((c) => err instanceof c)
  );
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new InvariantViolation(what);
}

const COMMANDS = Object.keys(CODECS) as KnownCommand[];
const tok = (s: string): Buffer => Buffer.from(s, 'latin1');
const cmdToken = (c: string): Buffer => Buffer.concat([Buffer.from(c, 'ascii'), Buffer.alloc(12 - c.length)]);

/**
 * Walks `b` from `off` as a sequence of frames and rewrites each length (when it points past the end) and
 * checksum, so mutated payloads reach the decoders instead of dying at the checksum.
 */
export function fixFrames(b: Buffer, off: number): Buffer {
  const o = Buffer.from(b);
  let p = off;
  while (p + 24 <= o.length) {
    let len = o.readUInt32LE(p + 16);
    if (len > o.length - p - 24) {
      len = o.length - p - 24;
      o.writeUInt32LE(len, p + 16);
    }
    checksum(o.subarray(p + 24, p + 24 + len)).copy(o, p + 20);
    p += 24 + len;
  }
  return o;
}

function chunked(data: Buffer, step: number, each: (c: Buffer) => void): void {
  for (let i = 0; i < data.length; i += step) each(data.subarray(i, i + step));
}

const WIRE_DICT: Buffer[] = [
  ...COMMANDS.map(cmdToken),
  cmdToken('inv'),
  ...Object.values(MAGIC).map((m) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(m);
    return b;
  }),
  Buffer.from([0xfd, 0xff, 0xff]),
  Buffer.from([0xfe, 0xff, 0xff, 0xff, 0xff]),
  Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1]),
  Buffer.from([0xfd, 0xe8, 0x03]),
  Buffer.from([0xfd, 0xe9, 0x03]),
  Buffer.from([0xfd, 0x01, 0x01]),
  Buffer.from([0xfd, 0x01, 0x04]),
  Buffer.from([4, 32]),
  Buffer.from([7, 32]),
  Buffer.from([1, 4]),
  Buffer.from([2, 16]),
  Buffer.from('00000000000000000000ffff', 'hex'),
];

const wireStream: FuzzTarget = {
  name: 'wire-stream',
  about:
    'FrameParser.push in chunks of 1-32 bytes (mode byte: network filter, checksum check, 1 KiB cap), end(); ' +
    'each frame of a known command through decodePayload. Invariants: push never throws, errors are WireErrors, ' +
    'buffered bytes never exceed header + cap, a dead parser yields nothing.',
  maxLen: 4096,
  errors: [WireError],
  dict: WIRE_DICT,
  fixup: (b) => fixFrames(b, 1),
  run(data) {
    const mode = data[0] ?? 0;
    const cap = mode & 4 ? 1024 : 4_000_000;
    const p = new FrameParser({
      ...(mode & 1 ? { network: 'main' as const } : {}),
      verifyChecksum: !(mode & 2),
      ...(mode & 4 ? { maxPayload: cap } : {}),
    });
    const frames: Frame[] = [];
    chunked(data.subarray(1), 1 + (mode >> 3), (c) => {
      const r = p.push(c);
      frames.push(...r.frames);
      check(r.error === null || r.error instanceof WireError, 'push returned an untyped error');
      check(p.buffered <= 24 + cap, `parser holds ${p.buffered} bytes`);
      if (r.error) check(p.dead && p.push(Buffer.from([1, 2, 3])).frames.length === 0, 'parser alive after an error');
    });
    const end = p.end();
    check(end === null || end instanceof WireError, 'end returned an untyped error');
    for (const f of frames) {
      check(f.payload.length === f.length, 'frame payload length differs from its header');
      if (isKnownCommand(f.command)) {
        try {
          decodePayload(f.command, f.payload);
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
        }
      }
    }
  },
};

const wireMessages: FuzzTarget = {
  name: 'wire-messages',
  about:
    `decodePayload for each of the ${COMMANDS.length} known commands (mode byte picks it), then the round trip: ` +
    'a decoded value re-encodes without error and decodes to the same value.',
  maxLen: 2048,
  errors: [WireError],
  dict: WIRE_DICT,
  run(data) {
    const cmd = COMMANDS[(data[0] ?? 0) % COMMANDS.length]!;
    const v = decodePayload(cmd, data.subarray(1));
    let again: Buffer;
    try {
      again = encodePayload(cmd, v);
    } catch (e) {
      throw new InvariantViolation(`${cmd}: a decoded value does not re-encode: ${(e as Error).message}`);
    }
    check(isDeepStrictEqual(decodePayload(cmd, again), v), `${cmd}: round trip changed the value`);
  },
};

const coordCodec: FuzzTarget = {
  name: 'coord-codec',
  about:
    'the coordination stream decoder (punch/wire-codec.ts: FrameParser with a 4 KiB cap + CoordMessage ' +
    'mapping) in chunks (mode byte), inputs with checksums repaired; a thrown error kills the stream.',
  maxLen: 4096,
  errors: [WireError, PunchSessionError],
  dict: WIRE_DICT,
  fixup: (b) => fixFrames(b, 1),
  run(data) {
    const mode = data[0] ?? 0;
    const d = wireCodec(mode & 1 ? 'regtest' : 'main').decoder();
    chunked(data.subarray(1), 1 + (mode >> 1), (c) => void d.push(c));
  },
};

const TOR_DICT = [
  '250 OK\r\n',
  '250-',
  '250+',
  '\r\n.\r\n',
  '\r\n',
  '650 ',
  '650-',
  '552 ',
  '515 ',
  '510 ',
  '.',
  '..',
  '"',
  '\\"',
  '\\',
  '\\0',
  '\\377',
  'PROTOCOLINFO 1',
  'AUTH METHODS=SAFECOOKIE,HASHEDPASSWORD',
  'COOKIEFILE=',
  'VERSION Tor="0.4.8.9"',
  'ServiceID=',
  'PrivateKey=',
  'ED25519-V3:',
  'HS_DESC UPLOADED ',
  'HS_DESC FAILED ',
  'REASON=',
  'AUTHCHALLENGE SERVERHASH=',
  ' SERVERNONCE=',
  '=',
].map(tok);

const torReply: FuzzTarget = {
  name: 'tor-reply',
  about:
    'ReplyParser.push in chunks (mode byte: chunk size, small line/reply limits), then parseKeywords on every ' +
    'line and parseHsDesc on 650 lines. Invariant: after an error every push throws the same error.',
  maxLen: 4096,
  errors: [TorControlError],
  dict: TOR_DICT,
  run(data) {
    const mode = data[0] ?? 0;
    const p = new ReplyParser(mode & 1 ? { maxLineBytes: 64, maxReplyBytes: 512, maxReplyLines: 8 } : {});
    let failed: unknown = null;
    chunked(data.subarray(1), 1 + (mode >> 1), (c) => {
      if (failed) {
        try {
          p.push(c);
        } catch (e) {
          check(e === failed, 'a poisoned parser threw a different error');
          return;
        }
        throw new InvariantViolation('a poisoned parser accepted input');
      }
      let replies;
      try {
        replies = p.push(c);
      } catch (e) {
        failed = e;
        throw e;
      }
      for (const r of replies) {
        check(r.lines.length > 0 && r.lines.every((l) => l.status === r.status), 'reply lines disagree on status');
        for (const l of r.lines) {
          parseKeywords(l.text);
          if (r.status === 650) parseHsDesc(l.text);
        }
      }
    });
  },
};

const SAM_COMMANDS: ReadonlyArray<[string, string, boolean]> = [
  ['HELLO', 'REPLY', true],
  ['DEST', 'REPLY', false],
  ['SESSION', 'STATUS', true],
  ['STREAM', 'STATUS', true],
  ['NAMING', 'REPLY', true],
];
const SAM_DICT = [
  'HELLO REPLY ',
  'SESSION STATUS ',
  'STREAM STATUS ',
  'NAMING REPLY ',
  'DEST REPLY ',
  'RESULT=OK',
  'RESULT=CANT_REACH_PEER',
  'RESULT=I2P_ERROR',
  'RESULT=DUPLICATED_ID',
  'RESULT=INVALID_KEY',
  'RESULT=KEY_NOT_FOUND',
  'RESULT=TIMEOUT',
  'MESSAGE="',
  'VERSION=3.1',
  'DESTINATION=',
  'PUB=',
  'PRIV=',
  'NAME=',
  'VALUE=',
  '"',
  '\\"',
  '\\',
  '=',
  ' ',
  '\n',
  '\r\n',
  'AAAA',
  '-~',
].map(tok);

const samReply: FuzzTarget = {
  name: 'sam-reply',
  about:
    'SAM reply lines as SamConnection cuts them (LF, optional CR, latin1): parseSamReply, checkReply for the ' +
    'command the mode byte picks, and publicDestination/b32Address on DESTINATION, PUB and VALUE.',
  maxLen: 4096,
  errors: [SamError],
  dict: SAM_DICT,
  run(data) {
    const [topic, sub, needResult] = SAM_COMMANDS[(data[0] ?? 0) % SAM_COMMANDS.length]!;
    for (let line of data.subarray(1).toString('latin1').split('\n')) {
      if (line.endsWith('\r')) line = line.slice(0, -1);
      try {
        parseSamReply(line);
      } catch (e) {
        if (!(e instanceof SamError)) throw e;
      }
      let reply;
      try {
        reply = checkReply(line, topic, sub, topic, needResult);
      } catch (e) {
        if (!(e instanceof SamError)) throw e;
        continue;
      }
      for (const k of ['DESTINATION', 'PUB', 'VALUE', 'PRIV']) {
        const v = reply.fields.get(k);
        if (v === undefined) continue;
        try {
          publicDestination(v);
          b32Address(v);
        } catch (e) {
          if (!(e instanceof SamError)) throw e;
        }
      }
    }
  },
};

const socks5: FuzzTarget = {
  name: 'socks5',
  about:
    "Socks5Handshake.push (the server's own state machine) in chunks (mode byte), then the destination " +
    'policy (checkDestination, checkAddress; resolvenames/allowloopback off and on) and the reply encoder. ' +
    `Invariants: never more than ${MAX_PREAMBLE} bytes accepted, at most one request, nothing after an error.`,
  maxLen: 1024,
  errors: [],
  dict: [
    Buffer.from([5, 1, 0]),
    Buffer.from([5, 2, 0, 2]),
    Buffer.from([5, 1, 0, 1]),
    Buffer.from([5, 1, 0, 3]),
    Buffer.from([5, 1, 0, 4]),
    Buffer.from([0x20, 0x8d]),
    tok('.onion'),
    tok('.i2p'),
    tok('.b32.i2p'),
    tok('localhost'),
    tok('127.0.0.1'),
    tok('::1'),
    Buffer.from([127, 0, 0, 1]),
    Buffer.from('00000000000000000000ffff7f000001', 'hex'),
    Buffer.from('00000000000000000000000000000001', 'hex'),
  ],
  run(data) {
    const mode = data[0] ?? 0;
    const hs = new Socks5Handshake();
    let requests = 0;
    let dead = false;
    chunked(data.subarray(1), 1 + (mode >> 2), (c) => {
      const step = hs.push(c);
      check(!dead || (!step.request && !step.error && !step.methodReply), 'output after an error');
      check(hs.received <= MAX_PREAMBLE || hs.state === 'dead', `accepted ${hs.received} bytes`);
      if (step.error) dead = true;
      if (step.request) {
        requests++;
        const r = step.request;
        check(r.port >= 1 && r.port <= 65535 && r.host.length > 0, 'bad request fields');
        for (const policy of [
          { resolveNames: false, allowLoopback: false },
          { resolveNames: true, allowLoopback: true },
        ]) {
          const v = checkDestination(r, policy);
          if (r.atyp !== 'domain') {
            const a = checkAddress(r.host, policy);
            check(policy.allowLoopback || !r.host.startsWith('127.') || a === 'loopback', `${r.host} not refused`);
          }
          check(
            !(r.atyp === 'domain' && /\.(onion|i2p)$/i.test(r.host) && v !== 'overlay-name'),
            `${r.host} not refused`,
          );
        }
        encodeReply(mode & 0xff, r.atyp === 'domain' ? undefined : { address: r.host, port: r.port });
      }
      hs.takeEarly();
    });
    check(requests <= 1, 'more than one request');
  },
};

const CONFIG_DICT = [
  'overlay=',
  'network=',
  'torcontrol=',
  'torpassword=',
  'i2psam=',
  'proxy=',
  'bind=',
  'externalip=',
  'bitcoind=',
  'punchport=',
  'announce=',
  'seednode=',
  'addnode=',
  'announceinterval=',
  'peer=',
  'known=',
  'listen=',
  'natcheck=',
  'labranges=',
  'maxsessions=',
  'maxclients=',
  'idletimeout=',
  'shutdowngrace=',
  'log=',
  'loglevel=',
  'json=',
  'conf=',
  'resolvenames=',
  'allowloopback=',
  '#',
  '\n',
  '\r\n',
  '[main]',
  '=',
  '127.0.0.1:9050',
  '[::1]:8333',
  'tor',
  'i2p',
  'regtest',
  'yes',
  'off',
  '@',
  ':8333',
  '.onion',
  '.b32.i2p',
  '4294967296',
  '--',
  ',',
].map(tok);

let configDir: string | undefined;

const config: FuzzTarget = {
  name: 'config',
  about:
    'the config file through loadConfig({args: [--conf FILE]}) (file written to a temp dir: size check, ' +
    'read, parseConfigText, every value converted) and line by line, or as flags, or as ONIONPUNCH_* ' +
    'environment (mode byte).',
  maxLen: 4096,
  errors: [ConfigError],
  dict: CONFIG_DICT,
  run(data) {
    const mode = (data[0] ?? 0) % 3;
    const text = data.subarray(1).toString('utf8');
    if (mode === 0) {
      // tmpfs when there is one: a disk-backed temp dir makes every execution a synchronous disk write.
      configDir ??= mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'onionpunch-fuzz-'));
      const file = join(configDir, 'fuzz.conf');
      writeFileSync(file, data.subarray(1));
      parseConfigText(text, file);
      try {
        loadConfig({ args: ['--conf', file] });
      } finally {
        // A file stops at its first bad line; each line alone (as a file line and as a flag) gets further.
        for (const line of text.split('\n').slice(0, 8)) {
          try {
            for (const r of parseConfigText(line, file)) {
              if (r.key !== 'conf') loadConfig({ args: [`--${r.key}=${r.value}`] });
            }
          } catch (e) {
            if (!(e instanceof ConfigError)) throw e;
          }
        }
      }
    } else if (mode === 1) {
      // Never let a fuzzed --conf read some other file of this machine.
      const args = text.split(/[\s]+/).filter((a) => a !== '' && !/^--conf/i.test(a));
      loadConfig({ args });
    } else {
      const env: Record<string, string> = {};
      for (const line of text.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) env[`ONIONPUNCH_${line.slice(0, eq).toUpperCase()}`] = line.slice(eq + 1);
      }
      loadConfig({ env });
    }
  },
  close() {
    if (configDir) rmSync(configDir, { recursive: true, force: true });
    configDir = undefined;
  },
};

/** Every target, in the order `npm run fuzz` runs them. */
export const TARGETS: readonly FuzzTarget[] = [
  wireStream,
  wireMessages,
  coordCodec,
  torReply,
  samReply,
  socks5,
  config,
];
