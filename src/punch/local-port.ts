/** Picks a free local port for a session's punch socket (the engine binds it with SO_REUSEADDR/PORT). */
import type { Endpoint } from '../nat/types.js';
import type { PortReservationLike, PunchEngineLike } from './engine-port.js';
import { PunchSessionError } from './errors.js';

/**
 * A fresh punch port held until `release()` (the engine's `reservePort`, or a plain probe with nothing to release
 * when the engine has none). A session holds its port from its choice to the end of the punch: between a probe
 * and the plan's bind, another connection's ephemeral port could take it (a `bind-error` EADDRINUSE seen in
 * `lab stress`, docs/BENCHMARKS.md). Synchronous on purpose (a bind in the addon): A's session then answers in
 * the same event-loop turn, so its version, verack, pong and opendpoint leave in one write.
 */
export function reserveLocalEndpoint(engine: PunchEngineLike, family: 4 | 6, address?: string): PortReservationLike {
  const local = { address: address ?? (family === 6 ? '::' : '0.0.0.0'), port: 0 };
  if (engine.reservePort) return engine.reservePort(local);
  return { local: engine.probeBind(local), release: () => undefined };
}

/** The ports a session holds; `releaseAll()` when the session ends (each reservation released once). */
export class HeldPorts {
  private readonly held: PortReservationLike[] = [];
  private ended = false;

  constructor(
    private readonly engine: PunchEngineLike,
    private readonly family: 4 | 6,
    private readonly address?: string,
  ) {}

  /**
   * Reserves a fresh port and keeps it until {@link releaseAll}. After that (a discovery still running when its
   * session ended) it throws PUNCH_ABORTED instead: nobody would release the port.
   */
  take(): Endpoint {
    if (this.ended) throw new PunchSessionError('PUNCH_ABORTED', 'the session ended before it took a punch port');
    const r = reserveLocalEndpoint(this.engine, this.family, this.address);
    this.held.push(r);
    return r.local;
  }

  /** {@link take} as a promise for the `allocate` callbacks: a failed bind rejects it instead of throwing. */
  allocate(): Promise<Endpoint> {
    return Promise.resolve().then(() => this.take());
  }

  /** Hands `local`'s reservation to the caller: {@link releaseAll} no longer releases it. */
  detach(local: Endpoint): PortReservationLike | undefined {
    const i = this.held.findIndex((r) => r.local.port === local.port && r.local.address === local.address);
    return i < 0 ? undefined : this.held.splice(i, 1)[0];
  }

  /** Holds `r` with this set's ports (released by {@link releaseAll}; at once when that already ran). */
  adopt(r: PortReservationLike): void {
    if (this.ended) r.release();
    else this.held.push(r);
  }

  releaseAll(): void {
    this.ended = true;
    for (const r of this.held.splice(0)) r.release();
  }
}
