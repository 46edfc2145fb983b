/**
 * Address text forms: Tor v3 `.onion` (with its SHA3-256 checksum), I2P `.b32.i2p`, the 16-byte v1 form, and
 * `host:port` endpoints (IPv4 / IPv6 themselves are src/ip.ts). Pure functions; bad input is a {@link WireError}
 * (`WIRE_BAD_ADDRESS`).
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { formatEndpoint as formatIpEndpoint, formatIP16, parseIP16, parseIPv6, writeIPv4 } from '../ip.js';
import { WireError } from './errors.js';

// The IP primitives live once in src/ip.ts; the wire layer re-exports them under its historical names.
export { formatIPv4, formatIPv6, isV4Mapped, parseIPv4, parseIPv6, unmapIPv4, writeIPv4 } from '../ip.js';

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

/** Formats a 16-byte v1 (addr / version) address: IPv4-mapped ones as dotted quad, others as IPv6. */
export const formatAddrV1 = formatIP16;

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
  const b = parseIP16(s);
  if (b) return b;
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
  if (pubkey.length !== 32)
    throw new WireError('WIRE_BAD_ADDRESS', `Tor v3 key must be 32 bytes, got ${pubkey.length}`);
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

/**
 * A parsed `host:port` whose host may also be a name, `.onion` or `.b32.i2p`. IPv6 hosts are given without
 * brackets.
 */
export interface HostEndpoint {
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
 * Parses `host:port`, `[ipv6]:port`, `xxx.onion:port`, `xxx.b32.i2p:port`: the one `host:port` parser (the daemon's
 * configuration, the CLI verbs, the facade and getpeerinfo's `addr` all use it). `.onion` / `.b32.i2p` hosts are
 * validated (checksum); names must be plausible host names (DNS labels, `_` allowed as in container and
 * /etc/hosts names). Port 0–65535 required unless `defaultPort` is given.
 */
export function parseEndpoint(s: string, defaultPort?: number): HostEndpoint {
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
  else if (
    kind === 'name' &&
    !/^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i.test(host)
  ) {
    throw new WireError('WIRE_BAD_ADDRESS', `bad host '${host}' in '${s}'`);
  }
  return { host, port, kind };
}

/** Formats an endpoint back to text (brackets around IPv6). */
export function formatEndpoint(host: string, port: number): string {
  return formatIpEndpoint({ address: host, port });
}
