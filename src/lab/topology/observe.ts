/**
 * Observations from inside a lab (used by the selftest and the lab tests): what public hosts see, what an
 * unsolicited SYN gets back, UDP round-trip time and loss, and a kernel-level TCP simultaneous open.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { LabError } from '../errors.js';
import { join } from 'node:path';
import { packageRoot, type Lab } from './lab.js';
import { untilReady } from './ready.js';
import { ECHO_SERVER_PY, INBOUND_PROBE_PY, SEEN_CLIENT_PY, SIMOPEN_PY, TTL_PROBE_PY, UDP_PROBE_PY } from './probes.js';

export interface SeenResult {
  localIp: string;
  localPort: number;
  seen: Array<{ dst: string; ip?: string; port?: number; error?: string }>;
}

export interface InboundResult {
  target: string;
  result: 'connected' | 'refused' | 'timeout' | string;
  ms: number;
  rst: boolean;
  icmp: { type: number; code: number; from: string } | null;
}

export interface UdpProbeResult {
  sent: number;
  received: number;
  lossPct: number;
  rttMs: { min: number | null; median: number | null; mean: number | null; p95: number | null; max: number | null };
}

export interface SimOpenResult {
  connected: boolean;
  /** How it connected: the connecting socket, or the listener's accept(). */
  via?: 'connect' | 'accept' | 'prime';
  tries: number;
  ms: number;
  got?: string;
  errors: Record<string, number>;
}

function parseJson<T>(what: string, r: { code: number | null; stdout: string; stderr: string }): T {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new LabError('LAB_COMMAND_FAILED', `${what}: no result (exit ${r.code}): ${r.stderr.trim().slice(0, 400)}`);
  }
}

let pythonExe: string | null = null;

/**
 * The python3 interpreter's real path. `python3` on PATH may be a wrapper script (pyenv shims cost ~100 ms per
 * start), so ask it once for `sys.executable`.
 */
export function python(): string {
  if (pythonExe === null) {
    const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 10000 });
    pythonExe = r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : 'python3';
  }
  return pythonExe;
}

/**
 * Timing-sensitive probes (UDP RTT, the echo service) run as SCHED_FIFO via chrt when it exists, so a busy
 * machine's scheduling latency does not show up as link delay. They sleep in select(), so they cannot starve it.
 */
function realtime(argv: string[]): string[] {
  return existsSync('/usr/bin/chrt') ? ['/usr/bin/chrt', '-f', '5', ...argv] : argv;
}

/** A random port in [20000, 60000). */
export function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 40000);
}

/**
 * Starts the peer-address echo service (TCP "ip:port" writer + UDP echo, dual stack) on `port` on each
 * given node and waits until all listen. The processes belong to the lab (killed by `lab.down()`).
 */
export async function startEchoServers(lab: Lab, nodes: string[], port: number): Promise<ChildProcess[]> {
  const procs = nodes.map((n) => lab.spawn(n, realtime([python(), '-c', ECHO_SERVER_PY, String(port)])));
  await Promise.all(
    procs.map((p, i) => untilReady(p, { what: `echo server on ${nodes[i]}`, marker: 'ready', timeoutMs: 5000 })),
  );
  return procs;
}

/** From `node`, bound to `localIp:localPort`, connects to each destination's echo service in turn. */
export async function seenFrom(
  lab: Lab,
  node: string,
  localIp: string,
  localPort: number,
  port: number,
  dsts: string[],
): Promise<SeenResult> {
  const r = await lab.exec(node, [python(), '-c', SEEN_CLIENT_PY, localIp, String(localPort), String(port), ...dsts], {
    timeoutMs: 15000,
  });
  return parseJson<SeenResult>(`seen-client on ${node}`, r);
}

/**
 * From `node`, sends one unsolicited SYN to `ip:port` (from source port `srcPort` if given) and reports the
 * answer (RST, ICMP error, nothing).
 */
export async function inboundProbe(
  lab: Lab,
  node: string,
  ip: string,
  port: number,
  timeoutS = 0.8,
  srcPort = 0,
): Promise<InboundResult> {
  const r = await lab.exec(
    node,
    [python(), '-c', INBOUND_PROBE_PY, ip, String(port), String(timeoutS), String(srcPort)],
    { timeoutMs: 15000 },
  );
  return parseJson<InboundResult>(`inbound probe on ${node}`, r);
}

/** From `node`, sends `count` UDP echo probes every `intervalMs` to `ip:port`; RTT statistics and loss. */
export async function udpProbe(
  lab: Lab,
  node: string,
  ip: string,
  port: number,
  count: number,
  intervalMs: number,
  waitMs = 1000,
): Promise<UdpProbeResult> {
  const budget = count * intervalMs + waitMs + 10000;
  const r = await lab.exec(
    node,
    realtime([python(), '-c', UDP_PROBE_PY, ip, String(port), String(count), String(intervalMs), String(waitMs)]),
    {
      timeoutMs: budget,
    },
  );
  return parseJson<UdpProbeResult>(`udp probe on ${node}`, r);
}

export interface SimOpenOptions {
  /** First send one SYN with this TTL (0: no priming), then the full-TTL attempts 100 ms later. */
  primeTtl?: number;
  /** Retry interval (default 50 ms). */
  retryMs?: number;
  /** Also listen on the local port (SO_REUSEPORT) so a peer SYN arriving between attempts is accepted. */
  listen?: boolean;
  /** Side b starts this many ms after side a (default 0). */
  skewMs?: number;
}

export interface SimOpenSide {
  node: string;
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
}

/**
 * TCP simultaneous open with plain kernel sockets: both sides bind their port and connect() to the other at
 * the same wall-clock instant (`startInMs` from now), retrying every `retryMs` (50) until `deadlineMs`.
 * `primeTtl`: first one low-TTL SYN per side, then the full-TTL attempts 100 ms later ("prime then fire").
 */
export async function simultaneousOpen(
  lab: Lab,
  a: SimOpenSide,
  b: SimOpenSide,
  deadlineMs = 3000,
  startInMs = 300,
  opts: SimOpenOptions = {},
): Promise<[SimOpenResult, SimOpenResult]> {
  const start = Date.now() + startInMs;
  const extra = [String(opts.primeTtl ?? 0), String(opts.retryMs ?? 50), opts.listen ? '1' : '0'];
  const one = (s: SimOpenSide, label: string, skew: number) =>
    lab
      .exec(
        s.node,
        [
          python(),
          '-c',
          SIMOPEN_PY,
          s.localIp,
          String(s.localPort),
          s.remoteIp,
          String(s.remotePort),
          String(start + skew),
          String(deadlineMs),
          label,
          ...extra,
        ],
        { timeoutMs: deadlineMs + startInMs + 10000 },
      )
      .then((r) => parseJson<SimOpenResult>(`simultaneous open on ${s.node}`, r));
  const [ra, rb] = await Promise.all([one(a, a.node, 0), one(b, b.node, opts.skewMs ?? 0)]);
  return [ra, rb];
}

export interface TtlProbeResult {
  ttl: number;
  /** Address of the router whose ICMP error came back (time exceeded: type 11), or null. */
  from: string | null;
  type: number | null;
  code: number | null;
  ms: number;
}

/** From `node`, sends one UDP datagram to `ip:port` with IP TTL `ttl`; which router answered with ICMP. */
export async function ttlProbe(lab: Lab, node: string, ip: string, port: number, ttl: number): Promise<TtlProbeResult> {
  const r = await lab.exec(node, [python(), '-c', TTL_PROBE_PY, ip, String(port), String(ttl)], { timeoutMs: 10000 });
  return parseJson<TtlProbeResult>(`ttl probe on ${node}`, r);
}

/** What `onionpunch nat-check --json` prints (the subset the lab reads). */
export interface NatCheckResult {
  mapping: 'eim' | 'edm' | 'unknown';
  portPreserving: boolean | null;
  publicAddress: string | null;
  localPort: number;
  observed: Array<{ peer: string; address: string; port: number }>;
  publicIpStable?: boolean | null;
  /** edm: the spread of public ports over fresh local ports (src/nat/eim-check.ts `PortSpread`). */
  portSpread?: import('../../nat/eim-check.js').PortSpread;
  reason?: string;
}

/** The onionpunch CLI as argv for a namespace: the running node binary and bin/onionpunch.js. */
export function onionpunchArgv(...args: string[]): string[] {
  return [process.execPath, join(packageRoot(), 'bin', 'onionpunch.js'), ...args];
}

/**
 * Starts the Bitcoin-protocol NAT-check service (`onionpunch natcheck-server --listen IP:PORT --json`) on each
 * public host and waits for its `{"listening":...}` line. Killed by `lab.down()`.
 */
export async function startNatcheckServers(
  lab: Lab,
  hosts: Array<{ key: string; ip: string }>,
  port: number,
): Promise<ChildProcess[]> {
  const procs = hosts.map((h) =>
    lab.spawn(h.key, onionpunchArgv('natcheck-server', '--listen', `${h.ip}:${port}`, '--json')),
  );
  await Promise.all(
    procs.map((p, i) =>
      untilReady(p, {
        what: `natcheck-server on ${hosts[i]!.key}`,
        marker: '"listening"',
        timeoutMs: 15000,
        stderrChars: 300,
      }),
    ),
  );
  return procs;
}

/** Runs `onionpunch nat-check --json` from `node` against two NAT-check servers. */
export async function natCheck(lab: Lab, node: string, peers: string[]): Promise<NatCheckResult> {
  const args = ['nat-check', '--json'];
  for (const p of peers) args.push('--peer', p);
  const r = await lab.exec(node, onionpunchArgv(...args), { timeoutMs: 30000 });
  return parseJson<NatCheckResult>(`nat-check on ${node}`, r);
}
