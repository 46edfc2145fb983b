/** After the punch: the connected peer must be exactly an endpoint learned over the overlay. */
import type { Socket } from 'node:net';
import type { Endpoint } from '../nat/types.js';
import { canonicalAddress } from '../ip.js';
import type { CoordChannel } from './channel.js';
import { PunchSessionError } from './errors.js';
import type { Timeline } from './timeline.js';

/** Strips the IPv4-mapped prefix so `::ffff:198.18.0.1` compares equal to `198.18.0.1`. */
export function normalizeAddress(a: string): string {
  return canonicalAddress(a);
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && normalizeAddress(a.address) === normalizeAddress(b.address);
}

/** getpeername() of the socket, or undefined when the socket is not connected. */
export function peerOf(socket: Socket): Endpoint | undefined {
  const address = socket.remoteAddress;
  const port = socket.remotePort;
  if (address === undefined || port === undefined) return undefined;
  return { address: normalizeAddress(address), port };
}

/** The expected endpoint the socket is connected to, or undefined if it matches none. */
export function verifyPeer(socket: Socket, expected: Endpoint[]): Endpoint | undefined {
  const p = peerOf(socket);
  if (!p) return undefined;
  return expected.find((e) => sameEndpoint(e, p));
}

/**
 * The session's verify step, shared by both roles: returns the verified peer endpoint, or destroys the
 * socket, tells the other side `verify-failed` and throws PUNCH_VERIFY_FAILED naming `side`.
 */
export function verifyOrReport(
  side: 'A' | 'B',
  socket: Socket,
  expected: Endpoint[],
  ch: CoordChannel,
  sessionId: Buffer,
  tl: Timeline,
): Endpoint {
  const remote = verifyPeer(socket, expected);
  if (remote) return remote;
  const got = `${socket.remoteAddress}:${socket.remotePort}`;
  socket.destroy();
  ch.send({ cmd: 'opresult', sessionId, status: 'verify-failed', elapsedMs: Math.round(tl.mark('verify-failed')), reason: `peer ${got} is not an endpoint from opendpoint` });
  const other = side === 'A' ? 'B' : 'A';
  throw new PunchSessionError('PUNCH_VERIFY_FAILED', `${side}: connected peer ${got} is not one of ${other}'s endpoints`, { step: 'verify', side });
}
