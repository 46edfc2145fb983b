/**
 * Message framing: `magic (4) | command (12, NUL-padded ASCII) | length (u32 LE) | checksum (4)`,
 * checksum = first 4 bytes of SHA256(SHA256(payload)). Encoding allocates exactly one buffer.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { WireError } from './errors.js';
import { HEADER_SIZE, MAGIC, MAX_PAYLOAD, networkForMagic, type NetworkName } from './constants.js';
import { CODECS, type Codec, type KnownCommand, type PayloadMap } from './messages.js';

/** The 4-byte checksum of a payload (double SHA-256, first 4 bytes). */
export function checksum(payload: Uint8Array): Buffer {
  return sha256d(payload).subarray(0, 4);
}

// crypto.hash (Node >= 20.12) is a one-shot digest, about 2.5x faster than createHash for small inputs.
const sha256d: (data: Uint8Array) => Buffer =
  typeof oneShotHash === 'function'
    ? (d) => oneShotHash('sha256', oneShotHash('sha256', d, 'buffer'), 'buffer')
    : (d) => createHash('sha256').update(createHash('sha256').update(d).digest()).digest();

/** Checksum of the empty payload (verack etc.), precomputed. */
const EMPTY_CHECKSUM = checksum(Buffer.alloc(0));

/** A command name is 1–12 printable ASCII characters (Bitcoin Core's IsCommandValid, minus empty). */
export function isValidCommand(cmd: string): boolean {
  if (cmd.length === 0 || cmd.length > 12) return false;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** Reads the command field (12 bytes at `off`): printable ASCII, then only NULs. Undefined if invalid. */
export function readCommand(buf: Uint8Array, off: number): string | undefined {
  let end = 0;
  while (end < 12 && buf[off + end] !== 0) {
    const c = buf[off + end]!;
    if (c < 0x20 || c > 0x7e) return undefined;
    end++;
  }
  if (end === 0) return undefined;
  for (let i = end; i < 12; i++) if (buf[off + i] !== 0) return undefined;
  let s = '';
  for (let i = 0; i < end; i++) s += String.fromCharCode(buf[off + i]!);
  return s;
}

function writeHeader(buf: Buffer, network: NetworkName, command: string, payloadLen: number): void {
  if (!isValidCommand(command)) throw new WireError('WIRE_BAD_COMMAND', `bad command name '${command}'`);
  if (payloadLen > MAX_PAYLOAD)
    throw new WireError('WIRE_OVERSIZE', `${command}: payload ${payloadLen} bytes > ${MAX_PAYLOAD}`);
  const magic = MAGIC[network];
  if (magic === undefined) throw new WireError('WIRE_BAD_MAGIC', `unknown network '${network}'`);
  buf.writeUInt32LE(magic, 0);
  buf.fill(0, 4, 16);
  buf.write(command, 4, 'latin1');
  buf.writeUInt32LE(payloadLen, 16);
  const sum = payloadLen === 0 ? EMPTY_CHECKSUM : checksum(buf.subarray(HEADER_SIZE, HEADER_SIZE + payloadLen));
  sum.copy(buf, 20);
}

/** Frames a known command: encodes the payload straight into the frame (one allocation). */
export function encodeMessage<C extends KnownCommand>(network: NetworkName, command: C, value: PayloadMap[C]): Buffer {
  const codec = CODECS[command] as Codec<PayloadMap[C]>;
  const size = codec.size(value);
  const buf = Buffer.allocUnsafe(HEADER_SIZE + size);
  const end = codec.write(value, buf, HEADER_SIZE);
  if (end !== buf.length) throw new Error(`internal: ${command} codec wrote ${end - HEADER_SIZE} of ${size} bytes`);
  writeHeader(buf, network, command, size);
  return buf;
}

/** Frames any command around raw payload bytes (one allocation + the copy of the payload). */
export function encodeRaw(network: NetworkName, command: string, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  buf.set(payload, HEADER_SIZE);
  writeHeader(buf, network, command, payload.length);
  return buf;
}

/** A parsed header. */
export interface FrameHeader {
  network: NetworkName;
  magic: number;
  command: string;
  length: number;
  checksum: Buffer;
}

/** One framed message. `payload` may be a view into the buffer it was parsed from. */
export interface Frame extends FrameHeader {
  payload: Buffer;
  checksumOk: boolean;
}

/**
 * Parses and validates a 24-byte header. `expect` restricts the network (else any known magic).
 * Throws {@link WireError}: WIRE_BAD_MAGIC, WIRE_BAD_COMMAND, WIRE_OVERSIZE.
 */
export function parseHeader(h: Uint8Array, expect?: NetworkName, maxPayload = MAX_PAYLOAD): FrameHeader {
  if (h.length < HEADER_SIZE) throw new WireError('WIRE_TRUNCATED', `header: ${h.length} of ${HEADER_SIZE} bytes`);
  const b = Buffer.from(h.buffer, h.byteOffset, HEADER_SIZE);
  const magic = b.readUInt32LE(0);
  const network = checkMagic(magic, expect);
  const command = readCommand(b, 4);
  if (command === undefined)
    throw new WireError('WIRE_BAD_COMMAND', `header: bad command field ${b.subarray(4, 16).toString('hex')}`);
  const length = b.readUInt32LE(16);
  if (length > maxPayload) throw new WireError('WIRE_OVERSIZE', `header: ${command} length ${length} > ${maxPayload}`);
  return { network, magic, command, length, checksum: b.subarray(20, 24) };
}

/** Maps a magic to its network, or throws WIRE_BAD_MAGIC. */
export function checkMagic(magic: number, expect?: NetworkName): NetworkName {
  const network = networkForMagic(magic);
  const hex = () => {
    const t = Buffer.alloc(4);
    t.writeUInt32LE(magic >>> 0);
    return t.toString('hex');
  };
  if (network === undefined) throw new WireError('WIRE_BAD_MAGIC', `header: magic ${hex()} is no known network's`);
  if (expect !== undefined && network !== expect) {
    throw new WireError('WIRE_BAD_MAGIC', `header: magic ${hex()} is ${network}'s, expected ${expect}'s`);
  }
  return network;
}
