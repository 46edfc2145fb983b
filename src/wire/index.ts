/**
 * Public API of the Bitcoin P2P wire layer: constants, framing, the streaming parser, payload codecs,
 * address text helpers and {@link WireError}. Everything here is pure (no I/O).
 */
export * from './constants.js';
export { WireError, type WireErrorCode } from './errors.js';
export { Reader, compactSizeLength, writeCompactSize, encodeCompactSize, decodeCompactSize } from './bytes.js';
export {
  base32Encode,
  base32Decode,
  formatIPv4,
  formatIPv6,
  formatAddrV1,
  isV4Mapped,
  parseIPv4,
  parseIPv6,
  parseAddrV1,
  writeAddrV1,
  writeIPv4,
  formatOnion,
  parseOnion,
  formatB32,
  parseB32,
  hostKind,
  parseEndpoint,
  formatEndpoint,
  unmapIPv4,
  type HostEndpoint,
  type HostKind,
} from './address.js';
export * from './messages.js';
export {
  checksum,
  isValidCommand,
  readCommand,
  encodeMessage,
  encodeRaw,
  parseHeader,
  checkMagic,
  type Frame,
  type FrameHeader,
} from './frame.js';
export { FrameParser, type FrameParserOptions, type PushResult } from './stream.js';
export { toJSONValue, payloadToJSON } from './json.js';
