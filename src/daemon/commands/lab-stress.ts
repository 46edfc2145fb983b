/**
 * `onionpunch lab stress`: the command-line face of src/lab/stress/stress.ts (many concurrent punches from B
 * sites to A through the lab, over the private Tor or I2P network or plain TCP, optionally under faults).
 */
import { UsageError } from '../../errors.js';
import { flag, integer, list, oneOf, parseCommand, text, value } from '../args.js';
import { ensurePrereqs, type PrereqNeed } from '../../lab/prereqs.js';
import { formatSiteBehaviour, parseDuration, parsePercent, parseSiteBehaviour } from '../../lab/topology/spec.js';
import type { SiteBehaviourSpec } from '../../lab/topology/spec.js';
import { Progress } from '../../lab/progress.js';
import { STRESS_FAULTS, runStress, stressSummary, type StressOptions } from '../../lab/stress/stress.js';
import { stressReportData } from '../../lab/report/stress.js';
import { writeReport } from '../../lab/report/html.js';

const STRESS = {
  name: 'lab stress',
  summary:
    'Many concurrent punches from B sites to site A through the NAT lab (root), over the private Tor\n' +
    "network, the private I2P network, or `direct` (plain TCP coordination to a port A's router forwards: not an\n" +
    "overlay, to load the engine and protocol past Tor's capacity). Measures success, time-to-connect quantiles,\n" +
    "SYNs, both sides' CPU/RSS/fds/threads, conntrack entries, leaks; injects faults on request. Exit 0 when\n" +
    'every session ended in time, nothing leaked, and (without faults) at least 99% connected.',
  options: {
    sites: value('N', 'B sites, 1..25 (default 1; over Tor each with its own tor client)', integer(1, 25)),
    sessions: value('M', 'sessions in all, 1..100000 (default 200)', integer(1, 100_000), 200),
    rounds: value('R', "rounds of M sessions in one lab, A's heap measured after each (default 1)", integer(1, 100), 1),
    concurrency: value('K', 'sessions at once, 1..5000 (default 20)', integer(1, 5000), 20),
    overlay: value('O', 'tor | i2p | direct (default tor)', oneOf(['tor', 'i2p', 'direct'] as const), 'tor'),
    nat: list(
      'SPEC',
      "site behaviour as lab up's (eim, eim-shift, drop, rst, ...): once for every site, twice for A" +
        ' then the B sites',
      parseSiteBehaviour,
    ),
    delay: value('MS', 'one-way delay per access link (default 12.5ms: 50 ms RTT A-B)', (s: string) =>
      parseDuration(s, 2000),
    ),
    jitter: value('MS', 'jitter per access link (default 0)', (s: string) => parseDuration(s, 1000)),
    loss: value('PCT', 'loss per access link and direction (default 1%)', (s: string) => parsePercent(s, 50)),
    fault: list('F', `inject during the run (repeatable): ${STRESS_FAULTS.join(' | ')}`, oneOf(STRESS_FAULTS)),
    deadline: value('MS', "B's overlay-dial timeout and session deadline (default 30s)", (s: string) =>
      parseDuration(s, 600_000),
    ),
    'no-install': flag('do not install missing packages (apt-get); print the command and stop'),
    json: flag('one JSON line: sessions, connected, successRate, p50Ms, p90Ms, p99Ms, leaks, faults, ...'),
    report: value('FILE', 'also write a self-contained HTML report (charts inlined, opens offline)', text),
  },
  notes:
    "faults: tor-restart (tor on A), conntrack-flush (A's router), loss (10% for 10 s), i2pd-kill (a router\n" +
    'neither side uses), b-kill (a B worker SIGKILLed, restarted after 1 s); each at an even share of the run.',
};

function site(s: SiteBehaviourSpec | undefined): StressOptions['a'] {
  return { nat: s?.nat ?? 'eim', inbound: s?.inbound ?? 'drop', ...(s?.cgnat ? { cgnat: true } : {}) };
}

/** `onionpunch lab stress [options]` (dispatched from commands/lab.ts). Needs root. */
export async function main(args: string[]): Promise<number> {
  const p = parseCommand(STRESS, args);
  if (p === null) return 0;
  const v = p.values;
  if (v.nat.length > 2) throw new UsageError('--nat: once (every site) or twice (A, then the B sites)');
  if (v.nat.some((s) => s.ipv6 !== undefined)) throw new UsageError('--nat: lab stress punches over IPv4 (no fw6)');
  const sites = v.sites ?? 1;
  const [na, nb] = [v.nat[0], v.nat[1] ?? v.nat[0]];
  const opts: StressOptions = {
    overlay: v.overlay,
    sites,
    sessions: v.sessions,
    concurrency: v.concurrency,
    rounds: v.rounds,
    a: site(na),
    b: site(nb),
    faults: v.fault,
  };
  if (v.delay !== undefined) opts.delayMs = v.delay;
  if (v.jitter !== undefined) opts.jitterMs = v.jitter;
  if (v.loss !== undefined) opts.lossPct = v.loss;
  if (v.deadline !== undefined) opts.deadlineMs = v.deadline;
  // conntrack: the routers' entry counts, and --fault conntrack-flush.
  const needs: PrereqNeed[] = ['lab', 'conntrack'];
  if (v.overlay !== 'direct') needs.push(v.overlay);
  await ensurePrereqs(needs, { what: 'onionpunch lab stress', install: !v['no-install'] });
  const progress = new Progress({ label: 'lab stress' });
  opts.progress = progress;
  const r = await runStress(opts);
  progress.finish(`${r.connected}/${r.sessions} connected in ${Math.round(r.elapsedMs / 1000)} s`);
  if (v.report !== undefined) {
    const nat = `A ${formatSiteBehaviour(na ?? {}) || 'eim'}, B ${formatSiteBehaviour(nb ?? {}) || 'eim'}`;
    writeReport(v.report, stressReportData(r, nat));
    process.stderr.write(`report: ${v.report}\n`);
  }
  const sum = stressSummary(r);
  if (v.json) process.stdout.write(JSON.stringify(sum) + '\n');
  else {
    const f = (x: number | null): string => (x === null ? '–' : `${x} ms`);
    const lines = [
      `${r.sessions} sessions over ${r.overlay} from ${r.sites} B site(s), ${r.concurrency} at once: ` +
        `${r.connected} connected (${(r.successRate * 100).toFixed(2)}%)`,
      `time to connect: p50 ${f(r.p50Ms)}, p90 ${f(r.p90Ms)}, p99 ${f(r.p99Ms)}, max ${f(r.maxMs)}` +
        (r.p99OverMedian !== null ? ` (p99/median ${r.p99OverMedian})` : ''),
      `SYNs: A ${r.syns.a}, B ${r.syns.b} (${r.syns.perSession} per session); A fired without a late opfire ` +
        `in ${r.fireFallbacks}`,
      `leaks: ${r.leaks.fds} fds, ${r.leaks.threads} threads, ${r.leaks.engineSockets} engine sockets on A; ` +
        `A's RSS ${r.leaks.aRssKb >= 0 ? '+' : ''}${r.leaks.aRssKb} kB, ` +
        `A's heap after GC ${r.leaks.aHeapKb ?? '?'} kB (bound ${r.leaks.aHeapBoundKb} kB)`,
      ...Object.entries(r.failures).map(([k, n]) => `failed: ${n} × ${k}`),
      ...r.faults.map(
        (x) =>
          `fault ${x.fault} (${x.detail}): touched ${x.touched} sessions: ` +
          `${Object.entries(x.outcomes)
            .map(([k, n]) => `${n} ${k}`)
            .join(', ')}; ` +
          `after it ${x.after.connected}/${x.after.sessions} connected`,
      ),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
  return exitCode(r);
}

/**
 * 0: every session ended in time, nothing leaked (fds, threads, engine sockets, A's heap after a GC within its
 * bound), and without faults at least 99% connected.
 */
export function exitCode(
  r: Pick<ReturnType<typeof stressSummary>, 'failures' | 'leaks' | 'faults' | 'successRate'>,
): number {
  const inTime = !Object.keys(r.failures).some((k) => k.startsWith('LAB_SESSION_NO_OUTCOME'));
  const clean = r.leaks.fds === 0 && r.leaks.threads === 0 && r.leaks.engineSockets === 0 && r.leaks.aHeapOk;
  return inTime && clean && (r.faults.length > 0 || r.successRate >= 0.99) ? 0 : 1;
}
