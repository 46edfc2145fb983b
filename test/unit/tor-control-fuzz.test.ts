/**
 * Fuzzed control-port replies. The peer here is a FAKE control server on loopback that sends random and mutated
 * reply lines: a fault a real tor never produces, so it cannot be provoked with one. Every request must settle
 * with a value or a typed TorControlError within its timeout: no hang, no crash, no untyped error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createServer, type Server, type Socket } from 'node:net';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorControlClient } from '../../src/overlay/tor/control.js';
import { TorControlError } from '../../src/overlay/tor/errors.js';

interface Script {
  payload: Buffer;
  close: boolean;
}

/** A fake control server: on each command line it writes the next scripted payload. */
async function fakeServer(): Promise<{
  server: Server;
  port: number;
  setScript: (s: Script) => void;
  sockets: Set<Socket>;
}> {
  let script: Script = { payload: Buffer.alloc(0), close: true };
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
    let sent = false;
    sock.on('data', () => {
      if (sent) return;
      sent = true;
      sock.write(script.payload);
      if (script.close) sock.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, port, setScript: (s) => (script = s), sockets };
}

const VALID = [
  '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n',
  '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/nonexistent/cookie"\r\n250 OK\r\n',
  '250 AUTHCHALLENGE SERVERHASH=' + 'ab'.repeat(32) + ' SERVERNONCE=' + 'cd'.repeat(32) + '\r\n',
  '250-ServiceID=' + 'a'.repeat(56) + '\r\n250-PrivateKey=ED25519-V3:AAAA\r\n250 OK\r\n',
  '250+version=\r\n0.4.9.11\r\n.\r\n250 OK\r\n',
  '650 HS_DESC UPLOADED ' + 'a'.repeat(56) + ' UNKNOWN $AAAA\r\n250 OK\r\n',
  '515 Authentication failed\r\n',
  '552 Unknown onion\r\n',
];

const line = fc
  .tuple(
    fc.oneof(
      fc.integer({ min: 0, max: 999 }).map((n) => String(n).padStart(3, '0')),
      fc.string({ maxLength: 4 }),
    ),
    fc.constantFrom(' ', '-', '+', '', 'x'),
    fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.constantFrom('PROTOCOLINFO 1', 'AUTH METHODS=', 'ServiceID=', 'OK', '.', 'AUTHCHALLENGE SERVERHASH=zz'),
    ),
    fc.constantFrom('\r\n', '\n', '\r', ''),
  )
  .map(([s, sep, t, eol]) => s + sep + t + eol);

const mutated = fc
  .tuple(fc.constantFrom(...VALID), fc.nat(), fc.nat(), fc.string({ maxLength: 8 }))
  .map(([v, a, b, ins]) => {
    const i = a % (v.length + 1);
    const j = Math.min(v.length, i + (b % 6));
    return v.slice(0, i) + ins + v.slice(j);
  });

const payload = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u)),
  fc.array(line, { maxLength: 12 }).map((ls) => Buffer.from(ls.join(''))),
  mutated.map((s) => Buffer.from(s)),
  fc.constantFrom(...VALID).map((s) => Buffer.from(s)),
  fc.integer({ min: 1100, max: 3000 }).map((n) => Buffer.from('250-' + 'x'.repeat(n))), // longer than the cap
);

test('fuzzed replies from a fake control server give typed errors, never a hang or a crash', async () => {
  const fake = await fakeServer();
  const dir = mkdtempSync(join(tmpdir(), 'op-torfuzz-'));
  const cookieFile = join(dir, 'cookie');
  writeFileSync(cookieFile, Buffer.alloc(32, 7));
  const ops: Array<(c: TorControlClient) => Promise<unknown>> = [
    (c) => c.protocolInfo(),
    (c) => c.authenticate({}),
    (c) => c.authenticate({ method: 'SAFECOOKIE', cookieFile }),
    (c) => c.authenticate({ method: 'HASHEDPASSWORD', password: 'pw' }),
    (c) => c.getInfo(['version']),
    (c) => c.addOnion({ ports: [{ virtual: 80, target: '127.0.0.1:1' }] }),
    (c) => c.delOnion('a'.repeat(56)),
    (c) => c.setEvents(['HS_DESC']),
  ];
  const timeoutMs = 100;
  try {
    await fc.assert(
      fc.asyncProperty(payload, fc.boolean(), fc.integer({ min: 0, max: ops.length - 1 }), async (p, keepOpen, op) => {
        fake.setScript({ payload: p, close: !keepOpen });
        const t0 = Date.now();
        let c: TorControlClient | undefined;
        try {
          // open() is inside the try: on a loaded machine even the loopback connect may hit the short timeout,
          // and that must be a typed error too.
          c = await TorControlClient.open({ port: fake.port, timeoutMs, maxLineBytes: 1024, maxReplyBytes: 8192 });
          await ops[op]!(c);
        } catch (e) {
          assert.ok(e instanceof TorControlError, `untyped error: ${String(e)}`);
          const typed = ['AUTH_FAILED', 'AUTH_UNSAFE_METHOD', 'COOKIE_UNREADABLE', 'COOKIE_BAD_SIZE', 'PROTOCOL'];
          const codes = new RegExp(`^TOR_(${[...typed, 'TIMEOUT', 'CLOSED', 'CONNECT'].join('|')}|REPLY_\\d{3})$`);
          assert.match(e.code, codes);
        } finally {
          c?.close();
        }
        // Settles a bounded time after the request timeout (SAFECOOKIE makes two requests); the slack absorbs
        // scheduling delays on a loaded 2-core machine, while a hang would still fail.
        assert.ok(Date.now() - t0 < 3 * timeoutMs + 3000, `took ${Date.now() - t0} ms`);
      }),
      { numRuns: 200 },
    );
  } finally {
    for (const s of fake.sockets) s.destroy();
    await new Promise((r) => fake.server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SAFECOOKIE refuses a server that cannot prove it knows the cookie (fake server, wrong SERVERHASH)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'op-torfuzz-'));
  const cookieFile = join(dir, 'cookie');
  writeFileSync(cookieFile, Buffer.alloc(32, 7));
  let authenticated = false;
  const server = createServer((sock) => {
    sock.on('error', () => {});
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (l.startsWith('PROTOCOLINFO'))
          sock.write(`250-PROTOCOLINFO 1\r\n250-AUTH METHODS=SAFECOOKIE COOKIEFILE="${cookieFile}"\r\n250 OK\r\n`);
        else if (l.startsWith('AUTHCHALLENGE'))
          sock.write(`250 AUTHCHALLENGE SERVERHASH=${'00'.repeat(32)} SERVERNONCE=${'11'.repeat(32)}\r\n`);
        else if (l.startsWith('AUTHENTICATE')) {
          authenticated = true;
          sock.write('250 OK\r\n');
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as { port: number }).port;
    await assert.rejects(
      TorControlClient.connect({ port, timeoutMs: 2000 }),
      (e: unknown) => e instanceof TorControlError && e.code === 'TOR_AUTH_SERVER_HASH',
    );
    assert.equal(authenticated, false, 'the client hash must not be sent to an unproven server');
  } finally {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a request to a silent control port times out with TOR_TIMEOUT and closes the connection', async () => {
  const socks = new Set<Socket>();
  const server = createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as { port: number }).port;
    const c = await TorControlClient.open({ port, timeoutMs: 100 });
    const p1 = c.protocolInfo();
    const p2 = c.getInfo(['version']);
    await assert.rejects(p1, (e: unknown) => e instanceof TorControlError && e.code === 'TOR_TIMEOUT');
    await assert.rejects(p2, (e: unknown) => e instanceof TorControlError && e.code === 'TOR_TIMEOUT');
    assert.equal(c.isClosed, true);
    await assert.rejects(c.protocolInfo(), TorControlError);
    await assert.rejects(
      c.raw('GETINFO x\r\nSIGNAL HALT'),
      (e: unknown) => e instanceof TorControlError && e.code === 'TOR_BAD_ARGUMENT',
    );
  } finally {
    for (const s of socks) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

test('connecting to a closed port gives TOR_CONNECT', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  await assert.rejects(
    TorControlClient.open({ port, timeoutMs: 1000 }),
    (e: unknown) => e instanceof TorControlError && e.code === 'TOR_CONNECT',
  );
});
