/** Public API of the Tor coordination transport. */
export { TorControlError, TorSocksError, TOR_SOCKS_REPLIES } from './errors.js';
export {
  TorControlClient,
  safeCookieHashes,
  readCookie,
  TOR_COOKIE_BYTES,
  parseHsDesc,
  type TorControlAddress,
  type TorAuthOptions,
  type TorControlOptions,
  type TorConnectOptions,
  type ProtocolInfo,
  type TorEvent,
  type AddOnionOptions,
  type AddOnionResult,
  type HsDescEvent,
  type TorReply,
  type ReplyLine,
} from './control.js';
export { ReplyParser, parseKeywords, parseQuoted, quoteString, type ReplyLimits } from './reply.js';
export { dialOnion, isolationCredentials, socksReplyByte, ONION_V3_RE, type OnionDialOptions } from './socks.js';
export { TorCoordinationEndpoint, type TorEndpointOptions } from './endpoint.js';
export { TorCoordinationDialer, type TorDialerOptions } from './dialer.js';
export { versionHandshake } from './handshake.js';
