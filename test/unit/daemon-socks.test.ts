import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { SocksClient } from 'socks';
import { Socks5Server, SOCKS_REPLY, parseRequest, socksReplyFor, encodeReply } from '../../src/daemon/socks5.js';
import { tcpConnect } from '../../src/daemon/handoff.js';
import { Logger } from '../../src/daemon/log.js';
import { loadConfig } from '../../src/daemon/config.js';
import { runProxy } from '../../src/daemon/proxy.js';
import { PunchSessionError } from '../../src/punch/index.js';
import { formatOnion } from '../../src/wire/index.js';

const quiet = new Logger({ write: () => undefined });

async function echoServer(host = '127.0.0.1'): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.listen(0, host);
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

async function startSocks(
  opts: Partial<ConstructorParameters<typeof Socks5Server>[0]> = {},
): Promise<{ socks: Socks5Server; port: number }> {
  const socks = new Socks5Server({
    connect: (req, signal) => tcpConnect({ host: req.host, port: req.port }, { timeoutMs: 3000, signal }),
    log: quiet,
    ...opts,
  });
  const { port } = await socks.listen('127.0.0.1', 0);
  return { socks, port };
}

/** Sends raw bytes, collects everything until the server closes (or 3 s). */
async function raw(port: number, chunks: Buffer[], gapMs = 20): Promise<Buffer> {
  const s = connect({ port, host: '127.0.0.1' });
  s.on('error', () => undefined);
  await once(s, 'connect');
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  for (const c of chunks) {
    if (!s.destroyed) s.write(c);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
  const closedForReal = s.destroyed || s.readableEnded;
  s.destroy();
  assert.ok(closedForReal, 'server closed the connection');
  return Buffer.concat(got);
}

async function echoWorks(port: number, dest: { host: string; port: number }): Promise<void> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port, type: 5 },
    command: 'connect',
    destination: dest,
    timeout: 5000,
  });
  const payload = randomBytes(256 * 1024);
  const got: Buffer[] = [];
  let n = 0;
  const done = new Promise<void>((r) =>
    socket.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= payload.length) r();
    }),
  );
  socket.write(payload);
  await done;
  assert.ok(Buffer.concat(got).equals(payload), 'echo bytes identical');
  socket.destroy();
}

test('CONNECT with IPv4, IPv6 and domain address types through the socks client', { timeout: 20_000 }, async () => {
  const e4 = await echoServer('127.0.0.1');
  const e6 = await echoServer('::1');
  const { socks, port } = await startSocks();
  try {
    await echoWorks(port, { host: '127.0.0.1', port: e4.port });
    await echoWorks(port, { host: '::1', port: e6.port });
    await echoWorks(port, { host: 'localhost', port: e4.port }).catch(async () =>
      echoWorks(port, { host: 'localhost', port: e6.port }),
    );
    assert.equal(socks.stats.connected, 3);
  } finally {
    await socks.close();
    e4.server.close();
    e6.server.close();
  }
});

test('connection refused → reply 5; unknown domain charset → 4; server stays up', { timeout: 20_000 }, async () => {
  const e = await echoServer();
  e.server.close();
  await once(e.server, 'close');
  const { socks, port } = await startSocks();
  try {
    await assert.rejects(
      SocksClient.createConnection({
        proxy: { host: '127.0.0.1', port, type: 5 },
        command: 'connect',
        destination: { host: '127.0.0.1', port: e.port },
        timeout: 5000,
      }),
      /ConnectionRefused/,
    );
    const r = await raw(port, [Buffer.from([5, 1, 0]), Buffer.from([5, 1, 0, 3, 3, 0x61, 0x20, 0x62, 0, 80])]);
    assert.deepEqual([...r.subarray(0, 4)], [5, 0, 5, SOCKS_REPLY.hostUnreachable]);
    const e2 = await echoServer();
    await echoWorks(port, { host: '127.0.0.1', port: e2.port });
    e2.server.close();
  } finally {
    await socks.close();
  }
});

test(
  'bad greetings and requests get the RFC reply and a closed connection; the server stays alive',
  { timeout: 30_000 },
  async () => {
    const e = await echoServer();
    const { socks, port } = await startSocks({ greetingTimeoutMs: 500 });
    try {
      // SOCKS4 greeting: not ours, closed without a reply.
      assert.equal((await raw(port, [Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0])])).length, 0);
      // Only username/password offered: 05 FF.
      assert.deepEqual([...(await raw(port, [Buffer.from([5, 1, 2])]))], [5, 0xff]);
      // No methods at all: 05 FF.
      assert.deepEqual([...(await raw(port, [Buffer.from([5, 0])]))], [5, 0xff]);
      // BIND and UDP ASSOCIATE: command not supported (7).
      for (const cmd of [2, 3]) {
        const r = await raw(port, [Buffer.from([5, 1, 0]), Buffer.from([5, cmd, 0, 1, 127, 0, 0, 1, 0, 80])]);
        assert.deepEqual([...r.subarray(0, 4)], [5, 0, 5, SOCKS_REPLY.commandNotSupported]);
      }
      // Unknown address type: 8.
      const r8 = await raw(port, [Buffer.from([5, 1, 0]), Buffer.from([5, 1, 0, 9, 0, 0])]);
      assert.deepEqual([...r8.subarray(0, 4)], [5, 0, 5, SOCKS_REPLY.addressTypeNotSupported]);
      // Request with a wrong version: closed.
      const rv = await raw(port, [Buffer.from([5, 1, 0]), Buffer.from([4, 1, 0, 1, 127, 0, 0, 1, 0, 80])]);
      assert.deepEqual([...rv], [5, 0]);
      // Greeting byte by byte works (fragmentation), then a request split too.
      const frag = [5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, e.port >> 8, e.port & 255].map((b) => Buffer.from([b]));
      const s = connect({ port, host: '127.0.0.1' });
      await once(s, 'connect');
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      for (const f of frag) {
        s.write(f);
        await new Promise((r) => setTimeout(r, 5));
      }
      s.write('ping');
      await new Promise((r) => setTimeout(r, 200));
      const all = Buffer.concat(got);
      assert.deepEqual([...all.subarray(0, 4)], [5, 0, 5, 0]);
      assert.equal(all.subarray(12).toString(), 'ping');
      s.destroy();
      // Silent client and half a greeting: closed by the greeting timeout.
      const t0 = Date.now();
      assert.equal((await raw(port, [Buffer.from([5])])).length, 0);
      assert.ok(Date.now() - t0 < 2500);
      // Random garbage never crashes it.
      for (let i = 0; i < 30; i++) await raw(port, [randomBytes(1 + (i % 40))], 1).catch(() => undefined);
      await echoWorks(port, { host: '127.0.0.1', port: e.port });
      assert.ok(socks.stats.protocolErrors >= 8, String(socks.stats.protocolErrors));
    } finally {
      await socks.close();
      e.server.close();
    }
  },
);

test('limits: clients beyond maxClients are closed at once', { timeout: 10_000 }, async () => {
  const { socks, port } = await startSocks({ maxClients: 2, greetingTimeoutMs: 3000 });
  const held: Socket[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const s = connect({ port, host: '127.0.0.1' });
      await once(s, 'connect');
      held.push(s);
    }
    await new Promise((r) => setTimeout(r, 50));
    const extra = await raw(port, [Buffer.from([5, 1, 0])]);
    assert.equal(extra.length, 0);
    assert.equal(socks.stats.refusedBusy, 1);
  } finally {
    for (const s of held) s.destroy();
    await socks.close();
  }
});

test('reply codes of typed errors and reply encoding', () => {
  assert.equal(socksReplyFor(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 5);
  assert.equal(socksReplyFor(Object.assign(new Error('x'), { code: 'ENETUNREACH' })), 3);
  assert.equal(socksReplyFor(Object.assign(new Error('x'), { code: 'ETIMEDOUT' })), 6);
  assert.equal(socksReplyFor(new PunchSessionError('PUNCH_OVERLAY_DIAL', 'x')), 4);
  assert.equal(socksReplyFor(new PunchSessionError('PUNCH_NAT_UNSUITABLE', 'x')), 2);
  assert.equal(socksReplyFor(new PunchSessionError('PUNCH_SPRAY_LIMIT', 'x', { limit: 'sessions-per-minute' })), 2);
  assert.equal(socksReplyFor(new PunchSessionError('PUNCH_CONNECT_TIMEOUT', 'x')), 6);
  assert.equal(socksReplyFor(new Error('?')), 1);
  assert.deepEqual([...encodeReply(0, { address: '10.1.2.3', port: 258 })], [5, 0, 0, 1, 10, 1, 2, 3, 1, 2]);
  assert.deepEqual([...encodeReply(0, { address: '::ffff:10.1.2.3', port: 1 })].slice(3, 8), [1, 10, 1, 2, 3]);
  const v6 = encodeReply(0, { address: 'fd00::1:2', port: 1 });
  assert.equal(v6.length, 22);
  assert.equal(v6.subarray(4, 20).toString('hex'), 'fd000000000000000000000000010002');
  const req = parseRequest(
    Buffer.concat([
      Buffer.from([5, 1, 0, 4]),
      Buffer.from('fd000000000000000000000000010002', 'hex'),
      Buffer.from([0, 80]),
    ]),
  );
  assert.ok('value' in req);
  assert.deepEqual(req.value, { atyp: 'ipv6', host: 'fd00::1:2', port: 80 });
});

test(
  'proxy daemon: plain CONNECT goes through; a --known destination is punched (overlay down → host unreachable)',
  { timeout: 30_000 },
  async () => {
    const e = await echoServer();
    const dead = await echoServer();
    dead.server.close();
    await once(dead.server, 'close');
    const lines: string[] = [];
    const onion = formatOnion(randomBytes(32));
    const cfg = loadConfig({
      args: [
        '--listen',
        '127.0.0.1:0',
        '--allowloopback',
        '--proxy',
        `127.0.0.1:${dead.port}`,
        '--known',
        `${onion}:8333@198.51.100.7:8333`,
        '--network',
        'regtest',
      ],
    });
    const ac = new AbortController();
    let ready!: (i: Record<string, unknown>) => void;
    const up = new Promise<Record<string, unknown>>((r) => (ready = r));
    const log = new Logger({ format: 'json', level: 'debug', write: (l) => lines.push(l) });
    const done = runProxy(cfg, log, { ready, signal: ac.signal });
    try {
      const info = await up;
      const port = Number(String(info.socks).split(':').pop());
      await echoWorks(port, { host: '127.0.0.1', port: e.port });
      await assert.rejects(
        SocksClient.createConnection({
          proxy: { host: '127.0.0.1', port, type: 5 },
          command: 'connect',
          destination: { host: '198.51.100.7', port: 8333 },
          timeout: 20_000,
        }),
        /HostUnreachable/,
      );
      const events = lines.map((l) => JSON.parse(l) as { event: string; error?: { code?: string } });
      assert.ok(events.some((x) => x.event === 'punch-start'));
      const failed = events.find((x) => x.event === 'punch-failed');
      assert.equal(failed?.error?.code, 'PUNCH_OVERLAY_DIAL');
    } finally {
      ac.abort();
      assert.equal(await done, 0);
      e.server.close();
    }
    assert.ok(lines.some((l) => l.includes('"event":"stopped"')));
  },
);
