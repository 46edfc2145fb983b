/**
 * The hole-punching library API.
 *
 * A side: `createPunchListener({endpoint, engine, codec, discovery, eim, limits})` → emits verified
 * `net.Socket`s as `'connection'` events (B sends `version` first on them; A is the Bitcoin responder).
 * B side: `new PunchClient({dialer, engine, codec, discovery, eim}).punch(target)` → `{socket, timeline, ...}`.
 * See docs/PUNCH.md.
 */
export {
  createPunchListener,
  PunchListener,
  type PunchListenerOptions,
  type ListenerLimits,
  type ConnectionInfo,
  type ListenerStats,
  type DiscoveryConfig,
} from './listener.js';
export {
  PunchClient,
  punch,
  expectedIpOf,
  type PunchClientOptions,
  type PunchTarget,
  type PunchOptions,
} from './client.js';
export { PunchSessionError, type PunchSessionCode, type Side, type SprayLimit, type VerifyMismatch } from './errors.js';
export { wireCodec } from './wire-codec.js';
export { StreamChannel, type CoordChannel, type FrameCodec } from './channel.js';
export {
  runResponder,
  RESPONDER_DEFAULTS,
  type ResponderOptions,
  type ResponderPhase,
  type TargetBudget,
} from './responder.js';
export { runInitiator, INITIATOR_DEFAULTS, type InitiatorOptions } from './initiator.js';
export { checkTargets, MAX_SESSION_ENDPOINTS, type TargetCheck } from './session-common.js';
export { isBadPort } from './bad-ports.js';
export {
  preparePunchPort,
  badMappings,
  MAX_PUNCH_PORT_TRIES,
  type PreparedPunchPort,
  type PreparePunchPortOptions,
} from './punch-port.js';
export { sameIp } from './verify.js';
export { Timeline, type TimelineEvent } from './timeline.js';
export type { PunchedConnection, PlanTuning } from './session-common.js';
export type { PunchEngineLike, PunchPlanLike, PunchOutcomeLike } from './engine-port.js';
export type { CoordMessage, PunchProfile, ResultStatus, RejectCode } from './messages.js';
export {
  SPRAY_LIMITS,
  sprayShape,
  sprayOdds,
  probePorts,
  type SprayCaps,
  type SprayReport,
  type InitiatorSpray,
} from './spray.js';
export type { SprayPlanLike, SprayOutcomeLike } from './engine-port.js';
export type { SprayParams } from './messages.js';
