/**
 * serve --handoff unix:PATH end to end over a real private Tor network on loopback (no root needed): as in
 * daemon-e2e.test.ts, "bitcoind B" dials through proxy's SOCKS5 and the session punches over Tor; serve then
 * hands the verified punched socket itself to the receiver on PATH (SCM_RIGHTS + ImportPeerSocketV1) instead
 * of splicing it. The receiver is test/native/fixtures/handoff_receiver.py (Python stdlib), playing a patched
 * bitcoind A: it checks the header, sees B's real punched endpoint with getpeername, and answers B's version on
 * the received descriptor. Loopback cannot cross SYNs, so that one step is a STAND-IN, as in daemon-e2e: A's
 * engine listens on its punch port (pausing accepted sockets, as the real engine's sockets read nothing until
 * asked) and B's engine connects to it with the native `connectFrom`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SocksClient } from 'socks';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';
import { Peer } from '../../src/peer/index.js';
import { verdictFrom, type EimVerdict } from '../../src/nat/eim-check.js';
import { loadConfig } from '../../src/daemon/config.js';
import { Logger } from '../../src/daemon/log.js';
import { runServe } from '../../src/daemon/serve.js';
import { runProxy } from '../../src/daemon/proxy.js';
import { PunchEngine, connectFrom } from '../../src/native/engine.js';
import { packageRoot } from '../../src/native/addon.js';
import type { PunchEngineLike } from '../../src/punch/engine-port.js';

const real = PunchEngine.shared();
/** Stand-in for A's simultaneous open on loopback: listens on the plan's local endpoint, reads nothing. */
const rendezvousA: PunchEngineLike = {
  now: () => real.now(),
  punch: (plan) =>
    new Promise((resolve, reject) => {
      const srv: Server = createServer({ pauseOnConnect: true });
      const timer = setTimeout(() => {
        srv.close();
        reject(new Error('stand-in: no connection'));
      }, plan.deadlineMs + 1000);
      srv.once('connection', (sock: Socket) => {
        clearTimeout(timer);
        srv.close();
        resolve({ socket: sock, local: plan.local, remote: { address: sock.remoteAddress!, port: sock.remotePort! } });
      });
      srv.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      srv.listen({ host: plan.local.address, port: plan.local.port });
    }),
};
/** Stand-in for B's simultaneous open on loopback: connects from its punch port at the planned instant. */
const rendezvousB: PunchEngineLike = {
  now: () => real.now(),
  punch: async (plan) => {
    const until = performance.now() + plan.deadlineMs + 1000;
    const startMs = plan.startAtNs !== undefined ? Number(plan.startAtNs - real.now()) / 1e6 : 0;
    if (startMs > 0) await new Promise((r) => setTimeout(r, startMs));
    for (;;) {
      try {
        return await connectFrom(plan.local, plan.remotes[0]!, { timeoutMs: 1000 });
      } catch (err) {
        if (performance.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  },
};

const hasPython = spawnSync('python3', ['-c', 'import socket; socket.recv_fds']).status === 0;

test('serve --handoff unix:PATH: the punched socket goes to a Python receiver that does the handshake with B', {
  skip: hasPython ? false : 'python3 with socket.recv_fds is not installed',
  timeout: 150_000,
}, async (t) => {
  const lines: string[] = [];
  const log = (who: string): Logger =>
    new Logger({ format: 'json', level: 'debug', base: { component: who }, write: (l) => lines.push(l) });
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
  // The clearnet peer that relays serve's announcement to proxy's collector.
  const peers = new Set<Peer>();
  const heard: Buffer[] = [];
  const relay = createServer((s) => {
    s.on('error', () => undefined);
    const p = new Peer(s, { network: 'regtest', role: 'responder', handshakeTimeoutMs: 20_000 });
    peers.add(p);
    p.on('close', () => peers.delete(p));
    p.on('message', (cmd, payload) => {
      if (cmd === 'addrv2') {
        heard.push(payload);
        for (const o of peers) if (o !== p && o.isReady) o.send('addrv2', payload);
      }
      if (cmd === 'getaddr') for (const h of heard) p.send('addrv2', h);
    });
    p.handshake().catch(() => undefined);
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const relayPort = (relay.address() as { port: number }).port;
  closers.push(() => {
    for (const p of peers) p.close();
    relay.close();
  });

  const seen = [{ peer: 'x', address: '127.0.0.1', port: 1 }, { peer: 'y', address: '127.0.0.1', port: 1 }];
  const eim = { ...verdictFrom(1, seen), checkedAt: Date.now() } as EimVerdict;
  const testing = { policy: { allowLoopback: true }, eim, methods: ['predict' as const], localAddress: '127.0.0.1' };
  const common = ['--network', 'regtest', '--announceinterval', '10', '--shutdowngrace', '1'];
  const serveCfg = loadConfig({
    args: [...common, '--torcontrol', `127.0.0.1:${net.controlA.port}`, '--handoff', `unix:${path}`,
      '--externalip', '127.0.0.1', '--punchport', '18444', '--announce', `127.0.0.1:${relayPort}`],
  });
  const acServe = new AbortController();
  let serveReady!: (i: Record<string, unknown>) => void;
  const serveUp = new Promise<Record<string, unknown>>((r) => (serveReady = r));
  const serveHooks = { ready: serveReady, signal: acServe.signal, testing: { ...testing, engine: rendezvousA } };
  const serveDone = runServe(serveCfg, log('serve'), serveHooks);
  serveDone.catch(() => undefined);
  closers.push(async () => {
    acServe.abort();
    await serveDone;
  });
  assert.equal((await serveUp).handoff, `unix:${path}`);

  const proxyCfg = loadConfig({
    args: [...common, '--listen', '127.0.0.1:0', '--proxy', `127.0.0.1:${net.socksB.port}`,
      '--peer', `127.0.0.1:${relayPort}`],
  });
  const acProxy = new AbortController();
  let proxyReady!: (i: Record<string, unknown>) => void;
  const proxyUp = new Promise<Record<string, unknown>>((r) => (proxyReady = r));
  const proxyHooks = { ready: proxyReady, signal: acProxy.signal, testing: { ...testing, engine: rendezvousB } };
  const proxyDone = runProxy(proxyCfg, log('proxy'), proxyHooks);
  proxyDone.catch(() => undefined);
  closers.push(async () => {
    acProxy.abort();
    await proxyDone;
  });
  const socksPort = Number(String((await proxyUp).socks).split(':').pop());
  const t0 = Date.now();
  const events = (): string[] => lines.map((l) => String((JSON.parse(l) as { event?: string }).event));
  const learned = (): boolean => events().includes('announcement-learned');
  while (!learned() && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));

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
  acProxy.abort();
  acServe.abort();
  assert.equal(await proxyDone, 0);
  assert.equal(await serveDone, 0);
});
