import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WireError,
  base32Decode,
  base32Encode,
  formatB32,
  formatIPv6,
  formatOnion,
  parseB32,
  parseEndpoint,
  parseIPv6,
  parseOnion,
  parseAddrV1,
  formatAddrV1,
  unmapIPv4,
} from '../../../src/wire/index.js';

// Bitcoin Core src/test/net_tests.cpp (cnetaddr_unserialize_v2) vectors.
const TORV3_KEY = '79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f';
const TORV3_TEXT = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion';
const I2P_HASH = 'a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87';
const I2P_TEXT = 'ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p';

test('Tor v3: format and parse with the SHA3-256 checksum (Bitcoin Core vector)', () => {
  assert.equal(formatOnion(Buffer.from(TORV3_KEY, 'hex')), TORV3_TEXT);
  assert.equal(parseOnion(TORV3_TEXT).toString('hex'), TORV3_KEY);
  assert.equal(parseOnion(TORV3_TEXT.toUpperCase().replace('.ONION', '.onion')).toString('hex'), TORV3_KEY);
  // flip one character: checksum must catch it
  const bad = (TORV3_TEXT[0] === 'a' ? 'b' : 'a') + TORV3_TEXT.slice(1);
  assert.throws(
    () => parseOnion(bad),
    (e: unknown) => e instanceof WireError && e.code === 'WIRE_BAD_ADDRESS' && /checksum/.test(e.message),
  );
  assert.throws(() => parseOnion('abc.onion'), /not a Tor v3/);
  assert.throws(() => formatOnion(Buffer.alloc(31)), WireError);
});

test('I2P: b32 is base32 of the 32 address bytes (Bitcoin Core vector)', () => {
  assert.equal(formatB32(Buffer.from(I2P_HASH, 'hex')), I2P_TEXT);
  assert.equal(parseB32(I2P_TEXT).toString('hex'), I2P_HASH);
  assert.throws(() => parseB32('ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkd.b32.i2p'), WireError);
  assert.throws(() => parseB32('0keu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p'), WireError);
});

test('base32 round trips every length 0..40 and rejects bad characters and pad bits', () => {
  for (let n = 0; n <= 40; n++) {
    const b = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
    assert.deepEqual(base32Decode(base32Encode(b)), b);
  }
  assert.equal(base32Encode(Buffer.from('foobar')), 'mzxw6ytboi'); // RFC 4648 test vector, lower case
  assert.equal(base32Decode('mzxw6ytbo!'), undefined);
  assert.equal(base32Decode('mzxw6ytboj'), undefined); // non-zero pad bits
});

test('IPv6 text: RFC 5952 formatting and parsing', () => {
  assert.equal(formatIPv6(Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex')), '102:304:506:708:90a:b0c:d0e:f10');
  const cases: Array<[string, string]> = [
    ['::1', '::1'],
    ['::', '::'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['fe80::1:2.3.4.5', 'fe80::1:203:405'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
  ];
  for (const [input, out] of cases) assert.equal(formatIPv6(parseIPv6(input)!), out, input);
  for (const badIp of ['1:2', ':::', '1::2::3', 'g::1', '1.2.3.4', 'fe80::1%eth0', '12345::'])
    assert.equal(parseIPv6(badIp), undefined, badIp);
});

test('v1 addresses: IPv4 is carried IPv4-mapped and printed as dotted quad', () => {
  assert.equal(parseAddrV1('1.2.3.4').toString('hex'), '00000000000000000000ffff01020304');
  assert.equal(formatAddrV1(parseAddrV1('1.2.3.4')), '1.2.3.4');
  assert.equal(formatAddrV1(parseAddrV1('::ffff:10.0.0.1')), '10.0.0.1');
  assert.equal(formatAddrV1(parseAddrV1('fd00::5')), 'fd00::5');
  assert.throws(() => parseAddrV1('example.com'), WireError);
  assert.equal(unmapIPv4('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(unmapIPv4('::1'), '::1');
});

test('parseEndpoint: IPv4, bracketed IPv6, onion, b32, names, and rejections', () => {
  assert.deepEqual(parseEndpoint('1.2.3.4:8333'), { host: '1.2.3.4', port: 8333, kind: 'ipv4' });
  assert.deepEqual(parseEndpoint('[::1]:18444'), { host: '::1', port: 18444, kind: 'ipv6' });
  assert.deepEqual(parseEndpoint(`${TORV3_TEXT}:8333`), { host: TORV3_TEXT, port: 8333, kind: 'torv3' });
  assert.deepEqual(parseEndpoint(`${I2P_TEXT}:0`), { host: I2P_TEXT, port: 0, kind: 'i2p' });
  assert.deepEqual(parseEndpoint('localhost:1'), { host: 'localhost', port: 1, kind: 'name' });
  assert.deepEqual(parseEndpoint('[fd00::1]', 8333), { host: 'fd00::1', port: 8333, kind: 'ipv6' });
  for (const s of [
    '1.2.3.4',
    '1.2.3.4:65536',
    '::1:8333',
    '[::1',
    '[::1]x',
    '[zz::1]:1',
    'a b:1',
    '1.2.3.4:-1',
    'x.onion:1',
    ':5',
  ])
    assert.throws(() => parseEndpoint(s), WireError, s);
});

test('writeIPv4: strict dotted quad without allocation', async () => {
  const { writeIPv4 } = await import('../../../src/wire/index.js');
  const b = Buffer.alloc(6);
  assert.equal(writeIPv4('10.0.255.1', b, 1), true);
  assert.equal(b.toString('hex'), '000a00ff0100');
  for (const s of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', '1.2.3.4 ', 'a.b.c.d', '1.2.3.1000'])
    assert.equal(writeIPv4(s, b, 0), false, s);
});

test('formatIPv6 agrees with the WHATWG URL serializer and round-trips (5,000 random addresses)', async () => {
  const fc = (await import('fast-check')).default;
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
        minLength: 8,
        maxLength: 8,
      }),
      (groups) => {
        const b = Buffer.alloc(16);
        groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
        const text = formatIPv6(b);
        assert.deepEqual(parseIPv6(text), b);
        const ref = new URL(`http://[${text}]/`).hostname.slice(1, -1);
        if (!/\./.test(ref)) assert.equal(text, ref);
      },
    ),
    { numRuns: 5000 },
  );
});
