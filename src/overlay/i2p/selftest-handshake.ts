/**
 * A minimal Bitcoin version/verack exchange over a coordination stream, for the I2P selftest only, built on
 * src/wire (the full `Peer` of src/peer supersedes it once it lands). B is the initiator: it sends `version`;
 * A answers `version` + `verack`; B sends `verack`. B's version reveals nothing: services 0, empty addresses.
 */
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { encodeMessage, FrameParser, decodePayload, PROTOCOL_VERSION, type Frame, type VersionPayload, type NetworkName } from '../../wire/index.js';
import { OnionpunchError } from '../../errors.js';

const NETWORK: NetworkName = 'regtest';

function version(): VersionPayload {
  const none = { services: 0n, address: '::', port: 0 };
  return {
    version: PROTOCOL_VERSION,
    services: 0n,
    timestamp: BigInt(Math.floor(Date.now() / 1000)),
    addrRecv: none,
    addrFrom: none,
    nonce: randomBytes(8).readBigUInt64LE(0),
    userAgent: '/onionpunch-selftest/',
    startHeight: 0,
    relay: false,
  };
}

/** Reads frames from a stream, bounded in time; wire errors and a closed stream are typed errors. */
function frameReader(s: Duplex): (timeoutMs: number) => Promise<Frame> {
  const parser = new FrameParser({ network: NETWORK });
  const queue: Frame[] = [];
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  s.on('data', (d: Buffer) => {
    const r = parser.push(d);
    queue.push(...r.frames);
    if (r.error) failure = r.error;
    wake?.();
  });
  s.once('close', () => {
    failure ??= new OnionpunchError('OVERLAY_SELFTEST', 'stream closed during the version handshake');
    wake?.();
  });
  return async (timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = queue.shift();
      if (f) return f;
      if (failure) throw failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new OnionpunchError('OVERLAY_SELFTEST', 'version handshake timed out');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        wake = () => {
          clearTimeout(t);
          wake = null;
          r();
        };
      });
    }
  };
}

async function expect(read: (ms: number) => Promise<Frame>, command: string, timeoutMs: number): Promise<Frame> {
  const f = await read(timeoutMs);
  if (f.command !== command) throw new OnionpunchError('OVERLAY_SELFTEST', `expected ${command}, got ${f.command}`);
  return f;
}

/** Runs the exchange between B's and A's ends of one stream; resolves with the two versions seen. */
export async function versionHandshake(b: Duplex, a: Duplex, timeoutMs = 30_000): Promise<{ seenByA: VersionPayload; seenByB: VersionPayload }> {
  const readA = frameReader(a);
  const readB = frameReader(b);
  b.write(encodeMessage(NETWORK, 'version', version()));
  const seenByA = decodePayload('version', (await expect(readA, 'version', timeoutMs)).payload);
  a.write(Buffer.concat([encodeMessage(NETWORK, 'version', version()), encodeMessage(NETWORK, 'verack', {})]));
  const seenByB = decodePayload('version', (await expect(readB, 'version', timeoutMs)).payload);
  await expect(readB, 'verack', timeoutMs);
  b.write(encodeMessage(NETWORK, 'verack', {}));
  await expect(readA, 'verack', timeoutMs);
  return { seenByA, seenByB };
}
