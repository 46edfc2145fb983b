/**
 * Base class of every error onionpunch throws on purpose. `code` is stable and machine-readable
 * (UPPER_SNAKE, prefixed by the module area, e.g. `WIRE_BAD_CHECKSUM`); the message is for humans.
 */
export class OnionpunchError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** A plain object for JSON output (`{code, message}`). */
  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Bad command-line usage: unknown verb, missing or malformed argument. */
export class UsageError extends OnionpunchError {
  constructor(message: string) {
    super('CLI_USAGE', message);
  }
}
