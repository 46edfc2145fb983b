/**
 * Birthday sprays through a hard (endpoint-dependent) NAT, the session's part: the shape of one (N sockets on
 * the hard side, M probes on the easy side), the easy side's probe ports, and running our side through the
 * engine port. The negotiation (`opspray`) is in initiator.ts and responder.ts; docs/PROTOCOL.md specifies it.
 */
import { SPRAY_LIMITS } from '../wire/constants.js';
import type { Endpoint } from '../nat/types.js';
import type { EimVerdict } from '../nat/eim-check.js';
import type { DiscoveryResult } from '../nat/mapping.js';
import type { PunchEngineLike, SprayOutcomeLike } from './engine-port.js';
import type { SprayParams } from './messages.js';
import { isBadPort } from './bad-ports.js';
import { EngineError } from './engine-port.js';
import type { Side } from './errors.js';

export { SPRAY_LIMITS };

/** Our side's spray limits (both roles). */
export interface SprayCaps {
  /** Most sockets (first SYNs) our side sends in one spray: our N when hard, our M when easy. */
  maxSyns: number;
  /** Pacing window asked for (B) in µs; default SPRAY_LIMITS.spreadUs. */
  spreadUs?: number;
}

/**
 * B's side of hard-NAT punching (`hardnat=1`): `hard` when B's own NAT is endpoint-dependent (with the range its
 * NAT check gave), else `easy`: B offers to probe, should A turn out to be the hard side.
 */
export type InitiatorSpray = SprayCaps & ({ role: 'hard'; range: { low: number; high: number } } | { role: 'easy' });

/** B's `opspray` request for `sessionId`. */
export function sprayRequest(sessionId: Buffer, s: InitiatorSpray): SprayParams {
  const maxSyns = Math.max(1, Math.min(s.maxSyns, SPRAY_LIMITS.maxSockets));
  const spreadUs = Math.min(s.spreadUs ?? SPRAY_LIMITS.spreadUs, SPRAY_LIMITS.maxSpreadUs);
  if (s.role === 'hard') {
    const { low, high } = s.range;
    const shape = sprayShape(high - low + 1, 'B', maxSyns, SPRAY_LIMITS.aSynsPerSession);
    return { sessionId, hard: 'B', probeLow: low, probeHigh: high, ...shape, spreadUs };
  }
  const sockets = SPRAY_LIMITS.aSynsPerSession;
  return { sessionId, hard: 'A', probeLow: 0, probeHigh: 0, sockets, probes: maxSyns, spreadUs };
}

/** Why A's answer `got` to our request `sent` is not acceptable, or undefined when it is. */
export function checkSprayAnswer(sent: SprayParams, got: SprayParams): string | undefined {
  if (got.hard !== sent.hard) return `A answered with ${got.hard} as the hard side (B asked with ${sent.hard})`;
  if (got.probes > sent.probes) return `A asks ${got.probes} probes, more than the ${sent.probes} B offered`;
  if (sent.hard === 'B') {
    if (got.probeLow !== sent.probeLow || got.probeHigh !== sent.probeHigh) return "A changed B's probe range";
    if (got.sockets > sent.sockets) return `A asks ${got.sockets} sockets of B, more than B's ${sent.sockets}`;
  } else if (got.probeLow === 0) return 'A is hard but names no probe range';
  if (got.spreadUs > sent.spreadUs) return `A asks a ${got.spreadUs} µs window, longer than B's ${sent.spreadUs}`;
  return undefined;
}

/**
 * Pairs aimed for, as a multiple of the range: N·M = ln(100)·range ≈ 4.6·range gives a birthday bound of 99% over
 * the range probed (4·range, 98.2%, was the first choice; the lab's 2% loss per link takes a little off either).
 */
export const SPRAY_TARGET_PAIRS = Math.log(100);
/** The requested side never gets fewer than this many SYNs (a block of 64 ports still needs some). */
export const SPRAY_MIN_SIDE = 16;
/**
 * Engine deadline of a spray (ms): every socket sends its SYN and, with TCP_SYNCNT 1, one kernel
 * retransmission at 1 s; so a spray sends at most 2 packets per socket.
 */
export const SPRAY_DEADLINE_MS = 2500;

/**
 * N and M for a range of `range` ports: N·M = SPRAY_TARGET_PAIRS·range, split as evenly as A's cap `aMax`
 * allows (√ of the pairs each: the fewest SYNs in all, and the shortest pacing windows, so the earliest first
 * match), B taking the rest up to `bMax` (B asked, so B pays beyond A's cap). Each side sends at least
 * SPRAY_MIN_SIDE; the easy side's M never exceeds the range.
 */
export function sprayShape(range: number, hard: Side, bMax: number, aMax: number): { sockets: number; probes: number } {
  const pairs = SPRAY_TARGET_PAIRS * range;
  const easyMax = Math.max(1, range);
  const aCap = Math.max(1, Math.min(aMax, hard === 'A' ? aMax : easyMax));
  const bCap = Math.max(1, Math.min(bMax, hard === 'B' ? bMax : easyMax));
  const even = Math.ceil(Math.sqrt(pairs));
  const aSide = Math.min(aCap, Math.max(SPRAY_MIN_SIDE, even, Math.ceil(pairs / bCap)));
  const bSide = Math.min(bCap, Math.max(SPRAY_MIN_SIDE, Math.ceil(pairs / aSide)));
  return hard === 'B' ? { sockets: bSide, probes: aSide } : { sockets: aSide, probes: bSide };
}

/** The birthday bound for n sockets against m probes over `range` ports. */
export function sprayOdds(n: number, m: number, range: number): number {
  return 1 - Math.exp((-n * m) / Math.max(1, range));
}

/** The probe range a verdict gives a hard side, or why there is none. */
export function hardRange(v: EimVerdict | undefined): { low: number; high: number } | string {
  if (v?.mapping !== 'edm') return 'the NAT is not endpoint-dependent';
  if (v.publicIpStable !== true) return 'its public IP is not stable across destinations (a spray aims at one IP)';
  const s = v.portSpread;
  if (!s) return 'no port spread was observed (the NAT check took fewer than three samples)';
  return { low: s.probeLow, high: s.probeHigh };
}

/**
 * The hard side's endpoint for its opendpoint: the public IP its NAT check saw (every observation agreed on it)
 * and the first observed port. Its port toward the peer is unknowable (that is what makes the NAT hard) and the
 * peer uses only the IP, so a hard side needs no discovery connection of its own.
 */
export function hardDiscovery(v: EimVerdict): DiscoveryResult | undefined {
  const o = v.observed[0];
  if (!o || v.publicIpStable !== true) return undefined;
  const endpoints = [{ address: o.address, port: o.port, method: 'natcheck' as const, via: o.peer }];
  return { endpoints, predicted: false, portPreserving: false, failures: [], elapsedMs: 0 };
}

/**
 * `count` distinct random ports in [low, high], none on the bad-port list (a spray must not knock on ssh or
 * smtp either). Fewer when the range has fewer good ports.
 */
export function probePorts(count: number, low: number, high: number): number[] {
  const good: number[] = [];
  for (let p = Math.max(1, low); p <= Math.min(65535, high); p++) if (!isBadPort(p)) good.push(p);
  const n = Math.min(count, good.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (good.length - i));
    const t = good[i]!;
    good[i] = good[j]!;
    good[j] = t;
  }
  return good.slice(0, n);
}

/**
 * The pacing window of our side `side` of agreed parameters `p`: our SYNs at SPRAY_LIMITS.synsPerSecond, over
 * at most the agreed window. A connection needs both SYNs of a matching pair sent, so a side with few SYNs
 * should not spread them over the window a side with 2,000 needs: it would only make the first match later.
 * The rate is the peak a router sees from either side, the same as 2,048 SYNs over 250 ms.
 */
export function sprayPacingUs(p: SprayParams, side: SpraySide): number {
  const ours = side.role === 'hard' ? p.sockets : p.probes;
  return Math.min(p.spreadUs, Math.ceil((ours * 1e6) / SPRAY_LIMITS.synsPerSecond));
}

/** What our side of an agreed spray does. */
export interface SpraySide {
  role: 'hard' | 'easy';
  /**
   * B leads, A follows (docs/PROTOCOL.md, `opspray` step 5): B's first connection wins, and B, the outbound
   * Bitcoin peer, writes first on it, so A learns the choice from the data it waits for anyway.
   */
  lead: boolean;
  /** hard: N sockets to the easy side's endpoint; easy: M probes, one per port. */
  count: number;
  /** easy: the ports probed at the hard side's IP. */
  ports?: number[];
}

/** Our side of agreed parameters `p`, we being `me`. */
export function ourSide(p: SprayParams, me: Side): SpraySide {
  const lead = me === 'B';
  if (p.hard === me) return { role: 'hard', lead, count: p.sockets };
  return { role: 'easy', lead, count: p.probes, ports: probePorts(p.probes, p.probeLow, p.probeHigh) };
}

/**
 * Runs our side of the spray. `peer`: the other side's endpoint (its IP is the target of every SYN; for the hard
 * side also the one port). Resolves with the outcome and the endpoints the connected peer must be one of.
 */
export async function runSpraySide(
  engine: PunchEngineLike,
  side: SpraySide,
  local: Endpoint,
  peer: Endpoint,
  p: SprayParams,
  startAtNs: bigint,
  deadlineMs: number,
  signal: AbortSignal,
): Promise<{ outcome: SprayOutcomeLike; expected: Endpoint[] }> {
  if (!engine.spray) throw new EngineError('ENGINE_INVALID', 'this engine cannot spray');
  const common = {
    count: side.count,
    spreadUs: sprayPacingUs(p, side),
    startAtNs,
    deadlineMs: Math.min(deadlineMs, SPRAY_DEADLINE_MS),
    synCnt: 1,
    lead: side.lead,
    signal,
  };
  if (side.role === 'hard') {
    const hardLocal = { address: local.address, port: 0 };
    const outcome = await engine.spray({ ...common, role: 'hard', local: hardLocal, remote: peer });
    return { outcome, expected: [peer] };
  }
  const ports = side.ports ?? [];
  const outcome = await engine.spray({
    ...common,
    count: ports.length,
    role: 'easy',
    local,
    remote: { address: peer.address, port: 0 },
    probePorts: ports,
  });
  return { outcome, expected: ports.map((port) => ({ address: peer.address, port })) };
}

/** One line for the timeline: who sprays what. */
export function describeSpray(p: SprayParams): string {
  const range = p.probeHigh - p.probeLow + 1;
  const odds = (sprayOdds(p.sockets, p.probes, range) * 100).toFixed(1);
  const easy = p.hard === 'A' ? 'B' : 'A';
  return (
    `${p.hard} hard: ${p.sockets} sockets; ${easy} easy: ${p.probes} probes to ${p.probeLow}..${p.probeHigh}` +
    ` over ${(p.spreadUs / 1000).toFixed(0)} ms (birthday ${odds}%)`
  );
}

/** What one spray cost and won (PunchedConnection.spray: demo JSON, logs). */
export interface SprayReport {
  /** The hard side and the agreed N, M and range. */
  hard: Side;
  sockets: number;
  probes: number;
  probeLow: number;
  probeHigh: number;
  /** Our side and the SYNs (attempt sockets) it sent. */
  side: Side;
  syns: number;
  /** The winning port pair: our local port and the peer port it reached. */
  pair: { localPort: number; remotePort: number };
}

export function sprayReport(p: SprayParams, me: Side, o: SprayOutcomeLike): SprayReport {
  const { hard, sockets, probes, probeLow, probeHigh } = p;
  return { hard, sockets, probes, probeLow, probeHigh, side: me, syns: o.syns, pair: o.pair };
}
