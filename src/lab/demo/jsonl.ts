/**
 * JSON-lines messaging between the demo parent and its workers (A and B run as child node processes inside
 * their lab namespaces). Workers write one JSON object per line on stdout; the parent writes commands on
 * their stdin. Times are wall-clock milliseconds with sub-ms resolution (performance.timeOrigin + now), so
 * events from processes in different namespaces line up on one timeline.
 */
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { LabError } from '../errors.js';

export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface WorkerMessage {
  type: string;
  at: number;
  [k: string]: unknown;
}

let unsent: string[] = [];
let flushQueued = false;
let exitHooked = false;

function flushLines(): void {
  flushQueued = false;
  if (unsent.length === 0) return;
  const out = unsent.join('');
  unsent = [];
  process.stdout.write(out);
}

/**
 * Writes one message line to stdout. The lines of one event-loop turn leave in one write: stdout to a pipe is a
 * synchronous syscall on Linux, and a `lab stress` worker emits a line per session (about 2% of a worker's CPU
 * in a profile, docs/BENCHMARKS.md). What is still queued when the process exits is written on 'exit'.
 */
export function emit(type: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ type, at: wallMs(), ...fields }, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v,
  );
  unsent.push(line + '\n');
  if (flushQueued) return;
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', flushLines);
  }
  flushQueued = true;
  setImmediate(flushLines);
}

/** Calls `onMessage` for every JSON line of `stream`; non-JSON lines go to `onText`. */
export function readMessages(
  stream: Readable,
  onMessage: (m: WorkerMessage) => void,
  onText?: (line: string) => void,
): void {
  const rl = createInterface({ input: stream });
  rl.on('line', (line) => {
    const t = line.trim();
    if (!t) return;
    if (t.startsWith('{')) {
      try {
        onMessage(JSON.parse(t) as WorkerMessage);
        return;
      } catch {
        /* fall through: not our JSON */
      }
    }
    onText?.(t);
  });
}

/** A queue of messages of one stream with `waitFor(type)` and a timeout. */
export class MessageQueue {
  private readonly items: WorkerMessage[] = [];
  private waiters: Array<{
    pred: (m: WorkerMessage) => boolean;
    resolve: (m: WorkerMessage) => void;
    reject: (e: Error) => void;
    timer: NodeJS.Timeout;
  }> = [];
  private ended: Error | undefined;
  readonly all: WorkerMessage[] = [];

  push(m: WorkerMessage): void {
    this.all.push(m);
    const i = this.waiters.findIndex((w) => w.pred(m));
    if (i >= 0) {
      const w = this.waiters.splice(i, 1)[0]!;
      clearTimeout(w.timer);
      w.resolve(m);
      return;
    }
    this.items.push(m);
  }

  end(err: Error): void {
    this.ended = err;
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters = [];
  }

  waitFor(types: string | string[], timeoutMs: number, where?: (m: WorkerMessage) => boolean): Promise<WorkerMessage> {
    const set = new Set(Array.isArray(types) ? types : [types]);
    const pred = (m: WorkerMessage): boolean => set.has(m.type) && (where === undefined || where(m));
    const i = this.items.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]!);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new LabError('LAB_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${[...set].join('|')}`));
      }, timeoutMs);
      this.waiters.push({ pred, resolve, reject, timer });
    });
  }
}
