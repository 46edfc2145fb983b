/**
 * serve + proxy end to end over a real private Tor network on loopback (no root needed): serve publishes an
 * onion, announces it to a loopback clearnet peer which relays the addrv2 to proxy's collector; a "bitcoind B"
 * (a Peer initiator) connects through the proxy's SOCKS5 to the announced clearnet endpoint; the proxy punches over
 * Tor, serve splices the punched socket to "bitcoind A" (a Peer responder) and the version handshake crosses.
 * Punching happens on 127.0.0.1 with the test-only loopback policy (the NAT lab variant is not done). Loopback
 * cannot cross SYNs (a SYN to 127.0.0.1 is answered by RST inside connect(), see test/unit/punch-session.test.ts),
 * so that one step is replaced, and named as such: A's engine *listens* on its punch port and B's engine connects
 * to it with the native `connectFrom` (real sockets, same endpoints and timing). Everything else is real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { SocksClient } from 'socks';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';
import { Peer } from '../../src/peer/index.js';
import { verdictFrom, type EimVerdict } from '../../src/nat/eim-check.js';
import { loadConfig } from '../../src/daemon/config.js';
import { Logger } from '../../src/daemon/log.js';
import { runServe } from '../../src/daemon/serve.js';
import { runProxy } from '../../src/daemon/proxy.js';
import { PunchEngine, connectFrom } from '../../src/native/engine.js';
import type { PunchEngineLike } from '../../src/punch/engine-port.js';
import { listeningEngine } from '../helpers/listening-engine.js';

const real = PunchEngine.shared();
/** Stand-in for A's simultaneous open on loopback (see the file comment). */
const rendezvousA: PunchEngineLike = listeningEngine(() => real.now());
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

const verbose = process.env['ONIONPUNCH_TEST_LOG'] !== undefined;

async function serverOn(handler: (s: Socket) => void): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    handler(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, sockets };
}

test('serve + proxy over private Tor: announce, learn, SOCKS CONNECT punched and spliced to bitcoind', { timeout: 150_000 }, async (t) => {
  const lines: string[] = [];
  const log = (who: string) => new Logger({ format: 'json', level: 'debug', base: { component: who }, write: (l) => {
    lines.push(l);
    if (verbose) process.stderr.write(l + '\n');
  } });
  let net: PrivateTor | undefined;
  const closers: (() => void | Promise<void>)[] = [];
  t.after(async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    await net?.stop();
  });
  net = await startPrivateTor({ timeoutMs: 100_000 });

  // "bitcoind A": the responder the punched peer is spliced to.
  const versions: string[] = [];
  const btcA = await serverOn((s) => {
    const p = new Peer(s, { network: 'regtest', role: 'responder', userAgent: '/bitcoind-A-standin/', handshakeTimeoutMs: 20_000 });
    p.handshake().then(() => versions.push('A-done'), () => undefined);
  });
  closers.push(() => {
    for (const s of btcA.sockets) s.destroy();
    btcA.server.close();
  });
  // The clearnet peer: relays every addrv2 it hears to its other connections (what a relaying node does).
  const peers = new Set<Peer>();
  const heard: Buffer[] = [];
  const relay = await serverOn((s) => {
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
  closers.push(() => {
    for (const s of relay.sockets) s.destroy();
    relay.server.close();
  });

  const eim: EimVerdict = { ...verdictFrom(1, [{ peer: 'x', address: '127.0.0.1', port: 1 }, { peer: 'y', address: '127.0.0.1', port: 1 }]), checkedAt: Date.now() } as EimVerdict;
  const testing = { policy: { allowLoopback: true }, eim, methods: ['predict' as const], localAddress: '127.0.0.1' };
  const common = ['--network', 'regtest', '--announceinterval', '10', '--shutdowngrace', '1'];
  const serveCfg = loadConfig({ args: [...common, '--torcontrol', `127.0.0.1:${net.controlA.port}`, '--bitcoind', `127.0.0.1:${btcA.port}`, '--externalip', '127.0.0.1', '--punchport', '18444', '--announce', `127.0.0.1:${relay.port}`] });
  const acServe = new AbortController();
  let serveReady!: (i: Record<string, unknown>) => void;
  const serveUp = new Promise<Record<string, unknown>>((r) => (serveReady = r));
  const serveDone = runServe(serveCfg, log('serve'), { ready: serveReady, signal: acServe.signal, testing: { ...testing, engine: rendezvousA } });
  serveDone.catch(() => undefined);
  closers.push(async () => {
    acServe.abort();
    await serveDone;
  });
  const info = await serveUp;
  assert.match(String(info.coordination), /^[a-z2-7]{56}\.onion:18444$/);
  assert.deepEqual(info.clearnet, { address: '127.0.0.1', port: 18444 });

  const proxyCfg = loadConfig({ args: [...common, '--listen', '127.0.0.1:0', '--proxy', `127.0.0.1:${net.socksB.port}`, '--peer', `127.0.0.1:${relay.port}`] });
  const acProxy = new AbortController();
  let proxyReady!: (i: Record<string, unknown>) => void;
  const proxyUp = new Promise<Record<string, unknown>>((r) => (proxyReady = r));
  const proxyDone = runProxy(proxyCfg, log('proxy'), { ready: proxyReady, signal: acProxy.signal, testing: { ...testing, engine: rendezvousB } });
  proxyDone.catch(() => undefined);
  closers.push(async () => {
    acProxy.abort();
    await proxyDone;
  });
  const socksPort = Number(String((await proxyUp).socks).split(':').pop());
  // Wait until the proxy learned the announcement (relayed within one announce interval).
  const t0 = Date.now();
  while (!lines.some((l) => l.includes('"announcement-learned"')) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));
  assert.ok(lines.some((l) => l.includes('"announcement-learned"')), 'proxy learned the announcement');

  // "bitcoind B" dials the announced clearnet endpoint through the proxy; first onion connects take ~20 s.
  const { socket } = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: socksPort, type: 5 }, command: 'connect', destination: { host: '127.0.0.1', port: 18444 }, timeout: 100_000 });
  closers.push(() => {
    socket.destroy();
  });
  const b = new Peer(socket, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 20_000 });
  const hs = await b.handshake();
  assert.equal(hs.version.userAgent, '/bitcoind-A-standin/', 'the handshake crossed the punched, spliced path');
  const rtt = await b.ping();
  assert.ok(rtt >= 0);
  b.close();
  const events = lines.map((l) => (JSON.parse(l) as { event: string }).event);
  for (const e of ['endpoint-published', 'announcement-sent', 'announcement-learned', 'punch-start', 'punch-connected', 'session-punched', 'bridge-open', 'socks-connected']) {
    assert.ok(events.includes(e), `event ${e} logged`);
  }

  // Graceful shutdown: both exit 0, the onion is removed.
  acProxy.abort();
  acServe.abort();
  assert.equal(await proxyDone, 0);
  assert.equal(await serveDone, 0);
  assert.ok(lines.some((l) => l.includes('"endpoint-closed"')));
});
