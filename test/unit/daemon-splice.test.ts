import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { bridge } from '../../src/daemon/splice.js';
import { spliceToBitcoind } from '../../src/daemon/handoff.js';
import { Logger } from '../../src/daemon/log.js';

async function listen(handler: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

/** A connected pair of sockets over loopback: [client side, server side]. */
async function pair(): Promise<[Socket, Socket, Server]> {
  let accepted!: Socket;
  const got = new Promise<void>((r) => {
    void listen((s) => {
      accepted = s;
      r();
    }).then(({ server, port }) => {
      srv = server;
      client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    });
  });
  let srv!: Server;
  let client!: Socket;
  await got;
  await new Promise((r) => (client.connecting ? client.once('connect', r) : r(undefined)));
  return [client, accepted, srv];
}

/** Resolves when the peer's FIN, a reset or a close reaches `s`. */
function ended(s: Socket): Promise<void> {
  s.on('error', () => undefined);
  return new Promise((r) => {
    if (s.destroyed || s.readableEnded) return r();
    s.once('end', () => r());
    s.once('close', () => r());
    s.once('error', () => r());
  });
}

function sha(b: Buffer[]): string {
  const h = createHash('sha256');
  for (const x of b) h.update(x);
  return h.digest('hex');
}

test(
  '10 MB each way through a splice bridge, every byte checked, half-close carried',
  { timeout: 30_000 },
  async () => {
    // "bitcoind": echoes a digest of what it got after the client half-closes, then sends its own 10 MB.
    const back = randomBytes(10 * 1024 * 1024);
    const { server: upstream, port } = await listen((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => {
        s.write(Buffer.from(sha(chunks), 'hex'));
        s.end(back);
      });
    });
    const [outside, punched, edge] = await pair();
    const b = await spliceToBitcoind(punched, { host: '127.0.0.1', port }, { idleTimeoutMs: 10_000 });
    const sent = randomBytes(10 * 1024 * 1024);
    const got: Buffer[] = [];
    outside.on('data', (d: Buffer) => got.push(d));
    outside.end(sent); // half-close: we still must receive everything afterwards
    await once(outside, 'end');
    const all = Buffer.concat(got);
    assert.equal(all.length, 32 + back.length);
    assert.equal(all.subarray(0, 32).toString('hex'), sha([sent]), 'upstream received every byte in order');
    assert.ok(all.subarray(32).equals(back), 'we received every upstream byte in order');
    const st = await b.done;
    assert.equal(st.reason, 'done');
    assert.equal(st.aToB, sent.length);
    assert.equal(st.bToA, 32 + back.length);
    outside.destroy();
    upstream.close();
    edge.close();
  },
);

test('an error (reset) on one side closes both', { timeout: 10_000 }, async () => {
  const [a1, a2, s1] = await pair();
  const [b1, b2, s2] = await pair();
  const br = bridge(a2, b1, { idleTimeoutMs: 10_000 });
  a1.write('hello');
  const [d] = (await once(b2, 'data')) as [Buffer];
  assert.equal(d.toString(), 'hello');
  b2.resetAndDestroy();
  const st = await br.done;
  assert.ok(st.reason === 'error' || st.reason === 'done', st.reason);
  assert.ok(a2.destroyed && b1.destroyed);
  await ended(a1);
  a1.destroy();
  b2.destroy();
  s1.close();
  s2.close();
});

test('idle timeout closes both sides', { timeout: 10_000 }, async () => {
  const [a1, a2, s1] = await pair();
  const [b1, b2, s2] = await pair();
  const br = bridge(a2, b1, { idleTimeoutMs: 200 });
  const st = await br.done;
  assert.equal(st.reason, 'idle');
  await Promise.all([ended(a1), ended(b2)]);
  a1.destroy();
  b2.destroy();
  s1.close();
  s2.close();
});

test('hand-off to an unreachable bitcoind rejects and closes the punched socket', { timeout: 10_000 }, async () => {
  const { server, port } = await listen(() => undefined);
  server.close();
  await once(server, 'close');
  const [a1, a2, s1] = await pair();
  await assert.rejects(spliceToBitcoind(a2, { host: '127.0.0.1', port }), { code: 'DAEMON_BITCOIND_UNREACHABLE' });
  assert.ok(a2.destroyed);
  await ended(a1);
  a1.destroy();
  s1.close();
});

test('logger: json and text lines, levels, bigint and errors', () => {
  const lines: string[] = [];
  const now = () => new Date(0);
  const j = new Logger({ format: 'json', level: 'info', write: (l) => lines.push(l), now, base: { component: 'x' } });
  j.debug('hidden');
  j.info('bridge-open', { peer: '1.2.3.4:5', n: 5n, error: Object.assign(new Error('boom'), { code: 'E_X' }) });
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]!), {
    t: '1970-01-01T00:00:00.000Z',
    level: 'info',
    event: 'bridge-open',
    component: 'x',
    peer: '1.2.3.4:5',
    n: '5',
    error: { code: 'E_X', message: 'boom' },
  });
  const t = new Logger({ format: 'text', level: 'debug', write: (l) => lines.push(l), now }).child({
    component: 'serve',
  });
  t.warn('announce-disabled', { why: 'no peers' });
  assert.equal(lines[1], '1970-01-01T00:00:00.000Z WARN  announce-disabled component=serve why="no peers"');
});
