/**
 * I2P destinations and their `.b32.i2p` addresses.
 *
 * A destination is 256 bytes of encryption public key, 128 bytes of signing public key (padded), then a
 * certificate: 1 byte type, 2 bytes big-endian payload length, payload. Its length is therefore 387 + payload
 * length (391 for the usual key certificate of EdDSA destinations). The b32 address is the RFC 4648 base32
 * (lower case, no padding) of the SHA-256 of those bytes. I2P's base64 uses `-` and `~` instead of `+` and `/`.
 */
import { createHash } from 'node:crypto';
import { formatB32 } from '../../wire/address.js';
import { SamError } from './errors.js';

const DEST_FIXED = 256 + 128;
const CERT_HEADER = 3;
/** Smallest destination: fixed part + an empty (NULL) certificate header. */
export const MIN_DESTINATION_BYTES = DEST_FIXED + CERT_HEADER;
const I2P_B64_RE = /^[A-Za-z0-9~-]+={0,2}$/;

/** Encodes bytes in I2P base64 (`-~` alphabet, with padding). */
export function i2pBase64Encode(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/\+/g, '-').replace(/\//g, '~');
}

/** Decodes I2P base64; throws `SAM_BAD_DESTINATION` on characters outside the alphabet. */
export function i2pBase64Decode(text: string): Buffer {
  if (text.length === 0 || text.length % 4 === 1 || !I2P_B64_RE.test(text)) {
    throw new SamError('SAM_BAD_DESTINATION', 'not I2P base64');
  }
  return Buffer.from(text.replace(/-/g, '+').replace(/~/g, '/'), 'base64');
}

/**
 * Length in bytes of the destination at the start of `bytes` (a destination, or a private key that begins with
 * one). Throws `SAM_BAD_DESTINATION` when `bytes` is too short for the length its certificate announces.
 */
export function destinationLength(bytes: Uint8Array): number {
  if (bytes.length < MIN_DESTINATION_BYTES) {
    throw new SamError('SAM_BAD_DESTINATION', `destination too short (${bytes.length} bytes)`);
  }
  const certLen = (bytes[DEST_FIXED + 1]! << 8) | bytes[DEST_FIXED + 2]!;
  const len = MIN_DESTINATION_BYTES + certLen;
  if (bytes.length < len) {
    throw new SamError('SAM_BAD_DESTINATION', `destination truncated (${bytes.length} of ${len} bytes)`);
  }
  return len;
}

/** The public destination (I2P base64) at the start of a destination or private key (I2P base64). */
export function publicDestination(base64: string): string {
  const bytes = i2pBase64Decode(base64);
  return i2pBase64Encode(bytes.subarray(0, destinationLength(bytes)));
}

/** `<52 base32>.b32.i2p` of a destination, or of the destination a private key begins with (I2P base64). */
export function b32Address(base64: string): string {
  const bytes = i2pBase64Decode(base64);
  const dest = bytes.subarray(0, destinationLength(bytes));
  return formatB32(createHash('sha256').update(dest).digest());
}

/** True for a well-formed `<52 base32>.b32.i2p` address (case-insensitive). */
export function isB32Address(address: string): boolean {
  return /^[a-z2-7]{52}\.b32\.i2p$/i.test(address);
}
