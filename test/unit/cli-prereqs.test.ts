/**
 * The prerequisite check of `onionpunch demo` / `lab` / `overlay selftest` (src/lab/prereqs.ts), over PATHs we
 * build: which binaries are missing, which packages, the apt-get command or the reason there is none, and what
 * ensurePrereqs says and does. The install path runs a stand-in `apt-get` (a shell script on the test PATH that
 * records its arguments and creates the binaries): installing real packages on a shared machine is not an option.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkPrereqs,
  ensurePrereqs,
  findBinary,
  isDebianLike,
  REQUIREMENTS,
  type PrereqEnv,
} from '../../src/lab/prereqs.js';
import { LabError, PrereqError } from '../../src/lab/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'op-prereqs-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function exe(d: string, name: string, body = '#!/bin/sh\nexit 0\n'): void {
  writeFileSync(join(d, name), body);
  chmodSync(join(d, name), 0o755);
}
/** A fresh bin directory holding executables `names`. */
function binDir(names: string[]): string {
  const d = join(dir, `bin${n++}`);
  mkdirSync(d);
  for (const name of names) exe(d, name);
  return d;
}
const DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n';
const env = (path: string, over: Partial<PrereqEnv> = {}): PrereqEnv => ({
  path,
  isRoot: true,
  osRelease: DEBIAN,
  ...over,
});
function capture(): { log: (l: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { lines, log: (l) => lines.push(l) };
}

test('the table names every binary the lab tools spawn, with its Debian package', () => {
  const all = Object.values(REQUIREMENTS)
    .flat()
    .map((r) => `${r.binary}:${r.package}`);
  for (const want of ['ip:iproute2', 'nft:nftables', 'tor:tor', 'tor-gencert:tor', 'i2pd:i2pd'])
    assert.ok(all.includes(want), want);
  for (const r of Object.values(REQUIREMENTS).flat()) assert.ok(r.why.length > 0, r.binary);
});

test('checkPrereqs: a PATH without tor-gencert and i2pd; packages once each; apt-get command', () => {
  const d = binDir(['ip', 'nft', 'tor', 'apt-get']);
  const not = binDir([]);
  exe(not, 'i2pd', 'not executable');
  chmodSync(join(not, 'i2pd'), 0o644);
  const c = checkPrereqs(['lab', 'tor', 'i2p', 'tor'], env(`${not}:${d}`));
  assert.deepEqual(
    c.missing.map((r) => r.binary),
    ['tor-gencert', 'i2pd', 'zip'],
    'a non-executable file does not count',
  );
  assert.deepEqual(c.packages, ['tor', 'i2pd', 'zip']);
  assert.deepEqual(c.install, [
    ['apt-get', 'update', '-qq'],
    ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'tor', 'i2pd', 'zip'],
  ]);
  const none = checkPrereqs(['lab'], env(d));
  assert.deepEqual([none.missing, none.packages, none.install], [[], [], null]);
  assert.equal(findBinary('nft', `/nonexistent:${d}`), join(d, 'nft'));
});

test('checkPrereqs: no install command off Debian/Ubuntu or without apt-get, with the reason', () => {
  const d = binDir(['ip', 'apt-get']);
  const fedora = checkPrereqs(['lab'], env(d, { osRelease: 'ID=fedora\nID_LIKE="rhel centos"\n' }));
  assert.deepEqual([fedora.packages, fedora.install], [['nftables'], null]);
  assert.match(fedora.cannotInstall!, /not Debian or Ubuntu/);
  const noApt = checkPrereqs(['lab'], env(binDir(['ip'])));
  assert.equal(noApt.install, null);
  assert.match(noApt.cannotInstall!, /apt-get not found/);
  assert.equal(isDebianLike('ID=linuxmint\nID_LIKE="ubuntu debian"\n'), true);
  assert.equal(isDebianLike('ID=ubuntu\n'), true);
  assert.equal(isDebianLike(''), false);
});

test('ensurePrereqs --no-install: says what is missing and why, prints the command, installs nothing', async () => {
  const d = binDir(['ip', 'nft', 'tor']);
  exe(d, 'apt-get', `#!/bin/sh\necho called > ${join(d, 'apt-called')}\nexit 0\n`);
  const { log, lines } = capture();
  await assert.rejects(
    ensurePrereqs(['lab', 'tor'], { what: 'onionpunch demo', install: false, log, env: env(d) }),
    (err: unknown) => {
      assert.ok(err instanceof PrereqError);
      assert.equal(err.code, 'LAB_PREREQ_MISSING');
      assert.deepEqual(err.packages, ['tor']);
      return true;
    },
  );
  assert.match(
    lines[0]!,
    /^onionpunch demo: missing tor-gencert \(the private Tor network's authority keys; package tor\)$/,
  );
  assert.equal(
    lines[1],
    'onionpunch demo: install with: apt-get update -qq && apt-get install -y -qq --no-install-recommends tor',
  );
  assert.throws(() => readFileSync(join(d, 'apt-called')), { code: 'ENOENT' }, 'apt-get was not run');
});

test('ensurePrereqs: not root is LAB_NOT_ROOT for the lab (naming what else is missing); Tor alone needs no root', async () => {
  const d = binDir(['tor', 'tor-gencert', 'apt-get']);
  await assert.rejects(
    ensurePrereqs(['lab', 'tor'], { what: 'onionpunch lab up', log: () => {}, env: env(d, { isRoot: false }) }),
    (err: unknown) => {
      assert.ok(err instanceof LabError);
      assert.equal(err.code, 'LAB_NOT_ROOT');
      assert.match(err.message, /needs root.*ip \(.*package iproute2\).*nft \(.*package nftables\)/);
      return true;
    },
  );
  await ensurePrereqs(['tor'], { what: 'onionpunch overlay selftest', log: () => {}, env: env(d, { isRoot: false }) });
  await assert.rejects(
    ensurePrereqs(['tor'], { what: 'x', log: () => {}, env: env(binDir(['apt-get']), { isRoot: false }) }),
    { code: 'LAB_PREREQ_MISSING', message: /install as root/ },
  );
});

test('ensurePrereqs off Debian: a typed error naming the package, no install attempted', async () => {
  const d = binDir(['ip', 'nft', 'apt-get']);
  await assert.rejects(
    ensurePrereqs(['i2p'], { what: 'x', log: () => {}, env: env(d, { osRelease: 'ID=arch\n' }) }),
    (err: unknown) => {
      assert.ok(err instanceof PrereqError);
      assert.equal(err.code, 'LAB_PREREQ_MISSING');
      assert.deepEqual(err.packages, ['i2pd', 'zip']);
      assert.match(err.message, /missing packages i2pd, zip \(not Debian or Ubuntu/);
      return true;
    },
  );
});

test('ensurePrereqs as root on Debian: says what and why, then runs apt-get update and install; failures are typed', async () => {
  const d = binDir(['ip', 'nft']);
  const record = join(d, 'apt-args');
  // The stand-in apt-get: records each call; `install` creates the tor binaries as the package would.
  exe(
    d,
    'apt-get',
    `#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> ${record}\n` +
      `if [ "$1" = install ]; then for b in tor tor-gencert; do printf '#!/bin/sh\\n' > ${d}/$b; /bin/chmod 755 ` +
      `${d}/$b; done; fi\nexit 0\n`,
  );
  const { log, lines } = capture();
  await ensurePrereqs(['lab', 'tor'], { what: 'onionpunch demo', log, env: env(d) });
  assert.deepEqual(readFileSync(record, 'utf8').trim().split('\n'), [
    'noninteractive update -qq',
    'noninteractive install -y -qq --no-install-recommends tor',
  ]);
  assert.match(
    lines[0]!,
    /missing tor \(the private Tor network \(authority, relays, clients\); package tor\), tor-gencert/,
  );
  assert.match(lines[1]!, /installing tor \(Debian\/Ubuntu, as root\): apt-get update -qq && apt-get install/);
  assert.match(lines[2]!, /installed tor/);

  const failing = binDir(['ip', 'nft']);
  exe(failing, 'apt-get', '#!/bin/sh\n[ "$1" = update ] && exit 0\nexit 100\n');
  await assert.rejects(ensurePrereqs(['lab', 'tor'], { what: 'x', log: () => {}, env: env(failing) }), {
    code: 'LAB_PREREQ_INSTALL_FAILED',
    message: /exit 100/,
  });
  const noop = binDir(['ip', 'nft', 'apt-get']);
  await assert.rejects(ensurePrereqs(['i2p'], { what: 'x', log: () => {}, env: env(noop) }), (err: unknown) => {
    assert.ok(err instanceof PrereqError);
    assert.equal(err.code, 'LAB_PREREQ_INSTALL_FAILED');
    assert.match(err.message, /still missing after apt-get: i2pd, zip/);
    return true;
  });
});

test(
  'onionpunch demo --no-install as a non-root user: LAB_NOT_ROOT before anything is built',
  { skip: process.getuid?.() === 0 ? false : 'needs root to drop privileges' },
  async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(
      process.execPath,
      [join(process.cwd(), 'bin/onionpunch.js'), 'demo', '--json', '--no-install'],
      { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 20_000, cwd: '/' },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /LAB_NOT_ROOT: onionpunch demo needs root/);
    assert.equal((JSON.parse(r.stdout.trim()) as { error: { code: string } }).error.code, 'LAB_NOT_ROOT');
  },
);
