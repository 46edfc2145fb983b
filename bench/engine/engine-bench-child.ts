/**
 * Child of the engine benchmark's part (c), run inside the sender namespace: holds N connection attempts in
 * flight towards a host whose SYNs are dropped, and reports memory and CPU as JSON on stdout.
 * argv: side ('native' | 'baseline'), N, target address.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { PunchEngine, raiseFdLimit } from '../../src/native/engine.js';
import { slabBytes, type InflightResult } from './engine-bench.js';

const side = process.argv[2];
const n = Number(process.argv[3]);
const target = process.argv[4]!;
/** Shard index: shards of one run use disjoint destination ports. */
const shard = Number(process.argv[5] ?? 0);

/** utime+stime of one thread of this process, in ms (clock ticks are 10 ms). */
function threadCpuMs(tid: number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<void> {
  raiseFdLimit(n + 4096);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await sleep(100);
  const rss0 = process.memoryUsage.rss();
  const slab0 = slabBytes();
  const t0 = performance.now();
  let held = 0;
  let finish: () => Promise<void>;
  // Spread over many destination ports: no two attempts share a 4-tuple even if a local port repeats.
  const port = (i: number): number => 1024 + ((i + shard * n) % 60000);
  if (side === 'native') {
    const eng = new PunchEngine();
    const ac = new AbortController();
    setMaxListeners(n + 16, ac.signal);
    const plans = Array.from({ length: n }, (_, i) =>
      eng
        .punch({
          local: { address: '0.0.0.0', port: 0 },
          remotes: [{ address: target, port: port(i) }],
          deadlineMs: 120_000,
          signal: ac.signal,
        })
        .catch(() => undefined),
    );
    const end = Date.now() + 60_000;
    while (eng.stats().sockets < n && Date.now() < end) await sleep(10);
    held = eng.stats().sockets;
    finish = async () => {
      held = Math.max(held, eng.stats().maxSockets);
      ac.abort();
      await Promise.all(plans);
      await eng.stop();
    };
  } else {
    const socks: net.Socket[] = [];
    for (let i = 0; i < n; i++) {
      const s = net.connect({ host: target, port: port(i) });
      s.on('error', () => {});
      socks.push(s);
      if (i % 1000 === 999) await sleep(0); // let libuv issue the connects
    }
    await sleep(200);
    held = socks.filter((s) => s.connecting && !s.destroyed).length;
    finish = async () => {
      for (const s of socks) s.destroy();
    };
  }
  const rampMs = performance.now() - t0;
  // Tell the parent we hold them; it says 'measure' once every shard does (all in flight at once).
  process.stdout.write(`held ${held}\n`);
  await new Promise<void>((resolve) => {
    process.stdin.once('data', () => resolve());
    process.stdin.once('end', () => resolve());
  });
  process.stdin.pause();
  gc?.();
  await sleep(200);
  const rss1 = process.memoryUsage.rss();
  const slab1 = slabBytes();
  // Hold window: what the JS thread pays while the attempts wait.
  const js0 = threadCpuMs(process.pid);
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  await sleep(2000);
  const wall = performance.now() - w0;
  const js1 = threadCpuMs(process.pid);
  const cpu1 = process.cpuUsage(cpu0);
  await finish();
  const r: InflightResult = {
    n,
    held,
    rampMs: Math.round(rampMs),
    rssBytesPerAttempt: Math.round((rss1 - rss0) / Math.max(1, held)),
    slabBytesPerAttempt: Math.round((slab1 - slab0) / Math.max(1, held)),
    jsThreadCpuPct: Math.round(((js1 - js0) / wall) * 1000) / 10,
    processCpuPct: Math.round(((cpu1.user + cpu1.system) / 1000 / wall) * 1000) / 10,
  };
  process.stdout.write(JSON.stringify(r) + '\n');
}

void main();
