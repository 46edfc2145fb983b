/**
 * What the punch session needs from the native engine (src/native/engine.ts): the port through which punch/
 * reaches the engine, port allocation included. Kept as a narrow interface so the session logic is independent
 * of the addon's full surface; nothing else in punch/ imports src/native (test/unit/import-graph.test.ts).
 */
import type { Socket } from 'node:net';
import type { Endpoint } from '../nat/types.js';
import type { PunchProfile } from './messages.js';

/**
 * What an engine rejects with: the session classifies failures by this class and its `ENGINE_*` code (an
 * engine behind this port, the real one or a test stand-in, rejects with it too).
 */
export { EngineError, NativeError, type EngineErrorCode } from '../native/errors.js';
/** Stall coordination for one plan (the session sends and receives `opstall` around it). */
export { StallLink } from '../native/engine.js';
import type { StallLink } from '../native/engine.js';

export interface PunchPlanLike {
  local: Endpoint;
  remotes: Endpoint[];
  startAtNs?: bigint;
  startDelayMs?: number;
  /** Wave offsets in ms from the start. */
  waves?: number[];
  resynIntervalUs?: number;
  profile?: PunchProfile;
  primeTtl?: number;
  primeDelayMs?: number;
  retryOnRefused?: boolean;
  /** Report our stalled SYNs and act on the peer's (src/native/engine.ts `StallLink`); an engine may ignore it. */
  stallLink?: StallLink;
  deadlineMs: number;
  signal?: AbortSignal;
}

export interface PunchOutcomeLike {
  socket: Socket;
  local: Endpoint;
  remote: Endpoint;
  timeline?: unknown;
}

/** One side of a birthday spray (src/native/engine.ts `SprayPlan`). */
export interface SprayPlanLike {
  role: 'hard' | 'easy';
  local: Endpoint;
  remote: Endpoint;
  count: number;
  /** `easy`: the distinct ports probed (`count` of them). */
  probePorts?: number[];
  spreadUs?: number;
  startAtNs?: bigint;
  deadlineMs: number;
  synCnt?: number;
  /** This side's first connection wins and the rest are reset (the leader); default: the easy side leads. */
  lead?: boolean;
  signal?: AbortSignal;
}

export interface SprayOutcomeLike extends PunchOutcomeLike {
  /** SYNs (attempt sockets) the plan sent. */
  syns: number;
  pair: { localPort: number; remotePort: number };
  establishedMs: number;
}

export interface PunchEngineLike {
  punch(plan: PunchPlanLike): Promise<PunchOutcomeLike>;
  /** A birthday spray, one side. Optional: an engine without it never takes part in one. */
  spray?(plan: SprayPlanLike): Promise<SprayOutcomeLike>;
  /** CLOCK_MONOTONIC in ns. */
  now(): bigint;
  /**
   * Port allocation: binds a reusable socket to `local` (port 0: the kernel picks), closes it again and returns
   * the endpoint with the port chosen; the plan's socket later binds the same port. Synchronous on purpose (see
   * local-port.ts). The punch layer allocates ports only through this and `reservePort`, never from the addon.
   */
  probeBind(local: Endpoint): Endpoint;
  /**
   * As `probeBind`, but the port stays held by a bound socket until `release()` (src/native/engine.ts
   * `PortReservation`): another connection's ephemeral port cannot take it before the plan binds it. Optional:
   * without it the punch layer probes (the gap stays open).
   */
  reservePort?(local: Endpoint): PortReservationLike;
  /**
   * When the kernel last received data on a coordination stream, on `now()`'s clock (src/native/engine.ts
   * `lastDataReceivedNs`), undefined when not known. Optional: without it A counts B's fire delay from when its
   * loop read the `opfire`.
   */
  lastDataReceivedNs?(stream: unknown): bigint | undefined;
}

/** A held punch port (src/native/engine.ts `PortReservation`). */
export interface PortReservationLike {
  readonly local: Endpoint;
  /** Closes the holding socket; idempotent. */
  release(): void;
}
