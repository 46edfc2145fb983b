/** The test vectors printed in docs/PROTOCOL.md: encode to exactly these bytes and decode back. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  FrameParser,
  NET_HOLEPUNCH,
  NODE_HOLEPUNCH,
  NODE_NETWORK,
  NODE_WITNESS,
  decodeHolepunchAddr,
  decodePayload,
  encodeHolepunchAddr,
  encodeMessage,
  type KnownCommand,
} from '../../../src/wire/index.js';

const onion = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion';
const i2p = 'ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p';
const sid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

/** Vector n (1-based) from docs/PROTOCOL.md's "Test vectors" list. */
function docVector(n: number): string {
  const doc = readFileSync('docs/PROTOCOL.md', 'utf8');
  const section = doc.slice(doc.indexOf('## Test vectors'));
  const m = new RegExp(`\\n${n}\\. [^\\n]*\\n\\s+\`([0-9a-f]+)\``).exec(section);
  assert.ok(m, `vector ${n} in docs/PROTOCOL.md`);
  return m[1]!;
}

function roundTrip<C extends KnownCommand>(frameHex: string, cmd: C) {
  const r = new FrameParser({ network: 'main' }).push(Buffer.from(frameHex, 'hex'));
  assert.equal(r.error, null);
  assert.equal(r.frames[0]!.command, cmd);
  return decodePayload(cmd, r.frames[0]!.payload);
}

test('docs/PROTOCOL.md vectors 1-2: NET_HOLEPUNCH address bytes', () => {
  const v1 = encodeHolepunchAddr(onion, { address: '198.51.100.7', port: 40001 });
  assert.equal(v1.toString('hex'), docVector(1));
  assert.equal(v1.length, 40);
  assert.deepEqual(decodeHolepunchAddr(v1), { address: onion, clearnet: { address: '198.51.100.7', port: 40001 } });
  const v2 = encodeHolepunchAddr(i2p, { address: '2001:db8::7', port: 8333 });
  assert.equal(v2.toString('hex'), docVector(2));
  assert.equal(v2.length, 52);
  assert.deepEqual(decodeHolepunchAddr(v2), { address: i2p, clearnet: { address: '2001:db8::7', port: 8333 } });
});

test('docs/PROTOCOL.md vectors 3-8: frames', () => {
  const entry = {
    time: 1732500000,
    services: NODE_NETWORK | NODE_WITNESS | NODE_HOLEPUNCH,
    network: 'holepunch' as const,
    networkId: NET_HOLEPUNCH,
    address: onion,
    port: 8333,
    clearnet: { address: '198.51.100.7', port: 40001 },
  };
  assert.equal(encodeMessage('main', 'addrv2', { addrs: [entry] }).toString('hex'), docVector(3));
  assert.deepEqual(roundTrip(docVector(3), 'addrv2').addrs, [entry]);
  const ep = {
    sessionId: sid,
    flags: 1,
    endpoints: [
      { address: '198.51.100.7', port: 40001 },
      { address: '2001:db8::7', port: 40001 },
    ],
  };
  assert.equal(encodeMessage('main', 'opendpoint', ep).toString('hex'), docVector(4));
  assert.deepEqual(roundTrip(docVector(4), 'opendpoint'), ep);
  const fire = { sessionId: sid, delayUs: 150000, schedule: 0, deadlineMs: 3000 };
  assert.equal(encodeMessage('main', 'opfire', fire).toString('hex'), docVector(5));
  assert.deepEqual(roundTrip(docVector(5), 'opfire'), fire);
  const res = { sessionId: sid, status: 'connected' as const, elapsedMs: 212, reason: '' };
  assert.equal(encodeMessage('main', 'opresult', res).toString('hex'), docVector(6));
  assert.deepEqual(roundTrip(docVector(6), 'opresult'), res);
  const rej = { code: 'busy' as const, reason: 'too many sessions' };
  assert.equal(encodeMessage('main', 'opreject', rej).toString('hex'), docVector(7));
  assert.deepEqual(roundTrip(docVector(7), 'opreject'), rej);
  const ver = {
    version: 70016,
    services: 0n,
    timestamp: 1732500000n,
    addrRecv: { services: 0n, address: '::', port: 0 },
    addrFrom: { services: 0n, address: '::', port: 0 },
    nonce: 0x0102030405060708n,
    userAgent: '/onionpunch:0.1.0/',
    startHeight: 0,
    relay: false,
  };
  assert.equal(encodeMessage('main', 'version', ver).toString('hex'), docVector(8));
  assert.deepEqual(roundTrip(docVector(8), 'version'), ver);
});
