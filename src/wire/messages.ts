/**
 * Payload codecs, one per command. Each codec knows its encoded size, writes in place into a buffer
 * it is handed (so a framed message is one allocation), and reads through a {@link Reader} (subarray
 * reads, no copies). Decoders throw {@link WireError}s naming the field; callers that must never throw
 * use {@link tryDecodePayload}.
 */
import { Reader, compactSizeLength, writeCompactSize } from './bytes.js';
import { WireError } from './errors.js';
import {
  BIP155_LENGTHS,
  MAX_ADDRV2_SIZE,
  MAX_ADDR_ENTRIES,
  MAX_LOCATOR,
  MAX_OP_ENDPOINTS,
  MAX_OP_PAYLOAD,
  MAX_OP_REASON,
  MAX_USER_AGENT,
  NET_CJDNS,
  NET_HOLEPUNCH,
  NET_I2P,
  NET_IPV4,
  NET_IPV6,
  NET_TORV3,
  NET_YGGDRASIL,
  OPENDPOINT_FLAGS_KNOWN,
  OPFIRE_SCHEDULE_PRIME_THEN_FIRE,
  OPREJECT_CODE,
  OPSTALL_STATE_SYN_SENT,
  OPSPRAY_HARD_A,
  OPSPRAY_HARD_B,
  SPRAY_LIMITS,
  OPRESULT_STATUS,
  SESSION_ID_SIZE,
  type AddrNetwork,
  type OpRejectCode,
  type OpResultStatus,
} from './constants.js';
import {
  formatAddrV1,
  formatB32,
  formatIPv4,
  formatIPv6,
  formatOnion,
  writeAddrV1,
  writeIPv4,
  parseB32,
  parseIPv4,
  parseIPv6,
  parseOnion,
} from './address.js';

/** A payload codec. `write` returns the offset after what it wrote. */
export interface Codec<T> {
  size(v: T): number;
  write(v: T, buf: Buffer, off: number): number;
  read(r: Reader): T;
}

/** Payload of messages that carry none (verack, sendaddrv2, wtxidrelay, getaddr, sendheaders). */
export type EmptyPayload = Record<string, never>;

/** A v1 network address without time (as in version): IPv4 is carried IPv4-mapped. */
export interface NetAddrV1 {
  services: bigint;
  /** IP text; IPv4-mapped addresses are printed (and may be given) as dotted quad. */
  address: string;
  port: number;
}

/** The version message, every field. */
export interface VersionPayload {
  version: number;
  services: bigint;
  timestamp: bigint;
  /** How the sender sees the receiver ("addr_recv" / addrMe). */
  addrRecv: NetAddrV1;
  addrFrom: NetAddrV1;
  nonce: bigint;
  userAgent: string;
  startHeight: number;
  /** BIP37 relay flag; `undefined` = absent from the payload (Bitcoin Core then assumes true). */
  relay?: boolean | undefined;
}

export interface PingPayload {
  nonce: bigint;
}

export interface AddrV1Entry extends NetAddrV1 {
  time: number;
}
export interface AddrPayload {
  addrs: AddrV1Entry[];
}

/** One addrv2 (BIP155) entry. */
export interface AddrV2Entry {
  time: number;
  services: bigint;
  network: AddrNetwork;
  /** The BIP155 network id on the wire. */
  networkId: number;
  /**
   * Text form: IP text, `xxx.onion`, `xxx.b32.i2p`; for `holepunch` the coordination address; for
   * `unknown` the raw bytes as hex.
   */
  address: string;
  port: number;
  /** `holepunch` only: the clearnet endpoint the node punches from. */
  clearnet?: { address: string; port: number };
}
export interface AddrV2Payload {
  addrs: AddrV2Entry[];
}

export interface SendCmpctPayload {
  announce: boolean;
  version: bigint;
}
export interface FeeFilterPayload {
  /** sat per 1000 vbytes */
  feerate: bigint;
}
export interface GetHeadersPayload {
  version: number;
  /** Block locator hashes, wire (little-endian) byte order. */
  locator: Buffer[];
  hashStop: Buffer;
}

/** A NAT-mapped public endpoint in opendpoint. */
export interface OpEndpoint {
  address: string;
  port: number;
}
export interface OpEndpointPayload {
  sessionId: Buffer;
  flags: number;
  endpoints: OpEndpoint[];
}
export interface OpFirePayload {
  sessionId: Buffer;
  delayUs: number;
  schedule: number;
  deadlineMs: number;
}
export interface OpResultPayload {
  sessionId: Buffer;
  status: OpResultStatus;
  elapsedMs: number;
  reason: string;
}
export interface OpRejectPayload {
  code: OpRejectCode;
  reason: string;
}

/**
 * A birthday spray's parameters (docs/PROTOCOL.md `opspray`): B's request, or A's agreed answer. `hard` names
 * the side behind the endpoint-dependent NAT; `probeLow..probeHigh` is that side's public port range
 * (0..0 in B's offer when A is the hard side: A fills it in); `sockets` (N) are the hard side's, `probes` (M)
 * the easy side's.
 */
export interface OpSprayPayload {
  sessionId: Buffer;
  /** The side behind the endpoint-dependent NAT. */
  hard: 'A' | 'B';
  /** The hard side's public port range to probe; 0..0 in B's offer when A is the hard side. */
  probeLow: number;
  probeHigh: number;
  /** N: sockets the hard side opens, each from its own local port, to the easy side's endpoint. */
  sockets: number;
  /** M: SYNs the easy side sends from its one mapped port to M distinct ports of the range. */
  probes: number;
  /** Both sides pace their SYNs over this window from the start instant (µs). */
  spreadUs: number;
}

/**
 * A stall report (docs/PROTOCOL.md `opstall`): during the punch, the sender's SYN has been unanswered for its
 * stall period and its socket is still in `state` (1 = SYN_SENT). The receiver decides whether a fresh SYN is
 * safe on its side. An old peer decodes it as an unknown command and ignores it.
 */
export interface OpStallPayload {
  sessionId: Buffer;
  state: number;
}

/**
 * Padding (docs/PROTOCOL.md "Trailing ping"): `length` bytes the receiver drops unread, 1..MAX_OP_PAYLOAD.
 * Sent as zeros. An old peer decodes it as an unknown command and ignores it.
 */
export interface OpPadPayload {
  length: number;
}

/** Decoded payload type of each known command. */
export interface PayloadMap {
  version: VersionPayload;
  verack: EmptyPayload;
  ping: PingPayload;
  pong: PingPayload;
  sendaddrv2: EmptyPayload;
  wtxidrelay: EmptyPayload;
  addr: AddrPayload;
  addrv2: AddrV2Payload;
  getaddr: EmptyPayload;
  sendheaders: EmptyPayload;
  sendcmpct: SendCmpctPayload;
  feefilter: FeeFilterPayload;
  getheaders: GetHeadersPayload;
  opendpoint: OpEndpointPayload;
  opfire: OpFirePayload;
  opresult: OpResultPayload;
  opreject: OpRejectPayload;
  opspray: OpSprayPayload;
  opstall: OpStallPayload;
  oppad: OpPadPayload;
}
export type KnownCommand = keyof PayloadMap;

// ---------------------------------------------------------------------------------------------------

function bad(ctx: string, field: string, why: string): WireError {
  return new WireError('WIRE_BAD_FIELD', `${ctx}: bad ${field}: ${why}`);
}

function checkU32(ctx: string, field: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(ctx, field, `${v} is not a u32`);
}
function checkPort(ctx: string, field: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw bad(ctx, field, `${v} is not a port`);
}

const empty: Codec<EmptyPayload> = {
  size: () => 0,
  write: (_v, _b, off) => off,
  // Trailing bytes are ignored, as Bitcoin Core does for these messages.
  read: () => ({}),
};

function writeNetAddrV1(ctx: string, a: NetAddrV1, buf: Buffer, off: number): number {
  checkPort(ctx, 'port', a.port);
  buf.writeBigUInt64LE(BigInt.asUintN(64, a.services), off);
  writeAddrV1(a.address, buf, off + 8);
  buf.writeUInt16BE(a.port, off + 24);
  return off + 26;
}
function readNetAddrV1(r: Reader, field: string): NetAddrV1 {
  const services = r.u64(`${field}.services`);
  const address = formatAddrV1(r.bytes(16, `${field}.address`));
  const port = r.u16be(`${field}.port`);
  return { services, address, port };
}

function uaBytes(ctx: string, s: string): number {
  const n = Buffer.byteLength(s, 'latin1');
  if (n > MAX_USER_AGENT) throw bad(ctx, 'userAgent', `length ${n} > ${MAX_USER_AGENT}`);
  return n;
}

export const versionCodec: Codec<VersionPayload> = {
  size: (v) => {
    const ua = uaBytes('version', v.userAgent);
    return 4 + 8 + 8 + 26 + 26 + 8 + compactSizeLength(ua) + ua + 4 + (v.relay === undefined ? 0 : 1);
  },
  write: (v, buf, off) => {
    buf.writeInt32LE(v.version, off);
    buf.writeBigUInt64LE(BigInt.asUintN(64, v.services), off + 4);
    buf.writeBigInt64LE(BigInt.asIntN(64, v.timestamp), off + 12);
    off = writeNetAddrV1('version.addrRecv', v.addrRecv, buf, off + 20);
    off = writeNetAddrV1('version.addrFrom', v.addrFrom, buf, off);
    buf.writeBigUInt64LE(BigInt.asUintN(64, v.nonce), off);
    off = writeCompactSize(buf, off + 8, uaBytes('version', v.userAgent));
    off += buf.write(v.userAgent, off, 'latin1');
    buf.writeInt32LE(v.startHeight, off);
    off += 4;
    if (v.relay !== undefined) buf[off++] = v.relay ? 1 : 0;
    return off;
  },
  read: (r) => {
    const version = r.i32('version');
    const services = r.u64('services');
    const timestamp = r.i64('timestamp');
    const addrRecv = readNetAddrV1(r, 'addrRecv');
    const addrFrom = readNetAddrV1(r, 'addrFrom');
    const nonce = r.u64('nonce');
    const userAgent = r.varStr('userAgent', MAX_USER_AGENT);
    const startHeight = r.i32('startHeight');
    // The relay flag is optional (BIP37); anything after it is ignored for forward compatibility.
    const relay = r.remaining > 0 ? r.bool('relay') : undefined;
    return { version, services, timestamp, addrRecv, addrFrom, nonce, userAgent, startHeight, relay };
  },
};

export const pingCodec: Codec<PingPayload> = {
  size: () => 8,
  write: (v, buf, off) => {
    buf.writeBigUInt64LE(BigInt.asUintN(64, v.nonce), off);
    return off + 8;
  },
  read: (r) => ({ nonce: r.u64('nonce') }),
};

function checkCount(ctx: string, n: number): void {
  if (n > MAX_ADDR_ENTRIES) throw bad(ctx, 'count', `${n} entries > ${MAX_ADDR_ENTRIES}`);
}

export const addrCodec: Codec<AddrPayload> = {
  size: (v) => {
    checkCount('addr', v.addrs.length);
    return compactSizeLength(v.addrs.length) + 30 * v.addrs.length;
  },
  write: (v, buf, off) => {
    off = writeCompactSize(buf, off, v.addrs.length);
    for (const a of v.addrs) {
      checkU32('addr', 'time', a.time);
      buf.writeUInt32LE(a.time, off);
      off = writeNetAddrV1('addr', a, buf, off + 4);
    }
    return off;
  },
  read: (r) => {
    const n = r.compactSize('count');
    checkCount('addr', n);
    r.need(30 * n, `${n} entries`);
    const addrs: AddrV1Entry[] = new Array(n);
    const b = r.buf;
    for (let i = 0; i < n; i++) {
      const o = r.off;
      const ip = b.subarray(o + 12, o + 28);
      addrs[i] = {
        time: b.readUInt32LE(o),
        services: b.readBigUInt64LE(o + 4),
        address: formatAddrV1(ip),
        port: b.readUInt16BE(o + 28),
      };
      r.off = o + 30;
    }
    return { addrs };
  },
};

// --- addrv2 ----------------------------------------------------------------------------------------

const NETWORK_BY_ID: ReadonlyMap<number, AddrNetwork> = new Map<number, AddrNetwork>([
  [NET_IPV4, 'ipv4'],
  [NET_IPV6, 'ipv6'],
  [NET_TORV3, 'torv3'],
  [NET_I2P, 'i2p'],
  [NET_CJDNS, 'cjdns'],
  [NET_YGGDRASIL, 'yggdrasil'],
  [NET_HOLEPUNCH, 'holepunch'],
]);
const ID_BY_NETWORK: ReadonlyMap<AddrNetwork, number> = new Map([...NETWORK_BY_ID].map(([k, v]) => [v, k]));

const BIP155_NAMES: Record<number, string> = { 1: 'IPv4', 2: 'IPv6', 4: 'TORv3', 5: 'I2P', 6: 'CJDNS', 7: 'Yggdrasil' };

/** Text of a known-length BIP155 address. */
function formatBip155(id: number, b: Buffer): string {
  switch (id) {
    case NET_IPV4:
      return formatIPv4(b);
    case NET_TORV3:
      return formatOnion(b);
    case NET_I2P:
      return formatB32(b);
    default:
      return formatIPv6(b);
  }
}

/** Decodes the NET_HOLEPUNCH address bytes (lengths checked exactly). */
export function decodeHolepunchAddr(
  b: Buffer,
  ctx = 'addrv2',
): { address: string; clearnet: { address: string; port: number } } {
  if (b.length !== 40 && b.length !== 52)
    throw bad(ctx, 'holepunch address', `length ${b.length} (should be 40 or 52)`);
  const inner = b[0];
  if (inner !== NET_TORV3 && inner !== NET_I2P) throw bad(ctx, 'holepunch inner_net', `${inner} (should be 4 or 5)`);
  const address = inner === NET_TORV3 ? formatOnion(b.subarray(1, 33)) : formatB32(b.subarray(1, 33));
  const clear = b[33];
  const want = clear === NET_IPV4 ? 40 : clear === NET_IPV6 ? 52 : -1;
  if (want < 0) throw bad(ctx, 'holepunch clear_net', `${clear} (should be 1 or 2)`);
  if (b.length !== want)
    throw bad(ctx, 'holepunch address', `length ${b.length} does not match clear_net ${clear} (should be ${want})`);
  const ip = clear === NET_IPV4 ? formatIPv4(b.subarray(34, 38)) : formatIPv6(b.subarray(34, 50));
  return { address, clearnet: { address: ip, port: b.readUInt16BE(want - 2) } };
}

/** Encodes the NET_HOLEPUNCH address bytes from a coordination address and a clearnet endpoint. */
export function encodeHolepunchAddr(address: string, clearnet: { address: string; port: number }): Buffer {
  const inner = /\.onion$/i.test(address) ? parseOnion(address) : parseB32(address);
  const v4 = parseIPv4(clearnet.address);
  const ip = v4 ?? parseIPv6(clearnet.address);
  if (!ip) throw new WireError('WIRE_BAD_ADDRESS', `holepunch clearnet address is not an IP: '${clearnet.address}'`);
  checkPort('addrv2', 'holepunch clear_port', clearnet.port);
  const out = Buffer.allocUnsafe(1 + 32 + 1 + ip.length + 2);
  out[0] = /\.onion$/i.test(address) ? NET_TORV3 : NET_I2P;
  inner.copy(out, 1);
  out[33] = v4 ? NET_IPV4 : NET_IPV6;
  ip.copy(out, 34);
  out.writeUInt16BE(clearnet.port, 34 + ip.length);
  return out;
}

/** The address bytes of an addrv2 entry. */
export function addrV2Bytes(e: AddrV2Entry): Buffer {
  const fail = () => new WireError('WIRE_BAD_ADDRESS', `addrv2: '${e.address}' is not a ${e.network} address`);
  switch (e.network) {
    case 'ipv4':
      return (
        parseIPv4(e.address) ??
        (() => {
          throw fail();
        })()
      );
    case 'ipv6':
    case 'cjdns':
    case 'yggdrasil':
      return (
        parseIPv6(e.address) ??
        (() => {
          throw fail();
        })()
      );
    case 'torv3':
      return parseOnion(e.address);
    case 'i2p':
      return parseB32(e.address);
    case 'holepunch':
      if (!e.clearnet) throw bad('addrv2', 'clearnet', 'holepunch entry without clearnet endpoint');
      return encodeHolepunchAddr(e.address, e.clearnet);
    default:
      if (!/^([0-9a-f]{2})*$/i.test(e.address)) throw fail();
      return Buffer.from(e.address, 'hex');
  }
}

function entryId(e: AddrV2Entry): number {
  return e.network === 'unknown' ? e.networkId : ID_BY_NETWORK.get(e.network)!;
}

/** Encoded size of one addrv2 entry's address bytes, without building them when avoidable. */
function addrV2Len(e: AddrV2Entry): number {
  const fixed = BIP155_LENGTHS.get(entryId(e));
  if (fixed !== undefined) return fixed;
  return addrV2Bytes(e).length;
}

export const addrV2Codec: Codec<AddrV2Payload> = {
  size: (v) => {
    checkCount('addrv2', v.addrs.length);
    let n = compactSizeLength(v.addrs.length);
    for (const e of v.addrs) {
      const len = addrV2Len(e);
      if (len > MAX_ADDRV2_SIZE) throw bad('addrv2', 'address', `length ${len} > ${MAX_ADDRV2_SIZE}`);
      n += 4 + compactSizeLength(BigInt.asUintN(64, e.services)) + 1 + compactSizeLength(len) + len + 2;
    }
    return n;
  },
  write: (v, buf, off) => {
    off = writeCompactSize(buf, off, v.addrs.length);
    for (const e of v.addrs) {
      checkU32('addrv2', 'time', e.time);
      checkPort('addrv2', 'port', e.port);
      const id = entryId(e);
      if (!Number.isInteger(id) || id < 0 || id > 255) throw bad('addrv2', 'networkId', String(id));
      buf.writeUInt32LE(e.time, off);
      off = writeCompactSize(buf, off + 4, BigInt.asUintN(64, e.services));
      buf[off++] = id;
      if (id === NET_IPV4 && e.network === 'ipv4') {
        // Hot path: no intermediate buffer.
        buf[off++] = 4;
        if (!writeIPv4(e.address, buf, off))
          throw new WireError('WIRE_BAD_ADDRESS', `addrv2: '${e.address}' is not a ipv4 address`);
        off += 4;
      } else {
        const bytes = addrV2Bytes(e);
        const fixed = BIP155_LENGTHS.get(id);
        if (fixed !== undefined && bytes.length !== fixed)
          throw bad('addrv2', 'address', `length ${bytes.length} (should be ${fixed})`);
        off = writeCompactSize(buf, off, bytes.length);
        off += bytes.copy(buf, off);
      }
      buf.writeUInt16BE(e.port, off);
      off += 2;
    }
    return off;
  },
  read: (r) => {
    const n = r.compactSize('count');
    checkCount('addrv2', n);
    const addrs: AddrV2Entry[] = [];
    for (let i = 0; i < n; i++) {
      const time = r.u32(`entry ${i} time`);
      const services = r.compactSizeBig(`entry ${i} services`);
      const networkId = r.u8(`entry ${i} networkId`);
      const len = r.compactSize(`entry ${i} address length`);
      if (len > MAX_ADDRV2_SIZE)
        throw bad('addrv2', `entry ${i} address`, `Address too long: ${len} > ${MAX_ADDRV2_SIZE}`);
      const fixed = BIP155_LENGTHS.get(networkId);
      if (fixed !== undefined && len !== fixed) {
        throw bad(
          'addrv2',
          `entry ${i} address`,
          `BIP155 ${BIP155_NAMES[networkId]} address with length ${len} (should be ${fixed})`,
        );
      }
      const bytes = r.bytes(len, `entry ${i} address`);
      const port = r.u16be(`entry ${i} port`);
      if (fixed !== undefined) {
        addrs.push({
          time,
          services,
          network: NETWORK_BY_ID.get(networkId)!,
          networkId,
          address: formatBip155(networkId, bytes),
          port,
        });
      } else if (networkId === NET_HOLEPUNCH) {
        const hp = decodeHolepunchAddr(bytes, `addrv2: entry ${i}`);
        addrs.push({
          time,
          services,
          network: 'holepunch',
          networkId,
          address: hp.address,
          port,
          clearnet: hp.clearnet,
        });
      } else {
        // Unknown ids (TORv2 included, as in Bitcoin Core >= 22) are kept visible but marked unknown;
        // consumers skip them. They never fail the message.
        addrs.push({ time, services, network: 'unknown', networkId, address: bytes.toString('hex'), port });
      }
    }
    return { addrs };
  },
};

export const sendCmpctCodec: Codec<SendCmpctPayload> = {
  size: () => 9,
  write: (v, buf, off) => {
    buf[off] = v.announce ? 1 : 0;
    buf.writeBigUInt64LE(BigInt.asUintN(64, v.version), off + 1);
    return off + 9;
  },
  read: (r) => ({ announce: r.bool('announce'), version: r.u64('version') }),
};

export const feeFilterCodec: Codec<FeeFilterPayload> = {
  size: () => 8,
  write: (v, buf, off) => {
    buf.writeBigInt64LE(BigInt.asIntN(64, v.feerate), off);
    return off + 8;
  },
  read: (r) => ({ feerate: r.i64('feerate') }),
};

export const getHeadersCodec: Codec<GetHeadersPayload> = {
  size: (v) => {
    if (v.locator.length > MAX_LOCATOR)
      throw bad('getheaders', 'locator', `${v.locator.length} hashes > ${MAX_LOCATOR}`);
    return 4 + compactSizeLength(v.locator.length) + 32 * v.locator.length + 32;
  },
  write: (v, buf, off) => {
    buf.writeUInt32LE(v.version >>> 0, off);
    off = writeCompactSize(buf, off + 4, v.locator.length);
    for (const h of [...v.locator, v.hashStop]) {
      if (h.length !== 32) throw bad('getheaders', 'hash', `length ${h.length} (should be 32)`);
      off += h.copy(buf, off);
    }
    return off;
  },
  read: (r) => {
    const version = r.u32('version');
    const n = r.compactSize('locator count');
    if (n > MAX_LOCATOR) throw bad('getheaders', 'locator count', `${n} > ${MAX_LOCATOR}`);
    const locator: Buffer[] = [];
    for (let i = 0; i < n; i++) locator.push(r.bytes(32, `locator[${i}]`));
    const hashStop = r.bytes(32, 'hashStop');
    return { version, locator, hashStop };
  },
};

// --- onionpunch coordination messages (strict: exact lengths, no trailing bytes) -----------------

function checkSession(ctx: string, id: Buffer): void {
  if (!Buffer.isBuffer(id) || id.length !== SESSION_ID_SIZE)
    throw bad(ctx, 'sessionId', `must be ${SESSION_ID_SIZE} bytes`);
}
function reasonBytes(ctx: string, s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > MAX_OP_REASON) throw bad(ctx, 'reason', `length ${n} > ${MAX_OP_REASON}`);
  return n;
}
function writeReason(ctx: string, s: string, buf: Buffer, off: number): number {
  off = writeCompactSize(buf, off, reasonBytes(ctx, s));
  return off + buf.write(s, off, 'utf8');
}
function opSize(ctx: string, n: number): number {
  if (n > MAX_OP_PAYLOAD) throw bad(ctx, 'payload', `${n} bytes > ${MAX_OP_PAYLOAD}`);
  return n;
}
function opRead<T>(ctx: string, r: Reader, body: () => T): T {
  if (r.buf.length > MAX_OP_PAYLOAD)
    throw new WireError('WIRE_OVERSIZE', `${ctx}: payload ${r.buf.length} bytes > ${MAX_OP_PAYLOAD}`);
  const v = body();
  r.end();
  return v;
}

export const opEndpointCodec: Codec<OpEndpointPayload> = {
  size: (v) => {
    if (v.endpoints.length < 1 || v.endpoints.length > MAX_OP_ENDPOINTS) {
      throw bad('opendpoint', 'count', `${v.endpoints.length} (should be 1..${MAX_OP_ENDPOINTS})`);
    }
    let n = SESSION_ID_SIZE + 1 + compactSizeLength(v.endpoints.length);
    for (const e of v.endpoints) n += 1 + (parseIPv4(e.address) ? 4 : 16) + 2;
    return opSize('opendpoint', n);
  },
  write: (v, buf, off) => {
    checkSession('opendpoint', v.sessionId);
    if ((v.flags & ~OPENDPOINT_FLAGS_KNOWN) !== 0 || v.flags < 0)
      throw bad('opendpoint', 'flags', `unknown bits in 0x${v.flags.toString(16)}`);
    off += v.sessionId.copy(buf, off);
    buf[off++] = v.flags;
    off = writeCompactSize(buf, off, v.endpoints.length);
    for (const e of v.endpoints) {
      checkPort('opendpoint', 'port', e.port);
      const v4 = parseIPv4(e.address);
      const ip = v4 ?? parseIPv6(e.address);
      if (!ip) throw new WireError('WIRE_BAD_ADDRESS', `opendpoint: not an IP address: '${e.address}'`);
      buf[off++] = v4 ? NET_IPV4 : NET_IPV6;
      off += ip.copy(buf, off);
      buf.writeUInt16BE(e.port, off);
      off += 2;
    }
    return off;
  },
  read: (r) =>
    opRead('opendpoint', r, () => {
      const sessionId = r.bytes(SESSION_ID_SIZE, 'sessionId');
      const flags = r.u8('flags');
      if ((flags & ~OPENDPOINT_FLAGS_KNOWN) !== 0) throw r.bad('flags', `unknown bits in 0x${flags.toString(16)}`);
      const n = r.compactSize('count', MAX_OP_ENDPOINTS);
      if (n < 1) throw r.bad('count', '0 (should be 1..8)');
      const endpoints: OpEndpoint[] = [];
      for (let i = 0; i < n; i++) {
        const net = r.u8(`endpoint ${i} net`);
        if (net !== NET_IPV4 && net !== NET_IPV6) throw r.bad(`endpoint ${i} net`, `${net} (should be 1 or 2)`);
        const ip = r.bytes(net === NET_IPV4 ? 4 : 16, `endpoint ${i} addr`);
        const port = r.u16be(`endpoint ${i} port`);
        endpoints.push({ address: net === NET_IPV4 ? formatIPv4(ip) : formatIPv6(ip), port });
      }
      return { sessionId, flags, endpoints };
    }),
};

export const opFireCodec: Codec<OpFirePayload> = {
  size: () => SESSION_ID_SIZE + 4 + 1 + 4,
  write: (v, buf, off) => {
    checkSession('opfire', v.sessionId);
    checkU32('opfire', 'delayUs', v.delayUs);
    checkU32('opfire', 'deadlineMs', v.deadlineMs);
    if (!Number.isInteger(v.schedule) || v.schedule < 0 || v.schedule > OPFIRE_SCHEDULE_PRIME_THEN_FIRE)
      throw bad('opfire', 'schedule', String(v.schedule));
    off += v.sessionId.copy(buf, off);
    buf.writeUInt32LE(v.delayUs, off);
    buf[off + 4] = v.schedule;
    buf.writeUInt32LE(v.deadlineMs, off + 5);
    return off + 9;
  },
  read: (r) =>
    opRead('opfire', r, () => {
      const sessionId = r.bytes(SESSION_ID_SIZE, 'sessionId');
      const delayUs = r.u32('delayUs');
      const schedule = r.u8('schedule');
      if (schedule > OPFIRE_SCHEDULE_PRIME_THEN_FIRE) throw r.bad('schedule', `unknown profile ${schedule}`);
      const deadlineMs = r.u32('deadlineMs');
      return { sessionId, delayUs, schedule, deadlineMs };
    }),
};

const STATUS_BY_CODE = new Map<number, OpResultStatus>(
  Object.entries(OPRESULT_STATUS).map(([k, v]) => [v, k as OpResultStatus]),
);
const REJECT_BY_CODE = new Map<number, OpRejectCode>(
  Object.entries(OPREJECT_CODE).map(([k, v]) => [v, k as OpRejectCode]),
);

export const opResultCodec: Codec<OpResultPayload> = {
  size: (v) => {
    const n = reasonBytes('opresult', v.reason);
    return opSize('opresult', SESSION_ID_SIZE + 1 + 4 + compactSizeLength(n) + n);
  },
  write: (v, buf, off) => {
    checkSession('opresult', v.sessionId);
    const code = OPRESULT_STATUS[v.status];
    if (code === undefined) throw bad('opresult', 'status', String(v.status));
    checkU32('opresult', 'elapsedMs', v.elapsedMs);
    off += v.sessionId.copy(buf, off);
    buf[off] = code;
    buf.writeUInt32LE(v.elapsedMs, off + 1);
    return writeReason('opresult', v.reason, buf, off + 5);
  },
  read: (r) =>
    opRead('opresult', r, () => {
      const sessionId = r.bytes(SESSION_ID_SIZE, 'sessionId');
      const code = r.u8('status');
      const status = STATUS_BY_CODE.get(code);
      if (status === undefined) throw r.bad('status', `unknown status ${code}`);
      const elapsedMs = r.u32('elapsedMs');
      const reason = readReason(r);
      return { sessionId, status, elapsedMs, reason };
    }),
};

/** Strict UTF-8: replacing bad bytes with U+FFFD (3 bytes each) could make a reason that no longer re-encodes. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function readReason(r: Reader): string {
  const len = r.compactSize('reason', MAX_OP_REASON);
  const bytes = r.bytes(len, 'reason');
  try {
    return UTF8.decode(bytes);
  } catch {
    throw r.bad('reason', 'not valid UTF-8');
  }
}

export const opRejectCodec: Codec<OpRejectPayload> = {
  size: (v) => {
    const n = reasonBytes('opreject', v.reason);
    return opSize('opreject', 1 + compactSizeLength(n) + n);
  },
  write: (v, buf, off) => {
    const code = OPREJECT_CODE[v.code];
    if (code === undefined) throw bad('opreject', 'code', String(v.code));
    buf[off] = code;
    return writeReason('opreject', v.reason, buf, off + 1);
  },
  read: (r) =>
    opRead('opreject', r, () => {
      const c = r.u8('code');
      const code = REJECT_BY_CODE.get(c);
      if (code === undefined) throw r.bad('code', `unknown reject code ${c}`);
      const reason = readReason(r);
      return { code, reason };
    }),
};

type SprayNumbers = Omit<OpSprayPayload, 'sessionId' | 'hard'>;

/** The bounds every opspray keeps (SPRAY_LIMITS); the range is 0..0 ("the hard side fills it in") or ordered. */
function checkSpray(v: SprayNumbers, bad1: (field: string, why: string) => WireError): void {
  const range = v.probeLow === 0 && v.probeHigh === 0 ? true : v.probeLow >= 1 && v.probeLow <= v.probeHigh;
  if (!range) throw bad1('probe range', `${v.probeLow}..${v.probeHigh}`);
  const { maxSockets, maxProbes } = SPRAY_LIMITS;
  if (v.sockets < 1 || v.sockets > maxSockets) throw bad1('sockets', `${v.sockets} (1..${maxSockets})`);
  if (v.probes < 1 || v.probes > maxProbes) throw bad1('probes', `${v.probes} (1..${maxProbes})`);
  if (v.spreadUs > SPRAY_LIMITS.maxSpreadUs) throw bad1('spreadUs', `${v.spreadUs} > ${SPRAY_LIMITS.maxSpreadUs}`);
}

/** opspray: session id 16, hard u8 (1 A, 2 B), probe low/high u16 BE, sockets/probes u16 LE, spread u32 LE. */
export const opSprayCodec: Codec<OpSprayPayload> = {
  size: () => SESSION_ID_SIZE + 1 + 2 + 2 + 2 + 2 + 4,
  write: (v, buf, off) => {
    checkSession('opspray', v.sessionId);
    if (v.hard !== 'A' && v.hard !== 'B') throw bad('opspray', 'hard', String(v.hard));
    checkPort('opspray', 'probeLow', v.probeLow);
    checkPort('opspray', 'probeHigh', v.probeHigh);
    checkPort('opspray', 'sockets', v.sockets);
    checkPort('opspray', 'probes', v.probes);
    checkU32('opspray', 'spreadUs', v.spreadUs);
    checkSpray(v, (f, w) => bad('opspray', f, w));
    off += v.sessionId.copy(buf, off);
    buf[off] = v.hard === 'A' ? OPSPRAY_HARD_A : OPSPRAY_HARD_B;
    buf.writeUInt16BE(v.probeLow, off + 1);
    buf.writeUInt16BE(v.probeHigh, off + 3);
    buf.writeUInt16LE(v.sockets, off + 5);
    buf.writeUInt16LE(v.probes, off + 7);
    buf.writeUInt32LE(v.spreadUs, off + 9);
    return off + 13;
  },
  read: (r) =>
    opRead('opspray', r, () => {
      const sessionId = r.bytes(SESSION_ID_SIZE, 'sessionId');
      const h = r.u8('hard');
      if (h !== OPSPRAY_HARD_A && h !== OPSPRAY_HARD_B) throw r.bad('hard', `${h} (should be 1 or 2)`);
      const probeLow = r.u16be('probeLow');
      const probeHigh = r.u16be('probeHigh');
      const sockets = r.u8('sockets') | (r.u8('sockets') << 8);
      const probes = r.u8('probes') | (r.u8('probes') << 8);
      const spreadUs = r.u32('spreadUs');
      const hard = h === OPSPRAY_HARD_A ? ('A' as const) : ('B' as const);
      const v = { sessionId, hard, probeLow, probeHigh, sockets, probes, spreadUs };
      checkSpray(v, (f, w) => r.bad(f, w));
      return v;
    }),
};

export const opStallCodec: Codec<OpStallPayload> = {
  size: () => SESSION_ID_SIZE + 1,
  write: (v, buf, off) => {
    checkSession('opstall', v.sessionId);
    if (v.state !== OPSTALL_STATE_SYN_SENT) throw bad('opstall', 'state', String(v.state));
    off += v.sessionId.copy(buf, off);
    buf[off] = v.state;
    return off + 1;
  },
  read: (r) =>
    opRead('opstall', r, () => {
      const sessionId = r.bytes(SESSION_ID_SIZE, 'sessionId');
      const state = r.u8('state');
      if (state !== OPSTALL_STATE_SYN_SENT) throw r.bad('state', `unknown state ${state}`);
      return { sessionId, state };
    }),
};

export const opPadCodec: Codec<OpPadPayload> = {
  size: (v) => {
    if (!Number.isInteger(v.length) || v.length < 1) throw bad('oppad', 'length', `${v.length} (should be ≥ 1)`);
    return opSize('oppad', v.length);
  },
  write: (v, buf, off) => {
    buf.fill(0, off, off + v.length);
    return off + v.length;
  },
  read: (r) =>
    opRead('oppad', r, () => {
      const length = r.remaining;
      if (length < 1) throw r.bad('length', 'empty padding');
      r.bytes(length, 'padding');
      return { length };
    }),
};

/** The codec of every known command. */
export const CODECS: { readonly [K in KnownCommand]: Codec<PayloadMap[K]> } = Object.freeze({
  version: versionCodec,
  verack: empty,
  ping: pingCodec,
  pong: pingCodec,
  sendaddrv2: empty,
  wtxidrelay: empty,
  addr: addrCodec,
  addrv2: addrV2Codec,
  getaddr: empty,
  sendheaders: empty,
  sendcmpct: sendCmpctCodec,
  feefilter: feeFilterCodec,
  getheaders: getHeadersCodec,
  opendpoint: opEndpointCodec,
  opfire: opFireCodec,
  opresult: opResultCodec,
  opreject: opRejectCodec,
  opspray: opSprayCodec,
  opstall: opStallCodec,
  oppad: opPadCodec,
});

/** True if we have a codec for `cmd` (others pass through as raw bytes). */
export function isKnownCommand(cmd: string): cmd is KnownCommand {
  return Object.prototype.hasOwnProperty.call(CODECS, cmd);
}

/** Encodes a payload (one allocation). Throws {@link WireError} on an unencodable value. */
export function encodePayload<C extends KnownCommand>(cmd: C, value: PayloadMap[C]): Buffer {
  const codec = CODECS[cmd] as Codec<PayloadMap[C]>;
  const buf = Buffer.allocUnsafe(codec.size(value));
  const end = codec.write(value, buf, 0);
  if (end !== buf.length) throw new Error(`internal: ${cmd} codec wrote ${end} of ${buf.length} bytes`);
  return buf;
}

/** Decodes a payload; throws {@link WireError} naming the field. Result fields may share memory with `payload`. */
export function decodePayload<C extends KnownCommand>(cmd: C, payload: Buffer): PayloadMap[C] {
  const codec = CODECS[cmd] as Codec<PayloadMap[C]>;
  return codec.read(new Reader(payload, cmd));
}

/** Like {@link decodePayload} but never throws: `{ok:false, error}` on bad input. */
export function tryDecodePayload<C extends KnownCommand>(
  cmd: C,
  payload: Buffer,
): { ok: true; value: PayloadMap[C] } | { ok: false; error: WireError } {
  try {
    return { ok: true, value: decodePayload(cmd, payload) };
  } catch (err) {
    if (err instanceof WireError) return { ok: false, error: err };
    return { ok: false, error: new WireError('WIRE_BAD_FIELD', `${cmd}: ${(err as Error).message}`) };
  }
}
