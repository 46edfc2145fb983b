import { OnionpunchError } from '../errors.js';

/**
 * Stable failure reasons of a punch session. Each names what failed; `side` says whose fault or whose NAT
 * (`A` = the inbound side with the coordination endpoint, `B` = the dialing side).
 */
export type PunchSessionCode =
  | 'PUNCH_OVERLAY_DIAL' // B could not open the coordination stream
  | 'PUNCH_TIMEOUT' // a protocol step timed out (see `step`)
  | 'PUNCH_SESSION_DEADLINE' // the whole-session (or request) deadline passed; `step` names the wait it ended
  | 'PUNCH_EVICTED' // A dropped this waiting session to make room for another (the concurrency cap was full)
  | 'PUNCH_CLOSED' // the coordination stream closed early
  | 'PUNCH_SEND_BUFFER_FULL' // the peer does not read the coordination stream (our queued output passed its cap)
  | 'PUNCH_PROTOCOL' // unexpected or malformed message, wrong session id
  | 'PUNCH_REJECTED' // A sent opreject (see `rejectCode`)
  | 'PUNCH_RATE_LIMITED' // a local limit refused the attempt
  | 'PUNCH_NAT_UNSUITABLE' // a side's NAT cannot be punched (EDM); `side` names it
  | 'PUNCH_NAT_BOTH_HARD' // both sides are behind endpoint-dependent NATs: no spray can meet (the message names both)
  | 'PUNCH_SPRAY_UNSUPPORTED' // a spray was needed and the peer does not speak `opspray` (an old peer)
  | 'PUNCH_ZRTT_UNAVAILABLE' // a zero-round-trip request reached an A without a warm announced port (B falls back)
  | 'PUNCH_SPRAY_LIMIT' // a spray limit refused the session; `limit` names which (SprayLimit)
  | 'PUNCH_DISCOVERY' // mapping discovery failed
  | 'PUNCH_TARGET_REFUSED' // the peer's endpoint is not a public unicast address
  | 'PUNCH_TARGET_BAD_PORT' // an endpoint's port is on Bitcoin Core's bad-port list (ssh, smtp, ...)
  | 'PUNCH_TARGET_TOO_MANY' // more endpoints than a session allows (2)
  | 'PUNCH_TARGET_MIXED_IP' // the endpoints are not all on one IP address
  | 'PUNCH_TARGET_RATE_LIMITED' // A punched this target IP too often recently (per-IP token bucket)
  | 'PUNCH_BAD_TARGET' // the caller's PunchTarget names no expected clearnet IP (nor `expectIp: null`)
  | 'PUNCH_CONNECT_TIMEOUT' // the simultaneous open did not connect before the deadline
  | 'PUNCH_REFUSED' // the simultaneous open was refused
  | 'PUNCH_VERIFY_FAILED' // the connected peer is not the endpoint learned over the overlay
  | 'PUNCH_REMOTE_FAILED' // the other side reported a failure in opresult
  | 'PUNCH_ABORTED' // the caller aborted
  | 'PUNCH_ENGINE'; // the native engine failed otherwise

export type Side = 'A' | 'B';

/**
 * Which spray limit refused a session (PunchSessionError.limit, with PUNCH_SPRAY_LIMIT): `hardnat-off`, the
 * refusing side does not spray (`hardnat=0`, or its engine cannot); `sessions-per-minute`, A's spray bucket
 * (`sprayrate`, `sprayburst`) is empty. A larger spray than A's `spraymaxsyns` is not refused: A answers with
 * its count lowered to the cap (docs/PUNCH.md "Hard NATs").
 */
export type SprayLimit = 'hardnat-off' | 'sessions-per-minute';

export interface PunchSessionErrorInfo {
  step?: string;
  side?: Side;
  rejectCode?: string;
  timeline?: unknown;
  cause?: unknown;
  mismatch?: VerifyMismatch;
  limit?: SprayLimit;
}

/** What a PUNCH_VERIFY_FAILED saw: the endpoint(s) offered or connected, and the IP expected (if one was). */
export interface VerifyMismatch {
  /** The expected clearnet IP, or undefined when the peer was not one of the learned endpoints at all. */
  expectedIp: string | undefined;
  /** The offending endpoints as `address:port`. */
  got: string[];
}

export class PunchSessionError extends OnionpunchError {
  declare readonly code: PunchSessionCode;
  readonly step: string | undefined;
  readonly side: Side | undefined;
  readonly rejectCode: string | undefined;
  /** PUNCH_VERIFY_FAILED: what did not match, for callers and logs (the message says the same in words). */
  readonly mismatch: VerifyMismatch | undefined;
  /** PUNCH_SPRAY_LIMIT: which limit refused (on B too: A's `opreject` code says it). */
  readonly limit: SprayLimit | undefined;
  timeline: unknown;
  /** The native engine's timeline of a failed punch (SYNs, RSTs, ICMP errors, timeout). */
  engineTimeline: unknown;
  constructor(code: PunchSessionCode, message: string, info: PunchSessionErrorInfo = {}) {
    super(code, message, info.cause !== undefined ? { cause: info.cause } : undefined);
    this.step = info.step;
    this.side = info.side;
    this.rejectCode = info.rejectCode;
    this.mismatch = info.mismatch;
    this.limit = info.limit;
    this.timeline = info.timeline;
    this.engineTimeline = undefined;
  }

  override toJSON(): {
    code: string;
    message: string;
    step?: string;
    side?: string;
    rejectCode?: string;
    mismatch?: VerifyMismatch;
    limit?: SprayLimit;
  } {
    return {
      code: this.code,
      message: this.message,
      ...(this.step ? { step: this.step } : {}),
      ...(this.side ? { side: this.side } : {}),
      ...(this.rejectCode ? { rejectCode: this.rejectCode } : {}),
      ...(this.mismatch ? { mismatch: this.mismatch } : {}),
      ...(this.limit ? { limit: this.limit } : {}),
    };
  }
}
