/**
 * The facade with its Tor overlay for real: a private Tor network on loopback (src/lab/tor), A's
 * `Onionpunch.listen()` publishes an onion service through the control port (cookie auth), B's `punch()` dials
 * it through the SOCKS port, and the punch itself runs on 127.0.0.1 with the real engine after a real EIM check
 * against two loopback NAT-check servers. The only loopback concessions are the documented options
 * (`policy.allowLoopback`, a fine re-SYN grid).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';
import {
  Onionpunch,
  PunchSessionError,
  TorSocksError,
  startNatcheckServer,
  type NatcheckServer,
  type OnionpunchOptions,
  type PunchedConnection,
} from '../../src/index.js';

const log = process.env['ONIONPUNCH_TEST_LOG'] ? (l: string) => process.stderr.write(l + '\n') : () => {};

let net: PrivateTor | undefined;
let servers: NatcheckServer[] = [];
before(async () => {
  const one = () => startNatcheckServer({ host: '127.0.0.1', port: 0, network: 'regtest' });
  servers = await Promise.all([one(), one()]);
  net = await startPrivateTor({ log, timeoutMs: 120_000 });
  log(`private tor up in ${net.bringUpMs} ms`);
});
after(async () => {
  await net?.stop();
  await Promise.all(servers.map((s) => s.close()));
});

/**
 * The endpoint resolves at the first HS_DESC UPLOADED (one HSDir of eight uploads); B may ask an HSDir that has
 * no copy yet and get 0xF0 (PRIVATE-TOR.md). What a caller does then — try again shortly — is done here, by
 * class and code; any other failure fails the test.
 */
async function punchWhilePropagating(b: Onionpunch, target: string): Promise<PunchedConnection> {
  const end = Date.now() + 60_000;
  for (;;) {
    try {
      // A punches from 127.0.0.1 (bind): B accepts only that IP, as it would the announced one.
      return await b.punch(target, { expectIp: '127.0.0.1' });
    } catch (err) {
      const propagating =
        err instanceof PunchSessionError &&
        err.code === 'PUNCH_OVERLAY_DIAL' &&
        err.cause instanceof TorSocksError &&
        err.cause.code === 'TOR_SOCKS_HS_DESC_NOT_FOUND';
      if (!propagating || Date.now() > end) throw err;
      log('descriptor not on that HSDir yet; trying again');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function common(resynUs: number): Omit<OnionpunchOptions, 'overlay'> {
  return {
    network: 'regtest',
    natcheck: servers.map((s) => `${s.address}:${s.port}`),
    bind: '127.0.0.1',
    policy: { allowLoopback: true },
    tuning: { profile: 'plain', resynIntervalUs: resynUs },
    limits: { maxSynsPerSession: 20_000 },
    fireDelayMs: 10,
    deadlineMs: 8000,
    dialTimeoutMs: 90_000,
  };
}

test(
  'Onionpunch over a private Tor network: listen() publishes an onion, punch() dials it and connects',
  {
    timeout: 240_000,
  },
  async () => {
    const t = net!;
    const control = { host: '127.0.0.1', port: t.controlA.port, cookieFile: t.controlA.cookieFile! };
    const a = await Onionpunch.open({ ...common(1000), overlay: { tor: { control, virtualPort: 8333 } } });
    const b = await Onionpunch.open({ ...common(1037), overlay: { tor: { socks: `127.0.0.1:${t.socksB.port}` } } });
    try {
      const t0 = performance.now();
      const listening = await a.listen();
      log(`onion ${listening.address} published in ${Math.round(performance.now() - t0)} ms`);
      assert.match(listening.address, /^[a-z2-7]{56}\.onion$/);
      assert.equal(listening.port, 8333);
      const inbound = new Promise<Socket>((r) => listening.once('connection', (s: Socket) => r(s)));
      const t1 = performance.now();
      const r = await punchWhilePropagating(b, `${listening.address}:${listening.port}`);
      log(`punch over the onion in ${Math.round(performance.now() - t1)} ms, overlay rtt ${r.overlayRttMs} ms`);
      const aSock = await inbound;
      assert.equal(r.socket.remotePort, aSock.localPort);
      assert.equal(aSock.remotePort, r.socket.localPort);
      assert.ok(typeof r.overlayRttMs === 'number' && r.overlayRttMs > 0, 'the coordination crossed Tor');
      const got = new Promise<string>((res) => aSock.once('data', (d: Buffer) => res(d.toString())));
      r.socket.write('version');
      assert.equal(await got, 'version');
      aSock.destroy();
      r.socket.destroy();
    } finally {
      await a.close(); // DEL_ONION: the facade made this endpoint
      await b.close();
    }
  },
);
