/** Picks a free local port for a session's punch socket (the engine binds it with SO_REUSEADDR/PORT). */
import type { Endpoint } from '../nat/types.js';
import type { PunchEngineLike } from './engine-port.js';

/**
 * Synchronous on purpose (a reusable bind + close in the addon, through the engine port): the session can then
 * answer in the same event-loop turn, so A's version, verack, pong and opendpoint leave in one write.
 */
export async function allocateLocalEndpoint(
  engine: PunchEngineLike,
  family: 4 | 6,
  address?: string,
): Promise<Endpoint> {
  return engine.probeBind({ address: address ?? (family === 6 ? '::' : '0.0.0.0'), port: 0 });
}
