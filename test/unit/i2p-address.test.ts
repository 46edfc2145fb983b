import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { base32Encode } from '../../src/wire/address.js';
import {
  b32Address,
  destinationLength,
  i2pBase64Decode,
  i2pBase64Encode,
  isB32Address,
  publicDestination,
} from '../../src/overlay/i2p/address.js';
import { SamError } from '../../src/overlay/i2p/errors.js';
import { parseSamReply } from '../../src/overlay/i2p/reply.js';

/** A destination with a key certificate (type 5) of `certPayload` bytes, like an EdDSA one (4 bytes). */
function fakeDestination(certPayload = 4): Buffer {
  const cert = Buffer.alloc(3 + certPayload);
  cert[0] = 5;
  cert.writeUInt16BE(certPayload, 1);
  if (certPayload >= 4) cert.writeUInt16BE(7, 3); // signing type 7
  return Buffer.concat([randomBytes(384), cert]);
}

test('base32 matches the RFC 4648 vectors (lower case, no padding)', () => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'my'],
    ['fo', 'mzxq'],
    ['foo', 'mzxw6'],
    ['foob', 'mzxw6yq'],
    ['fooba', 'mzxw6ytb'],
    ['foobar', 'mzxw6ytboi'],
  ];
  for (const [plain, enc] of vectors) assert.equal(base32Encode(Buffer.from(plain)), enc);
});

test('I2P base64 uses -~ instead of +/ and round-trips', () => {
  const bytes = Buffer.from([0xfb, 0xff, 0xbf, 0xfe]);
  const text = i2pBase64Encode(bytes);
  assert.equal(Buffer.from(bytes).toString('base64'), '+/+//g==');
  assert.equal(text, '-~-~~g==');
  assert.deepEqual(i2pBase64Decode(text), bytes);
  assert.throws(
    () => i2pBase64Decode('ab+/'),
    (e: unknown) => e instanceof SamError && e.code === 'SAM_BAD_DESTINATION',
  );
  assert.throws(() => i2pBase64Decode(''), SamError);
});

test('destination length follows the certificate length; b32 hashes exactly the destination', () => {
  const dest = fakeDestination(4);
  assert.equal(destinationLength(dest), 391);
  const priv = Buffer.concat([dest, randomBytes(256 + 32)]);
  const want = base32Encode(createHash('sha256').update(dest).digest()) + '.b32.i2p';
  assert.equal(b32Address(i2pBase64Encode(dest)), want);
  assert.equal(b32Address(i2pBase64Encode(priv)), want, "a private key gives its destination's b32");
  assert.equal(publicDestination(i2pBase64Encode(priv)), i2pBase64Encode(dest));
  assert.ok(isB32Address(want));
  assert.equal(want.length, 52 + 8);
  // A NULL certificate (old DSA destinations): 387 bytes.
  assert.equal(destinationLength(fakeDestination(0)), 387);
  // A longer certificate moves the end.
  assert.equal(destinationLength(Buffer.concat([fakeDestination(12)])), 399);
});

test('truncated destinations are typed errors', () => {
  const dest = fakeDestination(4);
  for (const n of [0, 10, 386, 390]) {
    assert.throws(
      () => destinationLength(dest.subarray(0, n)),
      (e: unknown) => e instanceof SamError && e.code === 'SAM_BAD_DESTINATION',
    );
  }
});

test('isB32Address accepts only 52 base32 characters + .b32.i2p', () => {
  assert.ok(isB32Address('a'.repeat(52) + '.b32.i2p'));
  assert.ok(!isB32Address('a'.repeat(51) + '.b32.i2p'));
  assert.ok(!isB32Address('1'.repeat(52) + '.b32.i2p'));
  assert.ok(!isB32Address('a'.repeat(56) + '.onion'));
});

test('SAM reply lines parse with quoted values; malformed lines are SAM_PROTOCOL', () => {
  const r = parseSamReply('SESSION STATUS RESULT=I2P_ERROR MESSAGE="tunnel \\"x\\" failed" X');
  assert.equal(r.topic, 'SESSION');
  assert.equal(r.sub, 'STATUS');
  assert.equal(r.fields.get('RESULT'), 'I2P_ERROR');
  assert.equal(r.fields.get('MESSAGE'), 'tunnel "x" failed');
  assert.equal(r.fields.get('X'), '');
  for (const bad of ['', 'HELLO', 'hello reply', 'HELLO REPLY MESSAGE="open', 'HELLO REPLY =x']) {
    assert.throws(
      () => parseSamReply(bad),
      (e: unknown) => e instanceof SamError && e.code === 'SAM_PROTOCOL',
      bad,
    );
  }
});
