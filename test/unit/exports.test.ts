/**
 * The package's public surface: the root exports the facade and the named building blocks, and every error
 * class defined anywhere in the library (found by importing each compiled module, not from a list) is
 * exported from the root under its own name — or, for the lab's, from `onionpunch/lab`. A new error class
 * that is not exported fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as root from '../../src/index.js';
import * as lab from '../../src/lab/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const distSrc = join(here, '..', '..', 'src');
const pkgRoot = join(here, '..', '..', '..');

const BUILDING_BLOCKS = [
  'PunchEngine',
  'createPunchListener',
  'PunchClient',
  'StreamChannel',
  'wireCodec',
  'eimCheck',
  'AnnouncementDirectory',
  'makeAnnouncement',
  'TorCoordinationEndpoint',
  'TorCoordinationDialer',
  'I2pCoordinationEndpoint',
  'I2pCoordinationDialer',
  'encodeMessage',
  'FrameParser',
  'decodePayload',
];

function modules(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...modules(p));
    else if (name.endsWith('.js')) out.push(p);
  }
  return out;
}

/** Every `OnionpunchError` subclass exported by any compiled module under dist/src, with where it lives. */
async function errorClasses(): Promise<Map<Function, { name: string; module: string }>> {
  const found = new Map<Function, { name: string; module: string }>();
  for (const file of modules(distSrc)) {
    // Only modules that define a subclass are imported: entry scripts (the lab's demo worker) run on import.
    if (!/\bclass \w+ extends \w+/.test(readFileSync(file, 'utf8'))) continue;
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const [name, v] of Object.entries(mod)) {
      if (typeof v !== 'function') continue;
      if (v !== root.OnionpunchError && !(v.prototype instanceof root.OnionpunchError)) continue;
      if (!found.has(v)) found.set(v, { name, module: relative(distSrc, file).split(sep).join('/') });
    }
  }
  return found;
}

test('the root exports the facade and every named building block', () => {
  const r = root as Record<string, unknown>;
  assert.equal(typeof root.Onionpunch.open, 'function');
  for (const name of BUILDING_BLOCKS) assert.equal(typeof r[name], 'function', `root exports ${name}`);
});

test('every error class in the library is exported from the root (lab ones from onionpunch/lab)', async () => {
  const found = await errorClasses();
  assert.ok(found.size >= 15, `scan found ${found.size} error classes`);
  const r = root as Record<string, unknown>;
  const l = lab as Record<string, unknown>;
  const missing: string[] = [];
  for (const [cls, where] of found) {
    // The simulator is a CLI verb (`onionpunch sim relay`), not an API: its SimError reaches users only as the
    // verb's exit and message, and it must stay out of the root like every tooling class.
    if (where.module.startsWith('sim/')) {
      assert.notEqual(r[cls.name], cls, `tooling ${cls.name} stays out of the root`);
      continue;
    }
    const isLab = where.module.startsWith('lab/');
    const entry = isLab ? l : r;
    const from = isLab ? 'onionpunch/lab' : 'onionpunch';
    if (entry[cls.name] !== cls) missing.push(`${cls.name} (${where.module}) from ${from}`);
    if (!isLab) continue;
    assert.notEqual(r[cls.name], cls, `lab-only ${cls.name} stays out of the root`);
  }
  assert.deepEqual(missing, [], 'error classes not exported');
});

test("package.json's exports map names built files, with types, and nothing but the deliberate subpaths", () => {
  const pkg = JSON.parse(readFileSync(join(pkgRoot, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { types: string; default: string }>;
  };
  assert.deepEqual(Object.keys(pkg.exports).sort(), ['.', './lab', './package.json', './wire']);
  for (const [sub, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue;
    // TypeScript takes the first condition that matches: `types` must come first.
    assert.deepEqual(Object.keys(target), ['types', 'default'], `${sub}: conditions`);
    for (const f of [target.types, target.default]) assert.ok(existsSync(join(pkgRoot, f)), `${sub} -> ${f} exists`);
  }
});

test('the docs import only what the exports map allows (the root or a deliberate subpath, no deep paths)', () => {
  const pkg = JSON.parse(readFileSync(join(pkgRoot, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  const allowed = new Set(Object.keys(pkg.exports).map((k) => (k === '.' ? 'onionpunch' : `onionpunch/${k.slice(2)}`)));
  const docs = join(pkgRoot, 'docs');
  const files = [
    'README.md',
    ...readdirSync(docs)
      .filter((f) => f.endsWith('.md'))
      .map((f) => join('docs', f)),
  ];
  const bad: string[] = [];
  let seen = 0;
  for (const f of files) {
    const text = readFileSync(join(pkgRoot, f), 'utf8');
    for (const block of text.matchAll(/```(?:ts|js|mjs|typescript|javascript)\n([\s\S]*?)```/g)) {
      for (const m of block[1]!.matchAll(/\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/g)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('node:')) continue;
        seen++;
        if (!allowed.has(spec)) bad.push(`${f}: '${spec}'`);
      }
    }
  }
  assert.ok(seen >= 5, `found ${seen} imports in the docs' code blocks`);
  assert.deepEqual(bad, [], 'docs import deep or unexported paths');
});
