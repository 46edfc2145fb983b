/**
 * Splice-mode hand-off of a punched socket to the local bitcoind: a new TCP connection to bitcoind's P2P
 * port, then the bridge copies bytes both ways (B's `version` arrives on the punched socket and goes on to
 * bitcoind, which answers as responder: the punched peer looks like an ordinary inbound peer from loopback).
 */
import { connect, type Socket } from 'node:net';
import { OnionpunchError } from '../errors.js';
import { bridge, type Bridge, type BridgeOptions } from './splice.js';
import type { HostPort } from './config.js';

/** Connects to `target` within `timeoutMs`; rejects with the socket error (its errno `code` kept). */
export function tcpConnect(target: HostPort, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const ms = opts.timeoutMs ?? 10_000;
    const fail = (err: Error): void => {
      cleanup();
      s.destroy();
      reject(err);
    };
    const onErr = (e: Error): void => fail(e);
    const onAbort = (): void => fail(new OnionpunchError('SOCKS_CLOSED', 'connect aborted'));
    const t = setTimeout(() => fail(Object.assign(new Error(`connect to ${target.host}:${target.port} timed out after ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
    const cleanup = (): void => {
      clearTimeout(t);
      s.off('error', onErr);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    if (opts.signal?.aborted) return fail(new OnionpunchError('SOCKS_CLOSED', 'connect aborted'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    s.once('error', onErr);
    s.once('connect', () => {
      cleanup();
      s.setNoDelay(true);
      resolve(s);
    });
  });
}

/** Hands `punched` to bitcoind at `target`: returns the running bridge, or destroys `punched` and rejects. */
export async function spliceToBitcoind(punched: Socket, target: HostPort, opts: BridgeOptions & { connectTimeoutMs?: number } = {}): Promise<Bridge> {
  punched.on('error', () => undefined);
  // Hold B's first bytes (its version) until bitcoind is connected.
  punched.pause();
  let local: Socket;
  try {
    local = await tcpConnect(target, { timeoutMs: opts.connectTimeoutMs ?? 10_000 });
  } catch (err) {
    punched.destroy();
    throw new OnionpunchError('DAEMON_BITCOIND_UNREACHABLE', `cannot reach bitcoind at ${target.host}:${target.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  local.on('error', () => undefined);
  if (punched.destroyed) {
    local.destroy();
    throw new OnionpunchError('DAEMON_PEER_GONE', 'punched socket closed before bitcoind answered');
  }
  return bridge(punched, local, opts);
}
