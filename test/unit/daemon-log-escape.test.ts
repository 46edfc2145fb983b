/**
 * Log and terminal injection (issue #9 item 8): a peer's strings (user agent, error text) must not forge log
 * lines or reach the terminal as control sequences, in text or JSON logs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Logger, escapeText, asciiJson } from '../../src/daemon/log.js';

const EVIL = '/ua:1/\r\n1970-01-01T00:00:00.000Z INFO forged x=1\x1b[2J\x1b]0;t\x07\x7f\x9b31m\u2028\u00e9\\end';

test('escapeText: printable ASCII kept, everything else escaped, backslash doubled', () => {
  assert.equal(escapeText('/Satoshi:27.0.0/'), '/Satoshi:27.0.0/');
  assert.equal(escapeText('a b"c'), 'a b"c');
  assert.equal(escapeText('\r\n\t\x00\x1b\x7f\x9b\u00e9\u2028\\'), '\\r\\n\\t\\x00\\x1b\\x7f\\x9b\\xe9\\u2028\\\\');
  assert.match(escapeText(EVIL), /^[\x20-\x7e]*$/);
  // Distinct inputs stay distinct: a literal backslash-x is not confused with an escaped byte.
  assert.notEqual(escapeText('\\x1b'), escapeText('\x1b'));
});

test('asciiJson: printable ASCII only, and parses back to the same value', () => {
  const v = { userAgent: EVIL, n: 5n };
  const s = asciiJson(v);
  assert.match(s, /^[\x20-\x7e]*$/);
  assert.deepEqual(JSON.parse(s), { userAgent: EVIL, n: '5' });
});

test('text log: a hostile field value stays on one line, quoted and escaped; other fields untouched', () => {
  const lines: string[] = [];
  const log = new Logger({ format: 'text', write: (l) => lines.push(l), now: () => new Date(0) });
  log.info('peer-connected', { peer: '1.2.3.4:8333', userAgent: EVIL, error: new Error(EVIL) });
  assert.equal(lines.length, 1);
  const line = lines[0]!;
  assert.match(line, /^[\x20-\x7e]*$/, 'printable ASCII only');
  const start = '1970-01-01T00:00:00.000Z INFO  peer-connected peer=1.2.3.4:8333 userAgent="/ua:1/\\r\\n1970';
  assert.ok(line.startsWith(start), line);
  // A value without spaces but with an ESC byte used to be printed bare.
  lines.length = 0;
  log.info('x', { ua: '/a\x1b[31m/' });
  assert.equal(lines[0], '1970-01-01T00:00:00.000Z INFO  x ua="/a\\x1b[31m/"');
});

test('json log: the line is printable ASCII and the record parses back exactly', () => {
  const lines: string[] = [];
  const log = new Logger({ format: 'json', write: (l) => lines.push(l), now: () => new Date(0) });
  log.info('peer-connected', { userAgent: EVIL });
  assert.match(lines[0]!, /^[\x20-\x7e]*$/);
  assert.equal((JSON.parse(lines[0]!) as { userAgent: string }).userAgent, EVIL);
});
