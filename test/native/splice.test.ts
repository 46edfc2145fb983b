/**
 * The addon's splice(2) bridge (native/splice.cc via src/native/splice.ts) over real loopback TCP: bytes intact
 * both ways (including what Node had already buffered before the hand-off), half-close carried across, a peer
 * reset closing both, close() and the idle timeout, and no descriptor left after 100 bridges.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { spliceSockets, type SpliceStats } from '../../src/native/splice.js';
import { fdCount, waitFor } from './helpers.js';

/** Two connected pairs: outer1 ⇄ a (a is handed to the bridge) and b ⇄ outer2 (b is handed to the bridge). */
async function twoPairs(): Promise<{ outer1: Socket; a: Socket; b: Socket; outer2: Socket; close: () => void }> {
  const servers: Server[] = [];
  const onePair = async (): Promise<[Socket, Socket]> => {
    const server = createServer({ allowHalfOpen: true });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const c = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1', allowHalfOpen: true });
    const [[s]] = await Promise.all([once(server, 'connection') as Promise<[Socket]>, once(c, 'connect')]);
    return [c, s];
  };
  const [outer1, a] = await onePair();
  const [b, outer2] = await onePair();
  return { outer1, a, b, outer2, close: () => servers.forEach((s) => s.close()) };
}

function collect(s: Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Resolves when `s` sees the far side go away (FIN, reset or close). */
function gone(s: Socket): Promise<void> {
  s.on('error', () => undefined);
  return new Promise((r) => {
    if (s.destroyed) return r();
    s.once('end', () => r());
    s.once('close', () => r());
  });
}

test('8 MB each way at once, every byte intact, incl. bytes Node had buffered; half-close carried', async () => {
  const p = await twoPairs();
  // Bytes that reach `a` and `b` before the hand-off sit in Node's buffers: the bridge must send them first.
  p.outer1.write('early-to-b;');
  p.outer2.write('early-to-a;');
  await waitFor(() => p.a.readableLength > 0 && p.b.readableLength > 0, 2000, 'bytes buffered in Node');
  const br = spliceSockets(p.a, p.b, { idleTimeoutMs: 10_000 });
  assert.ok(p.a.destroyed && p.b.destroyed, 'the JS sockets are handed over');
  const up = randomBytes(8 * 1024 * 1024);
  const down = randomBytes(8 * 1024 * 1024);
  const got2 = collect(p.outer2);
  const got1 = collect(p.outer1);
  p.outer1.end(up); // half-close from outer1: outer2 sees 'end', and may still send
  const r2 = await got2;
  assert.equal(sha(r2), sha(Buffer.concat([Buffer.from('early-to-b;'), up])));
  p.outer2.end(down); // only now does the other direction finish
  const r1 = await got1;
  assert.equal(sha(r1), sha(Buffer.concat([Buffer.from('early-to-a;'), down])));
  const st = await br.done;
  const want = { reason: 'done', aToB: 11 + up.length, bToA: 11 + down.length };
  assert.deepEqual({ reason: st.reason, aToB: st.aToB, bToA: st.bToA }, want);
  assert.deepEqual(br.stats, { aToB: st.aToB, bToA: st.bToA });
  p.outer1.destroy();
  p.outer2.destroy();
  p.close();
});

test('a peer reset ends the bridge with ECONNRESET on that side and closes the other', async () => {
  const p = await twoPairs();
  const br = spliceSockets(p.a, p.b);
  p.outer1.write('hello');
  const [d] = (await once(p.outer2, 'data')) as [Buffer];
  assert.equal(d.toString(), 'hello');
  const other = gone(p.outer2);
  p.outer1.resetAndDestroy();
  const st: SpliceStats = await br.done;
  assert.equal(st.reason, 'error');
  assert.equal(st.error?.code, 'ECONNRESET');
  assert.equal(st.errorOn, 'a');
  await other;
  p.outer2.destroy();
  p.close();
});

test('close() and the idle timeout close both sockets', async () => {
  for (const how of ['close', 'idle'] as const) {
    const p = await twoPairs();
    const br = spliceSockets(p.a, p.b, { idleTimeoutMs: how === 'idle' ? 150 : 10_000 });
    const far = Promise.all([gone(p.outer1), gone(p.outer2)]);
    if (how === 'close') br.close();
    const st = await br.done;
    assert.equal(st.reason, how === 'close' ? 'closed' : 'idle');
    await far;
    p.outer1.destroy();
    p.outer2.destroy();
    p.close();
  }
});

test('100 bridges opened and finished: no descriptor left behind', async () => {
  const warm = await twoPairs(); // the splicer thread, its epoll and eventfd exist from here on
  const wb = spliceSockets(warm.a, warm.b);
  warm.outer1.end();
  warm.outer2.end();
  await wb.done;
  warm.outer1.destroy();
  warm.outer2.destroy();
  warm.close();
  await new Promise((r) => setTimeout(r, 50));
  const before = fdCount();
  for (let i = 0; i < 100; i++) {
    const p = await twoPairs();
    const br = spliceSockets(p.a, p.b);
    const echo = collect(p.outer2);
    p.outer1.end(`bridge ${i}`);
    assert.equal((await echo).toString(), `bridge ${i}`);
    p.outer2.end();
    assert.equal((await br.done).reason, 'done');
    p.outer1.destroy();
    p.outer2.destroy();
    p.close();
  }
  await waitFor(() => fdCount() <= before, 3000, `fds back to ${before} (now ${fdCount()})`);
});
