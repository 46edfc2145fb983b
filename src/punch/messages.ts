/**
 * The coordination messages as the session logic sees them (decoded). The wire codecs (src/wire/) turn
 * them into frames; `channel.ts` adapts. Names and fields follow docs/PROTOCOL.md.
 */
import type { Endpoint } from '../nat/types.js';
import type { OpSprayPayload } from '../wire/messages.js';
import { OPENDPOINT_MARGIN_MASK, OPENDPOINT_MARGIN_SHIFT, OPENDPOINT_MARGIN_UNIT_MS } from '../wire/constants.js';
import type { OpRejectCode } from '../wire/constants.js';

/** opendpoint flags. */
export const FLAG_PORT_PRESERVING = 0x01;
export const FLAG_PREDICTED = 0x02;
/** Zero-round-trip coordination (docs/PROTOCOL.md): B has fired at A's announced endpoint; opfire follows. */
export const FLAG_ZERO_RTT = 0x04;

/** The most fire margin an opendpoint can ask for (ms): 7 units. */
export const MAX_FIRE_MARGIN_MS = (OPENDPOINT_MARGIN_MASK >> OPENDPOINT_MARGIN_SHIFT) * OPENDPOINT_MARGIN_UNIT_MS;

/** opendpoint flag bits asking for `ms` of fire margin: to the nearest unit, at most MAX_FIRE_MARGIN_MS. */
export function fireMarginFlags(ms: number): number {
  if (!(ms > 0)) return 0;
  const units = Math.min(OPENDPOINT_MARGIN_MASK >> OPENDPOINT_MARGIN_SHIFT, Math.round(ms / OPENDPOINT_MARGIN_UNIT_MS));
  return units << OPENDPOINT_MARGIN_SHIFT;
}

/** The fire margin (ms) an opendpoint's flags ask for. */
export function fireMarginOf(flags: number): number {
  return ((flags & OPENDPOINT_MARGIN_MASK) >> OPENDPOINT_MARGIN_SHIFT) * OPENDPOINT_MARGIN_UNIT_MS;
}

/** opfire schedule ids. */
export const PROFILE_IDS = { plain: 0, prime: 1 } as const;
export type PunchProfile = keyof typeof PROFILE_IDS;

export const RESULT_STATUS = ['connected', 'timeout', 'refused', 'verify-failed', 'aborted', 'error'] as const;
export type ResultStatus = (typeof RESULT_STATUS)[number];

/** An `opreject` code by name: the wire's table (src/wire/constants.ts OPREJECT_CODE) is the one list. */
export type RejectCode = OpRejectCode;

export type CoordMessage =
  | { cmd: 'version'; nonce: bigint; userAgent: string }
  | { cmd: 'verack' }
  | { cmd: 'ping'; nonce: bigint }
  | { cmd: 'pong'; nonce: bigint }
  | { cmd: 'opendpoint'; sessionId: Buffer; flags: number; endpoints: Endpoint[] }
  | { cmd: 'opfire'; sessionId: Buffer; delayUs: number; profile: PunchProfile; deadlineMs: number }
  | { cmd: 'opresult'; sessionId: Buffer; status: ResultStatus; elapsedMs: number; reason: string }
  | { cmd: 'opreject'; code: RejectCode; reason: string }
  /**
   * A birthday spray (docs/PROTOCOL.md): B's request before its opendpoint, A's agreed parameters before its
   * own. An old peer decodes it as an unknown command and ignores it.
   */
  | ({ cmd: 'opspray' } & SprayParams)
  /**
   * A stall report during the punch (docs/PROTOCOL.md): the sender's SYN is unanswered and its socket still in
   * SYN_SENT. An old peer decodes it as an unknown command and ignores it.
   */
  | { cmd: 'opstall'; sessionId: Buffer }
  /**
   * Padding behind a trailing ping (docs/PROTOCOL.md "Trailing ping"): the channel drops it on receipt. An old
   * peer decodes it as an unknown command and ignores it.
   */
  | { cmd: 'oppad'; length: number }
  /** Any other command: ignored by the session (Bitcoin's rule for unknown messages). */
  | { cmd: 'other'; command: string };

/** The parameters of one spray, as `opspray` carries them (the wire layer's payload type). */
export type SprayParams = OpSprayPayload;

export { USER_AGENT } from '../wire/constants.js';
