/**
 * Typed errors of the Tor transport. Codes are stable: `TOR_*` for the control port, `TOR_SOCKS_*` for dials.
 */
import { OnionpunchError } from '../../errors.js';

/**
 * A control-port failure. Codes: TOR_CONNECT (cannot reach the port), TOR_AUTH_FAILED (tor refused, or no usable
 * method), TOR_AUTH_PASSWORD_REQUIRED (tor takes only a password, none given), TOR_AUTH_SERVER_HASH (the
 * SAFECOOKIE server hash is wrong: not the tor that wrote the cookie), TOR_AUTH_UNSAFE_METHOD
 * (plain COOKIE offered without SAFECOOKIE, or asked for: refused), TOR_COOKIE_UNREADABLE (cookie file missing,
 * unreadable or not a regular file), TOR_COOKIE_BAD_SIZE (not exactly 32 bytes), TOR_PROTOCOL (malformed
 * or oversized reply), TOR_TIMEOUT (a request got no reply in time), TOR_CLOSED (connection ended),
 * TOR_BAD_ARGUMENT (an argument would break the line protocol), TOR_REPLY_<status> (tor answered with an error
 * status, e.g. TOR_REPLY_552 for an unknown onion), TOR_ENDPOINT_LOST (a service whose key was discarded).
 */
export class TorControlError extends OnionpunchError {
  /** The tor status code when the error comes from a reply (e.g. 552). */
  readonly status: number | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options);
    this.status = options?.status;
  }
}

/** SOCKS5 reply codes tor sends (RFC 1928 plus tor's extended onion-service errors, prop 304, 0xF0-0xF7). */
export const TOR_SOCKS_REPLIES: Readonly<Record<number, { code: string; message: string }>> = {
  0x01: { code: 'TOR_SOCKS_GENERAL_FAILURE', message: 'general SOCKS server failure' },
  0x02: { code: 'TOR_SOCKS_NOT_ALLOWED', message: 'connection not allowed by ruleset' },
  0x03: { code: 'TOR_SOCKS_NETWORK_UNREACHABLE', message: 'network unreachable' },
  0x04: {
    code: 'TOR_SOCKS_HOST_UNREACHABLE',
    message: 'host unreachable (the onion service refused or closed the stream)',
  },
  0x05: { code: 'TOR_SOCKS_CONNECTION_REFUSED', message: 'connection refused' },
  0x06: {
    code: 'TOR_SOCKS_TTL_EXPIRED',
    message: 'TTL expired (tor gave up building the connection: SocksTimeout, or the service stayed unreachable)',
  },
  0x07: { code: 'TOR_SOCKS_COMMAND_NOT_SUPPORTED', message: 'command not supported' },
  0x08: { code: 'TOR_SOCKS_ADDRESS_TYPE_NOT_SUPPORTED', message: 'address type not supported' },
  0xf0: {
    code: 'TOR_SOCKS_HS_DESC_NOT_FOUND',
    message: 'onion service descriptor not found (service offline or not yet published)',
  },
  0xf1: { code: 'TOR_SOCKS_HS_DESC_INVALID', message: 'onion service descriptor is invalid' },
  0xf2: {
    code: 'TOR_SOCKS_HS_INTRO_FAILED',
    message: 'onion service introduction failed (service gone or unreachable)',
  },
  0xf3: { code: 'TOR_SOCKS_HS_REND_FAILED', message: 'onion service rendezvous failed' },
  0xf4: { code: 'TOR_SOCKS_HS_MISSING_CLIENT_AUTH', message: 'onion service requires client authorization' },
  0xf5: { code: 'TOR_SOCKS_HS_BAD_CLIENT_AUTH', message: 'onion service client authorization is wrong' },
  0xf6: { code: 'TOR_SOCKS_HS_BAD_ADDRESS', message: 'invalid onion address' },
  0xf7: { code: 'TOR_SOCKS_HS_INTRO_TIMEDOUT', message: 'onion service introduction timed out' },
};

/**
 * A failed dial through tor's SOCKS port. `reply` holds the SOCKS5 reply byte when tor sent one.
 * Other codes: TOR_SOCKS_PROXY_UNREACHABLE, TOR_SOCKS_TIMEOUT, TOR_SOCKS_ABORTED, TOR_SOCKS_BAD_ADDRESS (refused
 * locally before dialing), TOR_SOCKS_PROTOCOL, TOR_SOCKS_REPLY_<hex> (a reply byte tor does not document).
 */
export class TorSocksError extends OnionpunchError {
  readonly reply: number | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; reply?: number }) {
    super(code, message, options);
    this.reply = options?.reply;
  }

  /** The typed error for a SOCKS5 reply byte. */
  static fromReply(reply: number, target: string): TorSocksError {
    const known = TOR_SOCKS_REPLIES[reply];
    const hex = '0x' + reply.toString(16).padStart(2, '0');
    if (known) return new TorSocksError(known.code, `${target}: ${known.message} (SOCKS reply ${hex})`, { reply });
    return new TorSocksError(`TOR_SOCKS_REPLY_${hex.slice(2).toUpperCase()}`, `${target}: SOCKS reply ${hex}`, {
      reply,
    });
  }
}
