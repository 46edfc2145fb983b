/**
 * A Bitcoin version/verack exchange over a coordination stream, with the real wire codecs (src/wire). Used by
 * the Tor selftest and tests to prove that P2P framing crosses the onion both ways. B (initiator) reveals
 * nothing in its version: services 0, empty addresses, empty user agent.
 */
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { OnionpunchError } from '../../errors.js';
import { FrameParser, decodePayload, encodeMessage, PROTOCOL_VERSION, type NetworkName, type VersionPayload, type Frame } from '../../wire/index.js';

const EMPTY_ADDR = { services: 0n, address: '0.0.0.0', port: 0 };

/** Sends version (initiator first), expects version + verack, answers verack. Resolves with the peer's version. */
export async function versionHandshake(
  s: Duplex,
  initiator: boolean,
  opts: { network?: NetworkName; timeoutMs?: number } = {},
): Promise<VersionPayload> {
  const network = opts.network ?? 'regtest';
  const parser = new FrameParser({ network, maxPayload: 4096 });
  const queue: Frame[] = [];
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  const onData = (d: Buffer) => {
    const r = parser.push(d);
    queue.push(...r.frames);
    if (r.error) failure = r.error;
    wake?.();
  };
  const onClose = () => {
    failure ??= new OnionpunchError('OVERLAY_HANDSHAKE', 'stream closed during the version handshake');
    wake?.();
  };
  s.on('data', onData);
  s.on('close', onClose);
  const timer = setTimeout(() => {
    failure ??= new OnionpunchError('OVERLAY_HANDSHAKE', 'version handshake timed out');
    wake?.();
  }, opts.timeoutMs ?? 30_000);
  const next = async (): Promise<Frame> => {
    for (;;) {
      const f = queue.shift();
      if (f) return f;
      if (failure) throw failure;
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
  };
  const version: VersionPayload = {
    version: PROTOCOL_VERSION,
    services: 0n,
    timestamp: BigInt(Math.floor(Date.now() / 1000)),
    addrRecv: EMPTY_ADDR,
    addrFrom: EMPTY_ADDR,
    nonce: randomBytes(8).readBigUInt64LE(),
    userAgent: '',
    startHeight: 0,
    relay: false,
  };
  try {
    if (initiator) s.write(encodeMessage(network, 'version', version));
    const v = await next();
    if (v.command !== 'version') throw new OnionpunchError('OVERLAY_HANDSHAKE', `expected version, got ${v.command}`);
    const peer = decodePayload('version', v.payload);
    if (!initiator) s.write(encodeMessage(network, 'version', version));
    s.write(encodeMessage(network, 'verack', {}));
    const ack = await next();
    if (ack.command !== 'verack') throw new OnionpunchError('OVERLAY_HANDSHAKE', `expected verack, got ${ack.command}`);
    return peer;
  } finally {
    clearTimeout(timer);
    s.off('data', onData);
    s.off('close', onClose);
  }
}
