/** Pieces shared by both roles of a coordination session. */
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Endpoint } from '../nat/types.js';
import { addressFamily } from '../ip.js';
import { isAllowedTarget, type TargetPolicy } from '../nat/address.js';
import type { Timeline } from './timeline.js';
import type { PunchProfile } from './messages.js';

/** The engine knobs a session passes through (bounded by the SYN cap). */
export interface PlanTuning {
  profile?: PunchProfile;
  /**
   * Wave offsets (ms from the start instant). Default [0]: one socket per candidate whose SYN the kernel
   * retransmits (1 s, 3 s); the engine re-SYNs after a RST/error. A second wave at 1 s collided with the
   * kernel's own retransmission and could orphan a connection the far side had already completed.
   */
  waves?: number[];
  resynIntervalUs?: number;
  primeTtl?: number;
  primeDelayMs?: number;
  retryOnRefused?: boolean;
}

/** What a successful session returns to its caller. */
export interface PunchedConnection {
  socket: Socket;
  /** Our punch endpoint (local side of the socket). */
  local: Endpoint;
  /** The verified peer endpoint (== getpeername()). */
  remote: Endpoint;
  sessionId: string;
  timeline: Timeline;
  /** Native engine timeline (SYNs, established), when the engine provides one. */
  engineTimeline?: unknown;
  /** Overlay RTT measured by B (ms); A leaves it undefined. */
  overlayRttMs?: number;
}

export function familyOf(address: string): 4 | 6 {
  return addressFamily(address) === 6 ? 6 : 4;
}

/** The peer's endpoints we may punch to: allowed by policy, in our family, at most 8. */
export function usableEndpoints(eps: Endpoint[], family: 4 | 6, policy: TargetPolicy): { usable: Endpoint[]; refused: string[] } {
  const usable: Endpoint[] = [];
  const refused: string[] = [];
  for (const e of eps.slice(0, 8)) {
    if (e.port < 1 || e.port > 65535) refused.push(`${e.address}:${e.port} (bad port)`);
    else if (familyOf(e.address) !== family) refused.push(`${e.address} (other address family)`);
    else if (!isAllowedTarget(e.address, policy)) refused.push(`${e.address} (not public unicast)`);
    else usable.push(e);
  }
  return { usable, refused };
}

export function newSessionId(): Buffer {
  return randomBytes(16);
}

export function randomNonce(): bigint {
  return randomBytes(8).readBigUInt64LE(0);
}

/**
 * Bounds a plan so one session never sends more than `maxSyns` SYNs: each wave costs (1 + prime) SYNs per
 * remote, and re-SYNs after a failure come at most every `resynIntervalUs` within the deadline; the
 * interval is stretched (and waves dropped) until the worst case fits.
 */
export function capPlan(tuning: PlanTuning, remotes: number, maxSyns: number, deadlineMs: number): { waves: number[]; resynIntervalUs: number } {
  const perWave = Math.max(1, remotes) * ((tuning.profile ?? 'prime') === 'prime' ? 2 : 1);
  const wanted = (tuning.waves ?? [0]).filter((w) => w >= 0 && w < deadlineMs);
  const nWaves = Math.max(1, Math.min(wanted.length || 1, Math.floor(maxSyns / perWave)));
  const waves = (wanted.length ? wanted : [0]).slice(0, nWaves);
  const budget = Math.max(0, maxSyns - nWaves * perWave);
  let resyn = tuning.resynIntervalUs ?? 20_000;
  if (resyn > 0) {
    const worst = Math.ceil((deadlineMs * 1000) / resyn) * Math.max(1, remotes);
    if (worst > budget) resyn = budget === 0 ? 0 : Math.ceil((deadlineMs * 1000 * Math.max(1, remotes)) / budget);
  }
  return { waves, resynIntervalUs: resyn };
}
