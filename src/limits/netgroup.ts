/**
 * Netgroups for per-group caps: the /16 of an IPv4 address, the /32 of an IPv6 address (as Bitcoin Core
 * groups by default without an AS map). IPv4-mapped IPv6 addresses group as IPv4. The grouping itself is
 * src/ip.ts ({@link netgroup}); this adds the limits layer's error for junk.
 */
import { netgroup } from '../ip.js';
import { LimitError } from './errors.js';

/** `v4:a.b` for IPv4 (and IPv4-mapped IPv6), `v6:xxxx:xxxx` for IPv6. Throws LIMIT_BAD_CONFIG on junk. */
export function netgroupOf(addr: string): string {
  const g = netgroup(addr);
  if (g === undefined) throw new LimitError('LIMIT_BAD_CONFIG', `not an IP address: ${JSON.stringify(addr)}`);
  return g;
}
