/**
 * `onionpunch doctor` against real components set up right and wrong on purpose (loopback, no root, no tor):
 * two real `onionpunch relay` processes (relay and NAT checks), a closed port, a relay of another network, the
 * real proxy daemon's SOCKS port where tor's should be, a relay's P2P port where a SOCKS port should be, a Unix
 * socket and a regular file as hand-off targets. The CLI's exit codes and its --json report are checked too.
 * Tor's and I2P's checks against real tor and i2pd: test/lab/doctor.test.ts.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/daemon/config.js';
import { runProxy } from '../../src/daemon/proxy.js';
import { Logger } from '../../src/daemon/log.js';
import {
  checkHandoff, checkListen, checkNat, checkRelay, checkTorSocks, formatCheck, runDoctor, type CheckResult,
} from '../../src/daemon/doctor.js';
import { freePort } from '../../src/lab/tor/private-tor-process.js';
import { verb, type VerbProcess } from '../helpers/daemon-verbs.js';

const CLI = fileURLToPath(new URL('../../../bin/onionpunch.js', import.meta.url));
const lo = (port: number) => ({ host: '127.0.0.1', port });

/** Runs `onionpunch doctor ...`; exit code, stdout, stderr. */
function doctor(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, 'doctor', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('exit', (code) => resolve({ code, out, err }));
  });
}

const byId = (checks: CheckResult[], id: string, target?: string): CheckResult => {
  const c = checks.find((x) => x.id === id && (target === undefined || x.target === target));
  assert.ok(c, `a ${id} check${target ? ` for ${target}` : ''} in ${JSON.stringify(checks)}`);
  return c;
};

describe('onionpunch doctor: relays, NAT, node port, hand-off, SOCKS ports', { timeout: 120_000 }, () => {
  const procs: VerbProcess[] = [];
  let relay1 = 0;
  let relay2 = 0;
  let mainRelay = 0;
  let closed = 0;
  let dir = '';
  let unixServer: Server | undefined;
  let proxyStop: (() => Promise<number>) | undefined;
  let proxyPort = 0;

  before(async () => {
    const base = ['--bind', '127.0.0.1', '--port', '0', '--json', '--log', 'json'];
    for (const net of ['regtest', 'regtest', 'main']) procs.push(verb('relay', [...base, '--network', net], []));
    [relay1, relay2, mainRelay] = await Promise.all(procs.map(async (p) => Number((await p.ready)['port'])));
    closed = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'op-doctor-'));
    unixServer = createServer(() => undefined).listen(join(dir, 'handoff.sock'));
    await once(unixServer, 'listening');
    writeFileSync(join(dir, 'plain-file'), 'x');
    // The real proxy daemon (its tor is a closed port: the SOCKS server runs regardless).
    const cfg = loadConfig({ args: ['--network', 'regtest', '--listen', '127.0.0.1:0', '--proxy', `127.0.0.1:${closed}`] });
    const ac = new AbortController();
    let ready!: (i: Record<string, unknown>) => void;
    const up = new Promise<Record<string, unknown>>((r) => (ready = r));
    const done = runProxy(cfg, new Logger({ format: 'json', level: 'error', write: () => undefined }), { ready, signal: ac.signal });
    done.catch(() => undefined);
    proxyPort = Number(String((await up)['socks']).split(':').pop());
    proxyStop = async () => (ac.abort(), done);
  });

  after(async () => {
    await proxyStop?.();
    unixServer?.close();
    for (const p of procs) await p.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('relay: a real relay passes (sendaddrv2); a closed port and a relay of another network fail with the fix', async () => {
    const ok = await checkRelay(lo(relay1), 'peer', 'regtest');
    assert.equal(ok.status, 'ok', formatCheck(ok));
    assert.match(ok.message, /sendaddrv2/);
    const down = await checkRelay(lo(closed), 'peer', 'regtest');
    assert.equal(down.status, 'fail');
    assert.equal(down.code, 'PEER_SOCKET');
    assert.match(down.fix ?? '', /not reachable/);
    const other = await checkRelay(lo(mainRelay), 'announce', 'regtest');
    assert.equal(other.status, 'fail', formatCheck(other));
    assert.match(other.fix ?? '', /network= must be the same/);
    const onion = await checkRelay({ host: 'a'.repeat(56) + '.onion', port: 8333 }, 'announce', 'regtest');
    assert.equal(onion.code, 'DOCTOR_RELAY_OVERLAY');
  });

  test('nat: two real relays give eim; one closed NAT-check server gives unknown; one server is too few', async () => {
    const eim = await checkNat({ natcheck: [lo(relay1), lo(relay2)], network: 'regtest', bind: '127.0.0.1' });
    assert.equal(eim.status, 'ok', formatCheck(eim));
    assert.match(eim.message, /^eim \(port-preserving\), public address 127\.0\.0\.1/);
    const half = await checkNat({ natcheck: [lo(relay1), lo(closed)], network: 'regtest', bind: '127.0.0.1' });
    assert.equal(half.status, 'fail', formatCheck(half));
    assert.equal(half.code, 'DOCTOR_NAT_UNKNOWN');
    assert.match(half.message, new RegExp(`127\\.0\\.0\\.1:${closed}`));
    const one = await checkNat({ natcheck: [lo(relay1)], network: 'regtest', bind: '127.0.0.1' });
    assert.equal(one.code, 'DOCTOR_NAT_TOO_FEW_SERVERS');
  });

  test("serve's hand-off: the node's P2P port answers or not; a Unix socket exists, a file or nothing does not", async () => {
    // A relay is a real P2P responder: it stands in for the node's P2P port here (bcoin: test/lab/doctor.test.ts).
    const p2p = await checkHandoff({ bitcoind: lo(relay1), handoff: 'splice', network: 'regtest' });
    assert.equal(p2p.status, 'ok', formatCheck(p2p));
    const noNode = await checkHandoff({ bitcoind: lo(closed), handoff: 'splice', network: 'regtest' });
    assert.equal(noNode.code, 'PEER_SOCKET');
    assert.match(noNode.fix ?? '', /-listen=1/);
    const sock = await checkHandoff({ bitcoind: lo(closed), handoff: `unix:${join(dir, 'handoff.sock')}`, network: 'regtest' });
    assert.equal(sock.status, 'ok', formatCheck(sock));
    const file = await checkHandoff({ bitcoind: lo(closed), handoff: `unix:${join(dir, 'plain-file')}`, network: 'regtest' });
    assert.equal(file.code, 'DOCTOR_HANDOFF_NOT_SOCKET');
    const none = await checkHandoff({ bitcoind: lo(closed), handoff: `unix:${join(dir, 'missing.sock')}`, network: 'regtest' });
    assert.equal(none.code, 'ENOENT');
  });

  test("SOCKS ports: onionpunch proxy's own port is not tor; a P2P port is not SOCKS5; listen= running or not", async () => {
    const notTor = await checkTorSocks('tor-socks', 'proxy', lo(proxyPort), undefined);
    assert.equal(notTor.status, 'warn', formatCheck(notTor));
    assert.equal(notTor.code, 'DOCTOR_NOT_TOR');
    const self = await checkTorSocks('tor-socks', 'proxy', lo(proxyPort), lo(proxyPort));
    assert.equal(self.status, 'fail');
    assert.match(self.fix ?? '', /tor's SocksPort/);
    const p2p = await checkTorSocks('tor-socks', 'proxy', lo(relay1), undefined);
    assert.equal(p2p.code, 'DOCTOR_NOT_SOCKS5', formatCheck(p2p));
    const down = await checkTorSocks('tor-socks', 'proxy', lo(closed), undefined);
    assert.equal(down.code, 'ECONNREFUSED');
    assert.match(down.fix ?? '', /SocksPort/);
    assert.equal((await checkListen(lo(proxyPort))).status, 'ok');
    const stopped = await checkListen(lo(closed));
    assert.equal(stopped.status, 'warn');
    assert.equal((await checkListen(lo(relay1))).code, 'DOCTOR_NOT_SOCKS5');
  });

  test('runDoctor picks the checks of the role from the configuration', async () => {
    const cfg = loadConfig({
      args: ['--network', 'regtest', '--bind', '127.0.0.1', '--proxy', `127.0.0.1:${closed}`,
        '--peer', `127.0.0.1:${relay1}`, '--peer', `127.0.0.1:${relay2}`, '--listen', `127.0.0.1:${proxyPort}`],
    });
    const checks = await runDoctor(cfg, 'proxy');
    assert.deepEqual(checks.map((c) => c.id), ['tor-socks', 'relay', 'relay', 'nat', 'proxy-listen']);
    assert.equal(byId(checks, 'nat').status, 'ok');
    assert.equal(byId(checks, 'tor-socks').status, 'fail');
  });

  test('CLI: all checks pass → exit 0; a failing check → exit 1 with its fix line; --json; bad usage → exit 2', async () => {
    const good = await doctor(['relay', '--network', 'regtest', '--addnode', `127.0.0.1:${relay1}`, '--addnode', `127.0.0.1:${relay2}`]);
    assert.equal(good.code, 0, good.out + good.err);
    assert.match(good.out, /^onionpunch doctor relay \(network regtest/);
    assert.match(good.out, /^ok {4}relay/m);
    assert.match(good.out, /2 checks: 0 failed, 0 warnings/);
    const bad = await doctor(['relay', '--network', 'regtest', '--addnode', `127.0.0.1:${relay1}`, '--addnode', `127.0.0.1:${closed}`, '--json']);
    assert.equal(bad.code, 1, bad.out + bad.err);
    const report = JSON.parse(bad.out) as { ok: boolean; role: string; checks: CheckResult[] };
    assert.equal(report.ok, false);
    assert.equal(report.role, 'relay');
    assert.equal(byId(report.checks, 'relay', `127.0.0.1:${closed}`).code, 'PEER_SOCKET');
    assert.equal(byId(report.checks, 'relay', `127.0.0.1:${relay1}`).status, 'ok');
    const text = await doctor(['relay', '--network', 'regtest', '--addnode', `127.0.0.1:${closed}`]);
    assert.match(text.out, new RegExp(`^FAIL  relay +127\\.0\\.0\\.1:${closed}  PEER_SOCKET: .*; fix: the addnode= relay is not reachable`, 'm'));
    for (const args of [[], ['frobnicate'], ['proxy', '--bogus-option'], ['proxy', '--network', 'mainnet']]) {
      const u = await doctor(args);
      assert.equal(u.code, 2, `${args.join(' ')}: ${u.err}`);
      assert.equal(u.out, '');
    }
  });
});
