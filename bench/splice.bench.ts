/**
 * Splice benchmark (`npm run bench:splice`, or `npm run bench -- splice`): the A-side bridge between the punched
 * socket and the local node, three ways in one run on loopback: a direct connection (source → sink, the
 * baseline), the daemon's JS copy (source → bridge process → sink, stream.pipeline) and the addon's splice(2)
 * bridge (same path, bytes moved by the kernel). Per mode: throughput and CPU seconds per GB (every process
 * involved, from /proc/<pid>/stat: the driver, which is source and sink, plus the bridge process), each as a
 * ratio to the direct baseline of the same run. Modes are interleaved over rounds (the machine is shared) and
 * the medians reported. Writes bench/results/splice.json. Options: --mb N (per transfer, default 512),
 * --rounds N (default 5).
 */
import net from 'node:net';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Mode = 'direct' | 'js' | 'splice';
const MODES: Mode[] = ['direct', 'js', 'splice'];

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!(v > 0) || !Number.isFinite(v)) throw new Error(`${name} must be a positive number`);
  return v;
}
const MB = arg('--mb', 512);
const ROUNDS = arg('--rounds', 5);
const TOTAL = MB * 1024 * 1024;
const CHILD = fileURLToPath(new URL('./splice/bridge-child.js', import.meta.url));
const TICK = 100; // USER_HZ: /proc stat times are in 1/100 s on Linux

/** utime + stime of a process in seconds. */
function cpuSeconds(pid: number | 'self'): number {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

interface Sample {
  mode: Mode;
  seconds: number;
  cpuSeconds: number;
  bridgeCpuSeconds: number;
}

async function sinkServer(): Promise<{ port: number; received: () => Promise<void>; close: () => void }> {
  let waiter: (() => void) | undefined;
  let got = 0;
  const server = net.createServer((c) => {
    c.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= TOTAL && waiter) {
        const w = waiter;
        waiter = undefined;
        got = 0;
        w();
      }
    });
    c.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => new Promise<void>((r) => (waiter = r)),
    close: () => server.close(),
  };
}

async function runOnce(mode: Mode, sinkPort: number, received: () => Promise<void>): Promise<Sample> {
  let port = sinkPort;
  let child: ReturnType<typeof spawn> | undefined;
  let lines: AsyncIterator<string> | undefined;
  if (mode !== 'direct') {
    child = spawn(process.execPath, [CHILD, mode, String(sinkPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = (await lines.next()).value as string;
    port = Number(/^port (\d+)/.exec(first)?.[1]);
  }
  const src = net.connect({ host: '127.0.0.1', port });
  await once(src, 'connect');
  src.setNoDelay(true);
  const chunk = Buffer.alloc(1024 * 1024, 0xa5);
  const done = received();
  await new Promise((r) => setTimeout(r, 50)); // the bridge has connected to the sink
  const cpu0 = cpuSeconds('self') + (child ? cpuSeconds(child.pid!) : 0);
  const b0 = child ? cpuSeconds(child.pid!) : 0;
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < TOTAL; sent += chunk.length) {
    if (!src.write(chunk)) await once(src, 'drain');
  }
  await done;
  const t1 = process.hrtime.bigint();
  const b1 = child ? cpuSeconds(child.pid!) : 0;
  const cpu1 = cpuSeconds('self') + b1;
  src.end();
  if (child && lines) {
    await lines.next(); // "done {...}": the bridge saw both ends close
    await once(child, 'exit');
  }
  src.destroy();
  return { mode, seconds: Number(t1 - t0) / 1e9, cpuSeconds: cpu1 - cpu0, bridgeCpuSeconds: b1 - b0 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const sink = await sinkServer();
const samples: Sample[] = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of MODES) samples.push(await runOnce(m, sink.port, sink.received));
  }
} finally {
  sink.close();
}
const GB = TOTAL / 1e9;
const per = Object.fromEntries(
  MODES.map((m) => {
    const xs = samples.filter((s) => s.mode === m);
    return [
      m,
      {
        throughputMBps: median(xs.map((s) => TOTAL / 1e6 / s.seconds)),
        cpuSecondsPerGB: median(xs.map((s) => s.cpuSeconds / GB)),
        bridgeCpuSecondsPerGB: median(xs.map((s) => s.bridgeCpuSeconds / GB)),
      },
    ];
  }),
) as Record<Mode, { throughputMBps: number; cpuSecondsPerGB: number; bridgeCpuSecondsPerGB: number }>;
const r2 = (x: number): number => Math.round(x * 100) / 100;
const ratios = Object.fromEntries(
  MODES.map((m) => [
    m,
    {
      throughput: r2(per[m].throughputMBps / per.direct.throughputMBps),
      cpuPerGB: r2(per[m].cpuSecondsPerGB / per.direct.cpuSecondsPerGB),
    },
  ]),
);
const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
const cpuModel = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
const machine = {
  nproc: os.cpus().length,
  cpu: cpuModel,
  kernel: os.release(),
  node: process.version,
  loadavg: os.loadavg().map(r2),
};
const result = {
  at: new Date().toISOString(),
  machine,
  mbPerTransfer: MB,
  rounds: ROUNDS,
  modes: per,
  ratiosToDirect: ratios,
  spliceVsJs: {
    throughput: r2(per.splice.throughputMBps / per.js.throughputMBps),
    cpuPerGB: r2(per.splice.cpuSecondsPerGB / per.js.cpuSecondsPerGB),
  },
  samples,
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/splice.json', JSON.stringify(result, null, 2) + '\n');
const load = machine.loadavg.join(' ');
console.log(`machine: ${machine.nproc} x ${cpuModel}, kernel ${machine.kernel}, node ${machine.node}, load ${load}`);
console.log(`${MB} MB per transfer, ${ROUNDS} rounds, medians; ratios against direct from this run`);
console.log('mode     MB/s  CPU s/GB (all)  bridge CPU s/GB  throughput ratio  CPU/GB ratio');
const col = (x: number, digits: number, width: number): string => x.toFixed(digits).padStart(width);
for (const m of MODES) {
  const p = per[m];
  const cells = [
    col(p.throughputMBps, 0, 6),
    col(p.cpuSecondsPerGB, 3, 14),
    col(p.bridgeCpuSecondsPerGB, 3, 16),
    col(ratios[m]!.throughput, 2, 17),
    col(ratios[m]!.cpuPerGB, 2, 13),
  ];
  console.log(`${m.padEnd(8)}${cells.join('  ')}`);
}
console.log(`splice vs js: throughput ${result.spliceVsJs.throughput}x, CPU per GB ${result.spliceVsJs.cpuPerGB}x`);
