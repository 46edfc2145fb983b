/**
 * Birthday sprays through a real lab (root): a hard side (behind edm or edm-pba) and an easy side (behind a
 * port-preserving eim NAT), each a long-lived spray-side process in its host namespace, fired at one
 * CLOCK_MONOTONIC instant. Shared by test/native/spray.test.ts and bench/spray-lab.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../src/lab/topology/lab.js';
import { PunchEngine, type SprayPlan } from '../../src/native/engine.js';

const SIDE = fileURLToPath(new URL('../native/fixtures/spray-side.js', import.meta.url));

export interface SprayOutcome {
  ok: boolean;
  code?: string;
  syns: number;
  pair?: { localPort: number; remotePort: number };
  establishedMs?: number;
  firstSynMs?: number;
  lastSynMs?: number;
}

export interface SideStats {
  fds: number;
  threads: number;
  rss: number;
  sockets: number;
  plans: number;
}

/** A spray-side process in one lab node, answering one JSON line per request. */
export class SpraySide {
  private readonly lines: Interface;
  private readonly queue: Array<(line: string) => void> = [];
  private constructor(readonly child: ChildProcess) {
    this.lines = createInterface({ input: child.stdout! });
    this.lines.on('line', (l) => this.queue.shift()?.(l));
  }

  static async start(lab: Lab, node: string): Promise<SpraySide> {
    const child = lab.spawn(node, [process.execPath, SIDE], { stdio: ['pipe', 'pipe', 'inherit'] });
    const side = new SpraySide(child);
    const ready = await side.next(15_000);
    if (ready !== 'ready') throw new Error(`spray side on ${node} said ${ready}`);
    return side;
  }

  private next(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('spray side did not answer')), timeoutMs);
      this.queue.push((l) => {
        clearTimeout(t);
        resolve(l);
      });
    });
  }

  async request<T>(cmd: object, timeoutMs = 30_000): Promise<T> {
    const answer = this.next(timeoutMs);
    this.child.stdin!.write(JSON.stringify(cmd, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) + '\n');
    return JSON.parse(await answer) as T;
  }

  stats(): Promise<SideStats> {
    return this.request<SideStats>({ stats: true });
  }

  close(): void {
    this.child.stdin!.end();
    setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
  }
}

export interface TrialSetup {
  hard: SpraySide;
  easy: SpraySide;
  /** Hard host's LAN address and its NAT's public address. */
  hardLocalIp: string;
  hardPublicIp: string;
  easyLocalIp: string;
  easyPublicIp: string;
  /** Probe range of the hard NAT (from nat-check's portSpread). */
  range: { low: number; high: number };
}

/** One trial: the hard side opens n sockets, the easy side m probes, both from one instant. */
export async function sprayTrial(
  s: TrialSetup,
  n: number,
  m: number,
  opts: { spreadUs?: number; deadlineMs?: number; leadMs?: number } = {},
): Promise<{ hard: SprayOutcome; easy: SprayOutcome }> {
  // A fresh easy port per trial: the port-preserving NAT maps it to itself, and no trial sees another's entries.
  const easyPort = 20_000 + Math.floor(Math.random() * 10_000);
  const start = PunchEngine.shared().now() + BigInt(opts.leadMs ?? 150) * 1_000_000n;
  const common = { startAtNs: start, deadlineMs: opts.deadlineMs ?? 1500, spreadUs: opts.spreadUs ?? 20_000 };
  const hard: SprayPlan = {
    ...common,
    role: 'hard',
    local: { address: s.hardLocalIp, port: 0 },
    remote: { address: s.easyPublicIp, port: easyPort },
    count: n,
  };
  const easy: SprayPlan = {
    ...common,
    role: 'easy',
    local: { address: s.easyLocalIp, port: easyPort },
    remote: { address: s.hardPublicIp, port: 0 },
    count: m,
    ports: s.range,
  };
  const [h, e] = await Promise.all([
    s.hard.request<SprayOutcome>({ plan: hard }),
    s.easy.request<SprayOutcome>({ plan: easy }),
  ]);
  return { hard: h, easy: e };
}

/** The birthday bound for n sockets against m probes over a range of s ports. */
export function birthday(n: number, m: number, s: number): number {
  return 1 - Math.exp((-n * m) / s);
}
