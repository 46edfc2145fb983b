/**
 * docs/ERRORS.md lists every error code the library can produce, and nothing in src/ classifies an error by
 * its message. Both checks run over the TypeScript syntax tree (test/helpers/error-codes.ts); each is also
 * run on a synthetic snippet that breaks the rule, so the checker itself is shown to catch a violation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../../src/native/addon.js';
import {
  collectErrorCodes,
  findMessageMatching,
  parseErrorTable,
  unlistedCodes,
  type CodeSite,
  type SourceText,
} from '../helpers/error-codes.js';

const root = packageRoot();

function sources(dir: string): SourceText[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    if (!name.endsWith('.ts') || name.endsWith('.d.ts')) return [];
    return [{ path: relative(root, p), text: readFileSync(p, 'utf8') }];
  });
}

const src = sources(join(root, 'src'));
const table = parseErrorTable(readFileSync(join(root, 'docs', 'ERRORS.md'), 'utf8'));

test('docs/ERRORS.md lists every error code src/ can produce', () => {
  const sites = collectErrorCodes(src);
  // The scan sees the code families it must (a sanity floor: an empty scan would pass vacuously).
  const seen = new Set(sites.map((s) => s.code));
  const floor = [
    'ENGINE_TIMEOUT',
    'ENGINE_START',
    'PUNCH_ENGINE',
    'NAT_BUDGET',
    'WIRE_BAD_MAGIC',
    'TOR_SOCKS_HS_DESC_NOT_FOUND',
    'SAM_NOVERSION',
    'CLI_USAGE',
    'TOR_REPLY_',
  ];
  for (const c of floor) {
    assert.ok(seen.has(c), `the scan did not find ${c}`);
  }
  const missing = unlistedCodes(sites, table);
  assert.deepEqual(
    missing.map((s) => `${s.code}${s.prefix ? '<…>' : ''} (${s.file}:${s.line}, ${s.via})`),
    [],
    'codes thrown but not listed in docs/ERRORS.md',
  );
});

test('the table has no duplicate rows', () => {
  const codes = table.map((t) => t.code + (t.family ? '<>' : ''));
  assert.deepEqual(
    codes.filter((c, i) => codes.indexOf(c) !== i),
    [],
  );
});

test('the code checker flags an unlisted code (deliberate violation)', () => {
  const snippet: SourceText = {
    path: 'synthetic/errors.ts',
    text: `
      import { OnionpunchError } from '../errors.js';
      export type WidgetCode = 'WIDGET_LISTED' | 'WIDGET_IN_UNION';
      export class WidgetError extends OnionpunchError {
        declare readonly code: WidgetCode;
        constructor(code: WidgetCode, message: string) { super(code, message); }
      }
      class LooseError extends WidgetError {}
      class MessageFirst extends OnionpunchError { constructor(m: string) { super('WIDGET_FROM_SUPER', m); } }
      export function f(n: number): never {
        if (n > 1) throw new LooseError(n > 2 ? 'WIDGET_LISTED' : 'WIDGET_TERNARY', 'x');
        if (n > 0) throw new MessageFirst('not a code: ignored');
        throw new OnionpunchError(\`WIDGET_FAMILY_\${n}\`, 'x');
      }
      const REPLIES = { 1: { code: 'WIDGET_REPLY', message: 'x' } };
    `,
  };
  const sites = collectErrorCodes([...src, snippet]);
  const fake = parseErrorTable('| `WIDGET_LISTED` | WidgetError | listed |\n');
  const mine = sites.filter((s) => s.file === snippet.path);
  const flagged = [...new Set(unlistedCodes(mine, [...table, ...fake]).map((s) => s.code))].sort();
  assert.deepEqual(flagged, [
    'WIDGET_FAMILY_',
    'WIDGET_FROM_SUPER',
    'WIDGET_IN_UNION',
    'WIDGET_REPLY',
    'WIDGET_TERNARY',
  ]);
  // A family row covers its template code and its members, and nothing with more underscores.
  const fam = parseErrorTable('| `WIDGET_FAMILY_<n>` | x | y |\n');
  const site = (code: string, prefix = false): CodeSite => ({ code, prefix, file: 'x', line: 1, via: 'x' });
  assert.deepEqual(unlistedCodes([site('WIDGET_FAMILY_', true)], fam), []);
  assert.deepEqual(unlistedCodes([site('WIDGET_FAMILY_42')], fam), []);
  assert.equal(unlistedCodes([site('WIDGET_FAMILY_4_2')], fam).length, 1);
  // E<errno> does not swallow ENGINE_* codes.
  const errno = parseErrorTable('| `E<errno>` | NativeError | errno |\n');
  assert.equal(unlistedCodes([site('ENGINE_NEW')], errno).length, 1);
  assert.equal(unlistedCodes([site('EADDRINUSE')], errno).length, 0);
});

test('nothing in src/ classifies an error by its message', () => {
  assert.deepEqual(
    findMessageMatching(src).map((m) => `${m.file}:${m.line}: ${m.text}`),
    [],
  );
});

test('the message checker flags message matching (deliberate violation)', () => {
  const snippet: SourceText = {
    path: 'synthetic/classify.ts',
    text: `
      export function classify(err: unknown): string {
        const budget = (err as { message?: string }).message?.includes('budget');
        const e = err as Error;
        const msg = String(e.message);
        if (/refused|reset/i.test(msg)) return 'refused';
        if (/timed? ?out/.test(e.message)) return 'timeout';
        if (String(err).match(/ABORT/)) return 'aborted';
        if (e.message.startsWith('x')) return 'x';
        return budget ? 'busy' : 'error';
      }
      export const fine = (s: string): boolean => /^[a-z]+$/.test(s) && s.includes('x');
    `,
  };
  const lines = findMessageMatching([snippet]).map((m) => m.line);
  assert.deepEqual(lines, [3, 6, 7, 8, 9]);
});
