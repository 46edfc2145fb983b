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

function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return { ...(('code' in v) ? { code: (v as { code: unknown }).code } : {}), message: v.message };
  return v;
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
      line = JSON.stringify(rec, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    } else {
      const rest = Object.entries(rec)
        .filter(([k]) => k !== 't' && k !== 'level' && k !== 'event')
        .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))}`);
      line = `${rec.t as string} ${level.toUpperCase().padEnd(5)} ${event}${rest.length ? ' ' + rest.join(' ') : ''}`;
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
