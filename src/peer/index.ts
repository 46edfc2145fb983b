/** Public API of one Bitcoin P2P connection over any duplex stream. */
export {
  Peer,
  PEER_SEND_PAUSE_BYTES,
  PEER_SEND_MAX_BYTES,
  PEER_SEND_STALL_MS,
  PEER_MAX_PRE_VERACK,
  type PeerOptions,
  type PeerRole,
  type HandshakeResult,
  type PeerEvents,
} from './peer.js';
export { PeerError, type PeerErrorCode } from './errors.js';
export { connectPeer, type ConnectPeerOptions } from './connect.js';
