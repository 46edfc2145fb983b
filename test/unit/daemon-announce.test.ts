import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { Peer } from '../../src/peer/index.js';
import { AnnouncementDirectory, makeAnnouncement, toAnnouncement, type Announcement } from '../../src/relay/index.js';
import { randomBytes } from 'node:crypto';
import { decodePayload, formatOnion, type AddrV2Payload } from '../../src/wire/index.js';
import { Announcer, AnnouncementCollector, isOverlayHost } from '../../src/daemon/announce.js';
import { Logger } from '../../src/daemon/log.js';

const quiet = new Logger({ write: () => undefined });
const ONION = formatOnion(randomBytes(32));
const ONION2 = formatOnion(randomBytes(32));

/** A loopback "clearnet peer": a real Peer as responder on each accepted socket. */
async function clearnetPeer(
  onPeer: (p: Peer, s: Socket) => void,
): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    const p = new Peer(s, { network: 'regtest', role: 'responder', handshakeTimeoutMs: 5000 });
    onPeer(p, s);
    p.handshake().catch(() => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, sockets };
}

function shut(x: { server: Server; sockets: Set<Socket> }): void {
  for (const s of x.sockets) s.destroy();
  x.server.close();
}

test(
  "serve's announcer: sendaddrv2 before verack, then an addrv2 whose entry is our announcement",
  { timeout: 15_000 },
  async () => {
    const got: { before: string[]; addrv2: AddrV2Payload[] } = { before: [], addrv2: [] };
    let resolveMsg!: () => void;
    const twoRounds = new Promise<void>((r) => (resolveMsg = r));
    const cp = await clearnetPeer((p) => {
      p.on('message', (cmd, payload) => {
        if (cmd !== 'addrv2') return;
        got.before = [...p.receivedBeforeVerack];
        got.addrv2.push(decodePayload('addrv2', payload));
        if (got.addrv2.length === 2) resolveMsg();
      });
    });
    const a = new Announcer({
      peers: [
        { host: '127.0.0.1', port: cp.port },
        { host: ONION, port: 8333 },
      ],
      network: 'regtest',
      intervalMs: 10_000,
      log: quiet,
      announcement: () =>
        makeAnnouncement({
          coordination: ONION,
          coordinationPort: 8333,
          clearnet: { address: '198.51.100.20', port: 18444 },
        }),
    });
    try {
      await a.start();
      await a.round(); // the second round reuses the connection
      await twoRounds;
      assert.equal(a.sent, 2);
      assert.equal(cp.sockets.size, 1, 'one connection, kept open');
      assert.ok(got.before.includes('sendaddrv2'), `got before verack: ${got.before.join(',')}`);
      assert.ok(got.before.indexOf('sendaddrv2') > got.before.indexOf('version'));
      assert.equal(got.addrv2[0]!.addrs.length, 1);
      const ann = toAnnouncement(got.addrv2[0]!.addrs[0]!);
      assert.equal(ann.coordination, ONION);
      assert.equal(ann.coordinationPort, 8333);
      assert.deepEqual(ann.clearnet, { address: '198.51.100.20', port: 18444 });
      assert.ok(Math.abs(ann.time - Date.now() / 1000) < 5);
    } finally {
      a.stop();
      shut(cp);
    }
  },
);

test(
  'announcer: overlay hosts are refused, an unreachable peer is logged and survived',
  { timeout: 10_000 },
  async () => {
    assert.ok(isOverlayHost(ONION) && isOverlayHost('x.b32.i2p') && !isOverlayHost('198.51.100.1'));
    const cp = await clearnetPeer(() => undefined);
    const port = cp.port;
    shut(cp);
    await once(cp.server, 'close');
    const a = new Announcer({
      peers: [{ host: '127.0.0.1', port }],
      network: 'regtest',
      intervalMs: 10_000,
      log: quiet,
      announcement: () =>
        makeAnnouncement({ coordination: ONION, coordinationPort: 1, clearnet: { address: '198.51.100.1', port: 1 } }),
    });
    await a.start();
    assert.equal(a.sent, 0);
    a.stop();
  },
);

test(
  "proxy's collector: getaddr to the peer, holepunch entries of its addrv2 land in the directory",
  { timeout: 15_000 },
  async () => {
    const now = Math.floor(Date.now() / 1000);
    const fresh = makeAnnouncement({
      coordination: ONION,
      coordinationPort: 8333,
      clearnet: { address: '198.51.100.30', port: 8333 },
      nowS: now,
    });
    const stale = makeAnnouncement({
      coordination: ONION2,
      coordinationPort: 8333,
      clearnet: { address: '198.51.100.31', port: 8333 },
      nowS: now - 3600,
    });
    const plain = {
      time: now,
      services: 1n,
      network: 'ipv4' as const,
      networkId: 1,
      address: '198.51.100.32',
      port: 8333,
    };
    let askedGetaddr = false;
    const cp = await clearnetPeer((p) => {
      p.on('message', (cmd) => {
        if (cmd !== 'getaddr') return;
        askedGetaddr = true;
        p.send('addrv2', { addrs: [plain, stale, fresh] });
      });
    });
    const directory = new AnnouncementDirectory();
    const c = new AnnouncementCollector({
      peers: [{ host: '127.0.0.1', port: cp.port }],
      network: 'regtest',
      directory,
      intervalMs: 10_000,
      log: quiet,
    });
    try {
      await c.start();
      const t0 = Date.now();
      while (c.learned === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(askedGetaddr);
      assert.equal(c.learned, 1, 'only the fresh holepunch entry is kept');
      const a = directory.findByClearnet('198.51.100.30', 8333) as Announcement;
      assert.equal(a.coordination, ONION);
      assert.equal(directory.findByClearnet('198.51.100.31', 8333), undefined);
      // An unsolicited, bad addrv2 never hurts the collector.
      for (const s of cp.sockets) s.write(Buffer.from('fabfb5da616464727632000000000000010000005df6e0e2ff', 'hex'));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(directory.size, 1);
    } finally {
      c.stop();
      shut(cp);
    }
  },
);

test(
  'serve: an unreachable Tor control port is a typed error and exit code 1, nothing left running',
  { timeout: 20_000 },
  async () => {
    const { main } = await import('../../src/daemon/cli.js');
    const cp = await clearnetPeer(() => undefined);
    const port = cp.port;
    shut(cp);
    await once(cp.server, 'close');
    const write = process.stderr.write;
    let err = '';
    process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
    try {
      assert.equal(
        await main(['serve', '--torcontrol', `127.0.0.1:${port}`, '--log', 'json', '--loglevel', 'error']),
        1,
      );
    } finally {
      process.stderr.write = write;
    }
    assert.match(err, /onionpunch serve: TOR_\w+: /);
  },
);

test(
  "proxy's collector: asks getaddr every round, and each 1000-entry answer gets in whole (credit, not the 0.1/s rate)",
  { timeout: 15_000 },
  async () => {
    const now = Math.floor(Date.now() / 1000);
    let asked = 0;
    const cp = await clearnetPeer((p) => {
      p.on('message', (cmd) => {
        if (cmd !== 'getaddr') return;
        asked++;
        // Every answer: 1000 new endpoints (a relay's full fresh set).
        const addrs = Array.from({ length: 1000 }, (_, i) =>
          makeAnnouncement({
            coordination: formatOnion(randomBytes(32)),
            coordinationPort: 8333,
            clearnet: { address: `198.51.${asked}.${(i % 250) + 1}`, port: 8000 + i },
            nowS: now,
          }),
        );
        p.send('addrv2', { addrs });
      });
    });
    const directory = new AnnouncementDirectory({ maxEndpoints: 5000 });
    const c = new AnnouncementCollector({
      peers: [{ host: '127.0.0.1', port: cp.port }],
      network: 'regtest',
      directory,
      intervalMs: 60_000,
      log: quiet,
    });
    try {
      await c.start();
      const wait = async (n: number) => {
        const t0 = Date.now();
        while (c.learned < n && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      };
      await wait(1000);
      await c.round(); // the next getaddrinterval round: asked again on the same connection
      await wait(2000);
      assert.equal(asked, 2, 'a getaddr every round, not once per connection');
      assert.equal(c.asked, 2);
      assert.equal(c.rateLimited, 0, 'the solicited answers are credited, not cut to the unsolicited rate');
      assert.equal(c.learned, 2000);
    } finally {
      c.stop();
      shut(cp);
    }
  },
);

test(
  'collector: at most maxLinks of the configured peers are linked; an unreachable one gives way to a spare',
  { timeout: 15_000 },
  async () => {
    const seen = new Set<number>();
    const cps = await Promise.all([0, 1, 2].map(() => clearnetPeer(() => undefined)));
    cps.forEach((cp) => cp.server.on('connection', () => seen.add(cp.port)));
    const dead = await clearnetPeer(() => undefined);
    shut(dead);
    await once(dead.server, 'close');
    const peers = [...cps.map((cp) => ({ host: '127.0.0.1', port: cp.port })), { host: '127.0.0.1', port: dead.port }];
    const c = new AnnouncementCollector({
      peers,
      network: 'regtest',
      directory: new AnnouncementDirectory(),
      intervalMs: 60_000,
      log: quiet,
      maxLinks: 2,
    });
    try {
      await c.start();
      await new Promise((r) => setTimeout(r, 100));
      const open = cps.reduce((n, cp) => n + cp.sockets.size, 0);
      assert.ok(open <= 2, `at most 2 links open, got ${open}`);
      // Whichever two were drawn, after a few rounds two live peers are linked (the dead one, if drawn, gave way).
      for (let i = 0; i < 4 && cps.reduce((n, cp) => n + cp.sockets.size, 0) < 2; i++) await c.round();
      assert.equal(
        cps.reduce((n, cp) => n + cp.sockets.size, 0),
        2,
      );
    } finally {
      c.stop();
      for (const cp of cps) shut(cp);
    }
  },
);
