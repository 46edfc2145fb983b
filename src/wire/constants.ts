/**
 * Protocol constants: network magics, service bits, BIP155 network ids, limits, and the onionpunch
 * extensions (NODE_HOLEPUNCH, NET_HOLEPUNCH, the op* commands). See docs/PROTOCOL.md.
 */

/** Networks whose message start bytes we know. */
export type NetworkName = 'main' | 'testnet3' | 'testnet4' | 'signet' | 'regtest';

/** Message start ("magic") bytes as they appear on the wire, in order. */
export const MAGIC_BYTES: Readonly<Record<NetworkName, string>> = Object.freeze({
  main: 'f9beb4d9',
  testnet3: '0b110907',
  testnet4: '1c163f28',
  signet: '0a03cf40',
  regtest: 'fabfb5da',
});

/** The magic as the little-endian u32 read from the first 4 bytes of a header. */
export const MAGIC: Readonly<Record<NetworkName, number>> = Object.freeze(
  Object.fromEntries(
    Object.entries(MAGIC_BYTES).map(([k, hex]) => [k, Buffer.from(hex, 'hex').readUInt32LE(0)]),
  ) as Record<NetworkName, number>,
);

/** All network names, in a stable order. */
export const NETWORKS: readonly NetworkName[] = Object.freeze(Object.keys(MAGIC_BYTES) as NetworkName[]);

/** The network for a magic u32 (little-endian read), or undefined. */
export function networkForMagic(magic: number): NetworkName | undefined {
  for (const n of NETWORKS) if (MAGIC[n] === magic) return n;
  return undefined;
}

/** True if `s` names a known network. */
export function isNetworkName(s: string): s is NetworkName {
  return Object.prototype.hasOwnProperty.call(MAGIC_BYTES, s);
}

/** Default P2P ports (used only for display / defaults). */
export const DEFAULT_PORT: Readonly<Record<NetworkName, number>> = Object.freeze({
  main: 8333,
  testnet3: 18333,
  testnet4: 48333,
  signet: 38333,
  regtest: 18444,
});

/** Header size: magic 4 + command 12 + length 4 + checksum 4. */
export const HEADER_SIZE = 24;
/** Bitcoin Core's MAX_PROTOCOL_MESSAGE_LENGTH: the payload cap enforced before buffering. */
export const MAX_PAYLOAD = 4_000_000;
/** Bitcoin Core's MAX_SIZE: largest CompactSize accepted as a length or count. */
export const MAX_COMPACT_SIZE = 0x02000000;
/** Most entries in one addr / addrv2 message (MAX_ADDR_TO_SEND). */
export const MAX_ADDR_ENTRIES = 1000;
/** Longest address in an addrv2 entry (BIP155). */
export const MAX_ADDRV2_SIZE = 512;
/** Longest user agent in a version message (MAX_SUBVERSION_LENGTH). */
export const MAX_USER_AGENT = 256;
/** Most locator hashes in getheaders (MAX_LOCATOR_SZ). */
export const MAX_LOCATOR = 101;
/** The protocol version we speak (wtxidrelay era). */
export const PROTOCOL_VERSION = 70016;
/** Our user agent. */
export const USER_AGENT = '/onionpunch:0.1.0/';

/** Service bits (u64, as bigint). */
export const NODE_NETWORK = 1n << 0n;
export const NODE_BLOOM = 1n << 2n;
export const NODE_WITNESS = 1n << 3n;
export const NODE_COMPACT_FILTERS = 1n << 6n;
export const NODE_NETWORK_LIMITED = 1n << 10n;
export const NODE_P2P_V2 = 1n << 11n;
/** onionpunch: "I accept hole-punch requests" (experimental bit range 24–31). */
export const NODE_HOLEPUNCH = 1n << 27n;
/**
 * onionpunch: "my announced clearnet endpoint is a warm punch port: zero-round-trip coordination accepted"
 * (docs/PROTOCOL.md "Zero-round-trip coordination"). Only ever set together with NODE_HOLEPUNCH.
 */
export const NODE_HOLEPUNCH_ZRTT = 1n << 26n;

/** Names of the service bits, for display. */
export const SERVICE_NAMES: ReadonlyArray<readonly [bigint, string]> = Object.freeze([
  [NODE_NETWORK, 'NETWORK'],
  [NODE_BLOOM, 'BLOOM'],
  [NODE_WITNESS, 'WITNESS'],
  [NODE_COMPACT_FILTERS, 'COMPACT_FILTERS'],
  [NODE_NETWORK_LIMITED, 'NETWORK_LIMITED'],
  [NODE_P2P_V2, 'P2P_V2'],
  [NODE_HOLEPUNCH, 'HOLEPUNCH'],
  [NODE_HOLEPUNCH_ZRTT, 'HOLEPUNCH_ZRTT'],
] as const);

/** Names of the set service bits; unknown bits print as `BIT<n>`. */
export function serviceNames(services: bigint): string[] {
  const out: string[] = [];
  let rest = services;
  for (const [bit, name] of SERVICE_NAMES) {
    if (services & bit) {
      out.push(name);
      rest &= ~bit;
    }
  }
  for (let i = 0n; rest > 0n && i < 64n; i++) {
    if (rest & (1n << i)) {
      out.push(`BIT${i}`);
      rest &= ~(1n << i);
    }
  }
  return out;
}

/** BIP155 network ids (plus the onionpunch NET_HOLEPUNCH). */
export const NET_IPV4 = 1;
export const NET_IPV6 = 2;
/** TORv2: no longer supported; entries are ignored as Bitcoin Core does. */
export const NET_TORV2 = 3;
export const NET_TORV3 = 4;
export const NET_I2P = 5;
export const NET_CJDNS = 6;
export const NET_YGGDRASIL = 7;
/** onionpunch: a hole-punch announcement (coordination address + clearnet endpoint). */
export const NET_HOLEPUNCH = 0xf1;

/** Human names of address networks, as printed by `decode`. */
export type AddrNetwork = 'ipv4' | 'ipv6' | 'torv3' | 'i2p' | 'cjdns' | 'yggdrasil' | 'holepunch' | 'unknown';

/** Fixed address lengths of the known BIP155 ids (a wrong length fails the whole message). */
export const BIP155_LENGTHS: ReadonlyMap<number, number> = new Map([
  [NET_IPV4, 4],
  [NET_IPV6, 16],
  [NET_TORV3, 32],
  [NET_I2P, 32],
  [NET_CJDNS, 16],
  [NET_YGGDRASIL, 16],
]);

/** Command names. */
export const CMD = Object.freeze({
  VERSION: 'version',
  VERACK: 'verack',
  PING: 'ping',
  PONG: 'pong',
  SENDADDRV2: 'sendaddrv2',
  WTXIDRELAY: 'wtxidrelay',
  ADDR: 'addr',
  ADDRV2: 'addrv2',
  GETADDR: 'getaddr',
  SENDHEADERS: 'sendheaders',
  SENDCMPCT: 'sendcmpct',
  FEEFILTER: 'feefilter',
  GETHEADERS: 'getheaders',
  OPENDPOINT: 'opendpoint',
  OPFIRE: 'opfire',
  OPRESULT: 'opresult',
  OPREJECT: 'opreject',
  OPSPRAY: 'opspray',
  OPSTALL: 'opstall',
  OPPAD: 'oppad',
} as const);

/** Largest payload of any op* coordination message. */
export const MAX_OP_PAYLOAD = 1024;
/** Size of an op* session id. */
export const SESSION_ID_SIZE = 16;
/** Bounds of the endpoint list in opendpoint. */
export const MAX_OP_ENDPOINTS = 8;
/** Longest reason string in opresult / opreject. */
export const MAX_OP_REASON = 256;

/** opendpoint flag bits. */
export const OPENDPOINT_FLAG_EIM_PORT_PRESERVING = 0x01;
export const OPENDPOINT_FLAG_PREDICTED = 0x02;
/** Zero-round-trip request (B) / answer (A): B fires at once at A's announced endpoint, its opfire follows. */
export const OPENDPOINT_FLAG_ZERO_RTT = 0x04;
/**
 * Bits 3–5, A → B only: the fire margin A asks for, in OPENDPOINT_MARGIN_UNIT_MS (0–7: 0–56 ms), added to B's
 * `opfire` delay; its loop reads B's messages that late (docs/PROTOCOL.md, `opendpoint`). B sends 0.
 */
export const OPENDPOINT_MARGIN_SHIFT = 3;
export const OPENDPOINT_MARGIN_MASK = 0x38;
export const OPENDPOINT_MARGIN_UNIT_MS = 8;
export const OPENDPOINT_FLAGS_KNOWN = 0x3f;

/** opstall states: the sender's attempt socket is still in SYN_SENT (nothing came back from the peer). */
export const OPSTALL_STATE_SYN_SENT = 1;

/** opfire schedule profiles. */
export const OPFIRE_SCHEDULE_PLAIN = 0;
export const OPFIRE_SCHEDULE_PRIME_THEN_FIRE = 1;

/** opresult status codes. */
export const OPRESULT_STATUS = Object.freeze({
  connected: 0,
  timeout: 1,
  refused: 2,
  'verify-failed': 3,
  aborted: 4,
  error: 5,
} as const);
export type OpResultStatus = keyof typeof OPRESULT_STATUS;

/** opreject codes. */
export const OPREJECT_CODE = Object.freeze({
  'rate-limited': 1,
  busy: 2,
  'nat-unsuitable': 3,
  'bad-request': 4,
  'shutting-down': 5,
  /** Both sides are behind endpoint-dependent NATs (answer to an `opspray`; old peers never get it). */
  'both-hard': 6,
  /** A does not spray (`hardnat=0`, or its engine cannot): answer to an `opspray` only, like both-hard. */
  'spray-off': 7,
  /** A's spray bucket (`sprayrate` a minute, `sprayburst`) is empty: answer to an `opspray` only. */
  'spray-rate-limited': 8,
  /** A zero-round-trip request reached an A that holds no warm announced punch port now (B falls back). */
  'no-warm-port': 9,
} as const);
export type OpRejectCode = keyof typeof OPREJECT_CODE;

/** opspray: which side is behind the hard (endpoint-dependent) NAT. */
export const OPSPRAY_HARD_A = 1;
export const OPSPRAY_HARD_B = 2;

/**
 * The named limits of a birthday spray (docs/PUNCH.md "What a spray costs"). The wire bounds are what any
 * `opspray` may say; A's own caps (defaults, the most an outsider can make A send) are far lower.
 */
export const SPRAY_LIMITS = Object.freeze({
  /** Most sockets the hard side opens in one spray (N), on the wire. */
  maxSockets: 4096,
  /** Most probes the easy side sends in one spray (M), on the wire. */
  maxProbes: 4096,
  /** Longest pacing window (µs) either side accepts. */
  maxSpreadUs: 2_000_000,
  /** A's default SYN budget for one spray session, whichever side A is (its N or its M): what B can make A send. */
  aSynsPerSession: 256,
  /** A's default spray sessions per minute (refill) and burst: bounds A's spray SYNs per minute. */
  aSessionsPerMinute: 4,
  aSessionBurst: 2,
  /** B's default SYN budget for its own side of one spray (the requester pays). */
  bSynsPerSession: 2048,
  /**
   * Default pacing window: 1,000 SYNs in a millisecond could overflow a small router's conntrack table, and with
   * about four matching pairs a spray completes several connections: spread apart in time, both sides more often see
   * the same one first (lab, 50 ms RTT, 2% loss: 20 ms 80-90%, 250 ms 90% for edm; docs/BENCHMARKS.md).
   */
  spreadUs: 250_000,
  /**
   * Pacing rate (SYNs per second) of either side of a spray, within the agreed window: a side with fewer SYNs
   * finishes sooner (the first match comes earlier); the largest spray still spans the 250 ms window.
   */
  synsPerSecond: 8192,
  /**
   * Hard ceilings of the operator's caps (config keys `spraymaxsyns`, `sprayrate`, `sprayburst`, `spraydialsyns`,
   * `sprayspread`; facade `hardNat`): a cap may be lowered freely, never raised past these. With them an outsider
   * can make A send at most 1,024 SYNs per spray and 60 sprays a minute (burst 16), whatever A's configuration.
   */
  aSynsCeiling: 1024,
  aSessionsPerMinuteCeiling: 60,
  aSessionBurstCeiling: 16,
} as const);
