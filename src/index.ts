/**
 * onionpunch's public API (`import ... from 'onionpunch'`): the {@link Onionpunch} facade, the building
 * blocks it is made of (for what the facade does not cover), and every error class, so that callers can
 * tell errors apart by class and `code`. Subpaths: `onionpunch/wire` (the Bitcoin P2P codecs in full) and
 * `onionpunch/lab` (the NAT lab: tooling that needs root privileges, never needed to punch). Everything else
 * is internal.
 */

// The facade.
export {
  Onionpunch,
  OnionpunchListener,
  type OnionpunchOptions,
  type HardNatOptions,
  type OnionpunchLimits,
  type OverlayOptions,
  type TorOverlayOptions,
  type I2pOverlayOptions,
  type CustomOverlayOptions,
  type HostPortLike,
  type PunchTargetLike,
} from './facade/onionpunch.js';

// Building blocks: the engine, both roles of a punch session, the NAT check.
export {
  PunchEngine,
  StallLink,
  probeBind,
  reservePort,
  PortReservation,
  type PunchEngineOptions,
} from './native/engine.js';
export {
  createPunchListener,
  PunchListener,
  type PunchListenerOptions,
  type ListenerLimits,
  type ConnectionInfo,
  type ListenerStats,
  type DiscoveryConfig,
} from './punch/listener.js';
export { PunchClient, type PunchClientOptions, type PunchTarget, type PunchOptions } from './punch/client.js';
export { StreamChannel, type CoordChannel, type FrameCodec } from './punch/channel.js';
export { wireCodec } from './punch/wire-codec.js';
export { Timeline, type TimelineEvent } from './punch/timeline.js';
export type { PunchedConnection, PlanTuning } from './punch/session-common.js';
export type { PunchEngineLike, PunchPlanLike, PunchOutcomeLike, PortReservationLike } from './punch/engine-port.js';
export type { PunchProfile, RejectCode } from './punch/messages.js';
export { eimCheck, EimCache, type EimVerdict, type EimCheckOptions, type MappingVerdict } from './nat/eim-check.js';
export { nativeObserver, type ObserverOptions } from './nat/observe.js';
export {
  startNatcheckServer,
  type NatcheckServer,
  type NatcheckServerOptions,
  type NatcheckResult,
} from './nat/natcheck-server.js';
export type { Endpoint, Observer, Observation } from './nat/types.js';
export type { TargetPolicy } from './nat/address.js';
export type { DiscoveryMethod } from './nat/mapping.js';

// Announcements.
export {
  AnnouncementDirectory,
  makeAnnouncement,
  toAnnouncement,
  type Announcement,
  type AnnouncementDirectoryOptions,
  type MakeAnnouncementOptions,
} from './relay/index.js';

// Coordination overlays.
export { TorCoordinationEndpoint, type TorEndpointOptions } from './overlay/tor/endpoint.js';
export { TorCoordinationDialer, type TorDialerOptions } from './overlay/tor/dialer.js';
export { I2pCoordinationEndpoint, type I2pEndpointOptions } from './overlay/i2p/endpoint.js';
export { I2pCoordinationDialer, type I2pDialerOptions } from './overlay/i2p/dialer.js';
export type {
  CoordinationEndpoint,
  CoordinationDialer,
  AcceptedStreamInfo,
  DialOptions,
  OverlayKind,
} from './overlay/types.js';

// The wire codecs most callers need (the rest: `onionpunch/wire`).
export { encodeMessage, FrameParser, decodePayload, type NetworkName, type Frame } from './wire/index.js';

// Every error class (identify errors by class and `code`, never by message).
export { OnionpunchError, UsageError } from './errors.js';
export { ApiError, type ApiErrorCode } from './facade/errors.js';
export { WireError, type WireErrorCode } from './wire/errors.js';
export { PeerError, type PeerErrorCode } from './peer/errors.js';
export { NatError } from './nat/errors.js';
export { AddressPolicyError } from './nat/address.js';
export { LimitError, type LimitErrorCode } from './limits/errors.js';
export { TorControlError, TorSocksError } from './overlay/tor/errors.js';
export { SamError, type SamErrorCode } from './overlay/i2p/errors.js';
export {
  PunchSessionError,
  type PunchSessionCode,
  type Side,
  type SprayLimit,
  type VerifyMismatch,
} from './punch/errors.js';
export { NativeError, EngineError, PunchError, type EngineErrorCode } from './native/errors.js';
export { RelayError, type RelayErrorCode } from './relay/errors.js';
export { ConfigError, SocksServerError, HandoffError, type ConfigErrorCode } from './daemon/errors.js';
export { NodeRpcError, type NodeRpcErrorCode } from './daemon/node-rpc.js';
