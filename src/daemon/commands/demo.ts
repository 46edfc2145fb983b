/**
 * `onionpunch demo [--json] [--nat-a eim|eim-shift|edm] [--nat-b ...] [--inbound-a drop|rst|icmp]
 *  [--inbound-b ...] [--delay MS] [--jitter MS] [--loss PCT] [--overlay tor|i2p] [--profile plain|prime]`
 *
 * The main job, end to end, as root: a two-site NAT lab, NAT-check servers and a private Tor network on
 * public hosts, A and B as child processes in their NATed namespaces; A publishes an onion coordination
 * endpoint, B discovers its mapping, dials A over Tor, both punch, then B runs a Bitcoin version handshake
 * across the punched connection (A answers as responder). Prints a timeline (ms since start) and tears
 * everything down, also on failure and SIGINT. `--json` ends with one line
 * `{"ok", "timeToConnectMs", "natA", "natB", "overlay", ...}`.
 */
import { UsageError } from '../../errors.js';
import { ArgReader } from '../args.js';

const HELP = `usage: onionpunch demo [options]   (needs root)

Builds a two-site NAT lab with a private Tor network, punches a direct TCP connection from B to A
(coordinated over a Tor onion service), runs a Bitcoin version handshake across it, prints a timeline.

options:
  --nat-a KIND       A's NAT mapping: eim | eim-shift | edm (default eim)
  --nat-b KIND       B's NAT mapping (default eim)
  --inbound-a POL    A's router on unsolicited SYNs: drop | rst | icmp (default drop)
  --inbound-b POL    B's router (default drop)
  --delay MS         one-way delay per site access link (A-B RTT = 4 x MS; default 12.5 -> 50 ms RTT)
  --jitter MS        jitter per access link (default 0)
  --loss PCT         loss per access link and direction (default 0)
  --overlay tor|i2p  coordination overlay (default tor)
  --profile P        SYN schedule: plain | prime (default plain)
  --json             machine-readable: the last line is one JSON object
`;

const NATS = ['eim', 'eim-shift', 'edm'] as const;
const INBOUNDS = ['drop', 'rst', 'icmp'] as const;

export async function main(args: string[]): Promise<number> {
  let json = false;
  let natA: (typeof NATS)[number] = 'eim';
  let natB: (typeof NATS)[number] = 'eim';
  let inA: (typeof INBOUNDS)[number] = 'drop';
  let inB: (typeof INBOUNDS)[number] = 'drop';
  let delayMs = 12.5;
  let jitterMs = 0;
  let lossPct = 0;
  let overlay: 'tor' | 'i2p' = 'tor';
  let profile: 'plain' | 'prime' = 'plain';
  const r = new ArgReader(args);
  for (let a = r.next(); a !== undefined; a = r.next()) {
    const num = (min: number, max: number): number => r.number(a, min, max);
    const oneOf = <T extends string>(list: readonly T[]): T => r.oneOf(a, list);
    switch (a) {
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return 0;
      case '--json': json = true; break;
      case '--nat-a': natA = oneOf(NATS); break;
      case '--nat-b': natB = oneOf(NATS); break;
      case '--inbound-a': inA = oneOf(INBOUNDS); break;
      case '--inbound-b': inB = oneOf(INBOUNDS); break;
      case '--delay': delayMs = num(0, 2000); break;
      case '--jitter': jitterMs = num(0, 1000); break;
      case '--loss': lossPct = num(0, 50); break;
      case '--overlay': overlay = oneOf(['tor', 'i2p'] as const); break;
      case '--profile': profile = oneOf(['plain', 'prime'] as const); break;
      default:
        throw new UsageError(`unknown option '${a}' (see --help)`);
    }
  }
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    process.stderr.write('onionpunch demo: needs root (it creates network namespaces, NATs and a private Tor network); run it as root, e.g. `sudo npm run demo`\n');
    if (json) process.stdout.write(JSON.stringify({ ok: false, error: { code: 'DEMO_NOT_ROOT', message: 'needs root' }, natA, natB, overlay }) + '\n');
    return 1;
  }
  const { PunchRig } = await import('../../lab/demo/rig.js');
  const { wallMs } = await import('../../lab/demo/jsonl.js');
  const t0 = wallMs();
  const say = (line: string): void => {
    process.stdout.write(`${(wallMs() - t0).toFixed(0).padStart(7)} ms  ${line}\n`);
  };
  const verbose = process.env.ONIONPUNCH_DEMO_VERBOSE === '1';
  let rig: import('../../lab/demo/rig.js').PunchRig | undefined;
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    say('interrupted: tearing down');
    void (rig?.down() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  const summary: Record<string, unknown> = { ok: false, natA, natB, overlay };
  try {
    say(`building the lab: site A (${natA}, ${inA}), site B (${natB}, ${inB}), ${delayMs} ms one-way per access link (A-B RTT ${4 * delayMs} ms), jitter ${jitterMs} ms, loss ${lossPct}%`);
    rig = await PunchRig.up({
      a: { nat: natA, inbound: inA },
      b: { nat: natB, inbound: inB },
      delayMs,
      jitterMs,
      lossPct,
      overlay,
      profile,
      log: (l) => {
        if (verbose) say(l);
      },
      onMessage: (who: string, m: { type: string; [k: string]: unknown }) => {
        if (m.type === 'eim') say(`${who}: EIM check: ${String(m.mapping)}${m.portPreserving ? ' (port-preserving)' : ''}${m.reason ? ` — ${String(m.reason)}` : ''}; observed ${JSON.stringify(m.observed)}`);
        if (m.type === 'ready' && who === 'A') say(`A: coordination endpoint ${String(m.address)}:${String(m.port)} published`);
      },
    }, (r) => {
      rig = r;
    });
    const tm = rig.timings;
    say(`lab up at ${tm.labUp} ms, NAT-check servers at ${tm.natcheckUp} ms, private ${overlay === 'tor' ? `Tor network at ${tm.torUp}` : `I2P network at ${tm.i2pUp}`} ms, A and B ready at ${tm.workersUp} ms`);
    say(`B: punching A (discovery + ${overlay === 'tor' ? 'Tor' : 'I2P'} dial + coordination + simultaneous open), then Bitcoin version handshake`);
    const r = await rig.attempt();
    const base = r.events[0]?.at ?? wallMs();
    for (const e of r.events) {
      process.stdout.write(`${(e.at - t0).toFixed(1).padStart(9)} ms  (+${(e.at - base).toFixed(1).padStart(7)})  ${e.who}  ${e.event}${e.detail ? `  ${e.detail}` : ''}\n`);
    }
    summary.ok = r.ok;
    if (r.timeToConnectMs !== undefined) summary.timeToConnectMs = Math.round(r.timeToConnectMs * 10) / 10;
    if (r.totalMs !== undefined) summary.totalMs = Math.round(r.totalMs);
    if (r.overlayRttMs !== undefined) summary.overlayRttMs = Math.round(r.overlayRttMs * 10) / 10;
    if (r.directRttMs !== undefined) summary.directRttMs = Math.round(r.directRttMs * 10) / 10;
    summary.eimA = rig.eimA?.mapping;
    summary.eimB = rig.eimB?.mapping;
    if (r.error) summary.error = r.error;
    if (r.ok) say(`OK: direct TCP connection A<->B, Bitcoin handshake done; B's request reached A -> established in ${String(summary.timeToConnectMs)} ms (overlay RTT ${String(summary.overlayRttMs)} ms, direct RTT ${String(summary.directRttMs)} ms)`);
    else say(`FAILED: ${r.error?.code}: ${r.error?.message}`);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    summary.error = { code: e.code ?? 'DEMO_ERROR', message: e.message ?? String(err) };
    say(`FAILED: ${e.code ?? 'error'}: ${e.message ?? String(err)}`);
  } finally {
    if (!interrupted) {
      say(`tearing down (workers, ${overlay === 'tor' ? 'Tor' : 'I2P'}, lab)`);
      await rig?.down();
      process.removeListener('SIGINT', onSigint);
      process.removeListener('SIGTERM', onSigint);
    }
  }
  summary.elapsedMs = Math.round(wallMs() - t0);
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  return summary.ok ? 0 : 1;
}
