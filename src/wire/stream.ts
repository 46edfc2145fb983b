/**
 * Streaming frame parser: feed it bytes in any chunking (one byte at a time too); it returns complete
 * frames. The declared payload length is checked against the cap as soon as the header is complete,
 * before a single payload byte is buffered, and the magic as soon as its 4 bytes are in. Errors are
 * returned, never thrown; after the first one the parser is dead and ignores further input.
 */
import { WireError } from './errors.js';
import { HEADER_SIZE, MAX_PAYLOAD, type NetworkName } from './constants.js';
import { checkMagic, checksum, parseHeader, type Frame, type FrameHeader } from './frame.js';

export interface FrameParserOptions {
  /** Only accept this network's magic (default: any known network). */
  network?: NetworkName;
  /** Payload cap (default and maximum 4,000,000 bytes). */
  maxPayload?: number;
  /**
   * If false, frames with a bad checksum are delivered with `checksumOk: false` instead of being an
   * error (for diagnostics like `decode`). Default true.
   */
  verifyChecksum?: boolean;
}

/** What one {@link FrameParser.push} produced: the frames completed, and at most one error. */
export interface PushResult {
  frames: Frame[];
  error: WireError | null;
}

const NO_FRAMES: PushResult = Object.freeze({ frames: [], error: null }) as PushResult;

export class FrameParser {
  private readonly network: NetworkName | undefined;
  private readonly maxPayload: number;
  private readonly verify: boolean;
  private readonly hdr = Buffer.alloc(HEADER_SIZE);
  private hdrFill = 0;
  private header: FrameHeader | null = null;
  /**
   * A partial payload is copied into an owned buffer (grown by doubling up to the declared length):
   * keeping views of many small socket chunks could pin far more memory than the bytes they hold.
   */
  private acc: Buffer | null = null;
  private pieceBytes = 0;
  private err: WireError | null = null;

  constructor(opts: FrameParserOptions = {}) {
    this.network = opts.network;
    this.maxPayload = Math.min(opts.maxPayload ?? MAX_PAYLOAD, MAX_PAYLOAD);
    this.verify = opts.verifyChecksum ?? true;
  }

  /** Bytes held right now (partial header + partial payload); never more than header + cap. */
  get buffered(): number {
    return this.hdrFill + this.pieceBytes;
  }

  /** The error that killed the parser, if any. */
  get error(): WireError | null {
    return this.err;
  }

  /** True after an error: further input is ignored. */
  get dead(): boolean {
    return this.err !== null;
  }

  /** Feeds bytes. Frames completed before an error in the same chunk are still returned. */
  push(chunk: Uint8Array): PushResult {
    if (this.err) return NO_FRAMES;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const frames: Frame[] = [];
    let off = 0;
    try {
      while (off < buf.length) {
        if (this.header === null) {
          if (this.hdrFill === 0 && buf.length - off >= HEADER_SIZE) {
            // Fast path: the whole header is in this chunk; parse it in place.
            this.header = parseHeader(buf.subarray(off, off + HEADER_SIZE), this.network, this.maxPayload);
            off += HEADER_SIZE;
          } else {
            const take = Math.min(HEADER_SIZE - this.hdrFill, buf.length - off);
            const before = this.hdrFill;
            buf.copy(this.hdr, this.hdrFill, off, off + take);
            this.hdrFill += take;
            off += take;
            // Reject a bad magic as soon as its 4 bytes are in, not 20 bytes later.
            if (before < 4 && this.hdrFill >= 4) checkMagic(this.hdr.readUInt32LE(0), this.network);
            if (this.hdrFill < HEADER_SIZE) break;
            // Copy: the header's checksum view must not alias our reusable header buffer.
            this.header = parseHeader(Buffer.from(this.hdr), this.network, this.maxPayload);
            this.hdrFill = 0;
          }
        }
        const h = this.header;
        const want = h.length - this.pieceBytes;
        let payload: Buffer | null = null;
        if (this.pieceBytes === 0 && buf.length - off >= h.length) {
          // Fast path: the whole payload is in this chunk; hand out a view.
          payload = buf.subarray(off, off + h.length);
          off += h.length;
        } else {
          const take = Math.min(want, buf.length - off);
          if (take > 0) {
            const need = this.pieceBytes + take;
            if (this.acc === null || this.acc.length < need) {
              const cap = Math.min(h.length, Math.max(need, 16_384, (this.acc?.length ?? 0) * 2));
              const grown = Buffer.allocUnsafe(cap);
              if (this.acc !== null) this.acc.copy(grown, 0, 0, this.pieceBytes);
              this.acc = grown;
            }
            buf.copy(this.acc, this.pieceBytes, off, off + take);
            this.pieceBytes = need;
            off += take;
          }
          if (this.pieceBytes < h.length) break;
          payload = this.acc!.subarray(0, h.length);
          this.acc = null;
          this.pieceBytes = 0;
        }
        this.header = null;
        const ok = checksum(payload).equals(h.checksum);
        if (!ok && this.verify) {
          throw new WireError(
            'WIRE_BAD_CHECKSUM',
            `${h.command}: checksum ${checksum(payload).toString('hex')} does not match header ` +
              `${h.checksum.toString('hex')}`,
          );
        }
        frames.push({ ...h, payload, checksumOk: ok });
      }
    } catch (e) {
      this.fail(e);
      return { frames, error: this.err };
    }
    return frames.length ? { frames, error: null } : NO_FRAMES;
  }

  /**
   * Signals end of input. Returns a WIRE_TRUNCATED error if a frame was left incomplete (and kills
   * the parser), else null.
   */
  end(): WireError | null {
    if (this.err) return null;
    if (this.header !== null) {
      this.fail(
        new WireError(
          'WIRE_TRUNCATED',
          `${this.header.command}: payload truncated: ${this.pieceBytes} of ${this.header.length} bytes`,
        ),
      );
      return this.err;
    }
    if (this.hdrFill > 0) {
      this.fail(new WireError('WIRE_TRUNCATED', `header truncated: ${this.hdrFill} of ${HEADER_SIZE} bytes`));
      return this.err;
    }
    return null;
  }

  private fail(e: unknown): void {
    this.err =
      e instanceof WireError ? e : new WireError('WIRE_BAD_FIELD', `frame: ${(e as Error)?.message ?? String(e)}`);
    // Drop whatever was buffered: a dead stream holds no memory.
    this.acc = null;
    this.pieceBytes = 0;
    this.hdrFill = 0;
    this.header = null;
  }
}
