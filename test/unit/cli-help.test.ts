/**
 * Every verb and sub-verb of bin/onionpunch.js answers --help with exit code 0 and its options on stdout, and
 * refuses an unknown option with exit code 2 (a usage error; the daemon verbs' config error) on stderr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** Each command line and options its help must list. */
const VERBS: Array<[string[], string[]]> = [
  [['demo'], ['--nat-a SPEC', '--nat-b SPEC', '--delay MS', '--loss PCT', '--overlay', '--no-install', '--json']],
  [
    ['lab', 'up'],
    ['--sites N', '--nat-a SPEC', '--nat-b SPEC', '--delay MS', '--jitter MS', '--loss PCT', '--no-install', '--json'],
  ],
  [
    ['lab', 'down'],
    ['--all', '--json'],
  ],
  [['lab', 'status'], ['--json']],
  [['lab', 'exec'], ['--lab NAME']],
  [
    ['lab', 'selftest'],
    ['--delay MS', '--loss PCT', '--json'],
  ],
  [
    ['lab', 'matrix'],
    ['--runs N', '--delay MS', '--loss PCT', '--pair NAME', '--json'],
  ],
  [['nat-check'], ['--peer HOST:PORT', '--local-port N', '--network NET', '--timeout MS', '--json']],
  [
    ['natcheck-server'],
    ['--listen HOST:PORT', '--network NET', '--max-connections N', '--per-netgroup N', '--json', '--verbose'],
  ],
  [['handshake'], ['--network NET', '--timeout MS', '--json']],
  [['decode'], []],
  [
    ['overlay', 'selftest'],
    ['--tor', '--i2p', '--no-install', '--json'],
  ],
  [['serve'], ['--torcontrol', '--announce', '--natcheck']],
  [['proxy'], ['--listen', '--proxy', '--peer']],
  [['doctor'], ['serve|proxy|relay', '--json', 'tor-control', 'tor-socks', 'sam', 'relay', 'nat', 'bitcoind-p2p']],
  [
    ['doctor', 'proxy'],
    ['--conf', '--listen', '--proxy', '--peer', '--json'],
  ],
  [
    ['doctor', 'serve'],
    ['--torcontrol', '--announce', '--bitcoind', '--handoff'],
  ],
  [
    ['sim', 'relay'],
    ['--nodes N', '--adoption F[,F...]', '--duration T', '--relays-per-node K', '--getaddr T', '--json', '--svg FILE'],
  ],
  [['sim'], ['relay']],
  [['lab'], ['up', 'down', 'status', 'exec', 'selftest', 'matrix']],
  [['overlay'], ['selftest']],
  [[], ['demo', 'lab', 'serve', 'proxy']],
];

function run(argv: string[]) {
  return spawnSync(process.execPath, ['bin/onionpunch.js', ...argv], { encoding: 'utf8', timeout: 30_000 });
}

test('every verb --help: exit 0, usage and options on stdout', () => {
  for (const [argv, opts] of VERBS) {
    for (const h of ['--help', '-h']) {
      const r = run([...argv, h]);
      const what = [...argv, h].join(' ');
      assert.equal(r.status, 0, `${what}: exit ${r.status}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: onionpunch ${argv.join(' ')}`), what);
      for (const o of opts) assert.ok(r.stdout.includes(o), `${what} lists ${o}:\n${r.stdout}`);
      if (argv.length > 0 && !['lab', 'overlay', 'sim', 'serve', 'proxy'].includes(argv.join(' ')))
        assert.match(r.stdout, /--help|-h/, what);
    }
  }
});

test('every verb: an unknown option is exit 2 with a message naming it', () => {
  for (const [argv] of VERBS) {
    if (argv.length === 0 || ['lab', 'overlay', 'sim'].includes(argv.join(' '))) continue;
    const r = run([...argv, '--bogus-option']);
    const what = argv.join(' ');
    assert.equal(r.status, 2, `${what}: exit ${r.status}: ${r.stderr}`);
    assert.match(r.stderr, /--bogus-option/, what);
    assert.equal(r.stdout, '', `${what}: nothing on stdout`);
  }
  const r = run(['lab', 'frobnicate']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown lab command 'frobnicate'/);
  for (const name of ['constructor', '__proto__', 'toString']) {
    const u = run([name]);
    assert.equal(u.status, 2, `${name}: ${u.stderr}`);
    assert.match(u.stderr, new RegExp(`unknown command '${name}'`));
    const l = run(['lab', name]);
    assert.equal(l.status, 2, `lab ${name}: ${l.stderr}`);
  }
  const bare = run([]);
  assert.equal(bare.status, 2);
  assert.match(bare.stderr, /^usage: onionpunch <command>/);
});
