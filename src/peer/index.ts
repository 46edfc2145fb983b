/** Public API of one Bitcoin P2P connection over any duplex stream. */
export { Peer, type PeerOptions, type PeerRole, type HandshakeResult, type PeerEvents } from './peer.js';
export { PeerError, type PeerErrorCode } from './errors.js';
export { connectPeer, type ConnectPeerOptions } from './connect.js';
