import { OnionpunchError } from '../errors.js';

/** Stable error codes of a P2P connection. */
export type PeerErrorCode =
  | 'PEER_HANDSHAKE_TIMEOUT'
  | 'PEER_PING_TIMEOUT'
  | 'PEER_CLOSED'
  | 'PEER_PROTOCOL'
  | 'PEER_WIRE'
  | 'PEER_SOCKET'
  | 'PEER_SELF_CONNECT'
  | 'PEER_SEND_BUFFER_FULL' // our queued output to the peer passed the hard cap: it does not read
  | 'PEER_SEND_STALLED' // reading stayed paused for backpressure too long: the peer does not read
  | 'PEER_PRE_VERACK_FLOOD'; // too many messages before the peer's verack

/** A failure of one P2P connection. `cause` holds the underlying WireError / socket error if any. */
export class PeerError extends OnionpunchError {
  declare readonly code: PeerErrorCode;
  constructor(code: PeerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
