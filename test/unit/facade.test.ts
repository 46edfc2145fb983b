/**
 * The Onionpunch facade end to end on loopback: a real EIM check against two NAT-check servers on
 * 127.0.0.1, then a real punch (the native engine's simultaneous open, one engine per side as two hosts
 * would have) with a caller-supplied overlay — a loopback TCP listener standing in for the onion service.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  Onionpunch,
  ApiError,
  startNatcheckServer,
  PunchSessionError,
  AnnouncementDirectory,
  toAnnouncement,
  type CoordinationEndpoint,
  type CoordinationDialer,
  type OnionpunchOptions,
  type NatcheckServer,
} from '../../src/index.js';

/** A caller-supplied coordination endpoint: every TCP connection to a loopback port is a coordination stream. */
class LoopbackEndpoint extends EventEmitter implements CoordinationEndpoint {
  readonly kind = 'tor' as const;
  readonly address = 'loopback.onion';
  port = 0;
  private readonly server: Server = createServer((s) => this.emit('stream', s, {}));
  async open(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }
  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const loopbackDialer: CoordinationDialer = {
  kind: 'tor',
  dial: (_address, port) =>
    new Promise<Duplex>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    }),
  close: async () => undefined,
};

async function natcheckPair(): Promise<NatcheckServer[]> {
  const one = () => startNatcheckServer({ host: '127.0.0.1', port: 0, network: 'regtest' });
  return Promise.all([one(), one()]);
}

/**
 * What a one-host setup needs: loopback targets allowed, and the engine's loopback tuning (a fine re-SYN grid,
 * slightly different per side, as in punch-session.test.ts).
 */
function side(overlay: OnionpunchOptions['overlay'], servers: NatcheckServer[], resynUs: number): OnionpunchOptions {
  return {
    overlay,
    network: 'regtest',
    natcheck: servers.map((s) => `${s.address}:${s.port}`),
    bind: '127.0.0.1',
    policy: { allowLoopback: true },
    tuning: { profile: 'plain', resynIntervalUs: resynUs },
    limits: { maxSynsPerSession: 20_000 },
    fireDelayMs: 10,
    deadlineMs: 8000,
  };
}

test('open() checks the NAT, listen() emits verified sockets, punch() gets one', { timeout: 30_000 }, async () => {
  const servers = await natcheckPair();
  const endpoint = await new LoopbackEndpoint().open();
  const a = await Onionpunch.open(side({ endpoint }, servers, 1000));
  const b = await Onionpunch.open(side({ dialer: loopbackDialer }, servers, 1037));
  try {
    const v = await a.nat();
    assert.equal(v.mapping, 'eim', v.reason);
    assert.equal(v.portPreserving, true);
    assert.equal(v.publicAddress, '127.0.0.1');
    assert.equal(v.observed.length, 2);

    const listening = await a.listen();
    assert.equal(listening.address, 'loopback.onion');
    assert.equal(listening.port, endpoint.port);
    // The relay path: A's announcement reaches B's directory; B punches to what the directory holds.
    const directory = new AnnouncementDirectory();
    assert.ok(directory.add(toAnnouncement(listening.announcement())));
    const announced = directory.findByClearnet('127.0.0.1', endpoint.port);
    assert.ok(announced);
    const gotA = new Promise<Socket>((r) => listening.once('connection', (s: Socket) => r(s)));
    const r = await b.punch(announced);
    const aSock = await gotA;
    assert.equal(r.socket.remotePort, aSock.localPort, "B's peer is A's punch socket");
    assert.equal(aSock.remotePort, r.socket.localPort);
    assert.equal(r.remote.port, aSock.localPort);
    for (const e of ['handshake', 'fire-sent', 'established', 'verified']) {
      assert.ok(r.timeline.at(e) !== undefined, `timeline has ${e}`);
    }
    const echoed = new Promise<string>((res) => aSock.once('data', (d: Buffer) => res(d.toString())));
    r.socket.write('version');
    assert.equal(await echoed, 'version');
    assert.equal(listening.stats.connected, 1);
    assert.equal(announced.coordination, 'loopback.onion');
    assert.deepEqual(announced.clearnet, { address: '127.0.0.1', port: endpoint.port });
    aSock.destroy();
    r.socket.destroy();
  } finally {
    await a.close();
    await b.close();
    await endpoint.close(); // the caller's endpoint: the facade leaves it open
    await Promise.all(servers.map((s) => s.close()));
  }
});

test('misuse is an ApiError with its code; a refused target a PunchSessionError', { timeout: 20_000 }, async () => {
  await assert.rejects(
    Onionpunch.open({ overlay: { tor: { socks: 'nonsense' } } }),
    (e: unknown) => e instanceof ApiError && e.code === 'API_BAD_OPTION',
  );
  const verdict = {
    mapping: 'eim' as const,
    portPreserving: true,
    publicAddress: '127.0.0.1',
    publicIpStable: true,
    localPort: 1,
    observed: [],
    checkedAt: 0,
  };
  const endpoint = await new LoopbackEndpoint().open();
  const common = { nat: verdict, network: 'regtest' as const, bind: '127.0.0.1' };
  const a = await Onionpunch.open({ overlay: { endpoint }, ...common });
  const b = await Onionpunch.open({ overlay: { dialer: loopbackDialer }, ...common });
  try {
    assert.deepEqual(await a.nat(), verdict, 'a given verdict is used as is');
    // A valid v3 onion (Bitcoin Core's BIP155 vector): the target parses, and A has no dialer.
    const onion = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion:8333';
    await assert.rejects(
      a.punch(onion, { expectIp: null }),
      (e: unknown) => e instanceof ApiError && e.code === 'API_NO_DIALER',
    );
    await assert.rejects(a.punch('x.onion:8333'), (e: unknown) => e instanceof ApiError && e.code === 'API_BAD_OPTION');
    await assert.rejects(b.listen(), (e: unknown) => e instanceof ApiError && e.code === 'API_NO_ENDPOINT');
    // Without `policy.allowLoopback` A refuses B's loopback endpoint (targets must be public unicast).
    const l = await a.listen();
    await assert.rejects(a.listen(), (e: unknown) => e instanceof ApiError && e.code === 'API_ALREADY_LISTENING');
    await assert.rejects(
      b.punch({ address: l.address, port: l.port, expectIp: null }),
      (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_REJECTED' && e.rejectCode === 'bad-request',
    );
  } finally {
    await a.close();
    await b.close();
    await endpoint.close();
  }
  await assert.rejects(a.punch('x.onion'), (e: unknown) => e instanceof ApiError && e.code === 'API_CLOSED');
  await assert.rejects(a.listen(), (e: unknown) => e instanceof ApiError && e.code === 'API_CLOSED');
});
