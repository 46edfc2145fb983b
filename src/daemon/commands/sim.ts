/**
 * `onionpunch sim relay [options]`: network-scale simulation of announcement relay over the real src/relay/ code
 * (docs/SIMULATION.md). The announce interval, getaddr interval and relays per node default to the daemon's own
 * defaults (loadConfig), so the simulator follows whatever the daemons ship.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError } from '../../errors.js';
import { loadConfig } from '../config.js';
import {
  coverageSpec,
  renderSvg,
  runRelaySim,
  type RelaySimOptions,
  type RelaySimResult,
  type SimTopology,
} from '../../sim/index.js';

const HELP = `usage: onionpunch sim relay [options]

Discrete-event simulation (virtual clock, one process) of hole-punch announcement relay over a network shaped
like today's Bitcoin network, running the daemons' own AnnouncementRelay and AnnouncementDirectory.

options:
  --nodes N              nodes (default 60000)
  --reachable F          share of reachable nodes, 125 inbound slots each (default 0.2)
  --adoption F[,F...]    share of onionpunch-aware nodes; a list runs once per value (default 0.05)
  --relays N             relay daemons on reachable hosts (default 10)
  --relays-per-node K    relays each aware node connects to (default: the daemon's maxrelays)
  --announcers N         NATed aware nodes that announce (default 1000)
  --duration T           simulated time: 90s, 30m, 2h (default 30m)
  --seed S               PRNG seed; same seed and options, same output (default 1)
  --interval T           announce interval (default: the daemon's announceinterval)
  --fanout N             relay targets per announcement (default: the relay's default)
  --rate R               per-peer token bucket refill, entries/s (default: the relay's default)
  --relay-fanout N       fanout of the relay daemons only (default: as --fanout)
  --trickle T            mean Poisson interval of addr messages to a peer (default 30s, as Bitcoin Core)
  --getaddr T            aware NATed nodes ask their relays for the fresh set every T; 0 = never, push only
                         (default: the daemon's getaddrinterval)
  --flood N              an attacker peer sends N fake announcements a minute (default 0)
  --suppress K           K of the relays are the attacker's and forward nothing (default 0)
  --observers N          aware NATed nodes whose directories are sampled (default 1000)
  --getaddr-spacing T    a relay's least time between two getaddr answers to one asker (default: the daemon's
                         getaddrspacing)
  --topology FILE        an explicit small topology (JSON: {"relays":2,"relayLinks":[[0,1]],"nodes":[{"relays":[0],
                         "announce":true},{"relays":[1],"observe":true}]}); --nodes, --reachable, --adoption,
                         --relays, --relays-per-node, --announcers are then ignored; the JSON adds pairDelaysMs
  --json                 one JSON line per run (the last line is the last run)
  --svg FILE             coverage over time of every run, as an SVG chart (needs vega, vega-lite)
  --help                 this text
`;

/** Reads a --topology file (the simulator checks its shape and says what is wrong). */
function readTopology(file: string): SimTopology {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SimTopology;
  } catch (err) {
    throw new UsageError(`--topology: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Parses 90, 90s, 30m, 2h, 1500ms into seconds. */
export function parseDuration(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new UsageError(`${what}: '${s}' is not a duration (e.g. 90s, 30m, 2h)`);
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * mult;
}

function num(s: string | undefined, what: string, def: number, int = false): number {
  if (s === undefined) return def;
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n))) {
    throw new UsageError(`${what}: '${s}' is not ${int ? 'an integer' : 'a number'}`);
  }
  return n;
}

export async function main(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'relay') throw new UsageError(`unknown simulation '${sub}' (only: relay)`);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        nodes: { type: 'string' },
        reachable: { type: 'string' },
        adoption: { type: 'string' },
        relays: { type: 'string' },
        'relays-per-node': { type: 'string' },
        announcers: { type: 'string' },
        duration: { type: 'string' },
        seed: { type: 'string' },
        interval: { type: 'string' },
        fanout: { type: 'string' },
        rate: { type: 'string' },
        'relay-fanout': { type: 'string' },
        trickle: { type: 'string' },
        getaddr: { type: 'string' },
        flood: { type: 'string' },
        suppress: { type: 'string' },
        observers: { type: 'string' },
        'getaddr-spacing': { type: 'string' },
        topology: { type: 'string' },
        json: { type: 'boolean' },
        svg: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  // The daemons' defaults (loadConfig with nothing set): the simulator follows whatever they ship.
  const defaults = loadConfig({});
  const adoptions = (v.adoption ?? '0.05').split(',').map((s) => num(s, '--adoption', 0));
  const relayOptions: RelaySimOptions['relayOptions'] = {};
  if (v.fanout !== undefined) relayOptions.fanout = num(v.fanout, '--fanout', 2, true);
  if (v.rate !== undefined) relayOptions.ratePerSec = num(v.rate, '--rate', 0.1);
  const base: Omit<RelaySimOptions, 'adoption'> = {
    nodes: num(v.nodes, '--nodes', 60_000, true),
    reachable: num(v.reachable, '--reachable', 0.2),
    relays: num(v.relays, '--relays', 10, true),
    relaysPerNode: num(v['relays-per-node'], '--relays-per-node', defaults.maxrelays, true),
    announcers: num(v.announcers, '--announcers', 1000, true),
    durationS: parseDuration(v.duration ?? '30m', '--duration'),
    seed: v.seed ?? '1',
    announceIntervalS: v.interval !== undefined ? parseDuration(v.interval, '--interval') : defaults.announceinterval,
    trickleS: parseDuration(v.trickle ?? '30s', '--trickle'),
    getaddrS: v.getaddr !== undefined ? parseDuration(v.getaddr, '--getaddr') : defaults.getaddrinterval,
    floodPerMin: num(v.flood, '--flood', 0),
    suppressRelays: num(v.suppress, '--suppress', 0, true),
    observers: num(v.observers, '--observers', 1000, true),
    getaddrSpacingS:
      v['getaddr-spacing'] !== undefined
        ? parseDuration(v['getaddr-spacing'], '--getaddr-spacing')
        : defaults.getaddrspacing,
    ...(v.topology !== undefined ? { topology: readTopology(v.topology) } : {}),
    relayOptions,
    ...(v['relay-fanout'] !== undefined
      ? { relayDaemonOptions: { fanout: num(v['relay-fanout'], '--relay-fanout', 2, true) } }
      : {}),
  };
  const runs: RelaySimResult[] = [];
  for (const adoption of adoptions) {
    const r = runRelaySim({ ...base, adoption });
    runs.push(r);
    if (v.json) process.stdout.write(JSON.stringify(r) + '\n');
    else {
      const c = r.coverage;
      const ms = (x: number | null): string => (x === null ? 'never' : `${(x / 1000).toFixed(0)} s`);
      process.stdout.write(
        `adoption ${adoption}: ${r.topology.aware} aware nodes (${r.topology.awareNated} NATed), ` +
          `${r.topology.relays} relays, ${r.topology.announcers} announcers\n` +
          `  coverage: 50% in ${ms(c.p50Ms)}, 90% in ${ms(c.p90Ms)}, within 10 min ${(c.at10min * 100).toFixed(1)}%, ` +
          `steady ${(c.steady * 100).toFixed(1)}%\n` +
          `  msgs/node/h: mean ${r.perNodeMsgsPerHour.mean}, p99 ${r.perNodeMsgsPerHour.p99}, ` +
          `max ${r.perNodeMsgsPerHour.max}; busiest relay ${r.busiestRelay.msgsPerHour} msgs/h\n` +
          (r.flood
            ? `  flood: ${r.flood.sent} fakes sent, ${r.flood.acceptedNetworkWide} accepted network-wide, ` +
              `${(r.flood.fakeShareInDirectories * 100).toFixed(1)}% of observed directories fake\n`
            : '') +
          `  (${r.events} events, ${(r.wallMs / 1000).toFixed(1)} s)\n`,
      );
    }
  }
  if (v.svg !== undefined) {
    const label = (r: RelaySimResult): string => `adoption ${r.adoption * 100}%`;
    const svg = await renderSvg(coverageSpec(runs, label, `Announcement coverage, ${base.nodes} nodes`));
    writeFileSync(v.svg, svg);
  }
  return 0;
}
