/**
 * `onionpunch sim relay [options]`: network-scale simulation of announcement relay over the real src/relay/ code
 * (docs/SIMULATION.md). The announce interval, getaddr interval and relays per node default to the daemon's own
 * defaults (loadConfig), so the simulator follows whatever the daemons ship.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { UsageError } from '../../errors.js';
import { dispatch, flag, integer, number, parseCommand, text, value, type Parser } from '../args.js';
import { loadConfig } from '../config.js';
import { parseDuration } from '../../lab/topology/spec.js';
import {
  coverageSpec,
  renderSvg,
  runRelaySim,
  type RelaySimOptions,
  type RelaySimResult,
  type SimTopology,
} from '../../sim/index.js';

/** A span in seconds (90s, 30m, 2h, 1500ms; a bare number is seconds); the simulator checks the range. */
const seconds: Parser<number> = (s) => parseDuration(s, Infinity, 's');
/** Numbers and integers of any size: the simulator checks the ranges (SIM_BAD_OPTION names the option). */
const num = number();
const int = integer();

const RELAY = {
  name: 'sim relay',
  summary:
    'Discrete-event simulation (virtual clock, one process) of hole-punch announcement relay over a network\n' +
    "shaped like today's Bitcoin network, running the daemons' own AnnouncementRelay and AnnouncementDirectory.",
  options: {
    nodes: value('N', 'nodes (default 60000)', int, 60_000),
    reachable: value('F', 'share of reachable nodes, 125 inbound slots each (default 0.2)', num, 0.2),
    adoption: value(
      'F[,F...]',
      'share of onionpunch-aware nodes; a list runs once per value (default 0.05)',
      (s: string) => s.split(',').map(num),
      [0.05],
    ),
    relays: value('N', 'relay daemons on reachable hosts (default 10)', int, 10),
    'relays-per-node': value('K', "relays each aware node connects to (default: the daemon's maxrelays)", int),
    announcers: value('N', 'NATed aware nodes that announce (default 1000)', int, 1000),
    duration: value('T', 'simulated time: 90s, 30m, 2h (default 30m)', seconds, 1800),
    seed: value('S', 'PRNG seed; same seed and options, same output (default 1)', (s: string) => s, '1'),
    interval: value('T', "announce interval (default: the daemon's announceinterval)", seconds),
    fanout: value('N', "relay targets per announcement (default: the relay's default)", int),
    rate: value('R', "per-peer token bucket refill, entries/s (default: the relay's default)", num),
    'relay-fanout': value('N', 'fanout of the relay daemons only (default: as --fanout)', int),
    trickle: value('T', 'mean Poisson interval of addr messages to a peer (default 30s, as Bitcoin Core)', seconds, 30),
    getaddr: value(
      'T',
      "NATed nodes pull the fresh set every T; 0 = push only (default: the daemon's getaddrinterval)",
      seconds,
    ),
    flood: value('N', 'an attacker peer sends N fake announcements a minute (default 0)', num, 0),
    suppress: value('K', "K of the relays are the attacker's and forward nothing (default 0)", int, 0),
    observers: value('N', 'aware NATed nodes whose directories are sampled (default 1000)', int, 1000),
    'getaddr-spacing': value(
      'T',
      "a relay's least time between answers to one getaddr asker (default: the daemon's getaddrspacing)",
      seconds,
    ),
    topology: value('FILE', 'an explicit small topology (JSON, see below)', text),
    json: flag('one JSON line per run (the last line is the last run)'),
    svg: value('FILE', 'coverage over time of every run, as an SVG chart (needs vega, vega-lite)', text),
  },
  notes:
    '--topology FILE: {"relays":2,"relayLinks":[[0,1]],"nodes":[{"relays":[0],"announce":true},{"relays":[1],\n' +
    '"observe":true}]}; --nodes, --reachable, --adoption, --relays, --relays-per-node, --announcers are then\n' +
    'ignored; the JSON adds pairDelaysMs.',
};

/** Reads a --topology file (the simulator checks its shape and says what is wrong). */
function readTopology(file: string): SimTopology {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SimTopology;
  } catch (err) {
    throw new UsageError(`--topology: cannot read ${file}: ${(err as Error).message}`);
  }
}

export async function main(args: string[]): Promise<number> {
  return dispatch(
    {
      name: 'sim',
      summary: 'Network-scale simulations over the real relay code (docs/SIMULATION.md).',
      subs: { relay: { summary: 'announcement relay at network scale (real relay code)', run: relay } },
    },
    args,
  );
}

/** `onionpunch sim relay [options]`. */
async function relay(args: string[]): Promise<number> {
  const p = parseCommand(RELAY, args);
  if (p === null) return 0;
  const v = p.values;
  // The daemons' defaults (loadConfig with nothing set): the simulator follows whatever they ship.
  const defaults = loadConfig({});
  const adoptions = v.adoption;
  const relayOptions: RelaySimOptions['relayOptions'] = {};
  if (v.fanout !== undefined) relayOptions.fanout = v.fanout;
  if (v.rate !== undefined) relayOptions.ratePerSec = v.rate;
  const base: Omit<RelaySimOptions, 'adoption'> = {
    nodes: v.nodes,
    reachable: v.reachable,
    relays: v.relays,
    relaysPerNode: v['relays-per-node'] ?? defaults.maxrelays,
    announcers: v.announcers,
    durationS: v.duration,
    seed: v.seed,
    announceIntervalS: v.interval ?? defaults.announceinterval,
    trickleS: v.trickle,
    getaddrS: v.getaddr ?? defaults.getaddrinterval,
    floodPerMin: v.flood,
    suppressRelays: v.suppress,
    observers: v.observers,
    getaddrSpacingS: v['getaddr-spacing'] ?? defaults.getaddrspacing,
    ...(v.topology !== undefined ? { topology: readTopology(v.topology) } : {}),
    relayOptions,
    ...(v['relay-fanout'] !== undefined ? { relayDaemonOptions: { fanout: v['relay-fanout'] } } : {}),
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
