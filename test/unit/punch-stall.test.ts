/**
 * `opstall` (docs/PROTOCOL.md): the wire codec, the channel's handling (delivered at any step to the handler
 * in force, else dropped, never queued; a flood is a protocol error) and the session's stall coordination (what
 * it sends on our stalls and which nudge a peer's report becomes, each at most twice per session). The engine
 * half (nudge through real NATs) is test/lab/stall-nudge.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { decodePayload, encodePayload, WireError } from '../../src/wire/index.js';
import { MAX_STALL_REPORTS, StreamChannel } from '../../src/punch/channel.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { Timeline } from '../../src/punch/timeline.js';
import { MAX_STALLS_PER_SESSION, STALL_REPORT_MS, stallCoordination } from '../../src/punch/session-common.js';
import type { CoordMessage } from '../../src/punch/messages.js';
import type { CoordChannel } from '../../src/punch/channel.js';
import { codec } from '../helpers/punch-loopback.js';

const SID = Buffer.alloc(16, 0x5a);
const OTHER = Buffer.alloc(16, 0x11);

test('opstall: 17 bytes (session id, state 1), anything else is refused naming the field', () => {
  const p = encodePayload('opstall', { sessionId: SID, state: 1 });
  assert.equal(p.length, 17);
  assert.deepEqual(decodePayload('opstall', p), { sessionId: SID, state: 1 });
  const bad = Buffer.from(p);
  bad[16] = 2;
  assert.throws(
    () => decodePayload('opstall', bad),
    (e: unknown) => e instanceof WireError && e.code === 'WIRE_BAD_FIELD',
  );
  assert.throws(() => decodePayload('opstall', Buffer.concat([p, Buffer.alloc(1)])), WireError);
  assert.throws(() => encodePayload('opstall', { sessionId: SID, state: 0 }), WireError);
});

/** Two channels over one in-memory pipe pair: what `a` sends, `b` decodes. */
function pair(): { a: StreamChannel; b: StreamChannel } {
  const ab = new PassThrough();
  const ba = new PassThrough();
  const duplex = (r: PassThrough, w: PassThrough) =>
    Object.assign(r, { write: w.write.bind(w), end: w.end.bind(w) }) as unknown as PassThrough;
  return { a: new StreamChannel(duplex(ba, ab), codec), b: new StreamChannel(duplex(ab, ba), codec) };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

test('the channel hands opstall to the handler at any step and never queues it', async () => {
  const { a, b } = pair();
  const got: Buffer[] = [];
  a.send({ cmd: 'opstall', sessionId: SID }); // no handler yet: dropped
  await tick();
  b.onStall((m) => got.push(m.sessionId));
  a.send({ cmd: 'opstall', sessionId: SID });
  a.send({ cmd: 'verack' });
  await tick();
  assert.deepEqual(got, [SID]);
  // The next message a session step sees is the verack: the reports never reach next().
  assert.equal((await b.next(500, 'test')).cmd, 'verack');
  b.onStall(undefined);
  a.send({ cmd: 'opstall', sessionId: SID });
  await tick();
  assert.equal(got.length, 1);
});

test(`more than ${MAX_STALL_REPORTS} opstall in a session fail the channel (PUNCH_PROTOCOL)`, async () => {
  const { a, b } = pair();
  for (let i = 0; i <= MAX_STALL_REPORTS; i++) a.send({ cmd: 'opstall', sessionId: SID });
  await tick();
  const err = await b.next(500, 'test').catch((e: unknown) => e);
  assert.ok(err instanceof PunchSessionError, String(err));
  assert.equal(err.code, 'PUNCH_PROTOCOL');
});

/** A channel stand-in that records what the session sends and lets the test deliver opstall. */
function fakeChannel() {
  const sent: CoordMessage[] = [];
  let handler: ((m: Extract<CoordMessage, { cmd: 'opstall' }>) => void) | undefined;
  return {
    sent,
    deliver: (sessionId: Buffer) => handler?.({ cmd: 'opstall', sessionId }),
    get listening() {
      return handler !== undefined;
    },
    ch: {
      send: (m: CoordMessage) => void sent.push(m),
      next: () => Promise.reject(new Error('unused')),
      close: () => undefined,
      onStall: (fn: typeof handler) => void (handler = fn),
      closed: false,
      bytesIn: 0,
    } satisfies CoordChannel,
  };
}

test(`B: its stalls become opstall (at most ${MAX_STALLS_PER_SESSION}); after that, A's reports change nothing`, () => {
  const f = fakeChannel();
  const tl = new Timeline();
  const { link, end } = stallCoordination(f.ch, SID, 'B', tl);
  assert.equal(link.afterMs, STALL_REPORT_MS);
  const nudges: string[] = [];
  link.bind((m) => nudges.push(m));
  for (let i = 0; i < 4; i++) link.stalled();
  assert.deepEqual(
    f.sent.map((m) => m.cmd),
    Array(MAX_STALLS_PER_SESSION).fill('opstall'),
  );
  f.deliver(SID);
  assert.deepEqual(nudges, [], 'A may be acting on our report: we keep our sequence numbers');
  assert.ok(tl.at('stall-sent') !== undefined);
  end();
  assert.equal(f.listening, false);
});

test(`B, having reported nothing: A's reports become nudge('recv-only'), at most ${MAX_STALLS_PER_SESSION}`, () => {
  const f = fakeChannel();
  const { link } = stallCoordination(f.ch, SID, 'B', new Timeline());
  const nudges: string[] = [];
  link.bind((m) => nudges.push(m));
  f.deliver(OTHER); // another session's report: ignored
  for (let i = 0; i < 4; i++) f.deliver(SID);
  assert.deepEqual(nudges, Array(MAX_STALLS_PER_SESSION).fill('recv-only'));
  assert.deepEqual(f.sent, []);
});

test(`A: B's reports become nudge('any') before A reported, 'sent-only' after; A's stalls are reported too`, () => {
  const f = fakeChannel();
  const tl = new Timeline();
  const { link, end } = stallCoordination(f.ch, SID, 'A', tl);
  const nudges: string[] = [];
  link.bind((m) => nudges.push(m));
  f.deliver(OTHER); // another session's report: ignored
  f.deliver(SID);
  assert.deepEqual(nudges, ['any']);
  link.stalled();
  assert.deepEqual(
    f.sent.map((m) => m.cmd),
    ['opstall'],
  );
  for (let i = 0; i < 4; i++) f.deliver(SID);
  assert.deepEqual(nudges, ['any', 'sent-only'], `at most ${MAX_STALLS_PER_SESSION} acted on`);
  assert.ok(tl.at('stall-received') !== undefined);
  end();
  assert.equal(f.listening, false);
});
