import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameParser,
  HEADER_SIZE,
  MAX_PAYLOAD,
  encodeMessage,
  encodeRaw,
  type Frame,
} from '../../../src/wire/index.js';

function feed(p: FrameParser, data: Buffer, chunk: number) {
  const frames: Frame[] = [];
  const errors = [];
  for (let i = 0; i < data.length; i += chunk) {
    const r = p.push(data.subarray(i, i + chunk));
    frames.push(...r.frames);
    if (r.error) errors.push(r.error);
  }
  return { frames, errors };
}

const stream = Buffer.concat([
  encodeMessage('regtest', 'verack', {}),
  encodeMessage('regtest', 'ping', { nonce: 42n }),
  encodeRaw('regtest', 'inv', Buffer.alloc(37, 7)),
  encodeRaw('regtest', 'block', Buffer.alloc(100_000, 1)),
  encodeMessage('regtest', 'sendaddrv2', {}),
]);

test('frames come out the same for every chunking, one byte at a time included', () => {
  for (const chunk of [1, 2, 3, 23, 24, 25, 61, 1000, stream.length]) {
    const p = new FrameParser({ network: 'regtest' });
    const { frames, errors } = feed(p, stream, chunk);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      frames.map((f) => [f.command, f.length, f.checksumOk]),
      [
        ['verack', 0, true],
        ['ping', 8, true],
        ['inv', 37, true],
        ['block', 100000, true],
        ['sendaddrv2', 0, true],
      ],
      `chunk ${chunk}`,
    );
    assert.ok(frames[3]!.payload.every((x) => x === 1));
    assert.equal(p.buffered, 0);
    assert.equal(p.end(), null);
  }
});

test('bad magic is reported as soon as 4 bytes are in, once; the stream is then dead', () => {
  const p = new FrameParser({ network: 'main' });
  const bytes = encodeMessage('regtest', 'verack', {});
  assert.equal(p.push(bytes.subarray(0, 3)).error, null);
  const r = p.push(bytes.subarray(3, 4));
  assert.equal(r.error?.code, 'WIRE_BAD_MAGIC');
  assert.match(r.error!.message, /magic fabfb5da is regtest's, expected main's/);
  assert.ok(p.dead);
  const again = p.push(encodeMessage('main', 'verack', {}));
  assert.deepEqual(again, { frames: [], error: null }, 'dead stream reports once and ignores input');
  assert.equal(p.end(), null);
  const any = new FrameParser();
  assert.equal(any.push(Buffer.from('deadbeef', 'hex')).error?.code, 'WIRE_BAD_MAGIC');
});

test('bad checksum: error by default, flagged frame with verifyChecksum false', () => {
  const m = encodeMessage('main', 'ping', { nonce: 1n });
  m[m.length - 1]! ^= 1;
  const strict = new FrameParser().push(m);
  assert.equal(strict.error?.code, 'WIRE_BAD_CHECKSUM');
  assert.match(strict.error!.message, /^ping: checksum/);
  const lax = new FrameParser({ verifyChecksum: false }).push(m);
  assert.equal(lax.error, null);
  assert.equal(lax.frames[0]!.checksumOk, false);
});

test('oversize is rejected from the header alone, before any payload byte is buffered', () => {
  const h = encodeRaw('main', 'block', Buffer.alloc(0));
  h.writeUInt32LE(MAX_PAYLOAD + 1, 16);
  const p = new FrameParser();
  const r = p.push(h);
  assert.equal(r.error?.code, 'WIRE_OVERSIZE');
  assert.match(r.error!.message, /block length 4000001 > 4000000/);
  assert.equal(p.buffered, 0);
  // exactly the cap is accepted (header only so far)
  h.writeUInt32LE(MAX_PAYLOAD, 16);
  const q = new FrameParser();
  assert.equal(q.push(h).error, null);
  assert.equal(q.buffered, 0);
  q.push(Buffer.alloc(1000));
  assert.equal(q.buffered, 1000);
  // a lower cap
  const small = new FrameParser({ maxPayload: 10 });
  assert.equal(small.push(encodeRaw('main', 'x', Buffer.alloc(11))).error?.code, 'WIRE_OVERSIZE');
});

test('bad command field and truncation at end of input are typed errors', () => {
  const m = encodeMessage('main', 'verack', {});
  const nonPrintable = Buffer.from(m);
  nonPrintable[5] = 0x07;
  assert.equal(new FrameParser().push(nonPrintable).error?.code, 'WIRE_BAD_COMMAND');
  const dataAfterNul = Buffer.from(m);
  dataAfterNul[15] = 0x41;
  assert.equal(new FrameParser().push(dataAfterNul).error?.code, 'WIRE_BAD_COMMAND');
  const emptyCmd = Buffer.from(m);
  emptyCmd.fill(0, 4, 16);
  assert.equal(new FrameParser().push(emptyCmd).error?.code, 'WIRE_BAD_COMMAND');

  const ping = encodeMessage('main', 'ping', { nonce: 5n });
  const p = new FrameParser();
  p.push(ping.subarray(0, HEADER_SIZE + 3));
  const e = p.end();
  assert.equal(e?.code, 'WIRE_TRUNCATED');
  assert.match(e!.message, /ping: payload truncated: 3 of 8/);
  const q = new FrameParser();
  q.push(ping.subarray(0, 10));
  assert.match(q.end()!.message, /header truncated: 10 of 24/);
});

test('frames completed before an error in the same chunk are still delivered', () => {
  const good = encodeMessage('main', 'verack', {});
  const r = new FrameParser().push(Buffer.concat([good, good, Buffer.from('00000000', 'hex')]));
  assert.equal(r.frames.length, 2);
  assert.equal(r.error?.code, 'WIRE_BAD_MAGIC');
});
