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
  verbKeys,
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

test("seednode: a repeatable relay key (bitcoind's -seednode) of every verb, added to announce, peer, addnode", () => {
  for (const verb of ['serve', 'proxy', 'relay'] as const) assert.ok(verbKeys(verb).includes('seednode'), verb);
  const s1 = { host: '198.51.100.1', port: 8334 };
  const s2 = { host: '2001:db8::2', port: 8334 };
  const own = { host: '203.0.113.9', port: 8334 };
  // Alone: every verb's relay list is the seednode list, and they are the default NAT-check servers.
  const p = conf('seednode=198.51.100.1:8334\nseednode=[2001:db8::2]:8334\n');
  const c = loadConfig({ args: ['--conf', p] });
  assert.deepEqual(c.seednode, [s1, s2]);
  assert.equal(c.sources.seednode, 'file');
  assert.deepEqual(c.announce, [s1, s2], 'serve announces to the seednodes');
  assert.deepEqual(c.peer, [s1, s2], 'the proxy learns from them');
  assert.deepEqual(c.addnode, [s1, s2], 'a relay keeps links with them');
  assert.deepEqual(c.natcheck, [s1, s2], 'and they are the NAT-check servers');
  // With the verb's own key: seednode first, then the key's own values, without repeats; announce/peer/addnode
  // keep working alone (the existing configs).
  const m = loadConfig({
    args: [
      '--conf',
      p,
      '--announce',
      '203.0.113.9:8334',
      '--announce',
      '198.51.100.1:8334',
      '--addnode',
      '203.0.113.9:8334',
    ],
  });
  assert.equal(m.sources.announce, 'flag');
  assert.deepEqual(m.announce, [s1, s2, own]);
  assert.deepEqual(m.peer, [s1, s2, own], 'peer still defaults to the announce list');
  const px = loadConfig({ env: { ONIONPUNCH_SEEDNODE: '198.51.100.1:8334' }, args: ['--peer', '203.0.113.9:8334'] });
  assert.deepEqual(px.peer, [s1, own]);
  assert.deepEqual(px.announce, [s1]);
  assert.deepEqual(loadConfig({ args: ['--addnode', '203.0.113.9:8334'] }).addnode, [own]);
  assert.deepEqual(loadConfig({ args: ['--seednode', '203.0.113.9:8334', '--addnode', '203.0.113.9:8334'] }).addnode, [
    own,
  ]);
  // Precedence within seednode is the list rule: a flag list replaces the file's.
  assert.deepEqual(loadConfig({ args: ['--conf', p, '--seednode', '203.0.113.9:8334'] }).announce, [own]);
  // Explicit natcheck= still replaces the default.
  assert.deepEqual(loadConfig({ args: ['--conf', p, '--natcheck', '192.0.2.9:8333'] }).natcheck, [
    { host: '192.0.2.9', port: 8333 },
  ]);
});

test('seednode: the same validation and error codes as announce (bad value, limits)', () => {
  for (const value of ['198.51.100.1', '198.51.100.1:0', '198.51.100.1:70000', 'host name:1', '[not-v6]:1']) {
    throwsConfig(() => loadConfig({ args: [`--seednode=${value}`] }), 'CONFIG_BAD_VALUE', {
      key: 'seednode',
      source: 'flag',
    });
    throwsConfig(() => loadConfig({ env: { ONIONPUNCH_SEEDNODE: value } }), 'CONFIG_BAD_VALUE', {
      key: 'seednode',
      source: 'env',
    });
  }
  throwsConfig(() => loadConfig({ args: ['--conf', conf('network=regtest\nseednode=x:y\n')] }), 'CONFIG_BAD_VALUE', {
    key: 'seednode',
    source: 'file',
    line: 2,
  });
  throwsConfig(() => loadConfig({ args: ['--seednode'] }), 'CONFIG_MISSING', { key: 'seednode', source: 'flag' });
  const lines = (k: string, n: number, base: number) =>
    Array.from({ length: n }, (_, i) => `${k}=198.51.100.${i % 250}:${base + i}`).join('\n');
  throwsConfig(
    () => loadConfig({ args: ['--conf', conf(lines('seednode', CONFIG_LIMITS.maxListValues + 1, 1000))] }),
    'CONFIG_LIMIT',
    { key: 'seednode', source: 'file' },
  );
  // Each list within the limit, the merged one over it: refused too, naming the verb's key.
  const half = CONFIG_LIMITS.maxListValues / 2 + 1;
  const both = `${lines('seednode', half, 1000)}\n${lines('announce', half, 2000)}\n`;
  throwsConfig(() => loadConfig({ args: ['--conf', conf(both)] }), 'CONFIG_LIMIT', {
    key: 'announce',
    source: 'file',
    msg: /with the seednode list/,
  });
  // Every mergedWith names an earlier repeatable host:port key (resolved before the key that takes it).
  const names = Object.keys(CONFIG_KEYS);
  for (const [name, k] of Object.entries(CONFIG_KEYS) as Array<[string, KeySpec<unknown>]>) {
    if (k.mergedWith === undefined) continue;
    const w = (CONFIG_KEYS as Record<string, KeySpec<unknown>>)[k.mergedWith];
    assert.ok(w?.list && w.kind === 'hostport' && k.list && k.kind === 'hostport', name);
    assert.ok(names.indexOf(k.mergedWith) < names.indexOf(name), `${k.mergedWith} resolves before ${name}`);
  }
});
