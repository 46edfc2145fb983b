/**
 * The default Observer: an ordinary connect from a reusable local port (native `connectFrom`), a version
 * handshake as initiator, and the peer's `addr_recv` — how it sees us. The connection is closed right
 * after (a NAT-check server closes it itself; a feeler-like peer gets a polite FIN).
 */
import { connectFrom } from '../native/engine.js';
import {
  FrameParser,
  encodeMessage,
  decodePayload,
  PROTOCOL_VERSION,
  USER_AGENT,
  type NetworkName,
} from '../wire/index.js';
import { unmapIPv4 } from '../ip.js';
import type { Endpoint, Observer } from './types.js';
import { NatError } from './errors.js';
import { randomNonce } from '../wire/nonce.js';

export interface ObserverOptions {
  network?: NetworkName;
}

export function nativeObserver(o: ObserverOptions = {}): Observer {
  const network = o.network ?? 'main';
  return async (local: Endpoint, peer: Endpoint, opts): Promise<Endpoint & { localPort: number }> => {
    const t0 = performance.now();
    const res = await connectFrom(local, peer, {
      timeoutMs: opts.timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    }).catch((err: unknown) => {
      throw new NatError(
        'NAT_OBSERVE_FAILED',
        `connect from :${local.port} to ${peer.address}:${peer.port}: ${(err as Error).message}`,
        { cause: err },
      );
    });
    const sock = res.socket;
    const left = Math.max(100, opts.timeoutMs - (performance.now() - t0));
    try {
      return await new Promise<Endpoint & { localPort: number }>((resolve, reject) => {
        const parser = new FrameParser({ network, maxPayload: 4096 });
        const timer = setTimeout(
          () =>
            reject(
              new NatError(
                'NAT_OBSERVE_FAILED',
                `${peer.address}:${peer.port}: no version within ${Math.round(left)} ms`,
              ),
            ),
          left,
        );
        const done = (f: () => void): void => {
          clearTimeout(timer);
          sock.removeAllListeners('data');
          f();
        };
        sock.on('data', (chunk: Buffer) => {
          const { frames, error } = parser.push(chunk);
          for (const f of frames) {
            if (f.command === 'version') {
              try {
                const v = decodePayload('version', f.payload);
                // Complete the handshake politely; the server closes the connection after it.
                sock.write(encodeMessage(network, 'verack', {}));
                const seen = {
                  address: unmapIPv4(v.addrRecv.address),
                  port: v.addrRecv.port,
                  localPort: res.local.port,
                };
                done(() => resolve(seen));
              } catch (err) {
                done(() =>
                  reject(
                    new NatError(
                      'NAT_OBSERVE_FAILED',
                      `${peer.address}:${peer.port}: bad version: ${(err as Error).message}`,
                    ),
                  ),
                );
              }
              return;
            }
          }
          if (error)
            done(() => reject(new NatError('NAT_OBSERVE_FAILED', `${peer.address}:${peer.port}: ${error.message}`)));
        });
        sock.once('close', () =>
          done(() =>
            reject(new NatError('NAT_OBSERVE_FAILED', `${peer.address}:${peer.port} closed before its version`)),
          ),
        );
        sock.once('error', (err) =>
          done(() => reject(new NatError('NAT_OBSERVE_FAILED', `${peer.address}:${peer.port}: ${err.message}`))),
        );
        // Feeler-like version: reveals nothing but what the connection itself shows.
        sock.write(
          encodeMessage(network, 'version', {
            version: PROTOCOL_VERSION,
            services: 0n,
            timestamp: BigInt(Math.floor(Date.now() / 1000)),
            addrRecv: { services: 0n, address: peer.address, port: peer.port },
            addrFrom: { services: 0n, address: '::', port: 0 },
            nonce: randomNonce(),
            userAgent: USER_AGENT,
            startHeight: 0,
            relay: false,
          }),
        );
      });
    } finally {
      sock.end();
      setTimeout(() => sock.destroy(), 1000).unref();
    }
  };
}
