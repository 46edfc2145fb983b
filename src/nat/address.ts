/**
 * Address classification: is this an address a punch may target? Only public unicast addresses are
 * acceptable on the real network; the lab uses ranges that never leave a machine (198.18.0.0/15,
 * 100.64.0.0/10, 10.0.0.0/8, fd00::/8) and those are allowed only when the caller sets `allowLab`.
 */
import { isIP } from 'node:net';
import { isV4Mapped, parseIPv4, parseIPv6 } from '../ip.js';
import { OnionpunchError } from '../errors.js';

export type AddressKind =
  | 'public'
  | 'private' // RFC 1918, ULA
  | 'cgnat' // 100.64.0.0/10
  | 'benchmark' // 198.18.0.0/15
  | 'loopback'
  | 'linklocal'
  | 'multicast'
  | 'unspecified'
  | 'documentation'
  | 'reserved'
  | 'invalid';

export interface AddressClass {
  family: 4 | 6 | 0;
  kind: AddressKind;
  /** True for the lab's ranges (10/8, 100.64/10, 198.18/15, fd00::/8). */
  labRange: boolean;
}

export interface TargetPolicy {
  /** Accept the lab's ranges (never on a real network). */
  allowLab?: boolean;
  /** Accept loopback targets: both ends on one machine (the daemon key `loopback`; never on a real network). */
  allowLoopback?: boolean;
}

/** A target address refused by policy; code NAT_TARGET_REFUSED. */
export class AddressPolicyError extends OnionpunchError {
  constructor(message: string) {
    super('NAT_TARGET_REFUSED', message);
  }
}

function v4(addr: string): number {
  return parseIPv4(addr)!.readUInt32BE(0);
}

function in4(x: number, base: string, bits: number): boolean {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (x & mask) >>> 0 === (v4(base) & mask) >>> 0;
}

function classify4(x: number): AddressClass {
  const c = (kind: AddressKind, labRange = false): AddressClass => ({ family: 4, kind, labRange });
  if (in4(x, '10.0.0.0', 8)) return c('private', true);
  if (in4(x, '100.64.0.0', 10)) return c('cgnat', true);
  if (in4(x, '198.18.0.0', 15)) return c('benchmark', true);
  if (in4(x, '0.0.0.0', 8)) return c(x === 0 ? 'unspecified' : 'reserved');
  if (in4(x, '127.0.0.0', 8)) return c('loopback');
  if (in4(x, '169.254.0.0', 16)) return c('linklocal');
  if (in4(x, '172.16.0.0', 12) || in4(x, '192.168.0.0', 16)) return c('private');
  if (in4(x, '192.0.2.0', 24) || in4(x, '198.51.100.0', 24) || in4(x, '203.0.113.0', 24)) return c('documentation');
  if (in4(x, '192.0.0.0', 24) || in4(x, '192.88.99.0', 24)) return c('reserved');
  if (in4(x, '224.0.0.0', 4)) return c('multicast');
  if (in4(x, '240.0.0.0', 4)) return c('reserved'); // includes 255.255.255.255
  return c('public');
}

/** Classifies an IPv4 or IPv6 text address. IPv4-mapped IPv6 is classified as its IPv4 address. */
export function classifyAddress(addr: string): AddressClass {
  const fam = isIP(addr);
  if (fam === 4) return classify4(v4(addr));
  if (fam !== 6) return { family: 0, kind: 'invalid', labRange: false };
  // A zone (`fe80::1%eth0`) does not change the class.
  const b = parseIPv6(addr.split('%')[0]!);
  if (!b) return { family: 0, kind: 'invalid', labRange: false };
  const c = (kind: AddressKind, labRange = false): AddressClass => ({ family: 6, kind, labRange });
  if (isV4Mapped(b)) return { ...classify4(b.readUInt32BE(12)), family: 6 };
  const g = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(2 * i));
  const zeroPrefix = g.slice(0, 5).every((x) => x === 0);
  if (g.every((x) => x === 0)) return c('unspecified');
  if (zeroPrefix && g[5] === 0 && g[6] === 0 && g[7] === 1) return c('loopback');
  const g0 = g[0]!;
  if ((g0 & 0xff00) === 0xff00) return c('multicast');
  if ((g0 & 0xffc0) === 0xfe80) return c('linklocal');
  if ((g0 & 0xffc0) === 0xfec0) return c('reserved'); // deprecated site-local
  if ((g0 & 0xff00) === 0xfd00) return c('private', true);
  if ((g0 & 0xfe00) === 0xfc00) return c('private');
  if (g0 === 0x2001 && g[1] === 0x0db8) return c('documentation');
  // 2001::/23 IETF protocol assignments (Teredo, ORCHID, ...)
  if (g0 === 0x2001 && g[1]! < 0x0200) return c('reserved');
  if (g0 === 0x3fff && g[1]! < 0x1000) return c('documentation'); // 3fff::/20
  if ((g0 & 0xe000) !== 0x2000) return c('reserved'); // outside 2000::/3 global unicast
  return c('public');
}

/** True when `addr` may be a punch target under `policy`. */
export function isAllowedTarget(addr: string, policy: TargetPolicy = {}): boolean {
  const k = classifyAddress(addr);
  if (k.kind === 'public') return true;
  if (policy.allowLoopback === true && k.kind === 'loopback') return true;
  return policy.allowLab === true && k.labRange;
}

/** Throws AddressPolicyError (NAT_TARGET_REFUSED) unless `addr` may be a punch target. */
export function assertAllowedTarget(addr: string, policy: TargetPolicy = {}): void {
  if (isAllowedTarget(addr, policy)) return;
  const k = classifyAddress(addr);
  const hint = k.labRange && !policy.allowLab ? ' (a lab range: allowed only with the lab flag)' : '';
  throw new AddressPolicyError(`refusing target ${addr}: ${k.kind} address is not public unicast${hint}`);
}
