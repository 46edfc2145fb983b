/**
 * SOCKS5 guardrails (issue 9, item 9), on real loopback sockets with the `socks` npm client and raw bytes:
 * the 519-byte preamble cap, `.onion` names sent to the `onion` route (a clear failure when it is down) and
 * `.b32.i2p` refused without `i2psam`, never through DNS, other names only with `resolvenames`,
 * loopback destinations only with `allowloopback`, a warning for a non-loopback listen address, rate-limited
 * lines about refused clients, and the right error code when a client goes away during a connect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { SocksClient } from 'socks';
import { Socks5Server } from '../../src/daemon/socks5.js';
import { Logger } from '../../src/daemon/log.js';
import { loadConfig } from '../../src/daemon/config.js';
import { runProxy } from '../../src/daemon/proxy.js';
import { formatOnion } from '../../src/wire/index.js';
import { randomBytes } from 'node:crypto';

interface Rec {
  event: string;
  level: string;
  error?: { code?: string };
  [k: string]: unknown;
}

async function listenTcp(handler: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

/** Runs the real proxy daemon with `args`; returns its SOCKS port, its log records and a stop function. */
async function proxy(args: string[]): Promise<{ port: number; recs: Rec[]; stop: () => Promise<number> }> {
  const lines: string[] = [];
  const cfg = loadConfig({ args: ['--network', 'regtest', ...args] });
  const ac = new AbortController();
  let ready!: (i: Record<string, unknown>) => void;
  const up = new Promise<Record<string, unknown>>((r) => (ready = r));
  const log = new Logger({ format: 'json', level: 'debug', write: (l) => lines.push(l) });
  const done = runProxy(cfg, log, { ready, signal: ac.signal });
  done.catch(() => undefined);
  const info = await Promise.race([
    up,
    done.then(() => {
      throw new Error('proxy exited');
    }),
  ]);
  const recs: Rec[] = [];
  const parsed = new Proxy(recs, {
    get(target, p, r) {
      target.length = 0;
      for (const l of lines) target.push(JSON.parse(l) as Rec);
      return Reflect.get(target, p, r);
    },
  });
  return { port: Number(String(info.socks).split(':').pop()), recs: parsed, stop: async () => (ac.abort(), done) };
}

/** One CONNECT through the proxy with the socks client; resolves 'ok' or the reply code the client reports. */
async function socksTry(port: number, host: string, dport: number): Promise<string> {
  try {
    const { socket } = await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port, type: 5 },
      command: 'connect',
      destination: { host, port: dport },
      timeout: 10_000,
    });
    socket.destroy();
    return 'ok';
  } catch (e) {
    return (e as Error).message;
  }
}

/** Raw request with a domain name; returns the reply code byte (or -1 when closed without a reply). */
async function rawDomain(port: number, name: string, dport: number): Promise<number> {
  const s = connect({ port, host: '127.0.0.1' });
  s.on('error', () => undefined);
  await once(s, 'connect');
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  const n = Buffer.from(name, 'latin1');
  s.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, n.length]), n, Buffer.from([dport >> 8, dport & 255])]));
  await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 5000))]);
  s.destroy();
  const b = Buffer.concat(got);
  return b.length >= 4 ? b[3]! : -1;
}

test(
  'early bytes: at most 519 bytes before the reply; more closes the client and aborts its connect',
  { timeout: 20_000 },
  async () => {
    // A connector that never completes (as a punch over a slow overlay would) until it is aborted.
    const aborted: unknown[] = [];
    const socks = new Socks5Server({
      connect: (_req, signal) =>
        new Promise((_r, rej) =>
          signal.addEventListener(
            'abort',
            () => {
              aborted.push(signal.reason);
              rej(signal.reason);
            },
            { once: true },
          ),
        ),
      log: new Logger({ write: () => undefined }),
    });
    const { port } = await socks.listen('127.0.0.1', 0);
    const send = async (early: number): Promise<{ closed: boolean; bytes: Buffer }> => {
      const s = connect({ port, host: '127.0.0.1' });
      s.on('error', () => undefined);
      await once(s, 'connect');
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      let closed = false;
      s.once('close', () => (closed = true));
      // greeting (3) + IPv4 request (10), then early data while the connect is pending.
      s.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 198, 51, 100, 1, 0x20, 0x8d]));
      await new Promise((r) => setTimeout(r, 100));
      s.write(Buffer.alloc(early, 0x41));
      await new Promise((r) => setTimeout(r, 400));
      s.destroy();
      return { closed, bytes: Buffer.concat(got) };
    };
    try {
      const fits = await send(519 - 13);
      assert.equal(fits.closed, false, '519 bytes in total are accepted');
      const over = await send(519 - 13 + 1);
      assert.equal(over.closed, true, '520 bytes close the client');
      assert.deepEqual([...over.bytes], [5, 0], 'no reply but the method selection');
      const big = await send(64 * 1024);
      assert.equal(big.closed, true);
      await new Promise((r) => setTimeout(r, 100));
      // Every pending connect was aborted: the two refused ones by the server, the first by our hang-up.
      assert.equal(aborted.length, 3);
      // A client that sends everything at once (greeting + request + too much) is refused before any connect.
      const s = connect({ port, host: '127.0.0.1' });
      s.on('error', () => undefined);
      await once(s, 'connect');
      s.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 1, 198, 51, 100, 1, 0x20, 0x8d]), Buffer.alloc(1000)]));
      await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 2000))]);
      assert.ok(s.destroyed || s.readableEnded, 'closed');
      s.destroy();
      assert.equal(aborted.length, 3);
      assert.ok(socks.stats.protocolErrors >= 2, String(socks.stats.protocolErrors));
    } finally {
      await socks.close();
    }
  },
);

test(
  '.onion goes to the onion route (down: network unreachable), .b32.i2p without i2psam is refused, ' +
    'never resolved; other names need resolvenames',
  { timeout: 30_000 },
  async () => {
    const onion = formatOnion(randomBytes(32));
    // The onion route points at a port nothing listens on: the Tor route is unreachable.
    const closed = await listenTcp(() => undefined);
    const closedPort = closed.port;
    await new Promise<void>((r) => closed.server.close(() => r()));
    const p = await proxy(['--listen', '127.0.0.1:0', '--onion', `127.0.0.1:${closedPort}`]);
    try {
      assert.equal(await rawDomain(p.port, onion, 8333), 3);
      assert.equal(await rawDomain(p.port, onion.toUpperCase() + '.', 8333), 3);
      assert.equal(await rawDomain(p.port, `${'a'.repeat(52)}.b32.i2p`, 0x208d), 2);
      // Not a v3 onion: refused by the route before any connection (host unreachable), still never resolved.
      assert.equal(await rawDomain(p.port, 'seed.bitcoin.example.ONION.', 8333), 4);
      // An address-book .i2p name has no route at all.
      assert.equal(await rawDomain(p.port, 'example.i2p', 8333), 2);
      // Resolution is off by default: an ordinary name (even localhost) is refused, not looked up.
      assert.equal(await rawDomain(p.port, 'localhost', 8333), 2);
      const failed = p.recs.filter((r) => r.event === 'socks-connect-failed');
      assert.ok(
        failed.some((r) => r.error?.code === 'SOCKS_OVERLAY_NAME'),
        JSON.stringify(failed),
      );
      assert.ok(
        failed.some((r) => r.error?.code === 'TOR_SOCKS_PROXY_UNREACHABLE'),
        JSON.stringify(failed),
      );
      const hint = p.recs.filter((r) => r.event === 'overlay-not-configured');
      assert.equal(hint.length, 1, JSON.stringify(hint));
      assert.equal(await rawDomain(p.port, `${'e'.repeat(52)}.b32.i2p`, 8333), 2);
      assert.equal(p.recs.filter((r) => r.event === 'overlay-not-configured').length, 1, 'the hint is logged once');
      assert.match(String(hint[0]!['fix']), /i2psam/);
      assert.ok(
        failed.some((r) => r.error?.code === 'SOCKS_NAME_NOT_RESOLVED'),
        JSON.stringify(failed),
      );
      assert.ok(
        !failed.some((r) => r.error?.code === 'ENOTFOUND' || r.error?.code === 'EAI_AGAIN'),
        'no DNS lookup happened',
      );
    } finally {
      assert.equal(await p.stop(), 0);
    }
  },
);

test(
  '.b32.i2p with i2psam set goes to the SAM bridge (down: network unreachable); an address-book name is refused',
  { timeout: 30_000 },
  async () => {
    const closed = await listenTcp(() => undefined);
    const closedPort = closed.port;
    await new Promise<void>((r) => closed.server.close(() => r()));
    const p = await proxy(['--listen', '127.0.0.1:0', '--i2psam', `127.0.0.1:${closedPort}`]);
    try {
      // Any port but 0 (the parser's guard, general failure): SAM 3.1 has no ports, the route ignores it.
      assert.equal(await rawDomain(p.port, `${'c'.repeat(52)}.b32.i2p`, 0), 1);
      assert.equal(await rawDomain(p.port, `${'c'.repeat(52)}.b32.i2p`, 8333), 3);
      // The session failed; the next request tries again (not a remembered failure).
      assert.equal(await rawDomain(p.port, `${'d'.repeat(52)}.B32.I2P`, 8333), 3);
      assert.equal(await rawDomain(p.port, 'example.i2p', 8333), 2);
      const failed = p.recs.filter((r) => r.event === 'socks-connect-failed');
      assert.equal(failed.filter((r) => r.error?.code === 'SAM_UNREACHABLE').length, 2, JSON.stringify(failed));
      assert.ok(!p.recs.some((r) => r.event === 'overlay-not-configured'));
    } finally {
      assert.equal(await p.stop(), 0);
    }
  },
);

test(
  'loopback destinations are refused unless allowloopback; resolved names are checked too',
  { timeout: 30_000 },
  async () => {
    const echo = await listenTcp((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    const p = await proxy(['--listen', '127.0.0.1:0']);
    try {
      assert.match(await socksTry(p.port, '127.0.0.1', echo.port), /NotAllowed/);
      assert.match(await socksTry(p.port, '127.1.2.3', echo.port), /NotAllowed/);
      assert.match(await socksTry(p.port, '::1', echo.port), /NotAllowed/);
      assert.match(await socksTry(p.port, '0.0.0.0', echo.port), /NotAllowed/);
      assert.match(await socksTry(p.port, '::ffff:127.0.0.1', echo.port), /NotAllowed/);
      assert.ok(p.recs.some((r) => r.event === 'socks-connect-failed' && r.error?.code === 'SOCKS_LOOPBACK'));
    } finally {
      await p.stop();
    }
    // With resolvenames but not allowloopback, "localhost" resolves to loopback and is refused after the lookup.
    const r = await proxy(['--listen', '127.0.0.1:0', '--resolvenames']);
    try {
      assert.match(await socksTry(r.port, 'localhost', echo.port), /NotAllowed/);
    } finally {
      await r.stop();
    }
    const q = await proxy(['--listen', '127.0.0.1:0', '--allowloopback', '--resolvenames']);
    try {
      assert.equal(await socksTry(q.port, '127.0.0.1', echo.port), 'ok');
      assert.equal(await socksTry(q.port, 'localhost', echo.port), 'ok');
      // An overlay name without a route stays refused (never resolved) whatever the keys say.
      assert.equal(await rawDomain(q.port, `${'b'.repeat(52)}.b32.i2p`, 8333), 2);
    } finally {
      await q.stop();
      echo.server.close();
    }
  },
);

test('a non-loopback listen address is warned about loudly; a loopback one is not', { timeout: 20_000 }, async () => {
  const lo = await proxy(['--listen', '127.0.0.1:0']);
  await lo.stop();
  assert.ok(!lo.recs.some((r) => r.event === 'socks-listen-exposed'));
  // The wildcard address, bound for a moment on a free port and only connected to over loopback.
  const any = await proxy(['--listen', '0.0.0.0:0']);
  try {
    assert.equal(await rawDomain(any.port, `${'b'.repeat(52)}.b32.i2p`, 8333), 2);
  } finally {
    await any.stop();
  }
  const w = any.recs.find((r) => r.event === 'socks-listen-exposed');
  assert.ok(w, 'warning logged');
  assert.equal(w.level, 'warn');
  assert.match(String(w.warning), /non-loopback/);
});

test(
  'a flood of refused clients writes a bounded number of log lines with a suppressed count',
  { timeout: 60_000 },
  async () => {
    const lines: string[] = [];
    const socks = new Socks5Server({
      connect: () => Promise.reject(new Error('unused')),
      log: new Logger({ format: 'json', write: (l) => lines.push(l) }),
      logLimit: { intervalMs: 60_000, burst: 5 },
    });
    const { port } = await socks.listen('127.0.0.1', 0);
    const N = 600;
    try {
      for (let i = 0; i < N; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            const s = connect({ port, host: '127.0.0.1' });
            s.on('error', () => undefined);
            await once(s, 'connect');
            s.write(Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]));
            await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 2000))]);
            s.destroy();
          }),
        );
      }
      assert.equal(socks.stats.protocolErrors, N);
      const bad = lines.filter((l) => l.includes('"socks-bad-client"'));
      assert.equal(bad.length, 5, `${bad.length} lines for ${N} refused clients`);
    } finally {
      await socks.close();
    }
    // close() reports what was suppressed.
    const sup = lines.map((l) => JSON.parse(l) as Rec).find((r) => r.event === 'log-suppressed');
    assert.ok(sup, 'suppressed count reported');
    assert.equal(sup.suppressed, N - 5);
    assert.equal(sup.of, 'socks-bad-client');
  },
);

test(
  'a client that goes away during a connect: logged with SOCKS_CLOSED, not an AbortError code',
  { timeout: 60_000 },
  async () => {
    // A "Tor SOCKS port" that accepts and never answers: the punch's overlay dial stays pending.
    const held: Socket[] = [];
    const silent = await listenTcp((s) => {
      s.on('error', () => undefined);
      held.push(s);
    });
    const onion = formatOnion(randomBytes(32));
    const p = await proxy([
      '--listen',
      '127.0.0.1:0',
      '--proxy',
      `127.0.0.1:${silent.port}`,
      '--known',
      `${onion}:8333@198.51.100.7:8333`,
    ]);
    try {
      const s = connect({ port: p.port, host: '127.0.0.1' });
      s.on('error', () => undefined);
      await once(s, 'connect');
      s.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 198, 51, 100, 7, 0x20, 0x8d]));
      // Wait until the punch is under way, then hang up.
      for (let i = 0; i < 100 && !p.recs.some((r) => r.event === 'punch-start'); i++)
        await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      s.destroy();
      let failed: Rec | undefined;
      for (let i = 0; i < 100 && !(failed = p.recs.find((r) => r.event === 'socks-connect-failed')); i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.ok(failed, `connect failure logged: ${p.recs.map((r) => r.event).join(' ')}`);
      assert.equal(failed.error?.code, 'SOCKS_CLOSED', JSON.stringify(failed));
    } finally {
      await p.stop();
      for (const s of held) s.destroy();
      silent.server.close();
    }
  },
);
