/**
 * binding.gyp (node-gyp, the shipped build) and native/CMakeLists.txt (cmake-js and the sanitizer test) must
 * build the same addon sources; and every native/*.cc is in both. A source added to one build only fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/addon.js';

type GypTarget = { target_name: string; sources: string[]; conditions?: [string, { 'sources!'?: string[] }][] };

function gypTarget(gypText: string): GypTarget {
  const gyp = JSON.parse(gypText) as { targets: GypTarget[] };
  const t = gyp.targets.find((x) => x.target_name === 'onionpunch_native');
  if (!t) throw new Error('binding.gyp has no onionpunch_native target');
  return t;
}

/** The addon's sources in binding.gyp (target onionpunch_native), relative to native/. */
function gypSources(gypText: string): string[] {
  const t = gypTarget(gypText);
  return t.sources.map((s) => s.replace(/^native\//, '')).sort();
}

/** The addon's sources in CMakeLists.txt: CORE_SOURCES plus the SHARED library's own files. */
function cmakeSources(cmake: string): string[] {
  const core = /set\(CORE_SOURCES([^)]*)\)/.exec(cmake);
  const lib = /add_library\(onionpunch_native SHARED([^)]*)\)/.exec(cmake);
  if (!core || !lib) throw new Error('CMakeLists.txt: CORE_SOURCES or the onionpunch_native library not found');
  const words = (s: string): string[] =>
    s
      .trim()
      .split(/\s+/)
      .filter((w) => w.endsWith('.cc') || w.endsWith('.c'));
  return [...words(core[1]!), ...words(lib[1]!)].sort();
}

/** Differences between the two builds and the .cc files on disk (empty = they agree). */
function sourceMismatches(gypText: string, cmakeText: string, onDisk: string[]): string[] {
  const gyp = gypSources(gypText);
  const cmake = cmakeSources(cmakeText);
  const out: string[] = [];
  for (const s of gyp) if (!cmake.includes(s)) out.push(`${s}: in binding.gyp only`);
  for (const s of cmake) if (!gyp.includes(s)) out.push(`${s}: in CMakeLists.txt only`);
  for (const s of onDisk) if (!gyp.includes(s) && !cmake.includes(s)) out.push(`${s}: in neither build`);
  // The non-Linux condition removes every source again (the addon is Linux-only): the same list.
  const removed = (gypTarget(gypText).conditions ?? []).flatMap(([, v]) => v['sources!'] ?? []).sort();
  const all = gypTarget(gypText).sources.slice().sort();
  if (JSON.stringify(removed) !== JSON.stringify(all)) {
    out.push(`binding.gyp: sources! (${removed}) is not sources (${all})`);
  }
  return out;
}

const root = packageRoot();
const gypText = readFileSync(join(root, 'binding.gyp'), 'utf8');
const cmakeText = readFileSync(join(root, 'native', 'CMakeLists.txt'), 'utf8');
const onDisk = readdirSync(join(root, 'native')).filter((f) => f.endsWith('.cc'));

test('binding.gyp and native/CMakeLists.txt build the same addon sources, and every native/*.cc', () => {
  assert.deepEqual(sourceMismatches(gypText, cmakeText, onDisk), []);
  for (const f of ['addon.cc', 'engine.cc', 'sock.cc']) assert.ok(gypSources(gypText).includes(f), f);
});

test('the comparison catches a deliberate mismatch', () => {
  const extraGyp = gypText.replace('"native/sock.cc"\n', '"native/sock.cc",\n        "native/extra.cc"\n');
  const got = sourceMismatches(extraGyp, cmakeText, onDisk);
  assert.equal(got[0], 'extra.cc: in binding.gyp only');
  assert.match(got[1] ?? '', /^binding.gyp: sources! /);
  const extraCmake = cmakeText.replace('set(CORE_SOURCES ', 'set(CORE_SOURCES extra.cc ');
  assert.deepEqual(sourceMismatches(gypText, extraCmake, onDisk), ['extra.cc: in CMakeLists.txt only']);
  assert.deepEqual(sourceMismatches(gypText, cmakeText, [...onDisk, 'new.cc']), ['new.cc: in neither build']);
});
