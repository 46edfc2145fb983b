#!/usr/bin/env node
/**
 * Writes the seed corpus (test/fuzz/corpus/<target>/seed-*): small valid inputs built with the project's own
 * encoders, so the fuzzer starts from messages that get deep into each parser. Run once after a protocol
 * change (`node dist/test/fuzz/seeds.js`) and commit the files; regression inputs (`regress-*`) are written
 * by hand and never overwritten.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  encodeMessage,
  encodePayload,
  formatOnion,
  CODECS,
  type KnownCommand,
  type PayloadMap,
} from '../../src/wire/index.js';
import { wireCodec } from '../../src/punch/wire-codec.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const dir = (t: string): string => {
  const d = join(root, 'test', 'fuzz', 'corpus', t);
  mkdirSync(d, { recursive: true });
  return d;
};
const put = (t: string, name: string, b: Buffer): void => writeFileSync(join(dir(t), `seed-${name}`), b);
const COMMANDS = Object.keys(CODECS) as KnownCommand[];

const sid = Buffer.alloc(16, 0xab);
const onion = formatOnion(Buffer.alloc(32, 7));
const b32 = `${'a'.repeat(52)}.b32.i2p`;
const values: { [K in KnownCommand]?: PayloadMap[K] } = {
  version: {
    version: 70016,
    services: 1033n,
    timestamp: 1_700_000_000n,
    addrRecv: { services: 0n, address: '203.0.113.5', port: 8333 },
    addrFrom: { services: 0n, address: '::', port: 0 },
    nonce: 0x0123456789abcdefn,
    userAgent: '/Satoshi:27.0.0/',
    startHeight: 850_000,
    relay: true,
  },
  verack: {},
  ping: { nonce: 42n },
  pong: { nonce: 42n },
  addr: {
    addrs: [
      { time: 1_700_000_000, services: 1n, address: '198.51.100.1', port: 8333 },
      { time: 1, services: 0n, address: '2001:db8::1', port: 18444 },
    ],
  },
  addrv2: {
    addrs: [
      { time: 1_700_000_000, services: 1n, network: 'ipv4', networkId: 1, address: '198.51.100.1', port: 8333 },
      { time: 1_700_000_000, services: 1n, network: 'torv3', networkId: 4, address: onion, port: 8333 },
      { time: 1_700_000_000, services: 0n, network: 'i2p', networkId: 5, address: b32, port: 0 },
      {
        time: 1_700_000_000,
        services: 1n,
        network: 'holepunch',
        networkId: 0x20,
        address: onion,
        port: 8333,
        clearnet: { address: '192.0.2.10', port: 8333 },
      },
      {
        time: 1_700_000_000,
        services: 1n,
        network: 'holepunch',
        networkId: 0x20,
        address: b32,
        port: 0,
        clearnet: { address: '2001:db8::7', port: 8333 },
      },
      { time: 1_700_000_000, services: 0n, network: 'ipv6', networkId: 2, address: '2001:db8::2', port: 18444 },
    ],
  } as PayloadMap['addrv2'],
  sendcmpct: { announce: true, version: 2n } as unknown as PayloadMap['sendcmpct'],
  feefilter: { feerate: 1000n } as unknown as PayloadMap['feefilter'],
  getheaders: { version: 70016, locator: [Buffer.alloc(32, 1), Buffer.alloc(32, 2)], hashStop: Buffer.alloc(32) },
  opendpoint: {
    sessionId: sid,
    flags: 3,
    endpoints: [
      { address: '198.51.100.20', port: 8333 },
      { address: '198.51.100.20', port: 8334 },
    ],
  },
  opfire: { sessionId: sid, delayUs: 250_000, schedule: 1, deadlineMs: 5000 },
  opresult: { sessionId: sid, status: 'connected', elapsedMs: 812, reason: '' },
  opreject: { code: 'busy', reason: 'too many sessions' },
  opstall: { sessionId: sid, state: 1 },
  opspray: { sessionId: sid, hard: 'B', probeLow: 1024, probeHigh: 65535, sockets: 512, probes: 256, spreadUs: 20_000 },
  oppad: { length: 16 },
};

const payloads: Array<[KnownCommand, Buffer]> = [];
for (const c of COMMANDS) {
  const v = values[c] ?? ({} as PayloadMap[typeof c]);
  try {
    payloads.push([c, encodePayload(c, v as never)]);
  } catch (e) {
    console.error(`seed: cannot encode ${c}: ${(e as Error).message}`);
  }
}

// wire-messages: mode byte = index of the command.
for (const [c, p] of payloads) put('wire-messages', c, Buffer.concat([Buffer.from([COMMANDS.indexOf(c)]), p]));

// wire-stream: whole frames (several per input), various modes.
const frame = (c: KnownCommand, net: 'main' | 'regtest' = 'main'): Buffer =>
  encodeMessage(net, c, (values[c] ?? {}) as never);
put('wire-stream', 'handshake', Buffer.concat([Buffer.from([1]), frame('version'), frame('verack'), frame('ping')]));
put('wire-stream', 'addrv2', Buffer.concat([Buffer.from([0x19]), frame('addrv2'), frame('addr')]));
put(
  'wire-stream',
  'op',
  Buffer.concat([Buffer.from([0x0c]), frame('opendpoint'), frame('opfire'), frame('opresult'), frame('opreject')]),
);
put(
  'wire-stream',
  'regtest-getheaders',
  Buffer.concat([Buffer.from([0]), frame('getheaders', 'regtest'), frame('sendcmpct', 'regtest')]),
);

// coord-codec: a coordination conversation as the session sees it.
const codec = wireCodec('main');
const coord = (m: Parameters<typeof codec.encode>[0]): Buffer => codec.encode(m);
put(
  'coord-codec',
  'b-side',
  Buffer.concat([
    Buffer.from([0]),
    coord({ cmd: 'version', nonce: 1n, userAgent: '/onionpunch:0.1.0/' }),
    coord({ cmd: 'verack' }),
    coord({ cmd: 'opendpoint', sessionId: sid, flags: 1, endpoints: [{ address: '198.51.100.20', port: 8333 }] }),
  ]),
);
put(
  'coord-codec',
  'a-side',
  Buffer.concat([
    Buffer.from([0x0e]),
    coord({ cmd: 'opfire', sessionId: sid, delayUs: 1000, profile: 'prime', deadlineMs: 3000 }),
    coord({ cmd: 'opresult', sessionId: sid, status: 'timeout', elapsedMs: 3000, reason: 'no SYN' }),
    coord({ cmd: 'ping', nonce: 9n }),
    frame('addrv2'),
  ]),
);
put(
  'coord-codec',
  'reject',
  Buffer.concat([Buffer.from([2]), coord({ cmd: 'opreject', code: 'rate-limited', reason: 'slow down' })]),
);

// tor-reply: control-port replies tor really sends.
const tor = (mode: number, s: string): Buffer => Buffer.concat([Buffer.from([mode]), Buffer.from(s, 'latin1')]);
put(
  'tor-reply',
  'protocolinfo',
  tor(
    0x20,
    '250-PROTOCOLINFO 1\r\n' +
      '250-AUTH METHODS=COOKIE,SAFECOOKIE,HASHEDPASSWORD COOKIEFILE="/var/lib/tor/control_auth_cookie"\r\n' +
      '250-VERSION Tor="0.4.8.10"\r\n250 OK\r\n',
  ),
);
put(
  'tor-reply',
  'authchallenge',
  tor(
    0x40,
    '250 AUTHCHALLENGE SERVERHASH=4A8D0B1C2E3F405162738495A6B7C8D9EAFB0C1D2E3F405162738495A6B7C8D9 ' +
      'SERVERNONCE=0102030405060708091011121314151617181920212223242526272829303132\r\n',
  ),
);
put(
  'tor-reply',
  'add-onion',
  tor(2, `250-ServiceID=${onion.slice(0, 56)}\r\n250-PrivateKey=ED25519-V3:${'QUJD'.repeat(21)}\r\n250 OK\r\n`),
);
put('tor-reply', 'getinfo-data', tor(6, '250+config-text=\r\nSocksPort 9050\r\n..dotted\r\n.\r\n250 OK\r\n'));
put(
  'tor-reply',
  'events',
  tor(
    0x10,
    `650 HS_DESC UPLOADED ${onion.slice(0, 56)} UNKNOWN $AAAA~relay REASON=UPLOAD_REJECTED\r\n` +
      '552 Unrecognized key "x"\r\n515 Authentication failed: "bad \\"cookie\\""\r\n',
  ),
);

// sam-reply: SAM v3.1 replies i2pd sends.
const sam = (mode: number, s: string): Buffer => Buffer.concat([Buffer.from([mode]), Buffer.from(s, 'latin1')]);
const pub = 'A'.repeat(384) + 'BQAEAAcABA==';
put('sam-reply', 'hello', sam(0, 'HELLO REPLY RESULT=OK VERSION=3.1\n'));
put('sam-reply', 'dest', sam(1, `DEST REPLY PUB=${pub} PRIV=${pub}${'B'.repeat(64)}\n`));
put('sam-reply', 'session', sam(2, `SESSION STATUS RESULT=OK DESTINATION=${pub}\r\n`));
put('sam-reply', 'stream-fail', sam(3, 'STREAM STATUS RESULT=CANT_REACH_PEER MESSAGE="Can\'t reach \\"peer\\""\n'));
put(
  'sam-reply',
  'naming',
  sam(4, `NAMING REPLY RESULT=OK NAME=${b32} VALUE=${pub}\nNAMING REPLY RESULT=KEY_NOT_FOUND NAME=x\n`),
);

// socks5: what bitcoind and the socks client send.
const port = [0x20, 0x8d];
const socks = (mode: number, ...parts: number[][]): Buffer => Buffer.from([mode, ...parts.flat()]);
put('socks5', 'ipv4', socks(0xff, [5, 1, 0], [5, 1, 0, 1, 198, 51, 100, 20, ...port]));
put(
  'socks5',
  'ipv6-frag',
  socks(0, [5, 2, 0, 2], [5, 1, 0, 4, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, ...port], [1, 2, 3]),
);
put('socks5', 'domain', socks(8, [5, 1, 0], [5, 1, 0, 3, 11, ...Buffer.from('example.com')], port));
put('socks5', 'onion', socks(4, [5, 1, 0], [5, 1, 0, 3, 62, ...Buffer.from(onion)], port));
put('socks5', 'bind', socks(1, [5, 1, 0], [5, 2, 0, 1, 127, 0, 0, 1, 0, 80]));

// config: a realistic file, the same as flags and as environment.
const conf =
  '# onionpunch\noverlay=tor\nnetwork=regtest\ntorcontrol=127.0.0.1:9051\nlisten=127.0.0.1:9064 # SOCKS\n' +
  `known=${onion}:8333@198.51.100.7:8333\nannounce=[2001:db8::1]:8333\nannounce=192.0.2.1:8333\n` +
  'maxclients=64\nlabranges=no\nresolvenames=0\n';
put('config', 'file', Buffer.concat([Buffer.from([0]), Buffer.from(conf)]));
put(
  'config',
  'flags',
  Buffer.concat([
    Buffer.from([1]),
    Buffer.from('--overlay i2p --i2psam=127.0.0.1:7656 --json --peer 198.51.100.2:8333 --allowloopback'),
  ]),
);
put(
  'config',
  'env',
  Buffer.concat([
    Buffer.from([2]),
    Buffer.from('overlay=tor\nnatcheck=198.51.100.1:8333,203.0.113.9:8333\nloglevel=debug\n'),
  ]),
);
console.log(`seeds written under ${join(root, 'test', 'fuzz', 'corpus')}`);
