/**
 * serve --handoff unix:PATH end to end over a real private Tor network on loopback (no root needed): as in
 * daemon-e2e.test.ts, serve and proxy run as the real `onionpunch` command, each with its own native engine,
 * configured only through operator flags, and the punch is a real simultaneous open on 127.0.0.1. serve then hands
 * the verified punched socket itself to the receiver on PATH (SCM_RIGHTS + ImportPeerSocketV1) instead of
 * splicing it. The receiver is test/native/fixtures/handoff_receiver.py (Python stdlib), playing a patched
 * bitcoind A: it checks the header, sees B's real punched endpoint with getpeername, and answers B's version on
 * the received descriptor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SocksClient } from 'socks';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';
import { Peer } from '../../src/peer/index.js';
import { packageRoot } from '../../src/native/addon.js';
import { loopbackDaemonFlags, relayStandIn, verb } from '../helpers/daemon-verbs.js';

const hasPython = spawnSync('python3', ['-c', 'import socket; socket.recv_fds']).status === 0;

test(
  'serve --handoff unix:PATH: the punched socket goes to a Python receiver that does the handshake with B',
  {
    skip: hasPython ? false : 'python3 with socket.recv_fds is not installed',
    timeout: 150_000,
  },
  async (t) => {
    const lines: string[] = [];
    let net: PrivateTor | undefined;
    const closers: (() => void | Promise<void>)[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'onionpunch-serve-handoff-'));
    t.after(async () => {
      for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
      await net?.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const path = join(dir, 'import-peer.sock');
    const fixture = join(packageRoot(), 'test', 'native', 'fixtures', 'handoff_receiver.py');
    const rx = spawn('python3', [fixture, path, 'fabfb5da', '--timeout', '120']);
    closers.push(() => void rx.kill());
    const rxLines = createInterface({ input: rx.stdout })[Symbol.asyncIterator]();
    assert.equal((await rxLines.next()).value, 'ready');

    net = await startPrivateTor({ timeoutMs: 100_000 });
    const relay = await relayStandIn();
    closers.push(() => relay.close());
    const loop = await loopbackDaemonFlags();
    closers.push(() => loop.close());
    const common = loop.flags;
    const serve = verb(
      'serve',
      [
        ...common,
        '--torcontrol',
        `127.0.0.1:${net.controlA.port}`,
        '--handoff',
        `unix:${path}`,
        '--externalip',
        '127.0.0.1',
        '--punchport',
        '18444',
        '--announce',
        `127.0.0.1:${relay.port}`,
        '--resyninterval',
        '1000',
      ],
      lines,
    );
    closers.push(async () => void (await serve.stop()));
    assert.equal((await serve.ready).handoff, `unix:${path}`);

    const proxy = verb(
      'proxy',
      [
        ...common,
        '--listen',
        '127.0.0.1:0',
        '--proxy',
        `127.0.0.1:${net.socksB.port}`,
        '--peer',
        `127.0.0.1:${relay.port}`,
        '--punchprofile',
        'plain',
        '--resyninterval',
        '1037',
      ],
      lines,
    );
    closers.push(async () => void (await proxy.stop()));
    const socksPort = Number(
      String((await proxy.ready).socks)
        .split(':')
        .pop(),
    );
    const events = (): string[] => lines.map((l) => String((JSON.parse(l) as { event?: string }).event));
    const t0 = Date.now();
    while (!events().includes('announcement-learned') && Date.now() - t0 < 30_000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(events().includes('announcement-learned'), 'proxy learned the announcement');

    const { socket } = await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port: socksPort, type: 5 },
      command: 'connect',
      destination: { host: '127.0.0.1', port: 18444 },
      timeout: 100_000,
    });
    closers.push(() => void socket.destroy());
    const b = new Peer(socket, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 20_000 });
    const hs = await b.handshake();
    assert.equal(hs.version.userAgent, '/handoff-receiver.py:0.1/', 'B shook hands with the receiver');
    const res = JSON.parse((await rxLines.next()).value as string) as Record<string, unknown>;
    assert.equal(res.ok, true, JSON.stringify(res));
    assert.deepEqual(res.header, { magic: 0x53504942, version: 1, role: 0, transport: 0, flags: 0 });
    const sent = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.event === 'handoff-sent');
    assert.ok(sent, 'serve logged handoff-sent');
    // The receiver sees B's punched endpoint, not a loopback splice address of onionpunch's own.
    assert.equal(res.peer, sent.peer);
    assert.ok(!events().includes('bridge-open'), 'no splice bridge in fd mode');
    b.close();
    assert.equal(await proxy.stop(), 0);
    assert.equal(await serve.stop(), 0);
  },
);
