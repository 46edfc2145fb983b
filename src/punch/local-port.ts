/** Picks a free local port for a session's punch socket (the engine binds it with SO_REUSEADDR/PORT). */
import { probeBind } from '../native/engine.js';
import type { Endpoint } from '../nat/types.js';

/**
 * Synchronous on purpose (a reusable bind + close in the addon): the session can then answer in the same
 * event-loop turn, so A's version, verack, pong and opendpoint leave in one write.
 */
export async function allocateLocalEndpoint(family: 4 | 6, address?: string): Promise<Endpoint> {
  return probeBind({ address: address ?? (family === 6 ? '::' : '0.0.0.0'), port: 0 });
}
