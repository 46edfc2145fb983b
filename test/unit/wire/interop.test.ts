/**
 * Interop with a Bitcoin P2P implementation we did not write: `bitcoin-protocol` (npm, pure JS,
 * webcoin project). It decodes our version / addr / ping / verack frames, and we decode its frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Transform } from 'node:stream';
import {
  FrameParser,
  MAGIC,
  decodePayload,
  encodeMessage,
  type Frame,
  type VersionPayload,
  type AddrPayload,
} from '../../../src/wire/index.js';

interface BitcoinProtocol {
  createDecodeStream(opts: { magic: number }): Transform;
  createEncodeStream(opts: { magic: number }): Transform;
}
const bp = createRequire(import.meta.url)('bitcoin-protocol') as BitcoinProtocol;

type Their = { magic: number; command: string; length: number; checksum: Buffer; payload: any };

/** Feeds bytes into their decoder (in small chunks) and collects what it emits. */
async function theirDecode(bytes: Buffer, magic: number): Promise<Their[]> {
  const d = bp.createDecodeStream({ magic });
  const out: Their[] = [];
  d.on('data', (m: Their) => out.push(m));
  const err = new Promise<never>((_, rej) => d.on('error', rej));
  for (let i = 0; i < bytes.length; i += 7) d.write(bytes.subarray(i, i + 7));
  d.end();
  await Promise.race([new Promise((r) => d.on('finish', r)), err]);
  return out;
}

/** Encodes messages with their encoder and returns the concatenated bytes. */
async function theirEncode(msgs: Array<{ command: string; payload: unknown }>, magic: number): Promise<Buffer> {
  const e = bp.createEncodeStream({ magic });
  const chunks: Buffer[] = [];
  e.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
  for (const m of msgs) e.write(m);
  e.end();
  await new Promise((r) => e.on('finish', r));
  return Buffer.concat(chunks);
}

function ourFramesOneByteAtATime(bytes: Buffer): Frame[] {
  const p = new FrameParser({ network: 'main' });
  const frames: Frame[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const r = p.push(bytes.subarray(i, i + 1));
    assert.equal(r.error, null);
    frames.push(...r.frames);
  }
  return frames;
}

const u64 = (b: Buffer) => b.readBigUInt64LE(0);
const le8 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};

const OUR_VERSION: VersionPayload = {
  version: 70016,
  services: (1n << 0n) | (1n << 3n) | (1n << 10n) | (1n << 27n),
  timestamp: 1_732_500_000n,
  addrRecv: { services: 0n, address: '198.18.0.7', port: 40123 },
  addrFrom: { services: 9n, address: 'fd00::1:2', port: 8333 },
  nonce: 0xfedcba9876543210n,
  userAgent: '/onionpunch:0.1.0/',
  startHeight: 123456,
  relay: true,
};

test('bitcoin-protocol decodes our version, verack, ping and addr frames', async () => {
  const addr: AddrPayload = {
    addrs: [
      { time: 1454060630, services: 1n, address: '61.174.126.248', port: 8333 },
      { time: 1700000000, services: 1033n, address: '2001:db8::5', port: 18444 },
    ],
  };
  const bytes = Buffer.concat([
    encodeMessage('main', 'version', OUR_VERSION),
    encodeMessage('main', 'verack', {}),
    encodeMessage('main', 'ping', { nonce: 99n }),
    encodeMessage('main', 'addr', addr),
  ]);
  const got = await theirDecode(bytes, MAGIC.main);
  assert.deepEqual(
    got.map((m) => m.command),
    ['version', 'verack', 'ping', 'addr'],
  );
  const v = got[0]!.payload;
  assert.equal(v.version, 70016);
  assert.equal(u64(v.services), OUR_VERSION.services);
  assert.equal(BigInt(v.timestamp), OUR_VERSION.timestamp);
  assert.equal(v.receiverAddress.address, '198.18.0.7');
  assert.equal(v.receiverAddress.port, 40123);
  assert.equal(v.senderAddress.address, 'fd00::1:2');
  assert.equal(u64(v.senderAddress.services), 9n);
  assert.equal(u64(v.nonce), OUR_VERSION.nonce);
  assert.equal(v.userAgent, '/onionpunch:0.1.0/');
  assert.equal(v.startHeight, 123456);
  assert.equal(v.relay, true);
  assert.equal(u64(got[2]!.payload.nonce), 99n);
  const a = got[3]!.payload as Array<{ time: number; services: Buffer; address: string; port: number }>;
  assert.deepEqual(
    a.map((e) => [e.time, u64(e.services), e.address, e.port]),
    [
      [1454060630, 1n, '61.174.126.248', 8333],
      [1700000000, 1033n, '2001:db8::5', 18444],
    ],
  );
});

test('we decode bitcoin-protocol frames (one byte at a time): version, verack, ping, addr', async () => {
  const bytes = await theirEncode(
    [
      {
        command: 'version',
        payload: {
          version: 70015,
          services: le8(1n | (1n << 3n)),
          timestamp: 1_700_000_123,
          receiverAddress: { services: le8(0n), address: '10.1.2.3', port: 8333 },
          senderAddress: { services: le8(1n), address: 'fd00::7', port: 18444 },
          nonce: le8(0x1122334455667788n),
          userAgent: '/bitcoin-protocol/',
          startHeight: 42,
          relay: false,
        },
      },
      { command: 'verack', payload: {} },
      { command: 'ping', payload: { nonce: le8(7n) } },
      { command: 'addr', payload: [{ time: 1234, services: le8(1n), address: '1.2.3.4', port: 8333 }] },
    ],
    MAGIC.main,
  );
  const frames = ourFramesOneByteAtATime(bytes);
  assert.deepEqual(
    frames.map((f) => [f.command, f.checksumOk]),
    [
      ['version', true],
      ['verack', true],
      ['ping', true],
      ['addr', true],
    ],
  );
  assert.deepEqual(decodePayload('version', frames[0]!.payload), {
    version: 70015,
    services: 9n,
    timestamp: 1_700_000_123n,
    addrRecv: { services: 0n, address: '10.1.2.3', port: 8333 },
    addrFrom: { services: 1n, address: 'fd00::7', port: 18444 },
    nonce: 0x1122334455667788n,
    userAgent: '/bitcoin-protocol/',
    startHeight: 42,
    relay: false,
  });
  assert.deepEqual(decodePayload('ping', frames[2]!.payload), { nonce: 7n });
  assert.deepEqual(decodePayload('addr', frames[3]!.payload), {
    addrs: [{ time: 1234, services: 1n, address: '1.2.3.4', port: 8333 }],
  });
  // And the bytes are identical to ours for the same values.
  assert.deepEqual(
    frames[3]!.payload,
    encodeMessage('main', 'addr', { addrs: [{ time: 1234, services: 1n, address: '1.2.3.4', port: 8333 }] }).subarray(
      24,
    ),
  );
});
