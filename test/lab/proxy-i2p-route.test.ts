/**
 * Issue 11 item 3 over a real private I2P network: the real `runProxy` with `i2psam` set routes a SOCKS5 CONNECT
 * for `<b32>.b32.i2p:port` through its own SAM session (STREAM CONNECT on i2pd) to a server behind an I2P
 * destination on another router, bytes go both ways, and no DNS lookup of the name is ever made. `i2phops 0`
 * gives the proxy's session the zero-hop tunnels this 4-router network needs (docs/I2P.md).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { needsRoot } from '../helpers/root.js';
import { startProxy, socksConnect } from '../helpers/proxy-daemon.js';
import { startPrivateI2p, type PrivateI2p } from '../../src/lab/i2p/private-i2p.js';
import { I2pCoordinationEndpoint } from '../../src/overlay/i2p/endpoint.js';

const log = process.env['ONIONPUNCH_TEST_LOG'] ? (l: string) => process.stderr.write(l + '\n') : () => {};

describe(
  'proxy routes .b32.i2p through SAM (private I2P network)',
  { ...needsRoot('i2pd in a network namespace'), timeout: 240_000 },
  () => {
    let net: PrivateI2p | undefined;
    let server: I2pCoordinationEndpoint | undefined;
    const accepted: Duplex[] = [];

    before(async () => {
      net = await startPrivateI2p({ log, timeoutMs: 60_000 });
      // The server behind the destination answers every chunk with "echo:" + the chunk.
      // Server and proxy on the routers that are not floodfills (docs/I2P.md, "Where SAM clients go").
      server = await I2pCoordinationEndpoint.create({
        sam: net.sam[2]!,
        sessionOptions: net.sessionOptions,
        ...net.sessionCreate,
      });
      server.on('stream', (s: Duplex) => {
        accepted.push(s);
        s.on('error', () => undefined);
        s.on('data', (d: Buffer) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
      });
    });
    after(async () => {
      for (const s of accepted) s.destroy();
      await server?.close().catch(() => undefined);
      await net?.stop();
    });

    test('a SOCKS client gets bytes through the proxy to the server behind the b32 address', async (t) => {
      const sam = net!.sam[3]!;
      const p = await startProxy(['--i2psam', `${sam.host}:${sam.port}`, '--i2phops', '0']);
      try {
        // The proxy's SAM session is made on the first .b32.i2p request (~20 s: i2pd's readiness cycle). A SOCKS
        // client that gets no answer reconnects, as bitcoind does: now and then i2pd accepts a STREAM CONNECT and
        // never sends its packets (docs/I2P.md, "Where SAM clients go"), which no proxy can see. Every try that
        // failed is printed, with the proxy's own log, so a run that needed one says why.
        const t0 = Date.now();
        const trail = (): string =>
          `after ${Date.now() - t0} ms; proxy log: ${JSON.stringify(p.recs().filter((x) => x.event !== 'ready'))}`;
        const failed: string[] = [];
        let echo: string | undefined;
        for (let i = 0; i < 3 && echo === undefined && Date.now() - t0 < 170_000; i++) {
          const r = await socksConnect(p.port, server!.address, 8333, Math.max(10_000, 170_000 - (Date.now() - t0)));
          if (typeof r === 'string') {
            failed.push(`try ${i + 1}: CONNECT failed: ${r} ${trail()}`);
            continue;
          }
          r.write('ping 1');
          const d = await once(r, 'data', { signal: AbortSignal.timeout(25_000) }).then(
            ([b]) => (b as Buffer).toString(),
            (e: unknown) => (failed.push(`try ${i + 1}: no echo in 25 s: ${String(e)} ${trail()}`), undefined),
          );
          r.destroy();
          echo = d;
        }
        for (const f of failed) t.diagnostic(f);
        assert.equal(echo, 'echo:ping 1', `no try got the echo:\n${failed.join('\n')}`);
        const recs = p.recs();
        assert.ok(
          recs.some((x) => x.event === 'socks-connected' && x['host'] === server!.address),
          'bridged',
        );
        assert.ok(!recs.some((x) => x.error?.code === 'ENOTFOUND' || x.error?.code === 'EAI_AGAIN'), 'no DNS');
        assert.ok(accepted.length >= 1, 'a stream reached the server');
      } finally {
        assert.equal(await p.stop(), 0);
      }
    });
  },
);
