/** The stress B worker's start queue: one start per event-loop turn, with the poll phase (I/O) between. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { TurnPacer } from '../../src/lab/demo/turn-pacer.js';

test('TurnPacer runs nothing synchronously, in order, one start per turn', async () => {
  const p = new TurnPacer();
  const ran: number[] = [];
  for (let i = 0; i < 5; i++) p.push(() => ran.push(i));
  assert.deepEqual([...ran], []);
  assert.equal(p.pending, 5);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([...ran], [0], 'one start in the first turn');
  while (p.pending > 0) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([...ran], [0, 1, 2, 3, 4]);
  p.push(() => ran.push(5)); // an emptied pacer re-arms
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([...ran], [0, 1, 2, 3, 4, 5]);
});

test('TurnPacer serves socket reads between the starts of a burst', async () => {
  // The first start's request is answered while the rest of the burst is still queued: the answer must be read
  // after a start or two, not after all of them (what the B worker's first sessions need from A).
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = await accepted;
  try {
    const order: string[] = [];
    client.on('data', () => order.push('read'));
    const p = new TurnPacer();
    const N = 200;
    for (let i = 0; i < N; i++) {
      p.push(() => {
        if (i === 0) peer.write('x'); // on loopback the byte is in the client's receive queue at once
        const t = performance.now();
        while (performance.now() - t < 0.2); // a start costs CPU, as a real one does
        order.push('start');
      });
    }
    while (p.pending > 0 || !order.includes('read')) await new Promise((r) => setImmediate(r));
    const at = order.indexOf('read');
    assert.ok(at >= 1 && at < 5, `the answer was read after ${at} of ${N} starts`);
  } finally {
    client.destroy();
    peer.destroy();
    server.close();
  }
});
