/**
 * The one address module: IPv4 / IPv6 text parse and format (RFC 5952), the IPv4-mapped form (`::ffff:a.b.c.d`)
 * that dual-stack sockets report, the classification of an address (public, private, loopback, ...), netgroups,
 * and the numeric {@link Endpoint} every layer passes around. Pure
 * functions over `node:net`'s validators; imports nothing of ours, so every layer (wire, limits, native, nat,
 * punch, daemon) may use it. Parsers return `undefined` on bad input; each layer turns that into its own typed
 * error. (An internal copy rather than ipaddr.js: see docs/ARCHITECTURE.md, "One of each primitive".)
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';

/** A numeric IPv4 or IPv6 address (text, IPv6 without brackets) and a TCP port. */
export interface Endpoint {
  address: string;
  port: number;
}

/** Formats 4 bytes as dotted quad. */
export function formatIPv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** Formats 16 bytes as RFC 5952 IPv6 text (longest zero run compressed, lower case). */
export function formatIPv6(b: Uint8Array): string {
  // Find the longest run (>= 2) of zero groups; the first one wins a tie (RFC 5952 4.2.3).
  let bestStart = -1;
  let bestLen = 1;
  let runStart = -1;
  for (let i = 0; i <= 8; i++) {
    const zero = i < 8 && b[2 * i] === 0 && b[2 * i + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = i;
    } else if (runStart >= 0) {
      if (i - runStart > bestLen) {
        bestStart = runStart;
        bestLen = i - runStart;
      }
      runStart = -1;
    }
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16);
  }
  return out;
}

/** The 12-byte prefix of an IPv4-mapped IPv6 address. */
export const V4_MAPPED_PREFIX: Readonly<Buffer> = Buffer.from('00000000000000000000ffff', 'hex');

/** True if 16 bytes are an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
export function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) if (b[i] !== V4_MAPPED_PREFIX[i]) return false;
  return true;
}

/** Formats 16 bytes: IPv4-mapped ones as dotted quad, others as RFC 5952 IPv6. */
export function formatIP16(b: Uint8Array): string {
  return isV4Mapped(b) ? formatIPv4(b.subarray(12)) : formatIPv6(b);
}

/** Parses strict dotted-quad IPv4 into 4 bytes, or undefined. */
export function parseIPv4(s: string): Buffer | undefined {
  if (!isIPv4(s)) return undefined;
  return Buffer.from(s.split('.').map((x) => Number(x)));
}

/** Parses IPv6 text (with optional embedded IPv4 tail, no zone) into 16 bytes, or undefined. */
export function parseIPv6(s: string): Buffer | undefined {
  if (!isIPv6(s) || s.includes('%')) return undefined;
  let text = s;
  if (text.includes('.')) {
    // Rewrite an embedded IPv4 tail as two hex groups, then parse as plain IPv6.
    const cut = text.lastIndexOf(':');
    const v4 = parseIPv4(text.slice(cut + 1));
    if (!v4) return undefined;
    text = `${text.slice(0, cut + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const parts = (p: string) => (p === '' ? [] : p.split(':').map((x) => parseInt(x, 16)));
  let groups: number[];
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    const left = parts(text.slice(0, dbl));
    const right = parts(text.slice(dbl + 2));
    const fill = 8 - left.length - right.length;
    if (fill < 0) return undefined;
    groups = [...left, ...new Array<number>(fill).fill(0), ...right];
  } else {
    groups = parts(text);
  }
  if (groups.length !== 8 || groups.some((x) => !(x >= 0 && x <= 0xffff))) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((x, i) => out.writeUInt16BE(x, i * 2));
  return out;
}

/** Parses any IP text into the 16-byte form (IPv4 becomes IPv4-mapped), or undefined. */
export function parseIP16(s: string): Buffer | undefined {
  const v4 = parseIPv4(s);
  if (v4) return Buffer.concat([V4_MAPPED_PREFIX, v4]);
  return parseIPv6(s);
}

/**
 * Writes dotted-quad IPv4 text as 4 bytes at `off` without allocating; false if `s` is not strict
 * dotted-quad (no leading zeros, each part 0-255).
 */
export function writeIPv4(s: string, buf: Uint8Array, off: number): boolean {
  let part = 0;
  let digits = 0;
  let n = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; // '.' sentinel ends the last part
    if (c === 46) {
      if (digits === 0 || n > 255 || part > 3) return false;
      buf[off + part++] = n;
      n = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && n === 0) return false; // leading zero
      n = n * 10 + (c - 48);
      digits++;
      if (digits > 3) return false;
    } else return false;
  }
  return part === 4;
}

/** Node reports IPv4 peers of a dual-stack socket as `::ffff:a.b.c.d`; this returns `a.b.c.d` (else `address`). */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/** The address family of IP text, IPv4-mapped IPv6 counting as 4; 0 when it is not an IP address. */
export function addressFamily(address: string): 4 | 6 | 0 {
  if (isIPv4(address)) return 4;
  if (!isIPv6(address)) return 0;
  const b = parseIPv6(address.split('%')[0]!);
  return b && isV4Mapped(b) ? 4 : 6;
}

/** Canonical text of an IP address for comparing: IPv4-mapped as IPv4, IPv6 in RFC 5952; other text as given. */
export function canonicalAddress(address: string): string {
  const b = isIPv6(address) ? parseIPv6(address) : undefined;
  return b ? formatIP16(b) : address;
}

/** What kind of address an IP text is (see {@link classifyAddress}). */
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

/** The class of an address: its family (IPv4-mapped IPv6 counts as 6), kind, and whether it is a lab range. */
export interface AddressClass {
  family: 4 | 6 | 0;
  kind: AddressKind;
  /** True for the lab's ranges (10/8, 100.64/10, 198.18/15, fd00::/8). */
  labRange: boolean;
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

/** True for a loopback address: 127.0.0.0/8 and ::1, in any spelling, IPv4-mapped too, a zone ignored. */
export function isLoopback(address: string): boolean {
  return classifyAddress(address).kind === 'loopback';
}

/**
 * True for an address to treat as this host (the SOCKS guard refuses them): loopback, unspecified (`0.0.0.0`,
 * `::`: a connect() to them reaches this host) and the rest of 0.0.0.0/8 ("this network", RFC 1122; Bitcoin
 * Core's IsLocal counts it too), IPv4-mapped forms included.
 */
export function reachesThisHost(address: string): boolean {
  const c = classifyAddress(address);
  if (c.kind === 'loopback' || c.kind === 'unspecified') return true;
  // The rest of 0.0.0.0/8 classifies as reserved; its first byte tells it from 240.0.0.0/4 and the IPv6 ranges.
  const b = c.kind === 'reserved' ? parseIP16(address.split('%')[0]!) : undefined;
  return b !== undefined && isV4Mapped(b) && b[12] === 0;
}

/**
 * The netgroup of an address, as Bitcoin Core's GetGroup without an AS map: `v4:a.b` (the /16) for IPv4 and
 * for IPv6 that carries an IPv4 address (mapped, SIIT, NAT64, 6to4, Teredo); `v6:2001:470:x` (/36) for he.net's
 * tunnel range; `v6:xxxx:xxxx` (the /32) for other IPv6; undefined when it is not an IP address. A zone
 * (`%eth0`) is ignored.
 */
export function netgroup(address: string): string | undefined {
  const v4 = parseIPv4(address);
  if (v4) return `v4:${v4[0]}.${v4[1]}`;
  const b = isIPv6(address) ? parseIPv6(address.split('%')[0]!) : undefined;
  if (!b) return undefined;
  const linked = linkedIPv4High(b);
  if (linked !== undefined) return `v4:${linked >> 8}.${linked & 0xff}`;
  const g0 = b.readUInt16BE(0);
  const g1 = b.readUInt16BE(2);
  if (g0 === 0x2001 && g1 === 0x470) return `v6:2001:470:${(b.readUInt16BE(4) >> 12).toString(16)}`;
  return `v6:${g0.toString(16)}:${g1.toString(16)}`;
}

/** The upper 16 bits of the IPv4 address an IPv6 address carries (Core's HasLinkedIPv4), or undefined. */
function linkedIPv4High(b: Buffer): number | undefined {
  const g = (i: number): number => b.readUInt16BE(2 * i);
  const zero = (from: number, to: number): boolean => {
    for (let i = from; i < to; i++) if (g(i) !== 0) return false;
    return true;
  };
  if (zero(0, 5) && g(5) === 0xffff) return g(6); // IPv4-mapped ::ffff:a.b.c.d
  if (zero(0, 4) && g(4) === 0xffff && g(5) === 0) return g(6); // SIIT ::ffff:0:a.b.c.d (RFC 6145)
  if (g(0) === 0x64 && g(1) === 0xff9b && zero(2, 6)) return g(6); // NAT64 64:ff9b::a.b.c.d (RFC 6052)
  if (g(0) === 0x2002) return g(1); // 6to4 2002:AABB:CCDD::/48 (RFC 3964)
  if (g(0) === 0x2001 && g(1) === 0) return ~g(6) & 0xffff; // Teredo: the client's IPv4, bit-inverted (RFC 4380)
  return undefined;
}

/** `a.b.c.d:port` or `[v6]:port`. */
export function formatEndpoint(e: Endpoint): string {
  return isIPv6(e.address) ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
