/**
 * Address text forms: IPv4 / IPv6 (RFC 5952), Tor v3 `.onion` (with its SHA3-256 checksum), I2P
 * `.b32.i2p`, and `host:port` endpoints. Pure functions; bad input is a {@link WireError}
 * (`WIRE_BAD_ADDRESS`).
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { WireError } from './errors.js';

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
const B32_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 32; i++) {
  B32_INDEX[B32.charCodeAt(i)] = i;
  B32_INDEX[B32.toUpperCase().charCodeAt(i)] = i;
}

/** RFC 4648 base32, lower case, no padding. */
export function base32Encode(data: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const byte of data) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

/** RFC 4648 base32 (either case, no padding); undefined on a bad character or non-zero pad bits. */
export function base32Decode(s: string): Buffer | undefined {
  const out = Buffer.allocUnsafe(Math.floor((s.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? B32_INDEX[c]! : -1;
    if (v < 0) return undefined;
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[o++] = (acc >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  if (bits >= 5 || (acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
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

const V4_MAPPED_PREFIX = Buffer.from('00000000000000000000ffff', 'hex');

/** True if 16 bytes are an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
export function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) if (b[i] !== V4_MAPPED_PREFIX[i]) return false;
  return true;
}

/** Formats a 16-byte v1 (addr / version) address: IPv4-mapped ones as dotted quad, others as IPv6. */
export function formatAddrV1(b: Uint8Array): string {
  return isV4Mapped(b) ? formatIPv4(b.subarray(12)) : formatIPv6(b);
}

/** Parses dotted-quad IPv4 into 4 bytes, or undefined. */
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

/** Writes any IP text as the 16-byte v1 form at `off` (IPv4 IPv4-mapped). Throws WIRE_BAD_ADDRESS. */
export function writeAddrV1(s: string, buf: Buffer, off: number): void {
  if (writeIPv4(s, buf, off + 12)) {
    buf.fill(0, off, off + 10);
    buf[off + 10] = 0xff;
    buf[off + 11] = 0xff;
    return;
  }
  const v6 = parseIPv6(s);
  if (!v6) throw new WireError('WIRE_BAD_ADDRESS', `not an IP address: '${s}'`);
  v6.copy(buf, off);
}

/** Parses any IP text into the 16-byte v1 form (IPv4 becomes IPv4-mapped). */
export function parseAddrV1(s: string): Buffer {
  const v4 = parseIPv4(s);
  if (v4) return Buffer.concat([V4_MAPPED_PREFIX, v4]);
  const v6 = parseIPv6(s);
  if (v6) return v6;
  throw new WireError('WIRE_BAD_ADDRESS', `not an IP address: '${s}'`);
}

/** Tor v3 checksum: SHA3-256(".onion checksum" | pubkey | 0x03)[0:2]. */
function onionChecksum(pubkey: Uint8Array): Buffer {
  return createHash('sha3-256')
    .update('.onion checksum')
    .update(pubkey)
    .update(Buffer.from([3]))
    .digest()
    .subarray(0, 2);
}

/** Formats a 32-byte Tor v3 public key (the BIP155 TORV3 address) as `xxx.onion`. */
export function formatOnion(pubkey: Uint8Array): string {
  if (pubkey.length !== 32) throw new WireError('WIRE_BAD_ADDRESS', `Tor v3 key must be 32 bytes, got ${pubkey.length}`);
  return base32Encode(Buffer.concat([pubkey, onionChecksum(pubkey), Buffer.from([3])])) + '.onion';
}

/** Parses `xxx.onion` (Tor v3, checksum and version checked) into the 32-byte public key. */
export function parseOnion(s: string): Buffer {
  const m = /^([a-z2-7]{56})\.onion$/i.exec(s);
  if (!m) throw new WireError('WIRE_BAD_ADDRESS', `not a Tor v3 .onion address: '${s}'`);
  const raw = base32Decode(m[1]!);
  if (!raw || raw.length !== 35) throw new WireError('WIRE_BAD_ADDRESS', `bad base32 in .onion address: '${s}'`);
  const pubkey = raw.subarray(0, 32);
  if (raw[34] !== 3) throw new WireError('WIRE_BAD_ADDRESS', `.onion version ${raw[34]} is not 3: '${s}'`);
  if (!onionChecksum(pubkey).equals(raw.subarray(32, 34))) {
    throw new WireError('WIRE_BAD_ADDRESS', `bad .onion checksum: '${s}'`);
  }
  return Buffer.from(pubkey);
}

/** Formats a 32-byte I2P destination hash (the BIP155 I2P address) as `xxx.b32.i2p`. */
export function formatB32(hash: Uint8Array): string {
  if (hash.length !== 32) throw new WireError('WIRE_BAD_ADDRESS', `I2P hash must be 32 bytes, got ${hash.length}`);
  return base32Encode(hash) + '.b32.i2p';
}

/** Parses `xxx.b32.i2p` into the 32-byte destination hash. */
export function parseB32(s: string): Buffer {
  const m = /^([a-z2-7]{52})\.b32\.i2p$/i.exec(s);
  const raw = m ? base32Decode(m[1]!) : undefined;
  if (!raw || raw.length !== 32) throw new WireError('WIRE_BAD_ADDRESS', `not an I2P .b32.i2p address: '${s}'`);
  return raw;
}

/** What kind of host an endpoint string names. */
export type HostKind = 'ipv4' | 'ipv6' | 'torv3' | 'i2p' | 'name';

/** A parsed `host:port`. IPv6 hosts are given without brackets. */
export interface Endpoint {
  host: string;
  port: number;
  kind: HostKind;
}

/** Classifies a host string. */
export function hostKind(host: string): HostKind {
  if (isIPv4(host)) return 'ipv4';
  if (isIPv6(host)) return 'ipv6';
  if (/\.onion$/i.test(host)) return 'torv3';
  if (/\.i2p$/i.test(host)) return 'i2p';
  return 'name';
}

/**
 * Parses `host:port`, `[ipv6]:port`, `xxx.onion:port`, `xxx.b32.i2p:port`. `.onion` / `.b32.i2p` hosts
 * are validated (checksum); names must be plausible DNS names. Port 0–65535 required unless
 * `defaultPort` is given.
 */
export function parseEndpoint(s: string, defaultPort?: number): Endpoint {
  let host: string;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw new WireError('WIRE_BAD_ADDRESS', `missing ']' in '${s}'`);
    host = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new WireError('WIRE_BAD_ADDRESS', `junk after ']' in '${s}'`);
      portText = rest.slice(1);
    }
    if (!parseIPv6(host)) throw new WireError('WIRE_BAD_ADDRESS', `not an IPv6 address in brackets: '${s}'`);
  } else {
    const colons = s.split(':').length - 1;
    if (colons > 1) throw new WireError('WIRE_BAD_ADDRESS', `IPv6 endpoints need brackets, e.g. [::1]:8333: '${s}'`);
    const cut = s.lastIndexOf(':');
    host = cut >= 0 ? s.slice(0, cut) : s;
    portText = cut >= 0 ? s.slice(cut + 1) : undefined;
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) throw new WireError('WIRE_BAD_ADDRESS', `missing port in '${s}'`);
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
      throw new WireError('WIRE_BAD_ADDRESS', `bad port '${portText}' in '${s}'`);
    }
    port = Number(portText);
  }
  const kind = hostKind(host);
  if (kind === 'torv3') parseOnion(host);
  else if (kind === 'i2p') parseB32(host);
  else if (kind === 'name' && !/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(host)) {
    throw new WireError('WIRE_BAD_ADDRESS', `bad host '${host}' in '${s}'`);
  }
  return { host, port, kind };
}

/** Formats an endpoint back to text (brackets around IPv6). */
export function formatEndpoint(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Node reports IPv4 peers of a dual-stack socket as `::ffff:a.b.c.d`; this returns `a.b.c.d`. */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}
