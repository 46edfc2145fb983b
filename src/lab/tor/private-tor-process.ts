/**
 * Processes of the private Tor network: spawning tor (optionally inside a network namespace), waiting on its
 * log, stopping it, and a process-end hook that kills every tor still running and removes the temp dirs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { OnionpunchError } from '../../errors.js';
import { atProcessEnd } from '../process-cleanup.js';

/**
 * A failure of the private Tor network. Codes: LAB_TOR_KEYS, LAB_TOR_EXITED, LAB_TOR_TIMEOUT, LAB_TOR_SPAWN,
 * LAB_TOR_SPEC.
 */
export class PrivateTorError extends OnionpunchError {}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;

/** Last resort when the process ends without stop() (../process-cleanup.ts): kill every tor, remove the dirs. */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  atProcessEnd({
    name: 'the private Tor network',
    sync: () => {
      for (const p of live) {
        try {
          p.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  });
}

/** Registers a temp dir to remove at process exit (if `stop()` did not run). */
export function registerDir(dir: string): void {
  hookExit();
  dirs.add(dir);
}

export function unregisterDir(dir: string): void {
  dirs.delete(dir);
}

/** A running tor. */
export class TorProcess {
  readonly child: ChildProcess;
  private output = '';
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;

  constructor(
    readonly name: string,
    readonly torrc: string,
    readonly logFile: string,
    netns?: string,
  ) {
    hookExit();
    const argv = ['-f', torrc, '--ignore-missing-torrc'];
    this.child = netns
      ? spawn('ip', ['netns', 'exec', netns, 'tor', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('tor', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    const keep = (b: Buffer) => {
      this.output = (this.output + b.toString('utf8')).slice(-4000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.output += `\nspawn error: ${err.message}`;
      });
      this.child.once('close', (code) => {
        live.delete(this.child);
        this.exitCode = code;
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Last lines tor printed (config errors appear here before the log file exists). */
  get lastOutput(): string {
    return this.output;
  }

  /** Stops tor: SIGTERM (ShutdownWaitLength 0 makes it quick), SIGKILL after `graceMs`. */
  async stop(graceMs = 3000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** Reads a file, '' if missing. */
export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Polls `check` every `intervalMs` until it returns true. Fails fast when one of `procs` exits, and after
 * `timeoutMs` with LAB_TOR_TIMEOUT.
 */
export async function pollUntil(
  what: string,
  check: () => Promise<boolean>,
  procs: TorProcess[],
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    for (const p of procs) {
      if (!p.running) {
        const log = (await readText(p.logFile)).split('\n').slice(-8).join('\n');
        throw new PrivateTorError(
          'LAB_TOR_EXITED',
          `tor ${p.name} exited (code ${p.exitCode}) while waiting for ${what}:\n${p.lastOutput}\n${log}`,
        );
      }
    }
    if (Date.now() > deadline)
      throw new PrivateTorError('LAB_TOR_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A TCP port free on `host` right now, below the ephemeral range, not handed out before by this process. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  // A port from the kernel's ephemeral range can be taken by any outgoing connection (tor's own circuits
  // among them) between this check and the daemon's bind: seen as "Could not bind ... Address already in
  // use" in CI-like runs. So pick below that range, and never hand out the same port twice in a process.
  const low = ephemeralLow();
  const min = 10000;
  const max = low - 1;
  if (max - min >= 1000) {
    for (let i = 0; i < 200; i++) {
      const port = min + Math.floor(Math.random() * (max - min));
      if (handedOut.has(port)) continue;
      if (await canBind(host, port)) {
        handedOut.add(port);
        return port;
      }
    }
  }
  return kernelPort(host);
}

const handedOut = new Set<number>();

/** Low end of net.ipv4.ip_local_port_range (Linux default 32768). */
function ephemeralLow(): number {
  try {
    const n = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(n) && n > 0 ? n : 32768;
  } catch {
    return 32768;
  }
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function kernelPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Runs a command to completion; resolves with stdout, rejects with LAB_TOR_KEYS and its stderr. */
export function run(cmd: string, args: string[], stdin = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.once('error', (e) => reject(new PrivateTorError('LAB_TOR_SPAWN', `${cmd}: ${e.message}`)));
    p.once('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new PrivateTorError('LAB_TOR_KEYS', `${cmd} ${args.join(' ')} exited ${code}: ${err || out}`));
    });
    p.stdin.end(stdin);
  });
}
