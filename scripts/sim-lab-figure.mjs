#!/usr/bin/env node
// Draws the lab-versus-simulator coverage curve (SVG, vega-lite) from the files test/lab/relay-coverage.test.ts
// writes with OP_RELAY_LAB_OUT=FILE (one per lab run):
//   node scripts/sim-lab-figure.mjs OUT.svg run1.json [run2.json ...]
// Needs `npx tsc -p tsconfig.json` first (it uses dist/src/sim). Used for the figure of docs/SIMULATION.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderSvg } from '../dist/src/sim/index.js';

const [out, ...files] = process.argv.slice(2);
if (!out || files.length === 0) {
  process.stderr.write('usage: node scripts/sim-lab-figure.mjs OUT.svg RUN.json...\n');
  process.exit(2);
}
const values = files.flatMap((f, k) => {
  const r = JSON.parse(readFileSync(f, 'utf8'));
  const tag = `run ${k + 1} (max difference ${r.maxDiff.toFixed(2)})`;
  return r.curve.flatMap((p) => [
    { t: p.tS, share: p.lab, curve: `lab, ${tag}` },
    { t: p.tS, share: p.sim, curve: `simulator, same topology and phases, ${tag}` },
  ]);
});
const spec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: 'Relay coverage: 12 lab sites with real daemons and 2 relays vs the simulator',
  width: 560,
  height: 300,
  data: { values },
  mark: { type: 'line', interpolate: 'step-after' },
  encoding: {
    x: { field: 't', type: 'quantitative', title: "seconds since the announcer's first announcement" },
    y: {
      field: 'share',
      type: 'quantitative',
      title: 'share of (proxy, announcer) pairs covered',
      scale: { domain: [0, 1] },
    },
    color: { field: 'curve', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 1, labelLimit: 560 } },
    strokeDash: { condition: { test: "indexof(datum.curve, 'simulator') === 0", value: [5, 3] }, value: [1, 0] },
  },
};
writeFileSync(out, await renderSvg(spec));
process.stdout.write(`${out}: ${files.length} runs\n`);
