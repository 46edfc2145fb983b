/**
 * Cursor-based reading and writing of the Bitcoin serialization primitives (integers, CompactSize,
 * var_str, fixed byte runs). Reads return subarrays (no copies); every failure is a {@link WireError}
 * naming the field being read.
 */
import { WireError } from './errors.js';
import { MAX_COMPACT_SIZE } from './constants.js';

/** Reads fields from a payload. `ctx` prefixes field names in error messages (e.g. "version"). */
export class Reader {
  off = 0;
  constructor(
    readonly buf: Buffer,
    readonly ctx: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.off;
  }

  /** Fails unless `n` more bytes are there. */
  need(n: number, field: string): void {
    if (this.buf.length - this.off < n) {
      throw new WireError(
        'WIRE_TRUNCATED',
        `${this.ctx}: truncated at ${field} (need ${n} bytes at offset ${this.off}, have ` +
          `${this.buf.length - this.off})`,
      );
    }
  }

  bad(field: string, why: string): WireError {
    return new WireError('WIRE_BAD_FIELD', `${this.ctx}: bad ${field}: ${why}`);
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.off++]!;
  }
  u16be(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  i32(field: string): number {
    this.need(4, field);
    const v = this.buf.readInt32LE(this.off);
    this.off += 4;
    return v;
  }
  u64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigUInt64LE(this.off);
    this.off += 8;
    return v;
  }
  i64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigInt64LE(this.off);
    this.off += 8;
    return v;
  }
  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  bool(field: string): boolean {
    const v = this.u8(field);
    return v !== 0;
  }

  /**
   * A canonical CompactSize as a bigint (no range check; non-minimal encodings fail as in Bitcoin Core).
   */
  compactSizeBig(field: string): bigint {
    const first = this.u8(field);
    if (first < 0xfd) return BigInt(first);
    if (first === 0xfd) {
      const v = this.u16le(field);
      if (v < 0xfd) throw this.bad(field, 'non-canonical CompactSize');
      return BigInt(v);
    }
    if (first === 0xfe) {
      const v = this.u32(field);
      if (v < 0x10000) throw this.bad(field, 'non-canonical CompactSize');
      return BigInt(v);
    }
    const v = this.u64(field);
    if (v < 0x100000000n) throw this.bad(field, 'non-canonical CompactSize');
    return v;
  }

  /** A canonical CompactSize used as a length or count: at most `max` (default MAX_SIZE, 0x02000000). */
  compactSize(field: string, max = MAX_COMPACT_SIZE): number {
    const first = this.u8(field);
    let v: number;
    if (first < 0xfd) v = first;
    else if (first === 0xfd) {
      v = this.u16le(field);
      if (v < 0xfd) throw this.bad(field, 'non-canonical CompactSize');
    } else if (first === 0xfe) {
      v = this.u32(field);
      if (v < 0x10000) throw this.bad(field, 'non-canonical CompactSize');
    } else {
      const b = this.u64(field);
      if (b < 0x100000000n) throw this.bad(field, 'non-canonical CompactSize');
      throw this.bad(field, `${b} > ${max}`);
    }
    if (v > max) throw this.bad(field, `${v} > ${max}`);
    return v;
  }

  /** A var_str of at most `max` bytes, decoded as latin1 (Bitcoin user agents are ASCII). */
  varStr(field: string, max: number): string {
    const len = this.compactSize(field);
    if (len > max) throw this.bad(field, `length ${len} > ${max}`);
    return this.bytes(len, field).toString('latin1');
  }

  /** Fails if bytes remain (strict messages). */
  end(): void {
    if (this.off !== this.buf.length) {
      throw new WireError('WIRE_BAD_FIELD', `${this.ctx}: ${this.buf.length - this.off} unexpected trailing bytes`);
    }
  }

  private u16le(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16LE(this.off);
    this.off += 2;
    return v;
  }
}

/** Bytes a CompactSize takes. */
export function compactSizeLength(n: number | bigint): number {
  const v = typeof n === 'bigint' ? n : BigInt(n);
  if (v < 0xfdn) return 1;
  if (v <= 0xffffn) return 3;
  if (v <= 0xffffffffn) return 5;
  return 9;
}

/** Writes a CompactSize at `off`, returns the new offset. */
export function writeCompactSize(buf: Buffer, off: number, n: number | bigint): number {
  if (typeof n === 'number' && n < 0xfd) {
    buf[off] = n;
    return off + 1;
  }
  const v = typeof n === 'bigint' ? n : BigInt(n);
  if (v < 0n || v > 0xffffffffffffffffn) throw new WireError('WIRE_BAD_FIELD', `CompactSize out of range: ${v}`);
  if (v < 0xfdn) {
    buf[off] = Number(v);
    return off + 1;
  }
  if (v <= 0xffffn) {
    buf[off] = 0xfd;
    buf.writeUInt16LE(Number(v), off + 1);
    return off + 3;
  }
  if (v <= 0xffffffffn) {
    buf[off] = 0xfe;
    buf.writeUInt32LE(Number(v), off + 1);
    return off + 5;
  }
  buf[off] = 0xff;
  buf.writeBigUInt64LE(v, off + 1);
  return off + 9;
}

/** Encodes one CompactSize into a fresh buffer (tests, tools). */
export function encodeCompactSize(n: number | bigint): Buffer {
  const b = Buffer.allocUnsafe(compactSizeLength(n));
  writeCompactSize(b, 0, n);
  return b;
}

/** Decodes one CompactSize (canonical, no range limit) from the start of `buf`. */
export function decodeCompactSize(buf: Buffer): { value: bigint; length: number } {
  const r = new Reader(buf, 'CompactSize');
  const value = r.compactSizeBig('value');
  return { value, length: r.off };
}
