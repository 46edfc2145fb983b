#!/usr/bin/env node
// Draws one coverage-over-time chart (SVG, vega-lite) from the JSON lines of `onionpunch sim relay --json` runs:
//   node scripts/sim-figures.mjs OUT.svg "Title" runs1.jsonl [NAME=runs2.jsonl ...]
// Needs `npx tsc -p tsconfig.json` first (it uses dist/src/sim). Used for the figures of docs/SIMULATION.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { coverageSpec, renderSvg } from '../dist/src/sim/index.js';

const [out, title, ...files] = process.argv.slice(2);
if (!out || !title || files.length === 0) {
  process.stderr.write('usage: node scripts/sim-figures.mjs OUT.svg TITLE RUNS.jsonl...\n');
  process.exit(2);
}
// A file given as NAME=FILE prefixes its runs' labels with NAME (runs of different code with equal options).
const runs = files.flatMap((arg) => {
  const eq = arg.indexOf('=');
  const [name, f] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [undefined, arg];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => ({ ...JSON.parse(l), name }));
});
const label = (r) => {
  const p = r.params;
  const extra = [];
  if (p.getaddrS > 0) extra.push(`getaddr ${p.getaddrS / 60} min`);
  if (p.relayOptions.fanout !== undefined) extra.push(`fanout ${p.relayOptions.fanout}`);
  if (r.flood) extra.push(`flood ${r.flood.perMin}/min`);
  if (r.suppress) extra.push(`${r.suppress.relays} of ${p.relays} relays suppress`);
  const tail = extra.length ? ', ' + extra.join(', ') : '';
  const head = r.name ? `${r.name}: ` : '';
  return `${head}${r.adoption * 100}% of ${r.nodes / 1000}k nodes, ${p.announcers} ann.${tail}`;
};
writeFileSync(out, await renderSvg(coverageSpec(runs, label, title)));
process.stdout.write(`${out}: ${runs.length} runs\n`);
