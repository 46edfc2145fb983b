/**
 * Netgroups for per-group caps, as Bitcoin Core's GetGroup without an AS map: the /16 of an IPv4 address; IPv6
 * addresses that carry an IPv4 address (IPv4-mapped, SIIT, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo
 * 2001::/32) group as that IPv4 address, so the IPv6 forms of one IPv4 /16 are one group; Hurricane Electric's
 * tunnel range 2001:470::/32 (free /48s for anyone) by /36; every other IPv6 address by /32.
 * One deliberate difference: Core puts all local addresses in one group, here 127/8 groups by /16 like any IPv4
 * (loopback is only ever a test or lab source, and its /16s stand in for distinct networks there).
 * The grouping itself is src/ip.ts ({@link netgroup}); this adds the limits layer's error for junk.
 */
import { netgroup } from '../ip.js';
import { LimitError } from './errors.js';

/** {@link netgroup}, or LIMIT_BAD_CONFIG on junk. */
export function netgroupOf(addr: string): string {
  const g = netgroup(addr);
  if (g === undefined) throw new LimitError('LIMIT_BAD_CONFIG', `not an IP address: ${JSON.stringify(addr)}`);
  return g;
}
