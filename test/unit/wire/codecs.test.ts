import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CODECS,
  FrameParser,
  MAX_OP_PAYLOAD,
  NODE_HOLEPUNCH,
  NODE_NETWORK,
  NODE_WITNESS,
  NET_HOLEPUNCH,
  WireError,
  decodeCompactSize,
  decodePayload,
  encodeCompactSize,
  encodeMessage,
  encodePayload,
  encodeRaw,
  payloadToJSON,
  serviceNames,
  tryDecodePayload,
  type AddrV2Entry,
  type KnownCommand,
  type PayloadMap,
  type VersionPayload,
} from '../../../src/wire/index.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
function isWire(code: string, re?: RegExp) {
  return (e: unknown) => e instanceof WireError && e.code === code && (re === undefined || re.test(e.message));
}

const VERSION: VersionPayload = {
  version: 70016,
  services: NODE_NETWORK | NODE_WITNESS,
  timestamp: 1_700_000_000n,
  addrRecv: { services: 0n, address: '198.18.0.7', port: 40123 },
  addrFrom: { services: NODE_NETWORK | NODE_WITNESS, address: '::', port: 0 },
  nonce: 0x0123456789abcdefn,
  userAgent: '/onionpunch:0.1.0/',
  startHeight: 850_000,
  relay: false,
};

test('CompactSize: boundaries encode canonically and decode back; non-canonical forms fail', () => {
  const cases: Array<[bigint, string]> = [
    [0n, '00'],
    [0xfcn, 'fc'],
    [0xfdn, 'fdfd00'],
    [0xffffn, 'fdffff'],
    [0x10000n, 'fe00000100'],
    [0xffffffffn, 'feffffffff'],
    [0x100000000n, 'ff0000000001000000'],
    [0xffffffffffffffffn, 'ffffffffffffffffff'],
  ];
  for (const [v, h] of cases) {
    assert.equal(encodeCompactSize(v).toString('hex'), h);
    assert.deepEqual(decodeCompactSize(hex(h)), { value: v, length: h.length / 2 });
  }
  for (const h of ['fdfc00', 'feffff0000', 'ffffffffff00000000'])
    assert.throws(() => decodeCompactSize(hex(h)), isWire('WIRE_BAD_FIELD', /non-canonical/));
  assert.throws(() => decodeCompactSize(hex('fd01')), isWire('WIRE_TRUNCATED'));
});

test('verack frame is the well-known 24 bytes (empty-payload checksum 5df6e0e2)', () => {
  assert.equal(encodeMessage('main', 'verack', {}).toString('hex'), 'f9beb4d976657261636b000000000000000000005df6e0e2');
  assert.equal(encodeRaw('regtest', 'verack').toString('hex'), 'fabfb5da76657261636b000000000000000000005df6e0e2');
  assert.equal(encodeMessage('testnet3', 'getaddr', {}).subarray(0, 4).toString('hex'), '0b110907');
  assert.equal(encodeMessage('testnet4', 'getaddr', {}).subarray(0, 4).toString('hex'), '1c163f28');
  assert.equal(encodeMessage('signet', 'getaddr', {}).subarray(0, 4).toString('hex'), '0a03cf40');
});

test('addr (v1): decodes a captured mainnet message byte for byte and re-encodes it identically', () => {
  // A real mainnet addr message (two entries), header included.
  const frame = hex(`f9beb4d9 61646472 0000000000000000 3d000000 831b149c
    02 5634ab56 0100000000000000 00000000000000000000ffff3dae7ef8 208d
       5536ab56 0100000000000000 00000000000000000000ffff2d21553a 208d`);
  const r = new FrameParser({ network: 'main' }).push(frame);
  assert.equal(r.error, null);
  assert.equal(r.frames.length, 1);
  const f = r.frames[0]!;
  assert.equal(f.command, 'addr');
  assert.equal(f.length, 61);
  const p = decodePayload('addr', f.payload);
  assert.deepEqual(p.addrs, [
    { time: 1454060630, services: 1n, address: '61.174.126.248', port: 8333 },
    { time: 1454061141, services: 1n, address: '45.33.85.58', port: 8333 },
  ]);
  assert.deepEqual(encodeMessage('main', 'addr', p), frame);
});

test('version: byte layout of every field, round trip, relay optional, trailing bytes ignored', () => {
  const b = encodePayload('version', VERSION);
  const expected = hex(`80110100 0900000000000000 00f1536500000000
    0000000000000000 00000000000000000000ffffc6120007 9cbb
    0900000000000000 00000000000000000000000000000000 0000
    efcdab8967452301 12 2f6f6e696f6e70756e63683a302e312e302f 50f80c00 00`);
  assert.equal(b.toString('hex'), expected.toString('hex'));
  assert.deepEqual(decodePayload('version', b), VERSION);
  // Without the relay byte (pre-BIP37 peers): still valid, relay undefined.
  const noRelay = decodePayload('version', b.subarray(0, b.length - 1));
  assert.equal(noRelay.relay, undefined);
  assert.equal(encodePayload('version', noRelay).length, b.length - 1);
  // Extra bytes after relay are ignored (forward compatibility, as Bitcoin Core).
  assert.deepEqual(decodePayload('version', Buffer.concat([b, hex('ffff')])), VERSION);
  // Truncation at each field names the field.
  const fields: Array<[number, RegExp]> = [
    [3, /version/],
    [10, /services/],
    [19, /timestamp/],
    [25, /addrRecv\.services/],
    [40, /addrRecv\.address/],
    [45, /addrRecv\.port/],
    [60, /addrFrom/],
    [78, /nonce/],
    [85, /userAgent/],
    [b.length - 3, /startHeight/],
  ];
  for (const [n, re] of fields)
    assert.throws(() => decodePayload('version', b.subarray(0, n)), isWire('WIRE_TRUNCATED', re), `cut at ${n}`);
  // Over-long user agent (> 256) fails.
  const long = Buffer.concat([b.subarray(0, 80), encodeCompactSize(257), Buffer.alloc(257, 0x41), hex('00000000')]);
  assert.throws(() => decodePayload('version', long), isWire('WIRE_BAD_FIELD', /userAgent/));
  assert.throws(
    () => encodePayload('version', { ...VERSION, userAgent: 'x'.repeat(257) }),
    isWire('WIRE_BAD_FIELD', /userAgent/),
  );
  assert.throws(
    () => encodePayload('version', { ...VERSION, addrRecv: { ...VERSION.addrRecv, port: 70000 } }),
    isWire('WIRE_BAD_FIELD', /port/),
  );
});

test('empty, ping/pong, sendcmpct, feefilter, getheaders: bytes and round trips', () => {
  for (const c of ['verack', 'sendaddrv2', 'wtxidrelay', 'getaddr', 'sendheaders'] as const) {
    assert.equal(encodePayload(c, {}).length, 0);
    assert.deepEqual(decodePayload(c, Buffer.alloc(0)), {});
  }
  assert.equal(encodePayload('ping', { nonce: 0x0102030405060708n }).toString('hex'), '0807060504030201');
  assert.deepEqual(decodePayload('pong', hex('0807060504030201')), { nonce: 0x0102030405060708n });
  assert.throws(() => decodePayload('ping', hex('0102')), isWire('WIRE_TRUNCATED', /nonce/));
  assert.equal(encodePayload('sendcmpct', { announce: true, version: 2n }).toString('hex'), '010200000000000000');
  assert.deepEqual(decodePayload('sendcmpct', hex('000100000000000000')), { announce: false, version: 1n });
  assert.equal(encodePayload('feefilter', { feerate: 1000n }).toString('hex'), 'e803000000000000');
  assert.deepEqual(decodePayload('feefilter', hex('e803000000000000')), { feerate: 1000n });
  const h1 = Buffer.alloc(32, 1);
  const stop = Buffer.alloc(32, 0);
  const gh = encodePayload('getheaders', { version: 70016, locator: [h1], hashStop: stop });
  assert.equal(gh.toString('hex'), '80110100' + '01' + '01'.repeat(32) + '00'.repeat(32));
  assert.deepEqual(decodePayload('getheaders', gh), { version: 70016, locator: [h1], hashStop: stop });
  const tooMany = Buffer.concat([hex('80110100'), encodeCompactSize(102), Buffer.alloc(103 * 32)]);
  assert.throws(() => decodePayload('getheaders', tooMany), isWire('WIRE_BAD_FIELD', /locator count/));
  assert.throws(() => decodePayload('getheaders', gh.subarray(0, gh.length - 1)), isWire('WIRE_TRUNCATED', /hashStop/));
  const j = payloadToJSON(
    'getheaders',
    decodePayload('getheaders', Buffer.concat([hex('80110100 01'), Buffer.from([...Array(32).keys()]), stop])),
  ) as { locator: string[] };
  assert.equal(j.locator[0]!.slice(0, 4), '1f1e'); // display order is reversed
});

// addrv2 entry = time (00000000) services (CompactSize) net len addr port
function v2entry(netAndAddr: string, port = '208d', services = '01'): string {
  return '00000000' + services + netAndAddr + port;
}

test('addrv2: Bitcoin Core cnetaddr_unserialize_v2 vectors, one entry each', () => {
  const ok: Array<[string, string, string]> = [
    ['01' + '04' + '01020304', 'ipv4', '1.2.3.4'],
    ['02' + '10' + '0102030405060708090a0b0c0d0e0f10', 'ipv6', '102:304:506:708:90a:b0c:d0e:f10'],
    [
      '04' + '20' + '79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f',
      'torv3',
      'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion',
    ],
    [
      '05' + '20' + 'a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87',
      'i2p',
      'ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p',
    ],
    ['06' + '10' + 'fc000001000200030004000500060007', 'cjdns', 'fc00:1:2:3:4:5:6:7'],
    ['07' + '10' + '0200000000000000000000000000abcd', 'yggdrasil', '200::abcd'],
  ];
  for (const [body, network, address] of ok) {
    const p = decodePayload('addrv2', hex('01' + v2entry(body)));
    assert.equal(p.addrs.length, 1);
    assert.equal(p.addrs[0]!.network, network);
    assert.equal(p.addrs[0]!.address, address);
    assert.equal(p.addrs[0]!.port, 8333);
    assert.equal(encodePayload('addrv2', p).toString('hex'), '01' + v2entry(body), `re-encode ${network}`);
  }
  const bad: Array<[string, RegExp]> = [
    ['01' + '05' + '0102030405', /BIP155 IPv4 address with length 5 \(should be 4\)/],
    ['01' + 'fd0102' + '01020304', /Address too long: 513 > 512/],
    ['02' + '04' + '00000000', /BIP155 IPv6 address with length 4 \(should be 16\)/],
    ['04' + '00', /BIP155 TORv3 address with length 0 \(should be 32\)/],
    ['05' + '03' + '000000', /BIP155 I2P address with length 3 \(should be 32\)/],
    ['06' + '01' + '00', /BIP155 CJDNS address with length 1 \(should be 16\)/],
    ['07' + '04' + '00000000', /BIP155 Yggdrasil address with length 4 \(should be 16\)/],
    ['aa' + 'fe00000002' + '01020304050607', /33554432/],
  ];
  for (const [body, re] of bad) {
    // a known id with a wrong length fails the whole message, even with a good entry before it
    const msg = hex('02' + v2entry('01040a000001') + v2entry(body));
    assert.throws(() => decodePayload('addrv2', msg), isWire('WIRE_BAD_FIELD', re), body);
  }
  // IPv4, valid length but address shorter: truncated
  assert.throws(
    () => decodePayload('addrv2', hex('01' + '00000000' + '01' + '01' + '04' + '0102')),
    isWire('WIRE_TRUNCATED'),
  );
});

test('addrv2: TORv2 and unknown ids are skipped-over without failing the message', () => {
  const msg = hex(
    '04' +
      v2entry('03' + '0a' + 'f1f2f3f4f5f6f7f8f9fa') + // TORv2, no longer supported
      v2entry('aa' + '04' + '01020304') + // unknown, reasonable length
      v2entry('aa' + '00') + // unknown, zero length
      v2entry('01' + '04' + '05060708', '0001'),
  );
  const p = decodePayload('addrv2', msg);
  assert.deepEqual(
    p.addrs.map((a) => [a.network, a.networkId, a.address]),
    [
      ['unknown', 3, 'f1f2f3f4f5f6f7f8f9fa'],
      ['unknown', 0xaa, '01020304'],
      ['unknown', 0xaa, ''],
      ['ipv4', 1, '5.6.7.8'],
    ],
  );
  assert.equal(p.addrs[3]!.port, 1);
  assert.deepEqual(encodePayload('addrv2', p), msg);
});

test('addrv2: services as CompactSize, <= 1000 entries, encoder validation', () => {
  const e: AddrV2Entry = {
    time: 1,
    services: NODE_NETWORK | NODE_HOLEPUNCH | (1n << 40n),
    network: 'ipv6',
    networkId: 2,
    address: 'fd00::1',
    port: 8333,
  };
  const b = encodePayload('addrv2', { addrs: [e] });
  assert.equal(b.subarray(5, 14).toString('hex'), 'ff0100000800010000');
  assert.deepEqual(decodePayload('addrv2', b).addrs[0], e);
  const many = { addrs: Array.from({ length: 1001 }, () => e) };
  assert.throws(() => encodePayload('addrv2', many), isWire('WIRE_BAD_FIELD', /1001 entries > 1000/));
  assert.throws(
    () => decodePayload('addrv2', Buffer.concat([encodeCompactSize(1001), Buffer.alloc(10)])),
    isWire('WIRE_BAD_FIELD', /count/),
  );
  assert.throws(() => encodePayload('addrv2', { addrs: [{ ...e, network: 'ipv4', address: 'fd00::1' }] }), WireError);
  assert.throws(() => encodePayload('addrv2', { addrs: [{ ...e, time: -1 }] }), isWire('WIRE_BAD_FIELD', /time/));
  assert.equal(
    decodePayload('addrv2', encodePayload('addrv2', { addrs: Array.from({ length: 1000 }, () => e) })).addrs.length,
    1000,
  );
});

test('addrv2 NET_HOLEPUNCH entry: 40/52 bytes, round trip, inner lengths validated', () => {
  const onion = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion';
  const i2p = 'ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p';
  const e4: AddrV2Entry = {
    time: 1700000000,
    services: NODE_HOLEPUNCH,
    network: 'holepunch',
    networkId: NET_HOLEPUNCH,
    address: onion,
    port: 8333,
    clearnet: { address: '198.18.0.1', port: 40000 },
  };
  const e6: AddrV2Entry = { ...e4, address: i2p, clearnet: { address: 'fd00::7', port: 1 } };
  const b = encodePayload('addrv2', { addrs: [e4, e6] });
  const addrBytes4 =
    '04' + '79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f' + '01' + 'c6120001' + '9c40';
  assert.ok(b.toString('hex').includes('f1' + '28' + addrBytes4), 'byte layout of the IPv4 form');
  assert.deepEqual(decodePayload('addrv2', b).addrs, [e4, e6]);
  const one = (addr: string) => hex('01' + v2entry('f1' + (addr.length / 2).toString(16).padStart(2, '0') + addr));
  assert.equal(decodePayload('addrv2', one(addrBytes4)).addrs[0]!.clearnet!.port, 40000);
  const bads: Array<[string, RegExp]> = [
    [addrBytes4.slice(0, -2), /length 39/], // 39 bytes
    ['06' + addrBytes4.slice(2), /inner_net/],
    [addrBytes4.slice(0, 66) + '03' + addrBytes4.slice(68), /clear_net/],
    [addrBytes4.slice(0, 66) + '02' + addrBytes4.slice(68), /does not match clear_net/],
  ];
  for (const [a, re] of bads) assert.throws(() => decodePayload('addrv2', one(a)), isWire('WIRE_BAD_FIELD', re), a);
});

test('op* coordination messages: byte tables, round trips, every rejection', () => {
  const sid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const ep: PayloadMap['opendpoint'] = {
    sessionId: sid,
    flags: 3,
    endpoints: [
      { address: '198.18.0.5', port: 40001 },
      { address: 'fd00::9', port: 2 },
    ],
  };
  const epb = encodePayload('opendpoint', ep);
  assert.equal(
    epb.toString('hex'),
    '00112233445566778899aabbccddeeff' + '03' + '02' + '01c61200059c41' + '02fd000000000000000000000000000009' + '0002',
  );
  assert.deepEqual(decodePayload('opendpoint', epb), ep);
  assert.throws(
    () => decodePayload('opendpoint', Buffer.concat([epb, hex('00')])),
    isWire('WIRE_BAD_FIELD', /trailing/),
  );
  assert.throws(
    () => decodePayload('opendpoint', Buffer.concat([sid, hex('40 01 01c61200059c41')])),
    isWire('WIRE_BAD_FIELD', /flags/),
  );
  assert.throws(() => encodePayload('opendpoint', { ...ep, flags: 0x80 }), isWire('WIRE_BAD_FIELD', /flags/));
  // bit2: zero-round-trip coordination; bits 3-5: A's fire margin in 8 ms units (docs/PROTOCOL.md)
  assert.equal(decodePayload('opendpoint', Buffer.concat([sid, hex('04 01 01c61200059c41')])).flags, 4);
  assert.equal(decodePayload('opendpoint', Buffer.concat([sid, hex('38 01 01c61200059c41')])).flags, 0x38);
  assert.throws(
    () => decodePayload('opendpoint', Buffer.concat([sid, hex('00 00')])),
    isWire('WIRE_BAD_FIELD', /count/),
  );
  assert.throws(
    () => decodePayload('opendpoint', Buffer.concat([sid, hex('00 09')])),
    isWire('WIRE_BAD_FIELD', /count/),
  );
  assert.throws(
    () => decodePayload('opendpoint', Buffer.concat([sid, hex('00 01 03c61200059c41')])),
    isWire('WIRE_BAD_FIELD', /endpoint 0 net/),
  );
  assert.throws(
    () => decodePayload('opendpoint', Buffer.concat([sid, hex('00 01 01c612')])),
    isWire('WIRE_TRUNCATED', /endpoint 0 addr/),
  );
  assert.throws(() => decodePayload('opendpoint', Buffer.alloc(1025)), isWire('WIRE_OVERSIZE'));
  assert.throws(() => encodePayload('opendpoint', { ...ep, endpoints: [] }), isWire('WIRE_BAD_FIELD', /count/));
  assert.throws(
    () => encodePayload('opendpoint', { ...ep, sessionId: Buffer.alloc(3) }),
    isWire('WIRE_BAD_FIELD', /sessionId/),
  );

  const fire: PayloadMap['opfire'] = { sessionId: sid, delayUs: 250000, schedule: 1, deadlineMs: 5000 };
  const fb = encodePayload('opfire', fire);
  assert.equal(fb.toString('hex'), sid.toString('hex') + '90d00300' + '01' + '88130000');
  assert.deepEqual(decodePayload('opfire', fb), fire);
  assert.throws(
    () => decodePayload('opfire', Buffer.concat([fb.subarray(0, 20), hex('02'), fb.subarray(21)])),
    isWire('WIRE_BAD_FIELD', /schedule/),
  );
  assert.throws(() => decodePayload('opfire', fb.subarray(0, 24)), isWire('WIRE_TRUNCATED', /deadlineMs/));

  const res: PayloadMap['opresult'] = {
    sessionId: sid,
    status: 'verify-failed',
    elapsedMs: 1234,
    reason: 'peer address mismatch',
  };
  const rb = encodePayload('opresult', res);
  assert.equal(rb.subarray(16, 22).toString('hex'), '03d2040000' + '15');
  assert.deepEqual(decodePayload('opresult', rb), res);
  assert.throws(
    () => decodePayload('opresult', Buffer.concat([sid, hex('06 00000000 00')])),
    isWire('WIRE_BAD_FIELD', /status/),
  );
  assert.throws(
    () => decodePayload('opresult', Buffer.concat([sid, hex('00 00000000 fd0101'), Buffer.alloc(257)])),
    isWire('WIRE_BAD_FIELD', /reason/),
  );
  assert.throws(
    () => encodePayload('opresult', { ...res, reason: 'x'.repeat(257) }),
    isWire('WIRE_BAD_FIELD', /reason/),
  );

  const rej: PayloadMap['opreject'] = { code: 'rate-limited', reason: 'try later' };
  assert.equal(encodePayload('opreject', rej).toString('hex'), '01' + '09' + Buffer.from('try later').toString('hex'));
  assert.deepEqual(decodePayload('opreject', encodePayload('opreject', rej)), rej);
  assert.throws(() => decodePayload('opreject', hex('0000')), isWire('WIRE_BAD_FIELD', /code/));
  assert.throws(() => decodePayload('opreject', hex('0a02')), isWire('WIRE_BAD_FIELD', /code/));
  // The spray refusals (answers to opspray only): 7 spray-off, 8 spray-rate-limited.
  for (const [code, byte] of [
    ['spray-off', '07'],
    ['spray-rate-limited', '08'],
  ] as const) {
    const v: PayloadMap['opreject'] = { code, reason: 'r' };
    assert.equal(encodePayload('opreject', v).toString('hex'), byte + '01' + '72');
    assert.deepEqual(decodePayload('opreject', hex(byte + '0172')), v);
  }
  assert.equal(decodePayload('opreject', hex('0900')).code, 'no-warm-port');
  assert.throws(() => decodePayload('opreject', hex('0103aa')), isWire('WIRE_TRUNCATED', /reason/));

  // oppad: `length` zero bytes, any content read back as its length, 1..MAX_OP_PAYLOAD.
  assert.equal(encodePayload('oppad', { length: 3 }).toString('hex'), '000000');
  assert.deepEqual(decodePayload('oppad', hex('ab cd')), { length: 2 });
  assert.deepEqual(decodePayload('oppad', Buffer.alloc(MAX_OP_PAYLOAD)), { length: MAX_OP_PAYLOAD });
  assert.throws(() => decodePayload('oppad', Buffer.alloc(0)), isWire('WIRE_BAD_FIELD'));
  assert.throws(() => decodePayload('oppad', Buffer.alloc(MAX_OP_PAYLOAD + 1)), isWire('WIRE_OVERSIZE'));
  for (const length of [0, -1, 1.5, MAX_OP_PAYLOAD + 1])
    assert.throws(() => encodePayload('oppad', { length }), isWire('WIRE_BAD_FIELD'));
});

test('every codec round-trips through a framed message and tryDecodePayload never throws', () => {
  for (const cmd of Object.keys(CODECS) as KnownCommand[]) {
    const r = tryDecodePayload(cmd, Buffer.from([0xff, 0xff, 0xff]));
    assert.ok(r.ok || r.error instanceof WireError, cmd);
  }
  const f = encodeMessage('regtest', 'version', VERSION);
  const parsed = new FrameParser({ network: 'regtest' }).push(f).frames[0]!;
  assert.deepEqual(decodePayload('version', parsed.payload), VERSION);
});

test('service names', () => {
  assert.deepEqual(
    serviceNames(NODE_NETWORK | NODE_WITNESS | (1n << 10n) | (1n << 11n) | NODE_HOLEPUNCH | (1n << 30n)),
    ['NETWORK', 'WITNESS', 'NETWORK_LIMITED', 'P2P_V2', 'HOLEPUNCH', 'BIT30'],
  );
});

test('remaining rejection paths of decoders and encoders', () => {
  // CompactSize forms used as counts: 0xff (8-byte) counts are always too big; 0xfe beyond MAX_SIZE too.
  assert.throws(() => decodePayload('addr', hex('ff0000000001000000')), isWire('WIRE_BAD_FIELD', /count/));
  assert.throws(() => decodePayload('addr', hex('fe01000002')), isWire('WIRE_BAD_FIELD', /count: 33554433 > 33554432/));
  assert.throws(() => decodePayload('addr', hex('02' + '00'.repeat(30))), isWire('WIRE_TRUNCATED', /2 entries/));
  assert.throws(() => decodePayload('addr', Buffer.alloc(0)), isWire('WIRE_TRUNCATED', /count/));
  assert.throws(() => decodePayload('sendcmpct', hex('01')), isWire('WIRE_TRUNCATED', /version/));
  assert.throws(() => decodePayload('feefilter', hex('01')), isWire('WIRE_TRUNCATED', /feerate/));
  assert.throws(
    () => decodePayload('addrv2', hex('01' + '00000000' + '01' + '01' + '04' + '01020304' + '20')),
    isWire('WIRE_TRUNCATED', /entry 0 port/),
  );
  assert.throws(
    () => decodePayload('addrv2', hex('01' + '00000000' + 'fd0100')),
    isWire('WIRE_BAD_FIELD', /entry 0 services: non-canonical/),
  );
  assert.throws(
    () => decodePayload('version', Buffer.concat([encodePayload('version', VERSION).subarray(0, 80), hex('fd0101')])),
    isWire('WIRE_BAD_FIELD', /userAgent: length 257 > 256/),
  );
  assert.throws(
    () => encodePayload('getheaders', { version: 1, locator: [Buffer.alloc(31)], hashStop: Buffer.alloc(32) }),
    isWire('WIRE_BAD_FIELD', /hash/),
  );
  assert.throws(
    () =>
      encodePayload('getheaders', {
        version: 1,
        locator: Array.from({ length: 102 }, () => Buffer.alloc(32)),
        hashStop: Buffer.alloc(32),
      }),
    isWire('WIRE_BAD_FIELD', /locator/),
  );
  const sid = Buffer.alloc(16);
  assert.throws(
    () => encodePayload('opfire', { sessionId: sid, delayUs: 1, schedule: 2, deadlineMs: 1 }),
    isWire('WIRE_BAD_FIELD', /schedule/),
  );
  assert.throws(
    () => encodePayload('opfire', { sessionId: sid, delayUs: -1, schedule: 0, deadlineMs: 1 }),
    isWire('WIRE_BAD_FIELD', /delayUs/),
  );
  assert.throws(
    () => encodePayload('opfire', { sessionId: sid, delayUs: 1, schedule: 0, deadlineMs: 2 ** 32 }),
    isWire('WIRE_BAD_FIELD', /deadlineMs/),
  );
  assert.throws(
    () => encodePayload('opresult', { sessionId: sid, status: 'nope' as never, elapsedMs: 1, reason: '' }),
    isWire('WIRE_BAD_FIELD', /status/),
  );
  assert.throws(
    () => encodePayload('opreject', { code: 'nope' as never, reason: '' }),
    isWire('WIRE_BAD_FIELD', /code/),
  );
  assert.throws(
    () => encodePayload('opendpoint', { sessionId: sid, flags: 0x40, endpoints: [{ address: '1.2.3.4', port: 1 }] }),
    isWire('WIRE_BAD_FIELD', /flags/),
  );
  assert.throws(
    () => encodePayload('opendpoint', { sessionId: sid, flags: 0, endpoints: [{ address: 'x.onion', port: 1 }] }),
    isWire('WIRE_BAD_ADDRESS'),
  );
  assert.throws(
    () =>
      encodePayload('opendpoint', {
        sessionId: sid,
        flags: 0,
        endpoints: Array.from({ length: 9 }, () => ({ address: '1.2.3.4', port: 1 })),
      }),
    isWire('WIRE_BAD_FIELD', /count/),
  );
  const base: AddrV2Entry = {
    time: 1,
    services: 0n,
    network: 'holepunch',
    networkId: NET_HOLEPUNCH,
    address: 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion',
    port: 1,
  };
  assert.throws(() => encodePayload('addrv2', { addrs: [base] }), isWire('WIRE_BAD_FIELD', /clearnet/));
  assert.throws(
    () => encodePayload('addrv2', { addrs: [{ ...base, clearnet: { address: 'example.com', port: 1 } }] }),
    isWire('WIRE_BAD_ADDRESS'),
  );
  assert.throws(
    () => encodePayload('addrv2', { addrs: [{ ...base, network: 'unknown', networkId: 300, address: '' }] }),
    isWire('WIRE_BAD_FIELD', /networkId/),
  );
  assert.throws(
    () => encodePayload('addrv2', { addrs: [{ ...base, network: 'unknown', networkId: 0xaa, address: 'zz' }] }),
    isWire('WIRE_BAD_ADDRESS'),
  );
  assert.throws(
    () =>
      encodePayload('addrv2', { addrs: [{ ...base, network: 'unknown', networkId: 0xaa, address: '00'.repeat(513) }] }),
    isWire('WIRE_BAD_FIELD', /513 > 512/),
  );
  assert.throws(() => encodeRaw('main', 'thirteen-char'), isWire('WIRE_BAD_COMMAND'));
  assert.throws(() => encodeRaw('main', ''), isWire('WIRE_BAD_COMMAND'));
  assert.throws(() => encodeRaw('main', 'caf\u00e9'), isWire('WIRE_BAD_COMMAND'));
  assert.throws(() => encodeRaw('nonet' as never, 'x'), isWire('WIRE_BAD_MAGIC'));
});
