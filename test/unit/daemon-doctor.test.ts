/**
 * `onionpunch doctor` against real components set up right and wrong on purpose (loopback, no root, no tor):
 * two real `onionpunch relay` processes (relay and NAT checks), a closed port, a relay of another network, the
 * real proxy daemon's SOCKS port where tor's should be, a relay's P2P port where a SOCKS port should be, a Unix
 * socket and a regular file as hand-off targets; a real bcoin 1.0.2 node (its P2P port, its JSON-RPC with the right
 * and wrong credentials, a missing cookie, a closed port, its P2P port as rpcport). Bitcoin Core is not installed
 * here, so the proxy-settings logic for Core's getnetworkinfo is fed by an HTTP server answering in Core's format
 * (a stand-in, named as such). The CLI's exit codes and its --json report are checked too.
 * Tor's and I2P's checks against real tor and i2pd: test/lab/doctor.test.ts.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/daemon/config.js';
import { runProxy } from '../../src/daemon/proxy.js';
import { Logger } from '../../src/daemon/log.js';
import {
  checkHandoff,
  checkListen,
  checkNat,
  checkNodeRpc,
  checkRelay,
  checkTorSocks,
  checkZeroRtt,
  formatCheck,
  runDoctor,
  type CheckResult,
} from '../../src/daemon/doctor.js';
import { NodeRpc, nodeRpcFromConfig } from '../../src/daemon/node-rpc.js';
import { freePort } from '../../src/lab/tor/private-tor-process.js';
import { bcoinSkip, startBcoin, type LoopbackBcoin } from '../helpers/bcoin-node.js';
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
  let bcoin: LoopbackBcoin | undefined;
  const API_KEY = 'doctor-api-key';

  before(async () => {
    if (!bcoinSkip) bcoin = await startBcoin('bcoin', { apiKey: API_KEY });
    const base = ['--bind', '127.0.0.1', '--port', '0', '--json', '--log', 'json'];
    for (const net of ['regtest', 'regtest', 'main']) procs.push(verb('relay', [...base, '--network', net], []));
    [relay1, relay2, mainRelay] = await Promise.all(procs.map(async (p) => Number((await p.ready)['port'])));
    closed = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'op-doctor-'));
    unixServer = createServer(() => undefined).listen(join(dir, 'handoff.sock'));
    await once(unixServer, 'listening');
    writeFileSync(join(dir, 'plain-file'), 'x');
    // The real proxy daemon (its tor is a closed port: the SOCKS server runs regardless).
    const args = ['--network', 'regtest', '--listen', '127.0.0.1:0', '--proxy', `127.0.0.1:${closed}`];
    const cfg = loadConfig({ args });
    const ac = new AbortController();
    let ready!: (i: Record<string, unknown>) => void;
    const up = new Promise<Record<string, unknown>>((r) => (ready = r));
    const quiet = new Logger({ format: 'json', level: 'error', write: () => undefined });
    const done = runProxy(cfg, quiet, { ready, signal: ac.signal });
    done.catch(() => undefined);
    proxyPort = Number(
      String((await up)['socks'])
        .split(':')
        .pop(),
    );
    proxyStop = async () => (ac.abort(), done);
  });

  after(async () => {
    await bcoin?.stop();
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

  test('zerortt: warm port via two real relays passes; wrong externalip, closed server fail; off: skip', async () => {
    const cfg = (over: Partial<Parameters<typeof checkZeroRtt>[0]> = {}) => ({
      zerortt: true,
      natcheck: [lo(relay1), lo(relay2)],
      network: 'regtest' as const,
      bind: '127.0.0.1',
      externalip: undefined,
      announceinterval: 60,
      ...over,
    });
    // Loopback keeps port numbers: serve would announce the predicted endpoint, and the relays observe the same.
    const ok = await checkZeroRtt(cfg());
    assert.equal(ok.status, 'ok', formatCheck(ok));
    assert.match(ok.message, /^warm punch port (\d+) maps to 127\.0\.0\.1:\1 \(predicted, .*observed the same\)/);
    assert.match(ok.message, /NODE_HOLEPUNCH_ZRTT, re-checked every 60 s$/);
    // An externalip the warm port does not map to: serve would announce without the bit, silently.
    const wrongIp = await checkZeroRtt(cfg({ externalip: '198.51.100.7' }));
    assert.equal(wrongIp.status, 'fail', formatCheck(wrongIp));
    assert.equal(wrongIp.code, 'DOCTOR_ZRTT_ADDRESS');
    assert.match(
      wrongIp.message,
      /maps to 127\.0\.0\.1:\d+, but the announced address is 198\.51\.100\.7 \(externalip=/,
    );
    assert.match(wrongIp.fix ?? '', /^set externalip=127\.0\.0\.1, or remove externalip=/);
    // The right externalip passes.
    assert.equal((await checkZeroRtt(cfg({ externalip: '127.0.0.1' }))).status, 'ok');
    const half = await checkZeroRtt(cfg({ natcheck: [lo(relay1), lo(closed)] }));
    assert.equal(half.code, 'DOCTOR_ZRTT_NOT_EIM', formatCheck(half));
    assert.match(half.message, /says unknown/);
    assert.match(half.fix ?? '', /fix the nat line first/);
    const one = await checkZeroRtt(cfg({ natcheck: [lo(relay1)] }));
    assert.equal(one.code, 'DOCTOR_NAT_TOO_FEW_SERVERS');
    const off = await checkZeroRtt(cfg({ zerortt: false }));
    assert.equal(off.status, 'skip');
    assert.match(formatCheck(off), /^skip  zerortt +skipped: zerortt=0/);
  });

  test("serve's hand-off: the node's P2P port answers or not; a Unix socket exists, a file or nothing does not", async () => {
    // A relay is a real P2P responder: it stands in for the node's P2P port here (bcoin: test/lab/doctor.test.ts).
    const p2p = await checkHandoff({ bitcoind: lo(relay1), handoff: 'splice', network: 'regtest' });
    assert.equal(p2p.status, 'ok', formatCheck(p2p));
    const noNode = await checkHandoff({ bitcoind: lo(closed), handoff: 'splice', network: 'regtest' });
    assert.equal(noNode.code, 'PEER_SOCKET');
    assert.match(noNode.fix ?? '', /-listen=1/);
    const unix = (name: string) => ({
      bitcoind: lo(closed),
      handoff: `unix:${join(dir, name)}`,
      network: 'regtest' as const,
    });
    const sock = await checkHandoff(unix('handoff.sock'));
    assert.equal(sock.status, 'ok', formatCheck(sock));
    const file = await checkHandoff(unix('plain-file'));
    assert.equal(file.code, 'DOCTOR_HANDOFF_NOT_SOCKET');
    const none = await checkHandoff(unix('missing.sock'));
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
      args: [
        '--network',
        'regtest',
        '--bind',
        '127.0.0.1',
        '--proxy',
        `127.0.0.1:${closed}`,
        '--maxpunchpeers',
        '0',
        '--peer',
        `127.0.0.1:${relay1}`,
        '--peer',
        `127.0.0.1:${relay2}`,
        '--listen',
        `127.0.0.1:${proxyPort}`,
      ],
    });
    const checks = await runDoctor(cfg, 'proxy');
    assert.deepEqual(
      checks.map((c) => c.id),
      ['tor-socks', 'relay', 'relay', 'nat', 'proxy-listen'],
    );
    assert.equal(byId(checks, 'nat').status, 'ok');
    assert.equal(byId(checks, 'tor-socks').status, 'fail');
  });

  test('CLI: all checks pass → exit 0; a failing check → exit 1 with its fix line; --json; bad usage → exit 2', async () => {
    const addnode = (...ports: number[]) => ports.flatMap((p) => ['--addnode', `127.0.0.1:${p}`]);
    const good = await doctor(['relay', '--network', 'regtest', ...addnode(relay1, relay2)]);
    assert.equal(good.code, 0, good.out + good.err);
    assert.match(good.out, /^onionpunch doctor relay \(network regtest/);
    assert.match(good.out, /^ok {4}relay/m);
    assert.match(good.out, /2 checks: 0 failed, 0 warnings/);
    const bad = await doctor(['relay', '--network', 'regtest', ...addnode(relay1, closed), '--json']);
    assert.equal(bad.code, 1, bad.out + bad.err);
    const report = JSON.parse(bad.out) as { ok: boolean; role: string; checks: CheckResult[] };
    assert.equal(report.ok, false);
    assert.equal(report.role, 'relay');
    assert.equal(byId(report.checks, 'relay', `127.0.0.1:${closed}`).code, 'PEER_SOCKET');
    assert.equal(byId(report.checks, 'relay', `127.0.0.1:${relay1}`).status, 'ok');
    const text = await doctor(['relay', '--network', 'regtest', '--addnode', `127.0.0.1:${closed}`]);
    const line = `^FAIL  relay +127\\.0\\.0\\.1:${closed}  PEER_SOCKET: .*; fix: the addnode= relay is not reachable`;
    assert.match(text.out, new RegExp(line, 'm'));
    // serve with zerortt=1 and an externalip its warm port does not map to (tor's control port closed: it fails
    // too); without zerortt the zerortt line is a skip.
    const serveArgs = ['serve', '--network', 'regtest', '--bind', '127.0.0.1', '--torcontrol', `127.0.0.1:${closed}`];
    serveArgs.push('--announce', `127.0.0.1:${relay1}`, '--announce', `127.0.0.1:${relay2}`);
    serveArgs.push('--bitcoind', `127.0.0.1:${relay1}`);
    const zr = await doctor([...serveArgs, '--zerortt=1', '--externalip', '198.51.100.7', '--json']);
    assert.equal(zr.code, 1, zr.out + zr.err);
    const zrReport = JSON.parse(zr.out) as { checks: CheckResult[] };
    assert.deepEqual(
      zrReport.checks.map((c) => `${c.id}:${c.status}`),
      ['tor-control:fail', 'relay:ok', 'relay:ok', 'nat:ok', 'zerortt:fail', 'bitcoind-p2p:ok'],
    );
    assert.equal(byId(zrReport.checks, 'zerortt').code, 'DOCTOR_ZRTT_ADDRESS');
    const zrText = await doctor([...serveArgs, '--zerortt=1', '--externalip', '198.51.100.7']);
    assert.match(zrText.out, /^FAIL  zerortt +127\.0\.0\.1:\d+ .*; fix: set externalip=127\.0\.0\.1, or remove/m);
    const skip = await doctor(serveArgs);
    assert.match(skip.out, /^skip  zerortt +skipped: zerortt=0/m);
    assert.match(skip.out, /6 checks: 1 failed, 0 warnings, 1 skipped/);
    for (const args of [[], ['frobnicate'], ['proxy', '--bogus-option'], ['proxy', '--network', 'mainnet']]) {
      const u = await doctor(args);
      assert.equal(u.code, 2, `${args.join(' ')}: ${u.err}`);
      assert.equal(u.out, '');
    }
  });

  test('seednode=: every role checks its seednode relays and names that key in the fix', async () => {
    const seed = (...ports: number[]) => ports.flatMap((p) => ['--seednode', `127.0.0.1:${p}`]);
    const serveArgs = ['serve', '--network', 'regtest', '--bind', '127.0.0.1', '--torcontrol', `127.0.0.1:${closed}`];
    const serve = await doctor([...serveArgs, ...seed(relay1, relay2), '--bitcoind', `127.0.0.1:${relay1}`, '--json']);
    const checks = (JSON.parse(serve.out) as { checks: CheckResult[] }).checks;
    assert.equal(byId(checks, 'relay', `127.0.0.1:${relay1}`).status, 'ok', serve.out);
    assert.equal(byId(checks, 'relay', `127.0.0.1:${relay2}`).status, 'ok', serve.out);
    assert.equal(byId(checks, 'nat').status, 'ok', 'the seednodes are the NAT-check servers');
    const text = await doctor(['relay', '--network', 'regtest', ...seed(closed)]);
    const line = `^FAIL  relay +127\\.0\\.0\\.1:${closed}  PEER_SOCKET: .*; fix: the seednode= relay is not reachable`;
    assert.match(text.out, new RegExp(line, 'm'));
    const proxy = await doctor(['proxy', '--network', 'regtest', '--addnode', `127.0.0.1:${closed}`, '--json']);
    const none = byId((JSON.parse(proxy.out) as { checks: CheckResult[] }).checks, 'relay');
    assert.equal(none.status, 'warn');
    assert.match(none.message, /no seednode= \(or peer=\) relays configured/);
  });

  const rpcCfg = (over: string[]) => loadConfig({ args: ['--network', 'regtest', ...over] });

  test(
    "node: bcoin's P2P port and RPC pass; wrong password, missing cookie, closed port, P2P port as rpcport fail",
    { skip: bcoinSkip },
    async () => {
      const b = bcoin!.cfg;
      const p2p = await checkHandoff({ bitcoind: lo(b.port), handoff: 'splice', network: 'regtest' });
      assert.equal(p2p.status, 'ok', formatCheck(p2p));
      assert.match(p2p.message, /bcoin/);
      const listen = lo(9064);
      const run = (over: string[]) =>
        Promise.all(checkNodeRpc(nodeRpcFromConfig(rpcCfg(over), { timeoutMs: 3000 }), { listen, proxy: lo(9050) }));
      const [ok, proxySettings] = await run(['--rpcport', String(b.rpcPort), '--rpcpassword', API_KEY]);
      assert.equal(ok!.status, 'ok', formatCheck(ok!));
      assert.match(ok!.message, /getnetworkinfo ok \(\/bcoin:/);
      // bcoin answers networks: [] — its proxy cannot be read back, so it is a warning naming the line to set.
      assert.equal(proxySettings!.code, 'DOCTOR_NODE_PROXY_UNKNOWN', formatCheck(proxySettings!));
      assert.match(proxySettings!.fix ?? '', /proxy: 127\.0\.0\.1:9064/);
      const [wrong, after] = await run(['--rpcport', String(b.rpcPort), '--rpcpassword', 'wrong']);
      assert.equal(wrong!.code, 'RPC_AUTH', formatCheck(wrong!));
      assert.match(wrong!.fix ?? '', /rpcuser=\/rpcpassword=/);
      assert.equal(after!.code, 'DOCTOR_RPC_FAILED');
      const [cookie] = await run(['--rpcport', String(b.rpcPort), '--rpccookiefile', join(dir, 'missing-cookie')]);
      assert.equal(cookie!.code, 'RPC_COOKIE');
      const [down] = await run(['--rpcport', String(closed), '--rpcpassword', API_KEY]);
      assert.equal(down!.code, 'RPC_CONNECT');
      assert.match(down!.fix ?? '', /server=1/);
      const [p2pAsRpc] = await run(['--rpcport', String(b.port), '--rpcpassword', API_KEY]);
      assert.equal(p2pAsRpc!.status, 'fail', formatCheck(p2pAsRpc!));
    },
  );

  test(
    "node-proxy: Core's getnetworkinfo with ipv4/ipv6 through listen passes, ipv4 direct fails with the " +
      'per-network lines',
    async () => {
      // Stand-in for Bitcoin Core (not installed here): its getnetworkinfo reply shape, over the real RPC client.
      let networks: unknown[] = [];
      const server = createHttpServer((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          const { id } = JSON.parse(body) as { id: number };
          const result = { version: 300000, subversion: '/Satoshi:30.0.0/', connections: 3, networks };
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ result, error: null, id }));
        });
      }).listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as { port: number }).port;
      const rpc = new NodeRpc({ host: '127.0.0.1', port, auth: { user: 'u', password: 'p' } });
      const net = (name: string, proxy: string, limited = false) => ({
        name,
        limited,
        reachable: !limited,
        proxy,
        proxy_randomize_credentials: proxy !== '',
      });
      try {
        const cfg = { listen: lo(9064), proxy: lo(9050) };
        networks = [
          net('ipv4', '127.0.0.1:9064'),
          net('ipv6', '127.0.0.1:9064'),
          net('onion', '127.0.0.1:9050'),
          net('i2p', '', true),
        ];
        const [rpcOk, good] = await Promise.all(checkNodeRpc(rpc, cfg));
        assert.match(rpcOk!.message, /Satoshi:30\.0\.0/);
        assert.equal(good!.status, 'ok', formatCheck(good!));
        const via = ['ipv4 via 127.0.0.1:9064', 'ipv6 via 127.0.0.1:9064', 'onion via 127.0.0.1:9050'].join(', ');
        assert.ok(good!.message.startsWith(via), good!.message);
        networks = [net('ipv4', ''), net('ipv6', '127.0.0.1:9064'), net('onion', '127.0.0.1:9050')];
        const [, bad] = await Promise.all(checkNodeRpc(rpc, cfg));
        assert.equal(bad!.code, 'DOCTOR_NODE_PROXY_WRONG', formatCheck(bad!));
        assert.match(bad!.fix ?? '', /proxy=127\.0\.0\.1:9064=ipv4 \(Bitcoin Core >= 30; keep onion=127\.0\.0\.1:9050/);
        // An IPv6-less node (onlynet=ipv4: ipv6 limited) needs no ipv6 proxy.
        networks = [net('ipv4', '127.0.0.1:9064'), net('ipv6', '', true)];
        const [, v4only] = await Promise.all(checkNodeRpc(rpc, cfg));
        assert.equal(v4only!.status, 'ok', formatCheck(v4only!));
      } finally {
        server.close();
      }
    },
  );
});
