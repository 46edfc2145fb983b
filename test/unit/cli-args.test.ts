import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import {
  flag,
  helpText,
  integer,
  list,
  oneOf,
  number,
  parseCommand,
  text,
  value,
  type Command,
  type Options,
} from '../../src/daemon/args.js';
import { UsageError } from '../../src/errors.js';
import { formatSiteBehaviour, parseDuration, parsePercent, parseSiteBehaviour } from '../../src/lab/topology/spec.js';

const CMD = {
  name: 'thing',
  summary: 'A test command.',
  options: {
    n: value('N', 'a count', integer(1, 10), 3),
    w: value('WORD', 'a word', oneOf(['tor', 'i2p'] as const)),
    peer: list('HOST', 'repeatable', text),
    delay: value('MS', 'a duration', (s: string) => parseDuration(s, 2000), 12.5),
    json: flag('json', { short: 'j' }),
  },
} satisfies Command<Options>;

function usage(fn: () => unknown, msg: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, String(err));
    assert.equal(err.code, 'CLI_USAGE');
    assert.match(err.message, msg);
    return true;
  });
}

test('parseCommand: typed values, defaults, --key=value, repeatable, short flags', () => {
  const p = parseCommand(CMD, ['--n', '5', '--w=i2p', '--peer', 'a', '--peer=b', '-j', '--delay', '0.5s'])!;
  assert.deepEqual(p.values, { n: 5, w: 'i2p', peer: ['a', 'b'], delay: 500, json: true });
  assert.deepEqual(parseCommand(CMD, [])!.values, { n: 3, w: undefined, peer: [], delay: 12.5, json: false });
  assert.equal(parseCommand(CMD, ['--n', '1', '--n', '7'])!.values.n, 7, 'the last value wins');
});

test('parseCommand: every problem is a UsageError naming the option', () => {
  usage(() => parseCommand(CMD, ['--bogus']), /unknown option '--bogus' \(see onionpunch thing --help\)/);
  usage(() => parseCommand(CMD, ['-x']), /unknown option '-x'/);
  usage(() => parseCommand(CMD, ['--n', '2.5']), /--n: expected an integer in \[1, 10\], got '2.5'/);
  assert.throws(() => integer()('2.5'), { message: "expected an integer, got '2.5'" });
  assert.equal(number()('-1e9'), -1e9, 'an unbounded number (the command checks the range itself)');
  usage(() => parseCommand(CMD, ['--n']), /--n needs a value/);
  usage(() => parseCommand(CMD, ['--n', '--json']), /--n needs a value/);
  usage(() => parseCommand(CMD, ['--w', 'cjdns']), /--w: expected one of tor, i2p, got 'cjdns'/);
  usage(() => parseCommand(CMD, ['--json=1']), /--json takes no value/);
  usage(() => parseCommand(CMD, ['--delay', 'fast']), /--delay: expected a duration like 25ms/);
  usage(() => parseCommand(CMD, ['--delay', '3s']), /--delay: 3s is more than 2000 ms/);
  usage(() => parseCommand(CMD, ['stray']), /unexpected argument 'stray'/);
  usage(() => parseCommand(CMD, ['--peer', '']), /--peer: expected a value/);
  usage(
    () =>
      parseCommand(
        CMD,
        Array.from({ length: 5000 }, () => '--json'),
      ),
    /more than 4096 arguments/,
  );
  // Every value-taking option followed by another option: each is reported missing, none swallows the next.
  const many = Array.from({ length: 4000 }, (_, i) => (i % 2 ? '--json' : '--n'));
  usage(() => parseCommand(CMD, many), /--n needs a value/);
  assert.equal(
    parseCommand(CMD, [...many.slice(0, 10), '--help'], new PassThrough()),
    null,
    '--help still seen after them',
  );
});

test('parseCommand: --help wins, prints every listed option, returns null', () => {
  const out = new PassThrough();
  let s = '';
  out.on('data', (d: Buffer) => (s += d.toString()));
  assert.equal(parseCommand(CMD, ['--n', 'zz', '--help'], out), null);
  assert.equal(s, helpText(CMD));
  for (const o of ['-h, --help', '--n N', '--w WORD', '--peer HOST', '--delay MS', '-j, --json'])
    assert.ok(s.includes(o), `${o} in\n${s}`);
  assert.match(s, /^usage: onionpunch thing \[options\]\n/);
});

test('parseCommand: operands and pass-through after NODE or --', () => {
  const exec = {
    name: 'x exec',
    summary: '',
    operands: 'NODE -- CMD...',
    minOperands: 1,
    maxOperands: 1,
    passThroughAfter: 1,
    options: { lab: value('NAME', 'lab', text) },
  };
  assert.deepEqual(parseCommand(exec, ['--lab', 'l1', 'a', '--', 'ping', '-c', '1']), {
    values: { lab: 'l1' },
    operands: ['a'],
    rest: ['ping', '-c', '1'],
  });
  assert.deepEqual(parseCommand(exec, ['a', 'ip', '-6', 'addr', '--help']), {
    values: { lab: undefined },
    operands: ['a'],
    rest: ['ip', '-6', 'addr', '--help'],
  });
  usage(() => parseCommand(exec, ['--', 'ls']), /missing NODE -- CMD/);
});

test('the lab spec parser: words in any order, units, canonical form; errors are LAB_BAD_SPEC', () => {
  assert.deepEqual(parseSiteBehaviour('eim,rst'), { nat: 'eim', inbound: 'rst' });
  assert.deepEqual(parseSiteBehaviour('cgnat'), { cgnat: true });
  assert.deepEqual(parseSiteBehaviour(' rst , edm ,fw6,cgnat'), {
    inbound: 'rst',
    nat: 'edm',
    ipv6: 'fw6',
    cgnat: true,
  });
  assert.equal(formatSiteBehaviour(parseSiteBehaviour('fw6')), 'eim,drop,fw6');
  assert.equal(formatSiteBehaviour({ nat: 'edm', inbound: 'icmp', cgnat: true }), 'edm,icmp,cgnat');
  for (const bad of ['', 'cone', 'eim,edm', 'drop,rst'])
    assert.throws(() => parseSiteBehaviour(bad), { code: 'LAB_BAD_SPEC' }, bad);
  assert.equal(parseDuration('25ms'), 25);
  assert.equal(parseDuration('25'), 25);
  assert.equal(parseDuration('0.5s'), 500);
  assert.equal(parsePercent('1%'), 1);
  assert.equal(parsePercent('0.5'), 0.5);
  for (const bad of ['-1', '1e3', '5 ms', '']) assert.throws(() => parseDuration(bad), { code: 'LAB_BAD_SPEC' }, bad);
  // The same parser in seconds (sim relay's spans): bare numbers are seconds, minutes and hours too.
  assert.equal(parseDuration('90', Infinity, 's'), 90);
  assert.equal(parseDuration('30m', Infinity, 's'), 1800);
  assert.equal(parseDuration('2h', Infinity, 's'), 7200);
  assert.equal(parseDuration('1500ms', Infinity, 's'), 1.5);
  assert.equal(parseDuration('1m', 600_000), 60_000);
  assert.throws(() => parseDuration('1m', 2000), { code: 'LAB_BAD_SPEC', message: /more than 2000 ms/ });
  assert.throws(() => parsePercent('101%'), { code: 'LAB_BAD_SPEC' });
});

test('verbs turn bad option values into usage errors with exit code 2', () => {
  for (const [argv, opt] of [
    [['demo', '--delay', 'abc'], '--delay'],
    [['demo', '--nat-b', 'cone'], '--nat-b'],
    [['nat-check', '--local-port', '70000'], '--local-port'],
    [['lab', 'up', '--sites', '0'], '--sites'],
    [['lab', 'up', '--nat-c', 'eim'], '--nat-c'],
    [['lab', 'matrix', '--runs'], '--runs'],
    [['lab', 'matrix', '--loss', '60%'], '--loss'],
  ] as const) {
    const r = spawnSync(process.execPath, ['bin/onionpunch.js', ...argv], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(opt), `${argv.join(' ')}: ${r.stderr}`);
  }
});
