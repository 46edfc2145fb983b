/**
 * A STAND-IN for A's side of a punch, for loopback tests only: instead of a simultaneous open it listens on
 * the plan's local endpoint and takes the first connection. On loopback a real simultaneous open between two
 * sockets cannot be staged for every case (and an unannounced peer port cannot come from an honest engine), so
 * the tests that need those name this stand-in; everything around it stays real.
 */
import { createServer } from 'node:net';
import { probeBind } from '../../src/native/engine.js';
import { EngineError, type PunchEngineLike } from '../../src/punch/engine-port.js';

export function listeningEngine(now: () => bigint): PunchEngineLike {
  return {
    now,
    probeBind,
    punch: (plan) =>
      new Promise((resolve, reject) => {
        const srv = createServer();
        const timer = setTimeout(() => {
          srv.close();
          reject(new EngineError('ENGINE_TIMEOUT', 'deadline'));
        }, plan.deadlineMs + 1000);
        srv.once('connection', (sock) => {
          clearTimeout(timer);
          srv.close();
          resolve({
            socket: sock,
            local: plan.local,
            remote: { address: sock.remoteAddress!, port: sock.remotePort! },
          });
        });
        srv.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        srv.listen({ host: plan.local.address, port: plan.local.port });
      }),
  };
}
