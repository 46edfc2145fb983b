/**
 * `onionpunch overlay selftest --tor`: brings up the private Tor network, creates a coordination endpoint on
 * node A, dials it from node B through SOCKS5, exchanges bytes both ways over it, and tears everything down.
 */
import { OnionpunchError } from '../../errors.js';
import type { OverlaySelftestResult } from '../types.js';
import type { Duplex } from 'node:stream';
import { startPrivateTor } from '../../lab/private-tor.js';
import { TorCoordinationEndpoint } from './endpoint.js';
import { TorCoordinationDialer } from './dialer.js';

/** Reads exactly `n` bytes or fails after `ms`. */
function readExactly(s: Duplex, n: number, ms: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(buf.subarray(0, n));
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) done();
    };
    const onClose = () => done(new OnionpunchError('OVERLAY_SELFTEST', 'stream closed during the exchange'));
    const timer = setTimeout(() => done(new OnionpunchError('OVERLAY_SELFTEST', `no reply within ${ms} ms`)), ms);
    s.on('data', onData);
    s.on('close', onClose);
  });
}

/** Brings up the private tor network, creates an endpoint, dials it, exchanges bytes both ways, tears down. */
export async function selftestTor(opts: { log?: (line: string) => void } = {}): Promise<OverlaySelftestResult> {
  const log = opts.log ?? (() => {});
  const net = await startPrivateTor({ log });
  let ep: TorCoordinationEndpoint | undefined;
  const dialer = new TorCoordinationDialer({ socksPort: net.socksB.port, socksHost: net.socksB.host });
  try {
    const tPub = Date.now();
    ep = await TorCoordinationEndpoint.create({
      control: { host: net.controlA.host, port: net.controlA.port, auth: { cookieFile: net.controlA.cookieFile } },
      log,
    });
    const publishMs = Date.now() - tPub;
    // A's side: answers B's 32-byte challenge with the bytes reversed (proves data flows both ways).
    ep.on('stream', (s: Duplex) => {
      readExactly(s, 32, 30_000).then(
        (b) => s.write(Buffer.from(b).reverse()),
        () => s.destroy(),
      );
    });
    const t1 = Date.now();
    const s = await dialer.dial(ep.address, ep.port, { timeoutMs: 90_000 });
    const firstConnectMs = Date.now() - t1;
    const challenge = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7 + 1));
    s.write(challenge);
    const answer = await readExactly(s, 32, 30_000);
    const roundTripMs = Date.now() - t1 - firstConnectMs;
    s.destroy();
    const ok = answer.equals(Buffer.from(challenge).reverse());
    log(`tor selftest: ${ep.address} published in ${publishMs} ms, first connect ${firstConnectMs} ms, exchange ${roundTripMs} ms`);
    return {
      ok,
      bringUpMs: net.bringUpMs,
      firstConnectMs,
      publishMs,
      exchangeMs: roundTripMs,
      timings: net.timings,
      ...(ok ? {} : { error: { code: 'OVERLAY_SELFTEST', message: 'the reply did not match' } }),
    };
  } finally {
    await dialer.close();
    await ep?.close();
    await net.stop();
  }
}
