/**
 * The daemon verbs as real processes for the lab's end-to-end tests: `onionpunch VERB` spawned with its JSON log
 * collected, a loopback TCP server, and a clearnet peer that relays every addrv2 it hears to its other
 * connections (what a relaying node does) and answers getaddr with what it heard.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Peer } from '../../src/peer/index.js';
import { startNatcheckServer } from '../../src/nat/natcheck-server.js';

const CLI = fileURLToPath(new URL('../../../bin/onionpunch.js', import.meta.url));

const verbose = process.env['ONIONPUNCH_TEST_LOG'] !== undefined;

/** A loopback TCP server on a free port, with its open sockets. */
export async function serverOn(
  handler: (s: Socket) => void,
): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    handler(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, sockets };
}

/** The relaying clearnet peer (regtest); `close()` drops its connections and stops listening. */
export async function relayStandIn(): Promise<{ port: number; close: () => void }> {
  const peers = new Set<Peer>();
  const heard: Buffer[] = [];
  const relay = await serverOn((s) => {
    const p = new Peer(s, { network: 'regtest', role: 'responder', handshakeTimeoutMs: 20_000 });
    peers.add(p);
    p.on('close', () => peers.delete(p));
    p.on('message', (cmd, payload) => {
      if (cmd === 'addrv2') {
        heard.push(payload);
        for (const o of peers) if (o !== p && o.isReady) o.send('addrv2', payload);
      }
      if (cmd === 'getaddr') for (const h of heard) p.send('addrv2', h);
    });
    p.handshake().catch(() => undefined);
  });
  return {
    port: relay.port,
    close: () => {
      for (const s of relay.sockets) s.destroy();
      relay.server.close();
    },
  };
}

export interface VerbProcess {
  child: ChildProcess;
  ready: Promise<Record<string, unknown>>;
  /** SIGTERM (SIGKILL after 15 s) and the exit code. */
  stop: () => Promise<number | null>;
}

/** One `onionpunch VERB` process: JSON log lines (stderr) go to `lines`; the --json ready line (stdout) is `ready`. */
export function verb(name: string, args: string[], lines: string[]): VerbProcess {
  const child = spawn(process.execPath, [CLI, name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let err = '';
  child.stderr!.setEncoding('utf8');
  let partial = '';
  child.stderr!.on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      if (verbose) process.stderr.write(`[${name}] ${l}\n`);
      if (l.startsWith('{')) lines.push(l);
      else err = (err + l + '\n').slice(-2000);
    }
  });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
    });
    void exited.then((code) => reject(new Error(`onionpunch ${name} exited (${code}) before ready: ${err}`)));
  });
  ready.catch(() => undefined);
  return {
    child,
    ready,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/**
 * Two NAT-check servers on loopback and the daemon flags both verbs share for a loopback punch: on loopback a SYN
 * is delivered inside the sender's connect(), so the other side must already be in SYN_SENT; a raised SYN cap
 * (`maxsyns`) with the re-SYN grids each test gives its verbs makes the two meet, and `loopback` admits 127.0.0.1
 * as a target. These are documented operator keys (docs/DAEMON.md), not test hooks.
 */
export async function loopbackDaemonFlags(): Promise<{ flags: string[]; close: () => Promise<void> }> {
  const natcheck = await Promise.all(
    [0, 1].map(() => startNatcheckServer({ host: '127.0.0.1', port: 0, network: 'regtest' })),
  );
  return {
    flags: [
      '--network',
      'regtest',
      '--announceinterval',
      '10',
      '--shutdowngrace',
      '1',
      '--log',
      'json',
      '--loglevel',
      'debug',
      '--json',
      ...natcheck.flatMap((n) => ['--natcheck', `127.0.0.1:${n.port}`]),
      '--bind',
      '127.0.0.1',
      '--loopback',
      '--maxsyns',
      '20000',
    ],
    close: async () => {
      for (const n of natcheck) await n.close();
    },
  };
}
