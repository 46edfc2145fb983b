import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import {
  CONFIG_KEYS,
  CONFIG_LIMITS,
  configTable,
  keyDefaultText,
  keyTypeText,
  loadConfig,
  parseConfigText,
  parseHostPort,
  type KeySpec,
} from '../../src/daemon/config.js';
import { ConfigError } from '../../src/daemon/errors.js';
import { helpText } from '../../src/daemon/run-common.js';
import { main as cliMain } from '../../src/daemon/cli.js';
import { WireError, formatOnion, parseEndpoint } from '../../src/wire/index.js';

const ONION = formatOnion(Buffer.alloc(32, 7));

const dir = mkdtempSync(join(tmpdir(), 'op-daemon-config-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function conf(text: string): string {
  const p = join(dir, `c${n++}.conf`);
  writeFileSync(p, text);
  return p;
}
function throwsConfig(
  fn: () => unknown,
  code: string,
  match: { key?: string; source?: string; line?: number; msg?: RegExp },
): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (match.key !== undefined) assert.equal(err.key, match.key, err.message);
    if (match.source !== undefined) assert.equal(err.source, match.source, err.message);
    if (match.line !== undefined) assert.equal(err.line, match.line, err.message);
    if (match.msg) assert.match(err.message, match.msg);
    return true;
  });
}

test('defaults: mainnet ports, tor, text logs', () => {
  const c = loadConfig({});
  assert.equal(c.overlay, 'tor');
  assert.equal(c.network, 'main');
  assert.deepEqual(c.torcontrol, { host: '127.0.0.1', port: 9051 });
  assert.deepEqual(c.i2psam, { host: '127.0.0.1', port: 7656 });
  assert.deepEqual(c.proxy, { host: '127.0.0.1', port: 9050 });
  assert.deepEqual(c.bitcoind, { host: '127.0.0.1', port: 8333 });
  assert.equal(c.punchport, 8333);
  assert.deepEqual(c.announce, []);
  assert.equal(c.announceinterval, 300);
  assert.equal(c.labranges, false);
  assert.equal(c.log, 'text');
  assert.equal(c.sources.overlay, 'default');
});

test('network decides the default bitcoind and punch ports', () => {
  const c = loadConfig({ args: ['--network', 'regtest'] });
  assert.deepEqual(c.bitcoind, { host: '127.0.0.1', port: 18444 });
  assert.equal(c.punchport, 18444);
  assert.equal(loadConfig({ args: ['--network=signet'] }).punchport, 38333);
  assert.equal(loadConfig({ args: ['--network=testnet4'] }).punchport, 48333);
});

test('file: key=value, comments, blank lines, whitespace, repeatable keys', () => {
  const p = conf(
    '# a comment\n\n  overlay = i2p  # trailing comment\ni2psam=127.0.0.1:7700\nannounce=198.51.100.1:8333\nannounce=[2001:db8::1]:8333\nlabranges=1\r\nknown=' +
      ONION +
      ':8333@203.0.113.5:8333\n',
  );
  const c = loadConfig({ args: ['--conf', p] });
  assert.equal(c.overlay, 'i2p');
  assert.deepEqual(c.i2psam, { host: '127.0.0.1', port: 7700 });
  assert.deepEqual(c.announce, [
    { host: '198.51.100.1', port: 8333 },
    { host: '2001:db8::1', port: 8333 },
  ]);
  assert.deepEqual(c.peer, c.announce, 'peer defaults to the announce list');
  assert.equal(c.labranges, true);
  assert.deepEqual(c.known, [
    { coordination: ONION, coordinationPort: 8333, clearnet: { address: '203.0.113.5', port: 8333 } },
  ]);
  assert.equal(c.sources.overlay, 'file');
});

test('precedence: flags > env > file > defaults; a list is replaced, not merged', () => {
  const p = conf('overlay=i2p\nnetwork=signet\nloglevel=warn\nannounce=198.51.100.1:1\nannounce=198.51.100.2:2\n');
  const env = {
    ONIONPUNCH_NETWORK: 'regtest',
    ONIONPUNCH_LOGLEVEL: 'debug',
    ONIONPUNCH_ANNOUNCE: '198.51.100.3:3, 198.51.100.4:4',
    ONIONPUNCH_LAB_STATE_DIR: '/x',
  };
  const c = loadConfig({ args: [`--conf=${p}`, '--loglevel', 'error'], env });
  assert.equal(c.overlay, 'i2p');
  assert.equal(c.sources.overlay, 'file');
  assert.equal(c.network, 'regtest');
  assert.equal(c.sources.network, 'env');
  assert.equal(c.loglevel, 'error');
  assert.equal(c.sources.loglevel, 'flag');
  assert.deepEqual(c.announce, [
    { host: '198.51.100.3', port: 3 },
    { host: '198.51.100.4', port: 4 },
  ]);
  const c2 = loadConfig({ args: [`--conf=${p}`, '--announce', '198.51.100.9:9'], env });
  assert.deepEqual(c2.announce, [{ host: '198.51.100.9', port: 9 }]);
});

test('flags: bool alone, bool with value, relative --conf', () => {
  assert.equal(loadConfig({ args: ['--labranges'] }).labranges, true);
  assert.equal(loadConfig({ args: ['--labranges=no'] }).labranges, false);
  assert.equal(loadConfig({ args: ['--json', '--overlay', 'i2p'] }).overlay, 'i2p');
  const sub = join(dir, 'sub');
  mkdirSync(sub, { recursive: true });
  writeFileSync(join(sub, 'rel.conf'), 'overlay=i2p\n');
  assert.equal(loadConfig({ args: ['--conf', 'rel.conf'], cwd: sub }).overlay, 'i2p');
  assert.equal(loadConfig({ args: ['--listen', '127.0.0.1:0'] }).listen.port, 0);
});

test('file errors name the file, line and key', () => {
  const p = conf('overlay=tor\nbogus=1\n');
  throwsConfig(() => loadConfig({ args: ['--conf', p] }), 'CONFIG_UNKNOWN_KEY', {
    source: 'file',
    line: 2,
    msg: new RegExp(`${p}:2: unknown key 'bogus'`),
  });
  throwsConfig(() => loadConfig({ args: ['--conf', conf('\n\nnetwork=mainnet\n')] }), 'CONFIG_BAD_VALUE', {
    key: 'network',
    source: 'file',
    line: 3,
    msg: /expected one of main/,
  });
  throwsConfig(() => loadConfig({ args: ['--conf', conf('just a line\n')] }), 'CONFIG_SYNTAX', {
    source: 'file',
    line: 1,
    msg: /expected key=value/,
  });
  throwsConfig(() => loadConfig({ args: ['--conf', conf('[test]\n')] }), 'CONFIG_SYNTAX', {
    source: 'file',
    line: 1,
    msg: /sections/,
  });
  throwsConfig(() => loadConfig({ args: ['--conf', conf('json=1\n')] }), 'CONFIG_SYNTAX', {
    key: 'json',
    line: 1,
    msg: /only be given as a flag/,
  });
  throwsConfig(() => loadConfig({ args: ['--conf', join(dir, 'missing.conf')] }), 'CONFIG_FILE', {
    key: 'conf',
    msg: /ENOENT/,
  });
  throwsConfig(() => loadConfig({ args: ['--conf', dir] }), 'CONFIG_FILE', { key: 'conf', msg: /not a regular file/ });
});

test('every value type rejects bad values with key and source', () => {
  const cases: [string, string][] = [
    ['torcontrol', '127.0.0.1'],
    ['torcontrol', '127.0.0.1:70000'],
    ['torcontrol', 'host name:1'],
    ['torcontrol', '[not-v6]:1'],
    ['bind', 'example.com'],
    ['punchport', '0'],
    ['punchport', '65536'],
    ['announceinterval', '5'],
    ['announceinterval', '600'],
    ['maxsessions', '-1'],
    ['maxsessions', '1e3'],
    ['labranges', 'maybe'],
    ['overlay', 'cjdns'],
    ['log', 'xml'],
    ['known', 'abc.onion:8333@1.2.3.4:8333'],
    ['known', ONION + ':8333'],
    ['known', 'a'.repeat(56) + '.onion:8333@1.2.3.4:8333'],
    ['known', ONION + ':8333@example.com:8333'],
    ['torpassword', ''],
  ];
  for (const [key, value] of cases) {
    throwsConfig(() => loadConfig({ args: [`--${key}=${value}`] }), 'CONFIG_BAD_VALUE', { key, source: 'flag' });
    if (key !== 'known' || !value.includes(',')) {
      throwsConfig(() => loadConfig({ env: { [`ONIONPUNCH_${key.toUpperCase()}`]: value } }), 'CONFIG_BAD_VALUE', {
        key,
        source: 'env',
        msg: new RegExp(`ONIONPUNCH_${key.toUpperCase()}`),
      });
    }
  }
});

test('flag syntax errors', () => {
  throwsConfig(() => loadConfig({ args: ['--nope', '1'] }), 'CONFIG_UNKNOWN_KEY', { source: 'flag', msg: /--nope/ });
  throwsConfig(() => loadConfig({ args: ['overlay=tor'] }), 'CONFIG_SYNTAX', { source: 'flag' });
  throwsConfig(() => loadConfig({ args: ['--'] }), 'CONFIG_SYNTAX', { source: 'flag' });
  throwsConfig(() => loadConfig({ args: ['--overlay'] }), 'CONFIG_MISSING', { key: 'overlay', source: 'flag' });
});

test('hard limits: file size, line length, entries, list values', () => {
  throwsConfig(
    () => loadConfig({ args: ['--conf', conf('#'.repeat(CONFIG_LIMITS.maxFileBytes + 1))] }),
    'CONFIG_LIMIT',
    { key: 'conf', msg: /bytes/ },
  );
  throwsConfig(
    () => loadConfig({ args: ['--conf', conf('overlay=tor\n#' + 'x'.repeat(CONFIG_LIMITS.maxLineChars) + '\n')] }),
    'CONFIG_LIMIT',
    { source: 'file', line: 2 },
  );
  throwsConfig(() => parseConfigText('loglevel=info\n'.repeat(CONFIG_LIMITS.maxEntries + 1)), 'CONFIG_LIMIT', {
    source: 'file',
    line: CONFIG_LIMITS.maxEntries + 1,
  });
  const many = Array.from(
    { length: CONFIG_LIMITS.maxListValues + 1 },
    (_, i) => `announce=198.51.100.${i % 250}:${1000 + i}`,
  ).join('\n');
  throwsConfig(() => loadConfig({ args: ['--conf', conf(many)] }), 'CONFIG_LIMIT', { key: 'announce', source: 'file' });
  throwsConfig(
    () => loadConfig({ args: Array.from({ length: CONFIG_LIMITS.maxEntries + 1 }, () => '--labranges') }),
    'CONFIG_LIMIT',
    { source: 'flag' },
  );
  throwsConfig(
    () => loadConfig({ env: { ONIONPUNCH_TORPASSWORD: 'x'.repeat(CONFIG_LIMITS.maxLineChars + 1) } }),
    'CONFIG_LIMIT',
    { key: 'torpassword', source: 'env' },
  );
});

test('parseHostPort: v4, v6, names, default port', () => {
  assert.deepEqual(parseHostPort('[::1]:9050'), { host: '::1', port: 9050 });
  assert.deepEqual(parseHostPort('localhost:1'), { host: 'localhost', port: 1 });
  assert.deepEqual(parseHostPort('10.0.0.1', 8333), { host: '10.0.0.1', port: 8333 });
  assert.equal(parseHostPort('::1:9050'), undefined);
  assert.equal(parseHostPort(''), undefined);
  assert.deepEqual(parseHostPort('bitcoin_node:8332'), { host: 'bitcoin_node', port: 8332 }, 'container names');
  assert.deepEqual(parseHostPort('127.0.0.1:0', undefined, true), { host: '127.0.0.1', port: 0 });
  assert.equal(parseHostPort('127.0.0.1:0'), undefined, 'port 0 only where the key allows it');
  // The wire layer's parser underneath: what it refuses, the configuration refuses.
  for (const s of [
    '1.2.3.4:65536',
    '[::1',
    '[::1]x',
    '[zz::1]:1',
    'a b:1',
    '1.2.3.4:-1',
    'x.onion:1',
    ':5',
    'a..b:1',
  ]) {
    assert.throws(() => parseEndpoint(s), WireError, s);
    assert.equal(parseHostPort(s), undefined, s);
  }
  assert.equal(parseHostPort('[fe80::1%eth0]:1'), undefined, 'no zones');
});

test('help lists every key the verb takes; bad config is exit code 2 through the CLI', async () => {
  const h = helpText('serve', 'x', ['torcontrol', 'announce']);
  assert.match(h, /--torcontrol/);
  assert.match(h, /--announce/);
  const write = process.stderr.write;
  let err = '';
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    assert.equal(await cliMain(['proxy', '--overlay', 'cjdns']), 2);
    assert.equal(await cliMain(['serve', '--bogus']), 2);
  } finally {
    process.stderr.write = write;
  }
  assert.match(err, /CONFIG_BAD_VALUE: flag --overlay/);
  assert.match(err, /CONFIG_UNKNOWN_KEY/);
});

test('docs/DAEMON.md configuration table: every key of CONFIG_KEYS with its type, default and meaning, nothing else', () => {
  const doc = readFileSync(join(process.cwd(), 'docs', 'DAEMON.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\| `([a-z0-9]+)` \| (.*) \|$/.exec(line);
    // split on | not preceded by a backslash (\| is a literal bar inside a cell)
    if (m && doc.indexOf('| key | type | default | meaning |') < doc.indexOf(line))
      rows.set(m[1]!, m[2]!.split(/ (?<!\\)\| /));
  }
  const specs = Object.entries(CONFIG_KEYS) as Array<[string, KeySpec<unknown>]>;
  for (const [name, k] of specs) {
    const row = rows.get(name);
    assert.ok(row, `key '${name}' is missing from docs/DAEMON.md's table`);
    assert.deepEqual(
      row,
      [keyTypeText(k), keyDefaultText(k), k.doc],
      `docs/DAEMON.md row of '${name}' differs from CONFIG_KEYS`,
    );
  }
  for (const name of rows.keys())
    assert.ok(name in CONFIG_KEYS, `docs/DAEMON.md lists '${name}', which CONFIG_KEYS does not have`);
  assert.ok(
    doc.includes(configTable()),
    'the table is exactly configTable() (same order); regenerate it from configTable()',
  );
});

test("defaults are the table's: loadConfig with nothing set gives every constant default, computed ones from network", () => {
  const c = loadConfig({}) as unknown as Record<string, unknown>;
  for (const [name, k] of Object.entries(CONFIG_KEYS) as Array<[string, KeySpec<unknown>]>) {
    if (typeof k.default !== 'function') assert.deepEqual(c[name], k.default, name);
  }
  const r = loadConfig({ args: ['--network', 'testnet3', '--announce', '198.51.100.1:1'] });
  assert.deepEqual([r.bitcoind.port, r.punchport, r.peer], [18333, 18333, [{ host: '198.51.100.1', port: 1 }]]);
});
