/**
 * Incremental parser of tor control-port replies (control-spec section 2.3/2.4). Pure: bytes in, replies out,
 * with hard limits on line length and reply size so a misbehaving peer cannot grow memory without bound.
 *
 * A reply is one or more lines `<3 digit status><sep><text>` where sep is '-' (more lines follow), '+'
 * (a data block follows, ended by a line ".", with leading dots escaped) or ' ' (last line).
 */
import { TorControlError } from './errors.js';

/** One line of a reply. `data` is the unescaped data block of a '+' line (lines joined by '\n'). */
export interface ReplyLine {
  status: number;
  text: string;
  data?: string;
}

/** A complete reply. `status` is the status of its final line. */
export interface TorReply {
  status: number;
  lines: ReplyLine[];
}

/** Limits of the parser. */
export interface ReplyLimits {
  /** Longest accepted line, bytes without CRLF (default 64 KiB). */
  maxLineBytes?: number;
  /** Largest accepted reply, bytes over all its lines (default 4 MiB). */
  maxReplyBytes?: number;
  /** Most lines in one reply, data lines included (default 100000). */
  maxReplyLines?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;
export const DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024;

const LINE_RE = /^([0-9]{3})([ +-])(.*)$/s;

/**
 * Feeds bytes, returns completed replies. After the first error the parser is poisoned: every later `push`
 * throws the same error (the stream cannot be resynchronised safely).
 */
export class ReplyParser {
  private readonly maxLine: number;
  private readonly maxReply: number;
  private readonly maxLines: number;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private lines: ReplyLine[] = [];
  private replyBytes = 0;
  private replyLineCount = 0;
  /** Non-null while inside a data block: the collected lines. */
  private dataLines: string[] | null = null;
  private failed: TorControlError | null = null;

  constructor(limits: ReplyLimits = {}) {
    this.maxLine = limits.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.maxReply = limits.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.maxLines = limits.maxReplyLines ?? 100_000;
  }

  /** Parses `chunk`; returns the replies it completed. Throws TorControlError(TOR_PROTOCOL) on bad input. */
  push(chunk: Buffer): TorReply[] {
    if (this.failed) throw this.failed;
    try {
      return this.pushInner(chunk);
    } catch (err) {
      this.failed = err instanceof TorControlError ? err : new TorControlError('TOR_PROTOCOL', String(err));
      throw this.failed;
    }
  }

  private pushInner(chunk: Buffer): TorReply[] {
    const out: TorReply[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) {
        const rest = chunk.length - start;
        if (this.pendingLen + rest > this.maxLine + 1) {
          throw new TorControlError('TOR_PROTOCOL', `control reply line longer than ${this.maxLine} bytes`);
        }
        if (rest > 0) {
          this.pending.push(chunk.subarray(start));
          this.pendingLen += rest;
        }
        return out;
      }
      let lineBuf = chunk.subarray(start, nl);
      if (this.pendingLen > 0) {
        lineBuf = Buffer.concat([...this.pending, lineBuf]);
        this.pending = [];
        this.pendingLen = 0;
      }
      start = nl + 1;
      // Tolerate bare LF, as tor's own controllers do; strip the CR of CRLF.
      let end = lineBuf.length;
      if (end > 0 && lineBuf[end - 1] === 0x0d) end--;
      if (end > this.maxLine) {
        throw new TorControlError('TOR_PROTOCOL', `control reply line longer than ${this.maxLine} bytes`);
      }
      const reply = this.line(lineBuf.toString('utf8', 0, end), end);
      if (reply) out.push(reply);
    }
  }

  private line(line: string, bytes: number): TorReply | null {
    this.replyBytes += bytes + 2;
    this.replyLineCount++;
    if (this.replyBytes > this.maxReply) {
      throw new TorControlError('TOR_PROTOCOL', `control reply larger than ${this.maxReply} bytes`);
    }
    if (this.replyLineCount > this.maxLines) {
      throw new TorControlError('TOR_PROTOCOL', `control reply has more than ${this.maxLines} lines`);
    }
    if (this.dataLines) {
      if (line === '.') {
        const last = this.lines[this.lines.length - 1]!;
        last.data = this.dataLines.join('\n');
        this.dataLines = null;
      } else {
        // Dot-unescaping: a data line starting with '.' was sent with one more '.'.
        this.dataLines.push(line.startsWith('.') ? line.slice(1) : line);
      }
      return null;
    }
    const m = LINE_RE.exec(line);
    if (!m) {
      throw new TorControlError('TOR_PROTOCOL', `malformed control reply line: ${JSON.stringify(line.slice(0, 80))}`);
    }
    const status = Number(m[1]);
    // control-spec status classes are 2yz, 4yz, 5yz and 6yz (650 = async event); anything else (e.g. "000")
    // is not tor talking, and must not surface as a reply code either.
    if (status < 200 || status > 699) {
      throw new TorControlError(
        'TOR_PROTOCOL',
        `control reply status ${m[1]} is outside 200-699: ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
    const sep = m[2]!;
    const text = m[3]!;
    if (this.lines.length > 0 && this.lines[0]!.status !== status) {
      throw new TorControlError(
        'TOR_PROTOCOL',
        `control reply mixes status codes ${this.lines[0]!.status} and ${status}`,
      );
    }
    this.lines.push({ status, text });
    if (sep === '+') {
      this.dataLines = [];
      return null;
    }
    if (sep === '-') return null;
    const reply: TorReply = { status, lines: this.lines };
    this.lines = [];
    this.replyBytes = 0;
    this.replyLineCount = 0;
    return reply;
  }
}

/**
 * Splits `KEY=VALUE KEY2="quoted \"value\"" WORD` into an ordered list; values may be QuotedStrings (with C
 * escapes) or bare words. Bare words without '=' get value `undefined`. Throws TOR_PROTOCOL on a broken quote.
 */
export function parseKeywords(text: string): Array<[string, string | undefined]> {
  const out: Array<[string, string | undefined]> = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && text[i] === ' ') i++;
    if (i >= n) break;
    let k = i;
    while (k < n && text[k] !== ' ' && text[k] !== '=') k++;
    const key = text.slice(i, k);
    if (k < n && text[k] === '=') {
      k++;
      if (text[k] === '"') {
        const [value, next] = parseQuoted(text, k);
        out.push([key, value]);
        i = next;
      } else {
        let e = k;
        while (e < n && text[e] !== ' ') e++;
        out.push([key, text.slice(k, e)]);
        i = e;
      }
    } else {
      out.push([key, undefined]);
      i = k;
    }
  }
  return out;
}

/** Parses a QuotedString starting at `text[at] === '"'`; returns the value and the index after the quote. */
export function parseQuoted(text: string, at: number): [string, number] {
  if (text[at] !== '"') throw new TorControlError('TOR_PROTOCOL', 'expected a quoted string');
  let out = '';
  let i = at + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') return [out, i + 1];
    if (c === '\\') {
      const d = text[i + 1];
      if (d === undefined) break;
      if (d >= '0' && d <= '7') {
        let j = i + 1;
        let v = 0;
        while (j < text.length && j < i + 4 && text[j]! >= '0' && text[j]! <= '7') v = v * 8 + Number(text[j++]);
        out += String.fromCharCode(v & 0xff);
        i = j;
        continue;
      }
      out += d === 'n' ? '\n' : d === 't' ? '\t' : d === 'r' ? '\r' : d;
      i += 2;
      continue;
    }
    out += c;
    i++;
  }
  throw new TorControlError('TOR_PROTOCOL', 'unterminated quoted string in control reply');
}

/** Quotes a string for a control command argument (backslash-escapes '"' and '\'). */
export function quoteString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}
