/**
 * The coordination channel's own close() (src/punch/channel.ts), over real loopback TCP: what was queued before it
 * is still delivered, then every read fails with PUNCH_CLOSED — whether a read was waiting at close() or came
 * later (the error is then built lazily), and whatever the far end does afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { StreamChannel } from '../../src/punch/channel.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { codec, tcpPair } from '../helpers/punch-loopback.js';

async function pair(): Promise<{ ch: StreamChannel; far: Socket; done: () => void }> {
  const { near, far, close } = await tcpPair();
  const ch = new StreamChannel(near, codec);
  return { ch, far, done: () => (ch.close(), close()) };
}

const sid = Buffer.alloc(16, 3);
const isClosed = (e: unknown): boolean => e instanceof PunchSessionError && e.code === 'PUNCH_CLOSED';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('close() with a read waiting: the read fails with PUNCH_CLOSED', async () => {
  const { ch, done } = await pair();
  try {
    const waiting = ch.next(2000, 'opfire');
    ch.close();
    await assert.rejects(waiting, isClosed);
    await assert.rejects(ch.next(2000, 'opfire'), isClosed);
  } finally {
    done();
  }
});

test('close() with nothing waiting: the queued message is read, then PUNCH_CLOSED, after the far FIN too', async () => {
  const { ch, far, done } = await pair();
  try {
    far.write(codec.encode({ cmd: 'opresult', sessionId: sid, status: 'connected', elapsedMs: 5, reason: '' }));
    await sleep(50); // the message is queued in the channel: nobody reads yet
    ch.close();
    far.end();
    await sleep(50); // the far FIN ('end', 'close') arrives after our close
    const m = await ch.next(2000, 'opresult');
    assert.equal(m.cmd, 'opresult');
    await assert.rejects(ch.next(2000, 'opresult'), isClosed);
    await assert.rejects(ch.next(2000, 'opresult'), isClosed);
  } finally {
    done();
  }
});
