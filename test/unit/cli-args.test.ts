import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ArgReader } from '../../src/daemon/args.js';

test('ArgReader: values, numbers and word lists, each error naming the option', () => {
  const r = new ArgReader(['--n', '5', '--x', '2.5', '--w', 'tor', '--bad', 'zz', '--last']);
  assert.equal(r.next(), '--n');
  assert.equal(r.number('--n', 1, 10, true), 5);
  assert.equal(r.next(), '--x');
  assert.throws(() => r.number('--x', 0, 10, true), { code: 'CLI_USAGE', message: /--x: expected an integer in \[0, 10\], got '2.5'/ });
  assert.equal(r.next(), '--w');
  assert.equal(r.oneOf('--w', ['tor', 'i2p'] as const), 'tor');
  assert.equal(r.next(), '--bad');
  assert.throws(() => r.oneOf('--bad', ['a', 'b']), { message: /--bad: expected one of a, b, got 'zz'/ });
  assert.equal(r.next(), '--last');
  assert.throws(() => r.value('--last'), { message: '--last needs a value' });
  assert.equal(r.next(), undefined);
  assert.throws(() => new ArgReader(['']).number('--e', 0, 1), { message: /got ''/ });
});

test('verbs turn bad option values into usage errors with exit code 2', () => {
  for (const argv of [['demo', '--delay', 'abc'], ['nat-check', '--local-port', '70000'], ['lab', 'up', '--sites', '0'], ['lab', 'matrix', '--runs']]) {
    const r = spawnSync(process.execPath, ['bin/onionpunch.js', ...argv], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--(delay|local-port|sites|runs)/);
  }
});
