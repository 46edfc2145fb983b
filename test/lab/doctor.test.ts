/**
 * `onionpunch doctor`'s overlay checks against real tor and i2pd set up right and wrong on purpose (no root,
 * loopback only): a private Tor network (A's control port with SAFECOOKIE, bootstrapped; B's SOCKS port) for
 * the passing lines; standalone tors (DisableNetwork 1: they serve only their control port) with a password
 * and with a cookie for the wrong password, no password, a stale cookie and a deleted cookie; a closed port;
 * each port where another is expected (control ↔ SOCKS, SAM ↔ control); a standalone i2pd whose SAM answers
 * HELLO (no transport peers, no reseed: it contacts nothing).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, unlink, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';
import { TorProcess, freePort, readText } from '../../src/lab/tor/private-tor-process.js';
import { openSam } from '../../src/overlay/i2p/connection.js';
import { checkSam, checkTorControl, checkTorSocks, formatCheck, type CheckResult } from '../../src/daemon/doctor.js';
import { verb, type VerbProcess } from '../helpers/daemon-verbs.js';
import { standaloneTor } from '../helpers/standalone-tor.js';

const CLI = fileURLToPath(new URL('../../../bin/onionpunch.js', import.meta.url));
const log = process.env['ONIONPUNCH_TEST_LOG'] ? (l: string) => process.stderr.write(l + '\n') : () => {};
const lo = (port: number) => ({ host: '127.0.0.1', port });
const PASSWORD = 'doctor-test-password';

function has(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const skip = !has('tor') ? 'tor is not installed' : !has('i2pd') ? 'i2pd is not installed' : false;

/** Runs `onionpunch doctor ...` (the real CLI); exit code and the --json report. */
type Report = { ok: boolean; checks: CheckResult[] };
function doctorJson(args: string[]): Promise<{ code: number | null; report: Report; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, 'doctor', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('exit', (code) => resolve({ code, report: JSON.parse(out || '{"ok":false,"checks":[]}'), err }));
  });
}

/** A standalone i2pd with SAM on loopback: NTCP2 unpublished, no SSU2, no reseed source, no services. */
async function standaloneI2pd(dir: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const ntcp2 = await freePort();
  const conf = join(dir, 'i2pd.conf');
  await writeFile(
    conf,
    [
      `log = file`,
      `logfile = ${dir}/i2pd.log`,
      `loglevel = warn`,
      `pidfile = ${dir}/i2pd.pid`,
      `daemon = false`,
      `service = false`,
      `host = 127.0.0.1`,
      `ipv4 = true`,
      `ipv6 = false`,
      `nat = false`,
      `netid = 77`,
      '[ntcp2]',
      'enabled = true',
      'published = false',
      `port = ${ntcp2}`,
      '[ssu2]',
      'enabled = false',
      '[http]',
      'enabled = false',
      '[httpproxy]',
      'enabled = false',
      '[socksproxy]',
      'enabled = false',
      '[sam]',
      'enabled = true',
      'address = 127.0.0.1',
      `port = ${port}`,
      '[bob]',
      'enabled = false',
      '[i2cp]',
      'enabled = false',
      '[i2pcontrol]',
      'enabled = false',
      '[upnp]',
      'enabled = false',
      '[nettime]',
      'enabled = false',
      '[precomputation]',
      'elgamal = false',
      // No reseed URL is ever contacted; the address book subscribes to a closed loopback port.
      '[reseed]',
      'verify = false',
      'urls = ',
      'yggurls = ',
      '[addressbook]',
      'enabled = true',
      'defaulturl = http://127.0.0.1:1/none.txt',
      'subscriptions = http://127.0.0.1:1/none.txt',
      '',
    ].join('\n'),
  );
  const child = spawn('i2pd', [`--datadir=${dir}`, `--conf=${conf}`], { stdio: 'ignore' });
  const t0 = Date.now();
  for (;;) {
    try {
      (await openSam(lo(port), { timeoutMs: 2000 })).destroy();
      return { port, child };
    } catch {
      if (child.exitCode !== null || Date.now() - t0 > 20_000) {
        child.kill('SIGKILL');
        throw new Error(`i2pd did not answer SAM HELLO: ${(await readText(join(dir, 'i2pd.log'))).slice(-800)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe('onionpunch doctor: tor control and SOCKS ports, SAM (real tor and i2pd)', { skip, timeout: 240_000 }, () => {
  let dir = '';
  let net: PrivateTor | undefined;
  const tors: TorProcess[] = [];
  let pw = 0;
  let ck = { port: 0, cookie: '' };
  let i2pd: ChildProcess | undefined;
  let sam = 0;
  let closed = 0;
  const relays: VerbProcess[] = [];
  let relayPorts: number[] = [];

  before(async () => {
    const args = ['--network', 'regtest', '--bind', '127.0.0.1', '--port', '0', '--json'];
    for (let i = 0; i < 2; i++) relays.push(verb('relay', args, []));
    relayPorts = await Promise.all(relays.map(async (r) => Number((await r.ready)['port'])));
    dir = await mkdtemp(join(tmpdir(), 'op-doctor-lab-'));
    closed = await freePort();
    const [p, c, i] = await Promise.all([
      standaloneTor(dir, 'password', { password: PASSWORD, name: 'doctor-password' }),
      standaloneTor(dir, 'cookie', { name: 'doctor-cookie' }),
      standaloneI2pd(await mkdtemp(join(dir, 'i2pd-'))),
    ]);
    tors.push(p.proc, c.proc);
    pw = p.port;
    ck = c;
    i2pd = i.child;
    sam = i.port;
    net = await startPrivateTor({ log, timeoutMs: 180_000 });
  });

  after(async () => {
    for (const r of relays) await r.stop();
    await net?.stop();
    for (const t of tors) await t.stop();
    if (i2pd && i2pd.exitCode === null) {
      i2pd.kill('SIGTERM');
      const t = setTimeout(() => i2pd?.kill('SIGKILL'), 5000);
      await new Promise((r) => i2pd!.once('exit', r));
      clearTimeout(t);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('tor-control: a bootstrapped tor with SAFECOOKIE passes; a tor without network is a warning', async () => {
    const a = net!.controlA;
    const ok = await checkTorControl({ torcontrol: lo(a.port), torpassword: undefined });
    assert.equal(ok.status, 'ok', formatCheck(ok));
    assert.match(ok.message, /authenticated \(SAFECOOKIE\), tor 0\.\d+\.\d+.*bootstrapped 100%/);
    const offline = await checkTorControl({ torcontrol: lo(pw), torpassword: PASSWORD });
    assert.equal(offline.status, 'warn', formatCheck(offline));
    assert.match(offline.message, /authenticated \(password\).*bootstrapped \d+%/);
  });

  test('tor-control: wrong password, missing password, closed port, the SOCKS port instead: each its fix', async () => {
    const wrong = await checkTorControl({ torcontrol: lo(pw), torpassword: 'not-the-password' });
    assert.equal(wrong.status, 'fail');
    assert.equal(wrong.code, 'TOR_AUTH_FAILED');
    assert.match(wrong.fix ?? '', /tor refused the password: set torpassword=/);
    const missing = await checkTorControl({ torcontrol: lo(pw), torpassword: undefined });
    assert.equal(missing.code, 'TOR_AUTH_PASSWORD_REQUIRED');
    assert.match(missing.fix ?? '', /tor wants a control password/);
    const down = await checkTorControl({ torcontrol: lo(closed), torpassword: undefined });
    assert.equal(down.code, 'TOR_CONNECT');
    assert.match(down.fix ?? '', new RegExp(`ControlPort ${closed}`));
    const socks = await checkTorControl({ torcontrol: lo(net!.socksB.port), torpassword: undefined }, 3000);
    assert.equal(socks.status, 'fail', formatCheck(socks));
    assert.match(socks.fix ?? '', /not its SocksPort/);
  });

  test('tor-control: a stale cookie file and a deleted one fail with the cookie fixes', async () => {
    const good = await readFile(ck.cookie);
    try {
      // Another tor's cookie left at the path this tor names (two tors sharing CookieAuthFile).
      await writeFile(ck.cookie, randomBytes(32));
      const stale = await checkTorControl({ torcontrol: lo(ck.port), torpassword: undefined });
      assert.equal(stale.code, 'TOR_AUTH_SERVER_HASH', formatCheck(stale));
      assert.match(stale.fix ?? '', /its own CookieAuthFile/);
      await unlink(ck.cookie);
      const gone = await checkTorControl({ torcontrol: lo(ck.port), torpassword: undefined });
      assert.equal(gone.code, 'TOR_COOKIE_UNREADABLE', formatCheck(gone));
      assert.match(gone.fix ?? '', /CookieAuthFileGroupReadable/);
    } finally {
      await writeFile(ck.cookie, good);
    }
    assert.equal((await checkTorControl({ torcontrol: lo(ck.port), torpassword: undefined })).status, 'warn');
    // A password set for a tor that takes only the cookie: serve ignores it; doctor says so.
    const withPassword = await checkTorControl({ torcontrol: lo(ck.port), torpassword: PASSWORD });
    assert.equal(withPassword.status, 'warn', formatCheck(withPassword));
    assert.match(withPassword.fix ?? '', /remove torpassword=/);
  });

  test("tor-socks: tor's SOCKS port passes; its control port and a closed port fail", async () => {
    const ok = await checkTorSocks('tor-socks', 'proxy', lo(net!.socksB.port), lo(9064));
    assert.equal(ok.status, 'ok', formatCheck(ok));
    const control = await checkTorSocks('tor-socks', 'proxy', lo(net!.controlA.port), lo(9064));
    assert.equal(control.code, 'DOCTOR_NOT_SOCKS5', formatCheck(control));
    const down = await checkTorSocks('tor-onion', 'onion', lo(closed), lo(9064));
    assert.equal(down.status, 'fail');
    assert.match(down.fix ?? '', /set onion= to where it listens/);
  });

  test("sam: i2pd's SAM passes; a closed port and tor's control port fail", async () => {
    const ok = await checkSam(lo(sam));
    assert.equal(ok.status, 'ok', formatCheck(ok));
    const down = await checkSam(lo(closed));
    assert.equal(down.code, 'SAM_UNREACHABLE');
    assert.match(down.fix ?? '', /\[sam\] enabled = true/);
    const tor = await checkSam(lo(pw), 3000);
    assert.equal(tor.status, 'fail', formatCheck(tor));
    assert.match(tor.fix ?? '', /does not answer as a SAM bridge/);
  });

  test('the CLI: serve and proxy set up right pass (exit 0); tor set up wrong fails (exit 1) with the fix', async () => {
    const common = ['--network', 'regtest', '--bind', '127.0.0.1'];
    const serve = await doctorJson([
      'serve',
      ...common,
      '--torcontrol',
      `127.0.0.1:${net!.controlA.port}`,
      ...relayPorts.flatMap((p) => ['--announce', `127.0.0.1:${p}`]),
      '--bitcoind',
      `127.0.0.1:${relayPorts[0]}`,
      '--zerortt=1',
    ]);
    assert.equal(serve.code, 0, JSON.stringify(serve.report) + serve.err);
    assert.deepEqual(
      serve.report.checks.map((c) => `${c.id}:${c.status}`),
      ['tor-control:ok', 'relay:ok', 'relay:ok', 'nat:ok', 'zerortt:ok', 'bitcoind-p2p:ok'],
    );
    const proxy = await doctorJson([
      'proxy',
      ...common,
      '--proxy',
      `127.0.0.1:${net!.socksB.port}`,
      ...relayPorts.flatMap((p) => ['--peer', `127.0.0.1:${p}`]),
      '--listen',
      `127.0.0.1:${closed}`,
      '--maxpunchpeers',
      '0',
    ]);
    assert.equal(proxy.code, 0, JSON.stringify(proxy.report) + proxy.err);
    assert.deepEqual(
      proxy.report.checks.map((c) => `${c.id}:${c.status}`),
      ['tor-socks:ok', 'relay:ok', 'relay:ok', 'nat:ok', 'proxy-listen:warn'],
    );
    const wrong = await doctorJson([
      'serve',
      ...common,
      '--torcontrol',
      `127.0.0.1:${pw}`,
      '--torpassword',
      'nope',
      ...relayPorts.flatMap((p) => ['--announce', `127.0.0.1:${p}`]),
      '--bitcoind',
      `127.0.0.1:${relayPorts[0]}`,
    ]);
    assert.equal(wrong.code, 1);
    const tc = wrong.report.checks.find((c) => c.id === 'tor-control')!;
    assert.equal(tc.code, 'TOR_AUTH_FAILED');
    assert.equal(wrong.report.checks.filter((c) => c.status === 'fail').length, 1);
    assert.equal(wrong.report.checks.find((c) => c.id === 'zerortt')?.status, 'skip', 'zerortt=0: skipped');
    // I2P coordination: SAM is checked; tor (only the node's .onion route) down is a warning, not a failure.
    const i2p = await doctorJson([
      'proxy',
      ...common,
      '--overlay',
      'i2p',
      '--i2psam',
      `127.0.0.1:${sam}`,
      '--proxy',
      `127.0.0.1:${closed}`,
      ...relayPorts.flatMap((p) => ['--peer', `127.0.0.1:${p}`]),
      '--listen',
      `127.0.0.1:${closed}`,
      '--maxpunchpeers',
      '0',
    ]);
    assert.equal(i2p.code, 0, JSON.stringify(i2p.report));
    assert.deepEqual(
      i2p.report.checks.map((c) => `${c.id}:${c.status}`),
      ['tor-onion:warn', 'sam:ok', 'relay:ok', 'relay:ok', 'nat:ok', 'proxy-listen:warn'],
    );
  });
});
