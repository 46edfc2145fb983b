/**
 * The import direction of docs/ARCHITECTURE.md, checked over the real import graph of src/: every import and
 * re-export specifier (static, dynamic `import()`, `import type`, `export … from`), parsed with the TypeScript
 * compiler's own pre-processor, resolved to a file and classified by layer. A wrong import fails this test; the
 * second and third tests feed the same checker deliberately bad sources and cycles, so "a violation is caught" is
 * itself checked in CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, posix } from 'node:path';
import { builtinModules } from 'node:module';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(ROOT, 'src');

/**
 * Which layers a layer may import (besides itself). A layer is the first folder under src/, or the file name for
 * the files at src/'s top (errors.ts, ip.ts, index.ts). Read top-down: daemon -> punch/relay -> nat/overlay/peer
 * -> wire; ip/errors at the bottom; limits and native beside the stack; lab (tooling) on top of the library.
 */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  index: ['facade', 'daemon', 'punch', 'relay', 'nat', 'overlay', 'peer', 'wire', 'native', 'limits', 'ip', 'errors'],
  facade: ['punch', 'relay', 'nat', 'overlay', 'peer', 'wire', 'native', 'limits', 'ip', 'errors'],
  daemon: ['lab', 'sim', 'punch', 'relay', 'nat', 'overlay', 'peer', 'wire', 'native', 'limits', 'ip', 'errors'],
  lab: ['punch', 'relay', 'nat', 'overlay', 'peer', 'wire', 'native', 'limits', 'ip', 'errors'],
  sim: ['relay', 'wire', 'limits', 'ip', 'errors'],
  punch: ['nat', 'overlay', 'peer', 'wire', 'native', 'limits', 'ip', 'errors'],
  relay: ['nat', 'overlay', 'peer', 'wire', 'limits', 'ip', 'errors'],
  nat: ['peer', 'wire', 'native', 'limits', 'ip', 'errors'],
  overlay: ['peer', 'wire', 'ip', 'errors'],
  peer: ['wire', 'ip', 'errors'],
  wire: ['ip', 'errors'],
  native: ['ip', 'errors'],
  limits: ['ip', 'errors'],
  ip: [],
  errors: [],
};

/** The only files of a layer that may import the named layer (narrower than ALLOWED). */
export const ONLY_THROUGH: ReadonlyArray<{ from: string; to: string; files: RegExp; why: string }> = [
  {
    from: 'punch',
    to: 'native',
    files: /^punch\/engine-port\.ts$/,
    why: 'punch reaches the engine only through its port (engine-port.ts)',
  },
  {
    from: 'nat',
    to: 'native',
    files: /^nat\/observe\.ts$/,
    why: "nat's one native adapter is the default Observer (observe.ts)",
  },
  {
    from: 'daemon',
    to: 'lab',
    files: /^daemon\/commands\/[^/]+\.ts$/,
    why: 'only the CLI verbs that front the tooling (lab, demo, overlay selftest) load lab/',
  },
  {
    from: 'daemon',
    to: 'sim',
    files: /^daemon\/commands\/sim\.ts$/,
    why: 'the simulator is tooling: only its CLI verb (sim) loads sim/',
  },
];

/** Files that must not reach each other, directly or through other modules. */
export const NEVER_REACHES: ReadonlyArray<{ from: string; to: string }> = [
  { from: 'daemon/proxy.ts', to: 'daemon/serve.ts' },
  { from: 'daemon/serve.ts', to: 'daemon/proxy.ts' },
];

interface Edge {
  from: string;
  to: string;
  spec: string;
}

/** Every import specifier of one source text (TypeScript's pre-processor: static, dynamic, type, re-export). */
function specifiers(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

function layerOf(rel: string): string {
  const parts = rel.split('/');
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, '') : parts[0]!;
}

/** Checks a set of sources (path relative to src/ -> text) against the rules; returns every violation found. */
export function checkSources(
  sources: ReadonlyMap<string, string>,
  packages: ReadonlySet<string>,
): { violations: string[]; edges: Edge[] } {
  const violations: string[] = [];
  const edges: Edge[] = [];
  for (const [from, text] of sources) {
    for (const spec of specifiers(text)) {
      if (!spec.startsWith('.')) {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!spec.startsWith('node:') && !builtinModules.includes(name) && !packages.has(name)) {
          violations.push(`${from}: imports '${spec}', which is not a runtime dependency in package.json`);
        }
        continue;
      }
      const to = posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\.js$/, '.ts');
      if (to.startsWith('../')) {
        violations.push(`${from}: imports '${spec}' outside src/ (the library never imports bench/, test/, scripts)`);
        continue;
      }
      if (!sources.has(to)) {
        violations.push(`${from}: imports '${spec}', which is not a file of src/`);
        continue;
      }
      edges.push({ from, to, spec });
    }
  }
  for (const e of edges) {
    const lf = layerOf(e.from);
    const lt = layerOf(e.to);
    if (lf === lt) continue;
    const allowed = ALLOWED[lf];
    if (!allowed) {
      violations.push(`${e.from}: unknown layer '${lf}' (add it to docs/ARCHITECTURE.md and ALLOWED)`);
      continue;
    }
    if (!allowed.includes(lt)) {
      violations.push(`${e.from}: ${lf} must not import ${lt} ('${e.spec}')`);
      continue;
    }
    const narrow = ONLY_THROUGH.find((r) => r.from === lf && r.to === lt);
    if (narrow && !narrow.files.test(e.from)) violations.push(`${e.from}: imports '${e.spec}': ${narrow.why}`);
  }
  const out = new Map<string, string[]>();
  for (const e of edges) out.set(e.from, [...(out.get(e.from) ?? []), e.to]);
  for (const r of NEVER_REACHES) {
    const path = pathBetween(out, r.from, r.to);
    if (path) violations.push(`${r.from} reaches ${r.to}: ${path.join(' -> ')}`);
  }
  const layerEdges = new Map<string, Set<string>>();
  for (const e of edges) {
    const lf = layerOf(e.from);
    const lt = layerOf(e.to);
    if (lf !== lt) layerEdges.set(lf, (layerEdges.get(lf) ?? new Set()).add(lt));
  }
  for (const c of layerCycles(layerEdges)) violations.push(`layers import each other in a cycle: ${c.join(' -> ')}`);
  return { violations, edges };
}

function pathBetween(out: ReadonlyMap<string, string[]>, from: string, to: string): string[] | undefined {
  const prev = new Map<string, string>([[from, '']]);
  const queue = [from];
  while (queue.length > 0) {
    const n = queue.shift()!;
    for (const m of out.get(n) ?? []) {
      if (prev.has(m)) continue;
      prev.set(m, n);
      if (m === to) {
        const path = [m];
        for (let p = n; p !== ''; p = prev.get(p)!) path.unshift(p);
        return path;
      }
      queue.push(m);
    }
  }
  return undefined;
}

/** Every elementary cycle found by a depth-first search over the layer graph (one per back edge). */
export function layerCycles(g: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of g.get(n) ?? []) {
      if (state.get(m) === 'open') cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...g.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

function readSources(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const f of readdirSync(dir).sort()) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.ts'))
        out.set(
          p
            .slice(SRC.length + 1)
            .split('\\')
            .join('/'),
          readFileSync(p, 'utf8'),
        );
    }
  };
  walk(SRC);
  return out;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};
/**
 * The simulator's chart packages are devDependencies that src/sim/plot.ts loads with a dynamic import() only
 * when asked for an SVG (a missing one is SIM_NO_CHARTS, saying how to install it): the one exception to
 * "src/ imports only runtime dependencies", so a user of the library never downloads a charting library.
 */
const TOOLING_PACKAGES = ['vega', 'vega-lite'].filter((p) => pkg.devDependencies?.[p] !== undefined);
const RUNTIME = new Set([...Object.keys(pkg.dependencies ?? {}), ...TOOLING_PACKAGES]);

test('src/ follows the layer directions of docs/ARCHITECTURE.md', () => {
  const sources = readSources();
  const { violations, edges } = checkSources(sources, RUNTIME);
  // The parser must really see the graph (a checker that sees nothing passes vacuously).
  assert.ok(sources.size > 100, `read ${sources.size} files`);
  assert.ok(edges.length > 300, `found ${edges.length} imports`);
  const has = (from: string, to: string): boolean => edges.some((e) => e.from === from && e.to === to);
  assert.ok(has('daemon/serve.ts', 'punch/index.js'.replace('.js', '.ts')), 'a dynamic import() is seen');
  assert.ok(has('punch/listener.ts', 'punch/engine-port.ts'), 'an `import type` is seen');
  assert.ok(has('wire/index.ts', 'wire/address.ts'), 'an `export … from` is seen');
  assert.ok(has('daemon/commands/demo.ts', 'lab/demo/rig.ts'), 'a type-position import("…") is seen');
  assert.deepEqual(violations, []);
});

test('the checker rejects deliberate violations (synthetic sources)', () => {
  const sources = new Map<string, string>([
    ['errors.ts', 'export class OnionpunchError extends Error {}'],
    ['ip.ts', 'export const x = 1;'],
    ['wire/frame.ts', "import { PunchClient } from '../punch/client.js';"],
    [
      'punch/client.ts',
      "import { probeBind } from '../native/engine.js';\n" +
        "import { FrameParser } from '../wire/frame.js';\nexport class PunchClient {}",
    ],
    ['punch/engine-port.ts', "import type { Endpoint } from '../native/engine.js';"],
    ['native/engine.ts', "import { x } from '../ip.js';"],
    ['nat/mapping.ts', "const lab = await import('../lab/topology/lab.js');"],
    ['lab/topology/lab.ts', 'export const Lab = 1;'],
    ['relay/relay.ts', "export { bench } from '../../bench/engine/cli.js';\nimport fc from 'fast-check';"],
    ['daemon/proxy.ts', "import { helper } from './punch-setup.js';"],
    ['daemon/punch-setup.ts', "import { runServe } from './serve.js';"],
    ['daemon/serve.ts', "import { PunchClient } from '../punch/client.js';"],
    ['daemon/cli.ts', "import { Lab } from '../lab/topology/lab.js';"],
    ['daemon/commands/lab.ts', "import { Lab } from '../../lab/topology/lab.js';\nimport { socks } from 'socks';"],
    ['overlay/tor/socks.ts', "import { nope } from './missing.js';"],
  ]);
  const { violations } = checkSources(sources, new Set(['socks']));
  const expect = [
    /^wire\/frame\.ts: wire must not import punch/,
    /^punch\/client\.ts: imports '\.\.\/native\/engine\.js': punch reaches the engine only through its port/,
    /^nat\/mapping\.ts: nat must not import lab/,
    /^relay\/relay\.ts: imports '\.\.\/\.\.\/bench\/engine\/cli\.js' outside src\//,
    /^relay\/relay\.ts: imports 'fast-check', which is not a runtime dependency/,
    /^daemon\/proxy\.ts reaches daemon\/serve\.ts: daemon\/proxy\.ts -> daemon\/punch-setup\.ts -> daemon\/serve\.ts$/,
    /^daemon\/cli\.ts: imports '\.\.\/lab\/topology\/lab\.js': only the CLI verbs/,
    /^overlay\/tor\/socks\.ts: imports '\.\/missing\.js', which is not a file of src\//,
    /^layers import each other in a cycle: punch -> wire -> punch$/,
  ];
  for (const re of expect) {
    const got = violations.join('\n');
    assert.ok(
      violations.some((v) => re.test(v)),
      `expected a violation matching ${re}; got:\n${got}`,
    );
  }
  // What is allowed stays allowed: the port module's own import, a CLI verb loading the lab, a dependency.
  const okFiles = ['punch/engine-port.ts', 'daemon/commands/lab.ts'];
  const allowed = violations.filter((v) => okFiles.some((f) => v.startsWith(f)));
  assert.deepEqual(allowed, []);
  assert.equal(violations.length, expect.length, violations.join('\n'));
});

test('cycle detection: a layer cycle is reported, a DAG is not; the allowed table itself is a DAG', () => {
  const g = (pairs: [string, string][]): Map<string, Set<string>> => {
    const m = new Map<string, Set<string>>();
    for (const [a, b] of pairs) m.set(a, (m.get(a) ?? new Set()).add(b));
    return m;
  };
  const cyc = g([
    ['nat', 'peer'],
    ['peer', 'overlay'],
    ['overlay', 'nat'],
  ]);
  assert.deepEqual(layerCycles(cyc), [['nat', 'peer', 'overlay', 'nat']]);
  assert.deepEqual(
    layerCycles(
      g([
        ['daemon', 'punch'],
        ['punch', 'wire'],
        ['daemon', 'wire'],
      ]),
    ),
    [],
  );
  const table = new Map(Object.entries(ALLOWED).map(([k, v]) => [k, new Set(v)] as const));
  assert.deepEqual(layerCycles(table), []);
});
