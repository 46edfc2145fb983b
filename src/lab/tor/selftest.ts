/**
 * `onionpunch overlay selftest --tor`: brings up the private Tor network, creates a coordination endpoint on
 * node A, dials it from node B through SOCKS5, runs a Bitcoin version/verack handshake over it, tears down.
 */
import { OnionpunchError } from '../../errors.js';
import type { OverlaySelftestResult } from '../../overlay/types.js';
import type { Duplex } from 'node:stream';
import { startPrivateTor } from './private-tor.js';
import type { ProgressSink } from '../progress.js';
import { TorCoordinationEndpoint } from '../../overlay/tor/endpoint.js';
import { TorCoordinationDialer } from '../../overlay/tor/dialer.js';
import { versionHandshake } from '../../overlay/tor/handshake.js';
import { PROTOCOL_VERSION } from '../../wire/index.js';

/** Brings up the private tor network, creates an endpoint, dials it, runs a version handshake, tears down. */
export async function selftestTor(
  opts: { log?: (line: string) => void; progress?: ProgressSink } = {},
): Promise<OverlaySelftestResult> {
  const log = opts.log ?? (() => {});
  const net = await startPrivateTor({ log, ...(opts.progress ? { progress: opts.progress } : {}) });
  let ep: TorCoordinationEndpoint | undefined;
  const dialer = new TorCoordinationDialer({ socksPort: net.socksB.port, socksHost: net.socksB.host });
  try {
    const tPub = Date.now();
    ep = await TorCoordinationEndpoint.create({
      control: { host: net.controlA.host, port: net.controlA.port, auth: { cookieFile: net.controlA.cookieFile } },
      log,
    });
    const publishMs = Date.now() - tPub;
    // A answers B's version/verack handshake (real wire codecs) on every coordination stream.
    ep.on('stream', (s: Duplex) => {
      versionHandshake(s, false).then(
        () => s.end(),
        () => s.destroy(),
      );
    });
    const t1 = Date.now();
    const s = await dialer.dial(ep.address, ep.port, { timeoutMs: 90_000 });
    const firstConnectMs = Date.now() - t1;
    let ok = false;
    let error: { code: string; message: string } | undefined;
    try {
      const peer = await versionHandshake(s, true, { timeoutMs: 30_000 });
      ok = peer.version === PROTOCOL_VERSION;
      if (!ok) error = { code: 'OVERLAY_SELFTEST', message: `unexpected peer version ${peer.version}` };
    } catch (err) {
      error = err instanceof OnionpunchError ? err.toJSON() : { code: 'OVERLAY_SELFTEST', message: String(err) };
    }
    const handshakeMs = Date.now() - t1 - firstConnectMs;
    s.destroy();
    log(
      `tor selftest: ${ep.address} published in ${publishMs} ms, first connect ${firstConnectMs} ms, version ` +
        `handshake ${handshakeMs} ms`,
    );
    return {
      ok,
      bringUpMs: net.bringUpMs,
      firstConnectMs,
      publishMs,
      handshakeMs,
      descRetries: dialer.descRetries,
      timings: net.timings,
      ...(error ? { error } : {}),
    };
  } finally {
    await dialer.close();
    await ep?.close();
    await net.stop();
  }
}
