/** The real `onionpunch proxy` daemon in-process (runProxy) and one SOCKS5 CONNECT through it, for lab tests. */
import type { Socket } from 'node:net';
import { SocksClient } from 'socks';
import { loadConfig } from '../../src/daemon/config.js';
import { runProxy } from '../../src/daemon/proxy.js';
import { Logger } from '../../src/daemon/log.js';

/** One JSON log record of the daemon. */
export interface Rec {
  event: string;
  error?: { code?: string };
  [k: string]: unknown;
}

/** Runs the real proxy daemon with `args`; its SOCKS port, its log records and a stop function. */
export async function startProxy(
  args: string[],
): Promise<{ port: number; recs: () => Rec[]; stop: () => Promise<number> }> {
  const lines: string[] = [];
  const cfg = loadConfig({ args: ['--network', 'regtest', '--listen', '127.0.0.1:0', ...args] });
  const ac = new AbortController();
  let ready!: (i: Record<string, unknown>) => void;
  const up = new Promise<Record<string, unknown>>((r) => (ready = r));
  const logger = new Logger({ format: 'json', level: 'debug', write: (l) => lines.push(l) });
  const done = runProxy(cfg, logger, { ready, signal: ac.signal });
  done.catch(() => undefined);
  const info = await Promise.race([up, done.then(() => Promise.reject(new Error('proxy exited')))]);
  return {
    port: Number(String(info['socks']).split(':').pop()),
    recs: () => lines.map((l) => JSON.parse(l) as Rec),
    stop: async () => (ac.abort(), done),
  };
}

/** One CONNECT through the proxy; the socket, or the `socks` package's error message (it names the reply). */
export async function socksConnect(
  port: number,
  host: string,
  dport: number,
  timeout = 60_000,
): Promise<Socket | string> {
  try {
    const { socket } = await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port, type: 5 },
      command: 'connect',
      destination: { host, port: dport },
      timeout,
    });
    return socket;
  } catch (e) {
    return (e as Error).message;
  }
}
