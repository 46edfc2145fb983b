/** After the punch: the connected peer must be exactly an endpoint learned over the overlay. */
import type { Socket } from 'node:net';
import type { Endpoint } from '../nat/types.js';

/** Strips the IPv4-mapped prefix so `::ffff:198.18.0.1` compares equal to `198.18.0.1`. */
export function normalizeAddress(a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return (m ? m[1]! : a).toLowerCase();
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
