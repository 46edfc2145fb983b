/**
 * `onionpunch overlay selftest --i2p`: brings up the private I2P network, creates a coordination endpoint on one
 * router's SAM bridge and a dialer on another's (both sessions in parallel: each costs i2pd's ~20 s readiness
 * cycle), dials the endpoint by its b32 address, exchanges bytes both ways, runs the Bitcoin version handshake
 * (src/peer) and a ping across it, and tears everything down. Both sessions live on the two routers that are not
 * floodfills (docs/I2P.md, "Where SAM clients go").
 */
import type { Duplex } from 'node:stream';
import { OnionpunchError } from '../../errors.js';
import type { AcceptedStreamInfo, OverlaySelftestResult } from '../../overlay/types.js';
import { startPrivateI2p, type PrivateI2p } from './private-i2p.js';
import type { ProgressSink } from '../progress.js';
import { I2pCoordinationEndpoint } from '../../overlay/i2p/endpoint.js';
import { I2pCoordinationDialer } from '../../overlay/i2p/dialer.js';
import { SamError } from '../../overlay/i2p/errors.js';
import { Peer } from '../../peer/index.js';

/** Bound on the whole selftest: it never hangs. */
const SELFTEST_TIMEOUT_MS = 180_000;

function readN(s: Duplex, n: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err?: Error) => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) done();
    };
    const onClose = () => done(new SamError('SAM_CLOSED', `stream closed after ${buf.length} of ${n} bytes`));
    const t = setTimeout(() => done(new SamError('SAM_TIMEOUT', `no data within ${timeoutMs} ms`)), timeoutMs);
    s.on('data', onData);
    s.once('close', onClose);
  });
}

/** Brings up the private i2p network, creates an endpoint, dials it, exchanges bytes both ways, tears down. */
export async function selftestI2p(
  opts: { log?: (line: string) => void; progress?: ProgressSink } = {},
): Promise<OverlaySelftestResult> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const ms = (since: number) => Math.round(performance.now() - since);
  const aborter = new AbortController();
  const watchdog = setTimeout(() => aborter.abort(), SELFTEST_TIMEOUT_MS);
  const extra: Record<string, unknown> = { routers: 4 };
  let bringUpMs = -1;
  let firstConnectMs = -1;
  let net: PrivateI2p | undefined;
  let endpoint: I2pCoordinationEndpoint | undefined;
  let dialer: I2pCoordinationDialer | undefined;
  const streams: Duplex[] = [];
  const peers: Peer[] = [];
  try {
    const progress = opts.progress ? { progress: opts.progress } : {};
    net = await startPrivateI2p({ log, timeoutMs: 60_000, ...progress });
    extra.networkUpMs = net.bringUpMs;
    log(`i2p: private network up in ${net.bringUpMs} ms; creating endpoint and dialer sessions in parallel`);
    const ts = performance.now();
    [endpoint, dialer] = await Promise.all([
      I2pCoordinationEndpoint.create({
        sam: net.sam[2]!,
        sessionOptions: net.sessionOptions,
        ...net.sessionCreate,
        signal: aborter.signal,
      }),
      I2pCoordinationDialer.create({
        sam: net.sam[3]!,
        sessionOptions: net.sessionOptions,
        ...net.sessionCreate,
        signal: aborter.signal,
      }),
    ]);
    extra.sessionsMs = ms(ts);
    bringUpMs = ms(t0);
    extra.endpoint = endpoint.address;
    log(`i2p: endpoint ${endpoint.address} and dialer ready in ${extra.sessionsMs} ms (bring-up ${bringUpMs} ms)`);

    const ep = endpoint;
    const tc = performance.now();
    const accepted = new Promise<{ stream: Duplex; info: AcceptedStreamInfo }>((resolve) =>
      ep.once('stream', (stream: Duplex, info: AcceptedStreamInfo) => resolve({ stream, info })),
    );
    const b = await dialer.dial(ep.address, ep.port, { timeoutMs: 60_000, signal: aborter.signal });
    streams.push(b);
    extra.connectStatusMs = ms(tc);
    extra.dialRetries = dialer.retries;
    const ping = Buffer.from('onionpunch i2p selftest: B -> A\n');
    const pong = Buffer.from('onionpunch i2p selftest: A -> B\n');
    b.write(ping);
    const acc = await Promise.race([
      accepted,
      new Promise<never>((_, rej) =>
        setTimeout(
          () => rej(new SamError('SAM_TIMEOUT', 'the endpoint accepted no stream within 60 s')),
          60_000,
        ).unref(),
      ),
    ]);
    streams.push(acc.stream);
    extra.acceptMs = ms(tc);
    if (acc.info.peer !== dialer.session.b32)
      throw new OnionpunchError('OVERLAY_SELFTEST', 'the accepted stream reports a wrong caller');
    const gotPing = await readN(acc.stream, ping.length, 30_000);
    if (!gotPing.equals(ping)) throw new OnionpunchError('OVERLAY_SELFTEST', 'A received wrong bytes');
    acc.stream.write(pong);
    const gotPong = await readN(b, pong.length, 30_000);
    if (!gotPong.equals(pong)) throw new OnionpunchError('OVERLAY_SELFTEST', 'B received wrong bytes');
    firstConnectMs = ms(tc);
    log(`i2p: first connect + bytes both ways in ${firstConnectMs} ms`);
    // The Bitcoin version handshake across the stream, B the initiator (its version reveals nothing), A the
    // responder, then one ping for the channel's RTT.
    const th = performance.now();
    const pb = new Peer(b, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 30_000 });
    const pa = new Peer(acc.stream, { network: 'regtest', role: 'responder', handshakeTimeoutMs: 30_000 });
    peers.push(pb, pa);
    const [, seenByA] = await Promise.all([pb.handshake(), pa.handshake()]);
    if (seenByA.version.services !== 0n) throw new OnionpunchError('OVERLAY_SELFTEST', 'B revealed services');
    extra.handshakeMs = ms(th);
    extra.handshake = 'version/verack';
    extra.pingMs = Math.round(await pb.ping(30_000));
    log(`i2p: version handshake in ${extra.handshakeMs} ms, ping ${extra.pingMs} ms`);
    return { ok: true, bringUpMs, firstConnectMs, ...extra };
  } catch (err) {
    const e =
      err instanceof OnionpunchError
        ? err.toJSON()
        : aborter.signal.aborted
          ? { code: 'OVERLAY_SELFTEST_TIMEOUT', message: `no result within ${SELFTEST_TIMEOUT_MS} ms` }
          : { code: 'INTERNAL', message: String(err) };
    return { ok: false, bringUpMs, firstConnectMs, error: e, ...extra };
  } finally {
    clearTimeout(watchdog);
    for (const p of peers) p.close();
    for (const s of streams) s.destroy();
    await endpoint?.close().catch(() => {});
    await dialer?.close().catch(() => {});
    await net?.stop();
  }
}
