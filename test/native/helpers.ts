/** Shared helpers of the native engine tests: descriptor/thread counts, a SYN black hole, waiting. */
import { readdirSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** Open descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Threads of this process. */
export function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

/** Polls `cond` every 10 ms until it holds; throws after `ms`. */
export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A loopback port that silently drops SYNs: a listener with backlog 0 that never accepts (a python3 child,
 * since Node always accepts). After one connection fills its accept queue the kernel drops every further
 * SYN, so connects stay in SYN_SENT. Close with `stop()`.
 */
export async function synBlackhole(): Promise<{ port: number; stop: () => Promise<void> }> {
  const py =
    'import socket,sys\n' +
    's=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(0)\n' +
    'print(s.getsockname()[1], flush=True)\n' +
    'sys.stdin.read()\n';
  const child: ChildProcess = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([
    once(rl, 'line'),
    new Promise((_, rej) => setTimeout(() => rej(new Error('python3 blackhole did not start')), 5000)),
  ])) as [string];
  rl.close();
  return {
    port: Number(line),
    stop: async () => {
      if (child.exitCode !== null) return;
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await once(child, 'exit');
      clearTimeout(t);
    },
  };
}

/** Deterministic pseudo-random bytes (xorshift32) starting at stream offset `off`, for data checks. */
export function patternByte(i: number): number {
  // Cheap and position-addressable: a mix of the index, so any lost/duplicated/reordered byte shows.
  let x = (i * 2654435761) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 2246822519) >>> 0;
  x ^= x >>> 13;
  return x & 0xff;
}

export function fillPattern(buf: Buffer, off: number): void {
  for (let i = 0; i < buf.length; i++) buf[i] = patternByte(off + i);
}
