/**
 * Structured logs for the daemon, on stderr: one JSON object per line (`--log json`) or one human line
 * (`--log text`). Every record has a time, a level and an event name; fields carry the details.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  format?: LogFormat;
  level?: LogLevel;
  /** Where lines go (default process.stderr). */
  write?: (line: string) => void;
  /** Fields added to every record (e.g. `{component: 'serve'}`). */
  base?: Record<string, unknown>;
  now?: () => Date;
}

/**
 * Makes an untrusted string safe for a terminal or a line-based log: printable ASCII (0x20–0x7e) stays, except
 * the backslash which doubles; `\n`, `\r`, `\t` become those escapes; other code units below 0x100 become
 * `\xHH`, the rest `\uHHHH`. Control characters (ESC sequences, CR, C1 controls such as U+009B CSI) therefore
 * can neither forge a log line nor drive the terminal. Every text log path and every CLI print of a peer's
 * string (user agent, error message) goes through this one function.
 */
export function escapeText(s: string): string {
  if (/^[\x20-\x5b\x5d-\x7e]*$/.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) out += c === 0x5c ? '\\\\' : s[i];
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x100) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += '\\u' + c.toString(16).padStart(4, '0');
  }
  return out;
}

/**
 * JSON text with every character outside printable ASCII written as `\uHHHH`: the same value to a JSON parser,
 * but JSON.stringify alone leaves DEL, C1 controls and U+2028/2029 raw, which a terminal showing the log obeys.
 */
export function asciiJson(v: unknown): string {
  const text = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? 'null';
  return text.replace(/[^\x20-\x7e]/g, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'));
}

function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error)
    return { ...('code' in v ? { code: (v as { code: unknown }).code } : {}), message: v.message };
  return v;
}

function textValue(v: string): string {
  return /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(v) ? v : `"${escapeText(v).replace(/"/g, '\\"')}"`;
}

/** A small structured logger. `child()` adds fields. */
export class Logger {
  private readonly format: LogFormat;
  private readonly min: number;
  private readonly write: (line: string) => void;
  private readonly base: Record<string, unknown>;
  private readonly now: () => Date;

  constructor(opts: LoggerOptions = {}) {
    this.format = opts.format ?? 'text';
    this.min = RANK[opts.level ?? 'info'];
    this.write = opts.write ?? ((l) => void process.stderr.write(l + '\n'));
    this.base = opts.base ?? {};
    this.now = opts.now ?? (() => new Date());
  }

  child(fields: Record<string, unknown>): Logger {
    const c = Object.create(Logger.prototype) as Logger;
    Object.assign(c, this, { base: { ...this.base, ...fields } });
    return c;
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.min;
  }

  log(level: LogLevel, event: string, fields: Record<string, unknown> = {}): void {
    if (!this.enabled(level)) return;
    const rec: Record<string, unknown> = { t: this.now().toISOString(), level, event, ...this.base };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) rec[k] = plain(v);
    let line: string;
    if (this.format === 'json') {
      line = asciiJson(rec);
    } else {
      // Fields hold peer-supplied text (user agents, error messages): a bare value only if it is plain printable
      // ASCII without spaces or quotes, otherwise quoted and escaped, so no value can end the line or fake a field.
      const rest = Object.entries(rec)
        .filter(([k]) => k !== 't' && k !== 'level' && k !== 'event')
        .map(([k, v]) => `${escapeText(k)}=${typeof v === 'string' ? textValue(v) : asciiJson(v)}`);
      const head = `${rec.t as string} ${level.toUpperCase().padEnd(5)} ${escapeText(event)}`;
      line = rest.length ? `${head} ${rest.join(' ')}` : head;
    }
    try {
      this.write(line);
    } catch {
      // A closed stderr must never take the daemon down.
    }
  }

  debug(event: string, fields?: Record<string, unknown>): void {
    this.log('debug', event, fields);
  }
  info(event: string, fields?: Record<string, unknown>): void {
    this.log('info', event, fields);
  }
  warn(event: string, fields?: Record<string, unknown>): void {
    this.log('warn', event, fields);
  }
  error(event: string, fields?: Record<string, unknown>): void {
    this.log('error', event, fields);
  }
}
