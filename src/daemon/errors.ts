/** Typed errors of the daemon (`serve`, `proxy`): configuration and SOCKS. */
import { OnionpunchError } from '../errors.js';

export type ConfigErrorCode =
  'CONFIG_UNKNOWN_KEY' | 'CONFIG_BAD_VALUE' | 'CONFIG_SYNTAX' | 'CONFIG_LIMIT' | 'CONFIG_FILE' | 'CONFIG_MISSING';

/** Where a configuration value came from. */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

/** A configuration problem; names the key, the source and (for files) the path and line. */
export class ConfigError extends OnionpunchError {
  declare readonly code: ConfigErrorCode;
  readonly key: string | undefined;
  readonly source: ConfigSource | undefined;
  readonly line: number | undefined;
  readonly file: string | undefined;
  constructor(
    code: ConfigErrorCode,
    message: string,
    where: { key?: string; source?: ConfigSource; line?: number; file?: string } = {},
  ) {
    const loc =
      where.source === 'file'
        ? `${where.file ?? 'config file'}${where.line !== undefined ? `:${where.line}` : ''}`
        : where.source === 'env'
          ? `environment${where.key ? ` ONIONPUNCH_${where.key.toUpperCase()}` : ''}`
          : where.source === 'flag'
            ? `flag${where.key ? ` --${where.key}` : ''}`
            : undefined;
    const keyPart = where.key && where.source !== 'env' && where.source !== 'flag' ? `'${where.key}': ` : '';
    super(code, `${loc ? `${loc}: ` : ''}${keyPart}${message}`);
    this.key = where.key;
    this.source = where.source;
    this.line = where.line;
    this.file = where.file;
  }
}

export type SocksErrorCode =
  | 'SOCKS_BAD_VERSION'
  | 'SOCKS_NO_METHOD'
  | 'SOCKS_BAD_COMMAND'
  | 'SOCKS_BAD_ATYP'
  | 'SOCKS_TIMEOUT'
  | 'SOCKS_TOO_LARGE'
  | 'SOCKS_CLOSED'
  /** The proxy shut down while a connect was pending. */
  | 'SOCKS_SHUTDOWN'
  /** A `.onion`/`.i2p` name that cannot be routed to its overlay (never given to DNS). */
  | 'SOCKS_OVERLAY_NAME'
  /** A domain name while `resolvenames` is off. */
  | 'SOCKS_NAME_NOT_RESOLVED'
  /** A loopback or unspecified destination while `allowloopback` is off. */
  | 'SOCKS_LOOPBACK';

/** A SOCKS client that broke the protocol or asked for a refused destination (the server answers and closes). */
export class SocksServerError extends OnionpunchError {
  declare readonly code: SocksErrorCode;
  constructor(code: SocksErrorCode, message: string) {
    super(code, message);
  }
}

export type HandoffErrorCode = 'HANDOFF_BAD_TARGET' | 'HANDOFF_NO_FD' | 'HANDOFF_SEND';

/**
 * A failed fd hand-off (`serve --handoff unix:PATH`): HANDOFF_BAD_TARGET (not `unix:PATH`), HANDOFF_NO_FD (the
 * socket is closed or has no descriptor), HANDOFF_SEND (connect/sendmsg to the receiver failed; `cause` is
 * the NativeError, e.g. ECONNREFUSED when no receiver listens).
 */
export class HandoffError extends OnionpunchError {
  declare readonly code: HandoffErrorCode;
  constructor(code: HandoffErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
