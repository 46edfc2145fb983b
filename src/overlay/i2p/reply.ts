/**
 * Parsing of SAM v3 reply lines: `TOPIC SUBTOPIC KEY=VALUE KEY="quoted value" ...`.
 * Anything that is not such a line is a `SAM_PROTOCOL` error, never an exception of another kind.
 */
import { SamError } from './errors.js';

/** One parsed SAM reply line. */
export interface SamReply {
  topic: string;
  sub: string;
  fields: Map<string, string>;
}

/** Parses one reply line (without its newline). Throws `SAM_PROTOCOL` on malformed input. */
export function parseSamReply(line: string): SamReply {
  const tokens: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && line[i] === ' ') i++;
    if (i >= line.length) break;
    let tok = '';
    while (i < line.length && line[i] !== ' ') {
      if (line[i] === '"') {
        i++;
        let closed = false;
        while (i < line.length) {
          const c = line[i]!;
          if (c === '\\' && i + 1 < line.length) {
            tok += line[i + 1];
            i += 2;
          } else if (c === '"') {
            i++;
            closed = true;
            break;
          } else {
            tok += c;
            i++;
          }
        }
        if (!closed) throw new SamError('SAM_PROTOCOL', 'unterminated quoted value in SAM reply');
      } else {
        tok += line[i];
        i++;
      }
    }
    tokens.push(tok);
  }
  if (tokens.length < 2) throw new SamError('SAM_PROTOCOL', `malformed SAM reply (${describe(line)})`);
  const [topic, sub] = tokens as [string, string];
  if (!/^[A-Z]+$/.test(topic) || !/^[A-Z]+$/.test(sub)) {
    throw new SamError('SAM_PROTOCOL', `malformed SAM reply topic (${describe(line)})`);
  }
  const fields = new Map<string, string>();
  for (const t of tokens.slice(2)) {
    const eq = t.indexOf('=');
    const key = eq < 0 ? t : t.slice(0, eq);
    if (key.length === 0) throw new SamError('SAM_PROTOCOL', `empty key in SAM reply (${describe(line)})`);
    if (!fields.has(key)) fields.set(key, eq < 0 ? '' : t.slice(eq + 1));
  }
  return { topic, sub, fields };
}

/** A short, printable excerpt of a line for error messages (replies may carry keys: keep it short). */
export function describe(line: string): string {
  const printable = line.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 60 ? printable.slice(0, 60) + '...' : printable;
}
