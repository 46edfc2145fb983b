#!/usr/bin/env node
// The flood run of docs/SIMULATION.md section 3 (60,000 nodes, 5%, 1,000 announcers, getaddr 2 min, one peer
// flooding 10,000 fakes a minute, 100 observers) with directories of N entries instead of the daemons' 1,000
// (`directoryOptions.maxEndpoints`, a runRelaySim option that the CLI does not expose). Prints one JSON line.
//   node scripts/sim-directory-size.mjs [N=2000]
// Needs `npx tsc -p tsconfig.json` first (it uses dist/src/sim). The other options are the CLI's defaults.
import { runRelaySim } from '../dist/src/sim/index.js';
import { loadConfig } from '../dist/src/daemon/config.js';

const d = loadConfig({}); // the daemons' defaults, as `onionpunch sim relay` reads them

const maxEndpoints = Number(process.argv[2] ?? 2000);
const r = runRelaySim({
  nodes: 60000,
  reachable: 0.2,
  adoption: 0.05,
  relays: 10,
  relaysPerNode: d.maxrelays,
  announcers: 1000,
  durationS: 1800,
  seed: '1',
  announceIntervalS: d.announceinterval,
  trickleS: 30,
  getaddrS: d.getaddrinterval,
  getaddrSpacingS: d.getaddrspacing,
  floodPerMin: 10000,
  observers: 100,
  relayOptions: {},
  directoryOptions: { maxEndpoints },
});
process.stdout.write(JSON.stringify(r) + '\n');
