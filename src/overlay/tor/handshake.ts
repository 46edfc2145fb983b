/**
 * A Bitcoin version/verack exchange over a coordination stream with the project's `Peer` (src/peer). Used by the
 * Tor selftest and tests to prove that P2P framing crosses the onion both ways. Neither side reveals anything in
 * its version: services 0 and all-zero addresses (Peer's defaults).
 */
import type { Duplex } from 'node:stream';
import { Peer } from '../../peer/index.js';
import type { NetworkName, VersionPayload } from '../../wire/index.js';

/** Runs the handshake as initiator (B) or responder (A); resolves with the peer's version. Leaves `s` open. */
export async function versionHandshake(
  s: Duplex,
  initiator: boolean,
  opts: { network?: NetworkName; timeoutMs?: number } = {},
): Promise<VersionPayload> {
  const peer = new Peer(s, {
    network: opts.network ?? 'regtest',
    role: initiator ? 'initiator' : 'responder',
    handshakeTimeoutMs: opts.timeoutMs ?? 30_000,
  });
  const r = await peer.handshake();
  return r.version;
}
