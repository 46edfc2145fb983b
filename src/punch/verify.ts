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

/** True when both texts name the same IP (`::ffff:1.2.3.4` = `1.2.3.4`, `2001:DB8::1` = `2001:db8:0:0:0:0:0:1`). */
export function sameIp(a: string, b: string): boolean {
  return canonicalAddress(a) === canonicalAddress(b);
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
 * socket, tells the other side `verify-failed` and throws PUNCH_VERIFY_FAILED naming `side`. The peer must be
 * one of `expected` and, when `expectIp` is given (B: the announced clearnet IP), have exactly that IP.
 */
export function verifyOrReport(
  side: 'A' | 'B',
  socket: Socket,
  expected: Endpoint[],
  ch: CoordChannel,
  sessionId: Buffer,
  tl: Timeline,
  expectIp?: string,
): Endpoint {
  const remote = verifyPeer(socket, expected);
  const other = side === 'A' ? 'B' : 'A';
  const got = `${socket.remoteAddress}:${socket.remotePort}`;
  let why: string | undefined;
  if (!remote) why = `connected peer ${got} is not one of ${other}'s endpoints`;
  else if (expectIp !== undefined && !sameIp(remote.address, expectIp)) {
    why = `connected peer ${got} is not on the expected clearnet IP ${expectIp}`;
  }
  if (remote && why === undefined) return remote;
  socket.destroy();
  const elapsedMs = Math.round(tl.mark('verify-failed'));
  ch.send({ cmd: 'opresult', sessionId, status: 'verify-failed', elapsedMs, reason: why!.slice(0, 256) });
  const mismatch = { expectedIp: remote ? expectIp : undefined, got: [got] };
  throw new PunchSessionError('PUNCH_VERIFY_FAILED', `${side}: ${why}`, { step: 'verify', side, mismatch });
}
