/**
 * The first dial to a fresh onion races its descriptor's publication (issue 9 item 10): tor answers 0xF0
 * (TOR_SOCKS_HS_DESC_NOT_FOUND) when the HSDir it asked has no descriptor yet. The dialer retries that within
 * its deadline. Real private Tor network on loopback (no root needed), no fakes.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';
import { selftestTor } from '../../src/lab/tor/selftest.js';
import { TorCoordinationEndpoint } from '../../src/overlay/tor/endpoint.js';
import { TorCoordinationDialer } from '../../src/overlay/tor/dialer.js';
import { versionHandshake } from '../../src/overlay/tor/handshake.js';
import { PROTOCOL_VERSION } from '../../src/wire/index.js';

const log = process.env['ONIONPUNCH_TEST_LOG'] ? (l: string) => process.stderr.write(l + '\n') : () => {};

describe('tor: the first dial to a fresh onion retries descriptor-not-found', { timeout: 240_000 }, () => {
  let net: PrivateTor | undefined;
  before(async () => {
    net = await startPrivateTor({ log, timeoutMs: 120_000 });
  });
  after(async () => {
    await net?.stop();
  });

  test('dialing an onion before its descriptor is uploaded connects once it is (no 0xF0 surfaces)', async (t) => {
    const dialer = new TorCoordinationDialer({ socksPort: net!.socksB.port, socksHost: net!.socksB.host });
    let ep: TorCoordinationEndpoint | undefined;
    try {
      // waitForUpload false: ADD_ONION answers at once, the upload to the HSDirs takes ~1-3 s more, so the
      // dial below starts while no HSDir has the descriptor, which is the race of a fresh onion.
      ep = await TorCoordinationEndpoint.create({
        control: { port: net!.controlA.port, auth: { cookieFile: net!.controlA.cookieFile! } },
        waitForUpload: false,
        log,
      });
      ep.on('stream', (s: Duplex) =>
        versionHandshake(s, false).then(
          () => s.end(),
          () => s.destroy(),
        ),
      );
      const t0 = Date.now();
      const s = await dialer.dial(ep.address, ep.port, { timeoutMs: 60_000 });
      const ms = Date.now() - t0;
      try {
        const peer = await versionHandshake(s, true, { timeoutMs: 20_000 });
        assert.equal(peer.version, PROTOCOL_VERSION);
      } finally {
        s.destroy();
      }
      t.diagnostic(`connected after ${ms} ms, ${dialer.descRetries} descriptor-not-found retries`);
      // The race was provoked: without the retry this dial fails with TOR_SOCKS_HS_DESC_NOT_FOUND.
      assert.ok(dialer.descRetries >= 1, 'the first attempt should have met 0xF0 (descriptor not yet uploaded)');
    } finally {
      await dialer.close();
      await ep?.close();
    }
  });
});

describe('tor: overlay selftest, several consecutive runs', { timeout: 400_000 }, () => {
  test('3 consecutive `overlay selftest --tor` runs all succeed', async (t) => {
    const results: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await selftestTor({ log });
      results.push(`${r.ok ? 'ok' : 'FAIL'} first connect ${r.firstConnectMs} ms, retries ${String(r['descRetries'])}`);
      t.diagnostic(`run ${i + 1}: ${results[i]}`);
      assert.equal(r.ok, true, `run ${i + 1}: ${JSON.stringify(r)}`);
    }
  });
});
