/**
 * Property / fuzz tests: >= 100,000 random and mutated inputs to the stream parser and the payload
 * decoders. Invariants: nothing throws, every error is a WireError, the parser never buffers more than
 * header + cap, and heap growth stays bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CODECS,
  FrameParser,
  HEADER_SIZE,
  WireError,
  encodeMessage,
  encodeRaw,
  decodePayload,
  type KnownCommand,
} from '../../../src/wire/index.js';

const SID = Buffer.alloc(16, 9);
const SEEDS: Buffer[] = [
  encodeMessage('main', 'version', {
    version: 70016,
    services: 1033n,
    timestamp: 1n,
    addrRecv: { services: 0n, address: '1.2.3.4', port: 1 },
    addrFrom: { services: 0n, address: '::1', port: 2 },
    nonce: 7n,
    userAgent: '/x/',
    startHeight: 1,
    relay: true,
  }),
  encodeMessage('main', 'verack', {}),
  encodeMessage('main', 'ping', { nonce: 1n }),
  encodeMessage('main', 'addr', { addrs: [{ time: 1, services: 1n, address: '1.2.3.4', port: 8333 }] }),
  encodeMessage('main', 'addrv2', {
    addrs: [
      { time: 1, services: 1n, network: 'ipv4', networkId: 1, address: '1.2.3.4', port: 1 },
      {
        time: 1,
        services: 1n,
        network: 'holepunch',
        networkId: 0xf1,
        port: 2,
        clearnet: { address: '198.18.0.1', port: 3 },
        address: 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion',
      },
    ],
  }),
  encodeMessage('main', 'opendpoint', { sessionId: SID, flags: 1, endpoints: [{ address: '198.18.0.1', port: 5 }] }),
  encodeMessage('main', 'opfire', { sessionId: SID, delayUs: 1, schedule: 0, deadlineMs: 2 }),
  encodeMessage('main', 'opresult', { sessionId: SID, status: 'connected', elapsedMs: 3, reason: 'ok' }),
  encodeMessage('main', 'opreject', { code: 'busy', reason: 'b' }),
  encodeMessage('main', 'getheaders', { version: 1, locator: [Buffer.alloc(32)], hashStop: Buffer.alloc(32) }),
  encodeRaw('main', 'tx', Buffer.alloc(50, 3)),
];
const COMMANDS = Object.keys(CODECS) as KnownCommand[];

/** Decodes with the throwing API: anything thrown must be a WireError (not a RangeError etc.). */
function strictDecode(cmd: KnownCommand, payload: Buffer): void {
  try {
    decodePayload(cmd, payload);
  } catch (e) {
    assert.ok(e instanceof WireError, `${cmd}: non-WireError thrown: ${String(e)}`);
    assert.ok(e.message.length > 0);
  }
}
const CAP = 100_000;

/** Feeds `data` in the given chunk sizes; checks the invariants; returns how many frames came out. */
function drive(data: Buffer, cuts: number[]): number {
  const p = new FrameParser({ maxPayload: CAP });
  let off = 0;
  let frames = 0;
  let errors = 0;
  let i = 0;
  while (off < data.length) {
    const n = Math.max(1, cuts[i++ % Math.max(1, cuts.length)] ?? data.length);
    const r = p.push(data.subarray(off, off + n));
    off += n;
    frames += r.frames.length;
    if (r.error) {
      errors++;
      assert.ok(r.error instanceof WireError);
    }
    assert.ok(p.buffered <= HEADER_SIZE + CAP, 'buffered bytes bounded');
    for (const f of r.frames) {
      if ((COMMANDS as string[]).includes(f.command)) {
        strictDecode(f.command as KnownCommand, f.payload);
      }
    }
  }
  const e = p.end();
  if (e) assert.ok(e instanceof WireError);
  assert.ok(errors <= 1, 'an error is reported once');
  return frames;
}

const mutated = fc
  .tuple(
    fc.array(fc.constantFrom(...SEEDS), { minLength: 1, maxLength: 4 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    fc.nat({ max: 3 }),
  )
  .map(([msgs, flips, truncate]) => {
    const b = Buffer.concat(msgs);
    for (const [pos, val] of flips) b[pos % b.length] = val;
    return b.subarray(0, Math.max(0, b.length - truncate));
  });

test('stream parser: 100,000 random and mutated byte streams in random chunkings', () => {
  const before = process.memoryUsage().heapUsed;
  fc.assert(
    fc.property(
      fc.oneof(
        mutated,
        fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
      ),
      fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 }),
      (data, cuts) => {
        drive(data, cuts);
      },
    ),
    { numRuns: 100_000 },
  );
  globalThis.gc?.();
  const growth = process.memoryUsage().heapUsed - before;
  assert.ok(growth < 64 * 1024 * 1024, `heap growth ${growth} bytes`);
});

test('stream parser: a header declaring up to the cap never makes it buffer more than header + cap', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 * CAP }), fc.integer({ min: 1, max: 5000 }), (len, chunk) => {
      const h = encodeRaw('main', 'big', Buffer.alloc(0));
      h.writeUInt32LE(len, 16);
      const p = new FrameParser({ maxPayload: CAP });
      const r = p.push(h);
      if (len > CAP) assert.equal(r.error?.code, 'WIRE_OVERSIZE');
      const junk = Buffer.alloc(chunk);
      for (let i = 0; i < 5 && !p.dead; i++) {
        p.push(junk);
        assert.ok(p.buffered <= HEADER_SIZE + CAP);
      }
    }),
    { numRuns: 2_000 },
  );
});

test('payload decoders: 50,000 random and mutated payloads never throw anything but WireError', () => {
  const payloads = SEEDS.map((s) => s.subarray(HEADER_SIZE));
  fc.assert(
    fc.property(
      fc.constantFrom(...COMMANDS),
      fc.oneof(
        fc.uint8Array({ maxLength: 120 }).map((u) => Buffer.from(u)),
        fc
          .tuple(
            fc.constantFrom(...payloads),
            fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
            fc.nat({ max: 4 }),
          )
          .map(([p, flips, cut]) => {
            const b = Buffer.from(p);
            for (const [pos, v] of flips) if (b.length) b[pos % b.length] = v;
            return b.subarray(0, Math.max(0, b.length - cut));
          }),
      ),
      (cmd, payload) => {
        strictDecode(cmd, payload);
      },
    ),
    { numRuns: 50_000 },
  );
});
