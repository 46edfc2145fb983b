/**
 * The coordination channel's trailing ping (docs/PROTOCOL.md "Trailing ping"), over real loopback TCP: a write
 * marked with trail() is followed, in a write of its own, by a ping of the channel's and TRAIL_PAD_BYTES of
 * `oppad`; the peer's pong to it never reaches the session, any other pong does; the peer's padding never does,
 * and more than MAX_PAD_FRAMES of it is a protocol error; a channel sends at most MAX_TRAILS; a closed channel
 * sends none.
 * What the trailing segment buys on a lossy path (RACK re-sends the lost one a round trip later instead of the
 * tail-loss probe's 2 RTT + 200 ms) is measured in docs/BENCHMARKS.md, not here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { MAX_PAD_FRAMES, MAX_TRAILS, StreamChannel, TRAIL_MS, TRAIL_PAD_BYTES } from '../../src/punch/channel.js';
import type { CoordMessage } from '../../src/punch/messages.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { codec, tcpPair } from '../helpers/punch-loopback.js';

interface Chunk {
  at: number;
  msgs: CoordMessage[];
}

/** A loopback TCP pair: our channel on one end, the raw far end recording each chunk it reads. */
async function pair(): Promise<{ ch: StreamChannel; far: Socket; chunks: Chunk[]; done: () => void }> {
  const { near, far, close } = await tcpPair();
  far.setNoDelay(true);
  const chunks: Chunk[] = [];
  const dec = codec.decoder();
  far.on('data', (d: Buffer) => chunks.push({ at: performance.now(), msgs: dec.push(d) }));
  const ch = new StreamChannel(near, codec);
  const done = (): void => {
    ch.close();
    close();
  };
  return { ch, far, chunks, done };
}

const sid = Buffer.alloc(16, 7);
const opfire: CoordMessage = { cmd: 'opfire', sessionId: sid, delayUs: 15000, profile: 'plain', deadlineMs: 5000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('trail(): the write is followed by a ping of its own, and the pong to it stays in the channel', async () => {
  const { ch, far, chunks, done } = await pair();
  try {
    const sentAt = performance.now();
    ch.send(opfire);
    ch.trail();
    await sleep(TRAIL_MS + 50);
    // Two writes 5 ms apart; a descheduled test process may read both at once, so check order and timing, not reads.
    const got = chunks.flatMap((c) => c.msgs.map((m) => ({ m, at: c.at })));
    assert.deepEqual(
      got.map((x) => x.m.cmd),
      ['opfire', 'ping', 'oppad', 'oppad'],
    );
    const ping = got[1]!.m;
    assert.ok(got[1]!.at - sentAt >= TRAIL_MS - 1, 'the ping leaves TRAIL_MS after the write');
    // Padding enough for a full-sized segment behind the ping: a relay hop with Nagle on never holds that one.
    const pad = got.reduce((n, x) => n + (x.m.cmd === 'oppad' ? x.m.length : 0), 0);
    assert.equal(pad, TRAIL_PAD_BYTES);
    assert.ok(pad > 1460, 'more than one TCP segment at a 1,500-byte MTU');

    // The far end answers it, and also sends a pong the channel did not ask for, then a real message.
    const nonce = ping.cmd === 'ping' ? ping.nonce : 0n;
    far.write(codec.encode({ cmd: 'pong', nonce }));
    far.write(codec.encode({ cmd: 'pong', nonce: nonce + 1n }));
    far.write(codec.encode({ cmd: 'verack' }));
    const first = await ch.next(1000, 'test');
    assert.deepEqual(first, { cmd: 'pong', nonce: nonce + 1n }, 'only the unasked pong reaches the session');
    assert.equal((await ch.next(1000, 'test')).cmd, 'verack');
    // The same nonce a second time is no longer ours: it is delivered (one pong per ping is swallowed).
    far.write(codec.encode({ cmd: 'pong', nonce }));
    assert.deepEqual(await ch.next(1000, 'test'), { cmd: 'pong', nonce });
  } finally {
    done();
  }
});

test('trail(): no ping without it, at most MAX_TRAILS per channel, none once closed', async () => {
  const { ch, chunks, done } = await pair();
  try {
    ch.send(opfire);
    await sleep(TRAIL_MS + 50);
    assert.equal(chunks.flatMap((c) => c.msgs).length, 1, 'an ordinary send has no trailing ping');

    for (let i = 0; i < MAX_TRAILS + 3; i++) {
      ch.send({ cmd: 'verack' });
      ch.trail();
      await sleep(TRAIL_MS + 20);
    }
    await sleep(50);
    const pings = chunks.flatMap((c) => c.msgs).filter((m) => m.cmd === 'ping');
    assert.equal(pings.length, MAX_TRAILS);
    assert.equal(new Set(pings.map((m) => (m.cmd === 'ping' ? m.nonce : 0n))).size, MAX_TRAILS, 'fresh nonces');
  } finally {
    done();
  }
  const late = await pair();
  try {
    late.ch.send(opfire);
    late.ch.trail();
    late.ch.close(); // flushes the opfire; the trailing ping must not follow a closed channel
    await sleep(TRAIL_MS + 50);
    assert.deepEqual(
      late.chunks.flatMap((c) => c.msgs).map((m) => m.cmd),
      ['opfire'],
    );
    await assert.rejects(late.ch.next(100, 'test'), (e: unknown) => e instanceof PunchSessionError);
  } finally {
    late.done();
  }
});

test("the peer's oppad never reaches the session; more than MAX_PAD_FRAMES fails the channel", async () => {
  const { ch, far, done } = await pair();
  try {
    for (let i = 0; i < MAX_PAD_FRAMES; i++) far.write(codec.encode({ cmd: 'oppad', length: 1024 }));
    far.write(codec.encode({ cmd: 'verack' }));
    assert.equal((await ch.next(1000, 'test')).cmd, 'verack', 'padding is dropped, what follows it is delivered');
    far.write(codec.encode({ cmd: 'oppad', length: 1 }));
    await assert.rejects(
      ch.next(1000, 'test'),
      (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_PROTOCOL',
    );
  } finally {
    done();
  }
});
