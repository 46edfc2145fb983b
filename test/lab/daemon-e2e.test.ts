/**
 * serve + proxy end to end over a real private Tor network on loopback (no root needed), each verb run as the
 * real `onionpunch` command in its own process with its own native engine, configured only through operator
 * flags: serve publishes an onion, announces it to a loopback clearnet peer which relays the addrv2 to proxy's
 * collector; a "bitcoind B" (a Peer initiator) connects through the proxy's SOCKS5 to the announced clearnet
 * endpoint; the proxy punches over Tor, serve splices the punched socket to "bitcoind A" (a Peer responder) and
 * the version handshake crosses. Both EIM checks run against two real NAT-check servers on loopback.
 *
 * The punch itself is a real simultaneous open on 127.0.0.1 by the two engines, as in
 * test/unit/punch-session.test.ts: on loopback a SYN is delivered inside the sender's connect(), so the other
 * side must already be in SYN_SENT; a 1 ms re-SYN grid on one side and 1.037 ms on the other (`resyninterval`),
 * the plain schedule (`punchprofile`) and a raised SYN cap (`maxsyns`) make the two meet within a few slots, and
 * `loopback` admits 127.0.0.1 as a target. These are documented operator keys (docs/DAEMON.md), not test hooks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocksClient } from 'socks';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';
import { Peer } from '../../src/peer/index.js';
import { loopbackDaemonFlags, relayStandIn, serverOn, verb } from '../helpers/daemon-verbs.js';

test(
  'serve + proxy over private Tor: announce, learn, SOCKS CONNECT punched and spliced to bitcoind',
  { timeout: 150_000 },
  async (t) => {
    const lines: string[] = [];
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
      const p = new Peer(s, {
        network: 'regtest',
        role: 'responder',
        userAgent: '/bitcoind-A-standin/',
        handshakeTimeoutMs: 20_000,
      });
      p.handshake().then(
        () => versions.push('A-done'),
        () => undefined,
      );
    });
    closers.push(() => {
      for (const s of btcA.sockets) s.destroy();
      btcA.server.close();
    });
    // The clearnet peer: relays every addrv2 it hears to its other connections (what a relaying node does).
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
        '--bitcoind',
        `127.0.0.1:${btcA.port}`,
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
    const info = await serve.ready;
    assert.match(String(info.coordination), /^[a-z2-7]{56}\.onion:18444$/);
    assert.deepEqual(info.clearnet, { address: '127.0.0.1', port: 18444 });

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
    // Wait until the proxy learned the announcement (relayed within one announce interval).
    const t0 = Date.now();
    while (!lines.some((l) => l.includes('"announcement-learned"')) && Date.now() - t0 < 30_000)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      lines.some((l) => l.includes('"announcement-learned"')),
      'proxy learned the announcement',
    );

    // "bitcoind B" dials the announced clearnet endpoint through the proxy; first onion connects take ~20 s.
    const { socket } = await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port: socksPort, type: 5 },
      command: 'connect',
      destination: { host: '127.0.0.1', port: 18444 },
      timeout: 100_000,
    });
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
    for (const e of [
      'endpoint-published',
      'announcement-sent',
      'announcement-learned',
      'punch-start',
      'punch-connected',
      'session-punched',
      'bridge-open',
      'socks-connected',
    ]) {
      assert.ok(events.includes(e), `event ${e} logged`);
    }

    // The EIM checks ran for real against the two NAT-check servers (loopback maps to itself: EIM, port-preserving).
    const checks = lines
      .filter((l) => l.includes('"nat-check-done"'))
      .map((l) => JSON.parse(l) as { mapping: string; portPreserving: boolean });
    assert.equal(checks.length, 2, 'serve and proxy each ran the NAT check');
    for (const c of checks) assert.deepEqual([c.mapping, c.portPreserving], ['eim', true]);

    // Graceful shutdown on SIGTERM: both exit 0, the onion is removed.
    assert.equal(await proxy.stop(), 0);
    assert.equal(await serve.stop(), 0);
    assert.ok(lines.some((l) => l.includes('"endpoint-closed"')));
  },
);
