/**
 * A HOSTILE control port (a fake, on purpose: something else listening where tor's control port should be is
 * exactly the threat, and real tor never behaves like this). It offers plain COOKIE and names a cookie file of
 * its choosing. The client must use SAFECOOKIE only, send nothing derived from the file, and read at most
 * 33 bytes of it. Bytes read are measured with the kernel's own counter (/proc/self/io rchar).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync, truncateSync, readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorControlClient, readCookie } from '../../src/overlay/tor/control.js';
import { TorControlError } from '../../src/overlay/tor/errors.js';

const BIG = 50 * 1024 * 1024;
const SECRET = Buffer.from('0123456789abcdef0123456789abcdef'); // a 32-byte "secret" file the port points at

/** Bytes this process has read through read(2)-like calls so far (Linux). */
function rchar(): number {
  const m = /^rchar:\s*(\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  return Number(m![1]);
}

interface Hostile {
  server: Server;
  port: number;
  /** Every line the client sent. */
  lines: string[];
  close(): Promise<void>;
}

/** The hostile port: PROTOCOLINFO names `methods` and `cookieFile`; everything else is recorded and OK'd. */
async function hostilePort(methods: string, cookieFile: string): Promise<Hostile> {
  const lines: string[] = [];
  const socks = new Set<Socket>();
  const server = createServer((sock) => {
    socks.add(sock);
    sock.on('error', () => {});
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 2);
        lines.push(l);
        if (l.startsWith('PROTOCOLINFO')) {
          sock.write(
            `250-PROTOCOLINFO 1\r\n250-AUTH METHODS=${methods} COOKIEFILE="${cookieFile}"\r\n` +
              '250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n',
          );
        } else if (l.startsWith('AUTHCHALLENGE')) {
          // It does not know the cookie, so it cannot compute SERVERHASH.
          sock.write(`250 AUTHCHALLENGE SERVERHASH=${'00'.repeat(32)} SERVERNONCE=${'11'.repeat(32)}\r\n`);
        } else sock.write('250 OK\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    port: (server.address() as { port: number }).port,
    lines,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const isCode = (code: string) => (e: unknown) => e instanceof TorControlError && e.code === code;

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'op-torhostile-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const T1 = 'hostile control port offering only COOKIE with a 32-byte secret file: refused, nothing of the file is sent';
test(
  T1,
  withDir(async (dir) => {
    const file = join(dir, 'secret');
    writeFileSync(file, SECRET);
    const h = await hostilePort('COOKIE', file);
    try {
      await assert.rejects(
        TorControlClient.connect({ port: h.port, timeoutMs: 3000 }),
        (e: unknown) => e instanceof TorControlError && e.code === 'TOR_AUTH_UNSAFE_METHOD',
      );
      assert.ok(!h.lines.some((l) => l.startsWith('AUTHENTICATE')), `sent: ${h.lines.join(' | ')}`);
      assert.ok(!h.lines.some((l) => l.toLowerCase().includes(SECRET.toString('hex'))), 'the file leaked to the port');
    } finally {
      await h.close();
    }
  }),
);

const T2 = 'hostile control port offering COOKIE with a 50 MB cookie file: SAFECOOKIE only and at most 33 bytes read';
test(
  T2,
  withDir(async (dir) => {
    const file = join(dir, 'big');
    writeFileSync(file, '');
    truncateSync(file, BIG); // sparse: costs no disk, but read(2) still returns (and counts) every byte
    for (const methods of ['COOKIE', 'COOKIE,SAFECOOKIE']) {
      const h = await hostilePort(methods, file);
      try {
        const before = rchar();
        await assert.rejects(
          TorControlClient.connect({ port: h.port, timeoutMs: 3000 }),
          (e: unknown) =>
            e instanceof TorControlError &&
            e.code === (methods === 'COOKIE' ? 'TOR_AUTH_UNSAFE_METHOD' : 'TOR_COOKIE_BAD_SIZE'),
        );
        const read = rchar() - before;
        // The replies on the socket and /proc reads are a few KB; reading the file whole would be 50 MB.
        assert.ok(read < 256 * 1024, `${methods}: read ${read} bytes`);
        assert.ok(!h.lines.some((l) => l.startsWith('AUTHENTICATE')), `${methods}: sent ${h.lines.join(' | ')}`);
      } finally {
        await h.close();
      }
    }
  }),
);

const T3 = 'hostile control port offering SAFECOOKIE: the client hash is never sent without a valid SERVERHASH';
test(
  T3,
  withDir(async (dir) => {
    const file = join(dir, 'secret');
    writeFileSync(file, SECRET);
    const h = await hostilePort('COOKIE,SAFECOOKIE', file);
    try {
      await assert.rejects(
        TorControlClient.connect({ port: h.port, timeoutMs: 3000 }),
        (e: unknown) => e instanceof TorControlError && e.code === 'TOR_AUTH_SERVER_HASH',
      );
      assert.ok(h.lines.some((l) => l.startsWith('AUTHCHALLENGE SAFECOOKIE ')));
      assert.ok(!h.lines.some((l) => l.startsWith('AUTHENTICATE')));
    } finally {
      await h.close();
    }
  }),
);

const T4 = 'readCookie: exactly 32 bytes from a regular file; FIFOs, devices, short and long files are typed errors';
test(
  T4,
  withDir(async (dir) => {
    const ok = join(dir, 'ok');
    writeFileSync(ok, SECRET);
    assert.deepEqual(await readCookie(ok), SECRET);
    const short = join(dir, 'short');
    writeFileSync(short, SECRET.subarray(0, 31));
    const long = join(dir, 'long');
    writeFileSync(long, Buffer.concat([SECRET, Buffer.from('x')]));
    for (const f of [short, long]) {
      await assert.rejects(readCookie(f), isCode('TOR_COOKIE_BAD_SIZE'));
    }
    await assert.rejects(readCookie(join(dir, 'missing')), isCode('TOR_COOKIE_UNREADABLE'));
    await assert.rejects(readCookie(undefined), isCode('TOR_COOKIE_UNREADABLE'));
    // /dev/zero would give 33 bytes of zeros forever; a FIFO without a writer would block a plain open forever.
    await assert.rejects(readCookie('/dev/zero'), isCode('TOR_COOKIE_UNREADABLE'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    assert.ok(existsSync(fifo));
    const t0 = Date.now();
    await assert.rejects(readCookie(fifo), isCode('TOR_COOKIE_UNREADABLE'));
    assert.ok(Date.now() - t0 < 2000);
  }),
);
