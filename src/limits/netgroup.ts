/**
 * Netgroups for per-group caps: the /16 of an IPv4 address, the /32 of an IPv6 address (as Bitcoin Core
 * groups by default without an AS map). IPv4-mapped IPv6 addresses group as IPv4.
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

/** `v4:a.b` for IPv4 (and IPv4-mapped IPv6), `v6:xxxx:xxxx` for IPv6. Throws LIMIT_BAD_CONFIG on junk. */
export function netgroupOf(addr: string): string {
  const kind = isIP(addr);
  if (kind === 4) {
    const p = addr.split('.');
    return `v4:${p[0]}.${p[1]}`;
  }
  if (kind === 6) {
    const g = parseIPv6(addr)!;
    if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
      return `v4:${g[6]! >> 8}.${g[6]! & 0xff}`;
    }
    return `v6:${g[0]!.toString(16)}:${g[1]!.toString(16)}`;
  }
  throw new LimitError('LIMIT_BAD_CONFIG', `not an IP address: ${JSON.stringify(addr)}`);
}
