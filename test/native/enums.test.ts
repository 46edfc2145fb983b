/**
 * The TypeScript mirrors of the C++ enums (src/native/enums.ts) against the tables the addon itself exports
 * (`enums`, built from the C++ name arrays that static_assert their length against each enum's kCount).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative } from '../../src/native/addon.js';
import { NATIVE_ENUMS } from '../../src/native/enums.js';

type Tables = Record<string, readonly string[]>;

/** Every difference between the addon's tables and the mirrors, as readable lines (empty = they agree). */
function enumMismatches(native: Tables, mirror: Tables): string[] {
  const out: string[] = [];
  for (const name of new Set([...Object.keys(native), ...Object.keys(mirror)])) {
    const n = native[name];
    const m = mirror[name];
    if (!n) out.push(`${name}: mirrored in TS but not exported by the addon`);
    else if (!m) out.push(`${name}: exported by the addon but not mirrored in src/native/enums.ts`);
    else {
      for (let i = 0; i < Math.max(n.length, m.length); i++) {
        if (n[i] !== m[i]) out.push(`${name}[${i}]: C++ ${JSON.stringify(n[i])}, TS ${JSON.stringify(m[i])}`);
      }
    }
  }
  return out;
}

const native = (loadNative() as unknown as { enums: Tables }).enums;

test('the addon exports its enum tables and the TS mirrors match them value for value', () => {
  assert.ok(native && typeof native === 'object', 'the addon exports `enums`');
  assert.deepEqual(enumMismatches(native, NATIVE_ENUMS), []);
});

test('the comparison catches a deliberate mismatch (a renamed, a missing and an extra value)', () => {
  const renamed = { ...NATIVE_ENUMS, status: ['established', 'timed-out', ...NATIVE_ENUMS.status.slice(2)] };
  assert.deepEqual(enumMismatches(native, renamed), ['status[1]: C++ "timeout", TS "timed-out"']);
  const short = { ...NATIVE_ENUMS, syscall: NATIVE_ENUMS.syscall.slice(0, -1) };
  assert.equal(enumMismatches(native, short).length, 1);
  const extra = { ...NATIVE_ENUMS, eventKind: [...NATIVE_ENUMS.eventKind, 'later'] };
  assert.equal(enumMismatches(native, extra).length, 1);
  const { profile: _dropped, ...unmirrored } = NATIVE_ENUMS;
  assert.deepEqual(enumMismatches(native, unmirrored), [
    'profile: exported by the addon but not mirrored in src/native/enums.ts',
  ]);
});
