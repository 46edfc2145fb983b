/**
 * Netgroups for per-group caps, as Bitcoin Core's GetGroup without an AS map: the /16 of an IPv4 address; IPv6
 * addresses that carry an IPv4 address (IPv4-mapped, SIIT, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo
 * 2001::/32) group as that IPv4 address, so the IPv6 forms of one IPv4 /16 are one group; Hurricane Electric's
 * tunnel range 2001:470::/32 (free /48s for anyone) by /36; every other IPv6 address by /32.
 * One deliberate difference: Core puts all local addresses in one group, here 127/8 groups by /16 like any IPv4
 * (loopback is only ever a test or lab source, and its /16s stand in for distinct networks there).
 */
import { isIP } from 'node:net';
import { LimitError } from './errors.js';

/** Expands an IPv6 text address to 8 groups of 16 bits; undefined if it is not valid IPv6. */
export function parseIPv6(addr: string): number[] | undefined {
  if (isIP(addr) !== 6) return undefined;
  let s = addr;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const p = last.split('.').map(Number);
    tail = [(p[0]! << 8) | p[1]!, (p[2]! << 8) | p[3]!];
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const h = head === '' ? [] : head.split(':').map((x) => parseInt(x, 16));
  const r = rest === undefined ? [] : rest === '' ? [] : rest.split(':').map((x) => parseInt(x, 16));
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  const groups = [...h, ...new Array<number>(fill).fill(0), ...r];
  if (tail.length) groups.splice(6, 2, ...tail);
  return groups.length === 8 ? groups : undefined;
}

/** The upper 16 bits of the IPv4 address an IPv6 address carries (Core's HasLinkedIPv4), or undefined. */
function linkedIPv4High(g: number[]): number | undefined {
  const zero = (from: number, to: number): boolean => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && g[5] === 0xffff) return g[6]; // IPv4-mapped ::ffff:a.b.c.d
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return g[6]; // SIIT ::ffff:0:a.b.c.d (RFC 6145)
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return g[6]; // NAT64 64:ff9b::a.b.c.d (RFC 6052)
  if (g[0] === 0x2002) return g[1]; // 6to4 2002:AABB:CCDD::/48 (RFC 3964)
  if (g[0] === 0x2001 && g[1] === 0) return ~g[6]! & 0xffff; // Teredo: the client's IPv4, bit-inverted (RFC 4380)
  return undefined;
}

/**
 * `v4:a.b` for IPv4 and IPv6 carrying IPv4, `v6:2001:470:x` for he.net (/36), `v6:xxxx:xxxx` for other IPv6 (/32).
 * Throws LIMIT_BAD_CONFIG on junk.
 */
export function netgroupOf(addr: string): string {
  const kind = isIP(addr);
  if (kind === 4) {
    const p = addr.split('.');
    return `v4:${p[0]}.${p[1]}`;
  }
  if (kind === 6) {
    const g = parseIPv6(addr)!;
    const v4 = linkedIPv4High(g);
    if (v4 !== undefined) return `v4:${v4 >> 8}.${v4 & 0xff}`;
    if (g[0] === 0x2001 && g[1] === 0x470) return `v6:2001:470:${(g[2]! >> 12).toString(16)}`;
    return `v6:${g[0]!.toString(16)}:${g[1]!.toString(16)}`;
  }
  throw new LimitError('LIMIT_BAD_CONFIG', `not an IP address: ${JSON.stringify(addr)}`);
}
