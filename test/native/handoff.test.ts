/**
 * `serve --handoff unix:PATH`: a verified punched socket goes to another process as an SCM_RIGHTS descriptor
 * with an ImportPeerSocketV1 header. The receiver is test/native/fixtures/handoff_receiver.py (Python's
 * standard library: socket.recv_fds), which checks the header and the socket and then speaks the Bitcoin
 * handshake itself on the received descriptor. The socket is a real loopback simultaneous open between two
 * engine plans; its other end plays B, the dialing peer.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Socket } from 'node:net';
import { packageRoot } from '../../src/native/addon.js';
import { NativeError, PunchEngine, probeBind, type PunchResult } from '../../src/native/engine.js';
import { ConfigError, HandoffError } from '../../src/daemon/errors.js';
import { loadConfig } from '../../src/daemon/config.js';
import { encodeImportPeerSocketV1, handOffFd, parseHandoffTarget, type HandoffRole } from '../../src/daemon/handoff.js';
import { FrameParser, PROTOCOL_VERSION, decodePayload, encodeMessage, type Frame } from '../../src/wire/index.js';

const LO = '127.0.0.1';
const NET = 'regtest';
const REGTEST_MAGIC = 'fabfb5da';
const hasPython = spawnSync('python3', ['-c', 'import socket; socket.recv_fds'], { encoding: 'utf8' }).status === 0;
const skip = hasPython ? false : 'python3 with socket.recv_fds (3.9+) is not installed';

const engA = new PunchEngine();
const engB = new PunchEngine();
const dir = mkdtempSync(join(tmpdir(), 'onionpunch-handoff-'));
after(async () => {
  await engA.stop();
  await engB.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function loopbackPair(): Promise<[PunchResult, PunchResult]> {
  const pa = probeBind({ address: LO, port: 0 }).port;
  const pb = probeBind({ address: LO, port: 0 }).port;
  const startAtNs = engA.now() + 30_000_000n;
  const common = { startAtNs, resynIntervalUs: 1000, deadlineMs: 8000 };
  return Promise.all([
    engA.punch({ ...common, local: { address: LO, port: pa }, remotes: [{ address: LO, port: pb }] }),
    engB.punch({ ...common, local: { address: LO, port: pb }, remotes: [{ address: LO, port: pa }] }),
  ]);
}

interface Receiver {
  child: ChildProcessWithoutNullStreams;
  result: Promise<Record<string, unknown>>;
}

/** Starts the Python receiver on `path` and waits until it listens. */
async function startReceiver(path: string): Promise<Receiver> {
  const fixture = join(packageRoot(), 'test', 'native', 'fixtures', 'handoff_receiver.py');
  const child = spawn('python3', [fixture, path, REGTEST_MAGIC, '--timeout', '10']);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout });
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(first.value, 'ready', `receiver did not start: ${stderr}`);
  const result = (async () => {
    const line = await it.next();
    assert.ok(!line.done, `receiver printed no result: ${stderr}`);
    return JSON.parse(line.value as string) as Record<string, unknown>;
  })();
  return { child, result };
}

/** Collects decoded frames from B's end of the punched socket. */
function frames(sock: Socket): { next: (cmd: string) => Promise<Frame> } {
  const parser = new FrameParser({ network: NET, maxPayload: 4096 });
  const got: Frame[] = [];
  const waiters: (() => void)[] = [];
  sock.on('data', (d: Buffer) => {
    const { frames: fs, error } = parser.push(d);
    if (error) sock.destroy(error);
    got.push(...fs);
    for (const w of waiters.splice(0)) w();
  });
  return {
    next: async (cmd: string): Promise<Frame> => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const i = got.findIndex((f) => f.command === cmd);
        if (i >= 0) return got.splice(i, 1)[0]!;
        if (Date.now() > deadline || sock.destroyed) throw new Error(`no ${cmd} from the receiver`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
  };
}

function version(): Buffer {
  return encodeMessage(NET, 'version', {
    version: PROTOCOL_VERSION,
    services: 0n,
    timestamp: BigInt(Math.floor(Date.now() / 1000)),
    addrRecv: { services: 0n, address: LO, port: 0 },
    addrFrom: { services: 0n, address: '::', port: 0 },
    nonce: 7n,
    userAgent: '/onionpunch-test-B:0.1/',
    startHeight: 0,
    relay: false,
  });
}

test('the ImportPeerSocketV1 header: 12 bytes, little-endian, magic "BIPS"', () => {
  assert.equal(encodeImportPeerSocketV1('responder').toString('hex'), '424950530100' + '0000' + '00000000');
  assert.equal(encodeImportPeerSocketV1('initiator').toString('hex'), '424950530100' + '0100' + '00000000');
  assert.equal(encodeImportPeerSocketV1('responder').subarray(0, 4).toString('latin1'), 'BIPS');
});

test('handoff targets: splice or unix:/absolute/path or unix:@abstract', () => {
  assert.deepEqual(parseHandoffTarget('splice'), { mode: 'splice' });
  assert.deepEqual(parseHandoffTarget('unix:/run/import.sock'), { mode: 'fd', path: '/run/import.sock' });
  assert.deepEqual(parseHandoffTarget('unix:@onionpunch'), { mode: 'fd', path: '@onionpunch' });
  for (const bad of ['unix:', 'unix:relative.sock', 'tcp:127.0.0.1:1', `unix:/${'x'.repeat(120)}`, 'unix:/a\0b']) {
    const isBad = (e: unknown): boolean => e instanceof HandoffError && e.code === 'HANDOFF_BAD_TARGET';
    assert.throws(() => parseHandoffTarget(bad), isBad);
  }
});

test('the handoff setting: default splice; a bad target is a ConfigError naming the key', () => {
  assert.equal(loadConfig({ args: [] }).handoff, 'splice');
  assert.equal(loadConfig({ args: ['--handoff', 'unix:/run/import.sock'] }).handoff, 'unix:/run/import.sock');
  assert.throws(
    () => loadConfig({ args: ['--handoff', 'unix:relative'] }),
    (e: unknown) =>
      e instanceof ConfigError && e.code === 'CONFIG_BAD_VALUE' && e.key === 'handoff' && e.source === 'flag',
  );
  assert.throws(
    () => loadConfig({ args: [], env: { ONIONPUNCH_HANDOFF: 'tcp:1.2.3.4:5' } }),
    (e: unknown) => e instanceof ConfigError && e.key === 'handoff' && e.source === 'env',
  );
});

for (const role of ['responder', 'initiator'] as HandoffRole[]) {
  test(
    `fd hand-off (${role}): the Python receiver gets the punched socket and does the Bitcoin handshake on it`,
    {
      skip,
      timeout: 30_000,
    },
    async () => {
      const path = join(dir, `import-${role}.sock`);
      const rx = await startReceiver(path);
      const [a, b] = await loopbackPair();
      try {
        const fromRx = frames(b.socket);
        // As responder, B's version goes out before the hand-off and waits in A's kernel buffer: the
        // receiver must still read it (onionpunch read nothing from the socket).
        if (role === 'responder') {
          b.socket.write(version());
          await new Promise((r) => setTimeout(r, 100));
        }
        const sent = handOffFd(a.socket, path, role);
        assert.equal(sent.peer, `${LO}:${b.local.port}`);
        assert.ok(a.socket.destroyed, 'onionpunch closed its copy');
        const v = await fromRx.next('version');
        if (role === 'initiator') b.socket.write(version());
        await fromRx.next('verack');
        b.socket.write(encodeMessage(NET, 'verack', {}));
        assert.equal(decodePayload('version', v.payload).userAgent, '/handoff-receiver.py:0.1/');
        await fromRx.next('ping'); // the receiver owns the connection after our copy closed
        const res = await rx.result;
        assert.equal(res.ok, true, JSON.stringify(res));
        const wantRole = role === 'initiator' ? 1 : 0;
        assert.deepEqual(res.header, { magic: 0x53504942, version: 1, role: wantRole, transport: 0, flags: 0 });
        assert.equal(res.metaLength, 12);
        assert.equal(res.fdCount, 1);
        // The receiver sees the real peer address (getpeername): B's punched endpoint.
        assert.equal(res.peer, `${LO}:${b.local.port}`);
        assert.equal(res.local, `${LO}:${a.local.port}`);
        assert.deepEqual(res.peerVersion, { version: PROTOCOL_VERSION, userAgent: '/onionpunch-test-B:0.1/' });
      } finally {
        a.socket.destroy();
        b.socket.destroy();
        rx.child.kill();
      }
    },
  );
}

test('no receiver: HANDOFF_SEND, the connect error as cause; the socket closed', { timeout: 20_000 }, async () => {
  const [a, b] = await loopbackPair();
  try {
    assert.throws(
      () => handOffFd(a.socket, join(dir, 'nobody.sock')),
      (e: unknown) => {
        assert.ok(e instanceof HandoffError && e.code === 'HANDOFF_SEND');
        assert.ok(e.cause instanceof NativeError);
        assert.equal(e.cause.code, 'ENOENT');
        assert.equal(e.cause.syscall, 'connect');
        return true;
      },
    );
    assert.ok(a.socket.destroyed);
    const noFd = (e: unknown): boolean => e instanceof HandoffError && e.code === 'HANDOFF_NO_FD';
    assert.throws(() => handOffFd(a.socket, join(dir, 'nobody.sock')), noFd);
  } finally {
    a.socket.destroy();
    b.socket.destroy();
  }
});
