import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { encodeMessage, encodeRaw } from '../../../src/wire/index.js';

const BIN = 'bin/onionpunch.js';
function run(args: string[], input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input, timeout: 20_000 });
}
function lines(s: string) {
  return s
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
}

test('decode: several messages from an argument and from stdin (whitespace tolerated)', () => {
  const hex =
    encodeMessage('main', 'version', {
      version: 70016,
      services: (1n << 63n) | 9n,
      timestamp: 5n,
      addrRecv: { services: 0n, address: '1.2.3.4', port: 8333 },
      addrFrom: { services: 0n, address: '::', port: 0 },
      nonce: 1n,
      userAgent: '/x/',
      startHeight: 3,
      relay: true,
    }).toString('hex') +
    encodeMessage('main', 'addrv2', {
      addrs: [
        {
          time: 1,
          services: 1n,
          network: 'torv3',
          networkId: 4,
          address: 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion',
          port: 8333,
        },
        {
          time: 2,
          services: 1n << 27n,
          network: 'holepunch',
          networkId: 0xf1,
          port: 9,
          clearnet: { address: '198.18.0.3', port: 4000 },
          address: 'ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p',
        },
        { time: 3, services: 0n, network: 'unknown', networkId: 0xaa, address: '0102', port: 1 },
      ],
    }).toString('hex') +
    encodeRaw('main', 'inv', Buffer.from([0])).toString('hex');
  const spaced = hex.replace(/(.{16})/g, '$1 \n');
  for (const r of [run(['decode', hex]), run(['decode'], spaced)]) {
    assert.equal(r.status, 0, r.stderr);
    const [v, a, inv] = lines(r.stdout);
    assert.deepEqual([v!.network, v!.command, v!.checksumOk], ['main', 'version', true]);
    assert.equal(v!.payload.services, ((1n << 63n) | 9n).toString(), 'bigint > 2^53 prints as decimal string');
    assert.equal(v!.payload.nonce, 1, 'small bigint prints as number');
    assert.deepEqual(v!.payload.addrRecv, { services: 0, address: '1.2.3.4', port: 8333 });
    assert.deepEqual(a!.payload.addrs[0], {
      time: 1,
      services: 1,
      network: 'torv3',
      networkId: 4,
      address: 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion',
      port: 8333,
    });
    assert.deepEqual(a!.payload.addrs[1].clearnet, { address: '198.18.0.3', port: 4000 });
    assert.equal(a!.payload.addrs[1].network, 'holepunch');
    assert.equal(a!.payload.addrs[2].network, 'unknown');
    assert.deepEqual(inv, { network: 'main', command: 'inv', length: 1, checksumOk: true, payload: { hex: '00' } });
  }
});

test('decode: bad checksum, bad payload, truncation, bad hex give an error line and exit 1', () => {
  const ping = encodeMessage('regtest', 'ping', { nonce: 1n });
  const badSum = Buffer.from(ping);
  badSum[23]! ^= 0xff;
  let r = run(['decode', badSum.toString('hex')]);
  assert.equal(r.status, 1);
  const [l] = lines(r.stdout);
  assert.equal(l!.checksumOk, false);
  assert.equal(l!.error.code, 'WIRE_BAD_CHECKSUM');
  r = run(['decode', encodeRaw('regtest', 'ping', Buffer.from([1, 2])).toString('hex')]);
  assert.equal(r.status, 1);
  assert.equal(lines(r.stdout)[0]!.error.code, 'WIRE_TRUNCATED');
  assert.match(lines(r.stdout)[0]!.error.message, /nonce/);
  r = run(['decode', ping.subarray(0, 30).toString('hex')]);
  assert.equal(r.status, 1);
  assert.equal(lines(r.stdout)[0]!.error.code, 'WIRE_TRUNCATED');
  r = run(['decode', 'zz']);
  assert.equal(r.status, 1);
  assert.equal(lines(r.stdout)[0]!.error.code, 'DECODE_BAD_HEX');
  r = run(['decode', '00112233' + ping.subarray(4).toString('hex')]);
  assert.equal(lines(r.stdout)[0]!.error.code, 'WIRE_BAD_MAGIC');
});

test('natcheck-server CLI + handshake CLI: JSON contract, addr_recv, clean SIGTERM; refused and not-Bitcoin exit 1', async () => {
  const child = spawn(
    process.execPath,
    [BIN, 'natcheck-server', '--listen', '127.0.0.1:0', '--network', 'regtest', '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    const rl = createInterface({ input: child.stdout! });
    const [first] = (await once(rl, 'line')) as [string];
    const up = JSON.parse(first) as { listening: { address: string; port: number } };
    assert.equal(up.listening.address, '127.0.0.1');
    assert.ok(up.listening.port > 0);
    const hsP = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [
        BIN,
        'handshake',
        `127.0.0.1:${up.listening.port}`,
        '--network',
        'regtest',
        '--json',
        '--timeout',
        '5000',
      ]);
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d) => (stdout += d));
      c.stderr.on('data', (d) => (stderr += d));
      c.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    const hs = await hsP;
    assert.equal(hs.status, 0, hs.stderr);
    const j = JSON.parse(hs.stdout);
    assert.equal(j.version, 70016);
    assert.equal(j.services, 0);
    assert.deepEqual(j.serviceNames, []);
    assert.equal(j.userAgent, '/onionpunch:0.1.0/');
    assert.equal(j.startHeight, 0);
    assert.equal(j.relay, false);
    assert.equal(j.addrRecv.address, '127.0.0.1');
    assert.ok(j.addrRecv.port > 0);
    assert.deepEqual(j.receivedBeforeVerack, ['version', 'wtxidrelay', 'sendaddrv2']);
    const t0 = Date.now();
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 3000);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }

  // refused
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  const refused = run(['handshake', `127.0.0.1:${port}`, '--json']);
  assert.equal(refused.status, 1);
  assert.equal(JSON.parse(refused.stdout).error.code, 'PEER_SOCKET');
  assert.match(refused.stderr, /ECONNREFUSED/);
  // usage errors
  assert.equal(run(['handshake']).status, 2);
  assert.equal(run(['handshake', '::1:5']).status, 2);
  assert.equal(run(['natcheck-server']).status, 2);
});

test('handshake CLI: a server that is not Bitcoin, and one that stays silent, are clear errors', async () => {
  const http = createServer((c) => {
    c.on('data', () => {});
    c.end('HTTP/1.0 200 OK\r\n\r\n');
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const silent = createServer((c) => c.on('data', () => {}));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  try {
    const go = (port: number) =>
      new Promise<{ status: number | null; out: string }>((resolve) => {
        const c = spawn(process.execPath, [BIN, 'handshake', `127.0.0.1:${port}`, '--json', '--timeout', '500']);
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.on('close', (status) => resolve({ status, out }));
      });
    const notBtc = await go((http.address() as AddressInfo).port);
    assert.equal(notBtc.status, 1);
    assert.equal(JSON.parse(notBtc.out).error.code, 'PEER_WIRE');
    const quiet = await go((silent.address() as AddressInfo).port);
    assert.equal(quiet.status, 1);
    assert.equal(JSON.parse(quiet.out).error.code, 'PEER_HANDSHAKE_TIMEOUT');
  } finally {
    http.close();
    silent.close();
  }
});
