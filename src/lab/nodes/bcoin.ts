/**
 * The parent's handle on a bcoin worker (bcoin-worker.ts): spawn it (on this host or in a lab namespace),
 * wait for `ready`, ask for its tip and peers, mine, stop. bcoin is a devDependency: {@link bcoinAvailable}
 * says whether it is installed before anything is spawned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { MessageQueue, readMessages, type WorkerMessage } from '../demo/jsonl.js';
import type { BcoinWorkerConfig } from './bcoin-worker.js';
import { LabNodeError } from '../errors.js';

export type { BcoinWorkerConfig } from './bcoin-worker.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'bcoin-worker.js');

/** True when the bcoin package (1.0.2, a devDependency) can be loaded. */
export function bcoinAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('bcoin');
    return true;
  } catch {
    return false;
  }
}

/** One peer as the node's getpeerinfo shows it. */
export interface NodePeer {
  addr: string;
  inbound: boolean;
  version: number;
  subver: string;
}

/** A node's tip and peers. */
export interface NodeInfo {
  height: number;
  hash: string;
  peers: NodePeer[];
}

/** Starts a process from an argv (e.g. `(argv) => lab.spawn(ns, argv)`); default: a plain child process. */
export type Spawner = (argv: string[]) => ChildProcess;

const plainSpawn: Spawner = (argv) => spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });

/**
 * The worker's `fatal` line {code, message} as a LabNodeError (LAB_NODE_FAILED, the worker's code kept as
 * `workerCode`). `withCode` keeps the code in the message too, as the start error always showed it.
 */
function fatalError(name: string, m: WorkerMessage, withCode = false): LabNodeError {
  const workerCode = typeof m.code === 'string' && m.code !== '' ? m.code : undefined;
  const text = withCode ? `${name}: ${String(m.code)}: ${String(m.message)}` : `${name}: ${String(m.message)}`;
  return new LabNodeError('LAB_NODE_FAILED', text, workerCode === undefined ? {} : { workerCode });
}

/** A running bcoin worker. */
export class BcoinProcess {
  readonly q = new MessageQueue();
  private readonly stderr: string[] = [];
  /** Every tip the node reported (height, at). */
  readonly tips: Array<{ height: number; hash: string; at: number }> = [];

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly cfg: BcoinWorkerConfig,
    onMessage?: (m: WorkerMessage) => void,
  ) {
    readMessages(child.stdout!, (m) => {
      if (m.type === 'tip') this.tips.push({ height: Number(m.height), hash: String(m.hash), at: m.at });
      onMessage?.(m);
      if (m.type !== 'tip' && m.type !== 'peer-open' && m.type !== 'peer-close') this.q.push(m);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr.push(d);
      if (this.stderr.length > 50) this.stderr.shift();
    });
    child.on('exit', (code, sig) =>
      this.q.end(
        new LabNodeError(
          'LAB_NODE_EXITED',
          `${name} exited (${code ?? sig}): ${this.stderr.join('').trim().slice(-400)}`,
        ),
      ),
    );
  }

  /** Spawns a worker and waits for `ready` (bcoin opens in ~1 s; `mine` blocks are mined before it). */
  static async start(
    name: string,
    cfg: BcoinWorkerConfig,
    o: { spawner?: Spawner; onMessage?: (m: WorkerMessage) => void; timeoutMs?: number } = {},
  ): Promise<BcoinProcess> {
    const child = (o.spawner ?? plainSpawn)([process.execPath, WORKER, JSON.stringify(cfg)]);
    const p = new BcoinProcess(name, child, cfg, o.onMessage);
    try {
      const m = await p.q.waitFor(['ready', 'fatal'], o.timeoutMs ?? 60_000);
      if (m.type === 'fatal') throw fatalError(name, m, true);
      return p;
    } catch (err) {
      p.kill();
      throw err;
    }
  }

  private send(cmd: Record<string, unknown>): void {
    this.child.stdin?.write(JSON.stringify(cmd) + '\n');
  }

  /** Tip and peers (getpeerinfo through the node's JSON-RPC). */
  async info(timeoutMs = 10_000): Promise<NodeInfo> {
    this.send({ cmd: 'info' });
    const m = await this.q.waitFor(['info', 'fatal'], timeoutMs);
    if (m.type === 'fatal') throw fatalError(this.name, m);
    return { height: Number(m.height), hash: String(m.hash), peers: m.peers as NodePeer[] };
  }

  /** Mines `n` regtest blocks on the node's tip. */
  async mine(n: number, timeoutMs = 60_000): Promise<{ height: number; hash: string }> {
    this.send({ cmd: 'mine', n });
    const m = await this.q.waitFor(['mined', 'fatal'], timeoutMs);
    if (m.type === 'fatal') throw fatalError(this.name, m);
    return { height: Number(m.height), hash: String(m.hash) };
  }

  /** The first tip at or above `height` (waits for it). */
  async waitForHeight(height: number, timeoutMs: number): Promise<{ height: number; hash: string; at: number }> {
    const t0 = Date.now();
    for (;;) {
      const t = this.tips.find((x) => x.height >= height);
      if (t) return t;
      if (this.child.exitCode !== null) throw new LabNodeError('LAB_NODE_EXITED', `${this.name} exited`);
      if (Date.now() - t0 > timeoutMs) {
        throw new LabNodeError('LAB_TIMEOUT', `${this.name}: height ${height} not reached in ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The chain height now: the last tip the worker reported (0, genesis, before any). */
  height(): Promise<number> {
    return Promise.resolve(this.tips.length > 0 ? this.tips[this.tips.length - 1]!.height : 0);
  }

  /** Asks the worker to close the node; kills it after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.send({ cmd: 'quit' });
    const t = setTimeout(() => this.kill(), graceMs);
    await exited;
    clearTimeout(t);
  }

  /** SIGKILL. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
