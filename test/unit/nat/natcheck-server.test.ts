import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { startNatcheckServer, NATCHECK_MAX_PAYLOAD, type NatcheckResult } from '../../../src/nat/natcheck-server.js';
import { Peer, PeerError } from '../../../src/peer/index.js';
import { FrameParser, decodePayload, encodeRaw } from '../../../src/wire/index.js';

async function dial(host: string, port: number): Promise<Socket> {
  const s = connect(port, host);
  await once(s, 'connect');
  return s;
}

for (const [listen, dialHost] of [
  ['127.0.0.1', '127.0.0.1'],
  ['::1', '::1'],
  ['::', '127.0.0.1'],
] as const) {
  test(`natcheck server on ${listen} reports the client's address:port seen (client via ${dialHost}), then closes`, async () => {
    const results: NatcheckResult[] = [];
    const srv = await startNatcheckServer({
      host: listen,
      port: 0,
      network: 'regtest',
      onResult: (r) => results.push(r),
    });
    try {
      const sock = await dial(dialHost, srv.port);
      const peer = new Peer(sock, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 3000 });
      const closed = once(peer, 'close');
      const r = await peer.handshake();
      assert.deepEqual(r.version.addrRecv, { services: 0n, address: dialHost, port: sock.localPort });
      assert.equal(r.version.userAgent, '/onionpunch:0.1.0/');
      const [why] = (await closed) as [PeerError | undefined];
      assert.equal(why?.code, 'PEER_CLOSED', 'server closes after the handshake');
      assert.equal(results.length, 1);
      assert.equal(results[0]!.ok, true);
      assert.equal(results[0]!.client.address, dialHost);
    } finally {
      await srv.close();
    }
  });
}

test('natcheck server: IPv4 client is IPv4-mapped on the wire', async () => {
  const srv = await startNatcheckServer({ host: '127.0.0.1', port: 0, network: 'main' });
  try {
    const sock = await dial('127.0.0.1', srv.port);
    const parser = new FrameParser({ network: 'main' });
    // send a version by hand via a Peer, then inspect the raw reply bytes too
    const raw: Buffer[] = [];
    sock.on('data', (d: Buffer) => raw.push(d));
    const peer = new Peer(sock, { network: 'main', role: 'initiator' });
    await peer.handshake();
    const frames = parser.push(Buffer.concat(raw)).frames;
    const v = frames.find((f) => f.command === 'version')!;
    assert.equal(v.payload.subarray(20 + 8, 20 + 24).toString('hex'), '00000000000000000000ffff7f000001');
    assert.equal(v.payload.readUInt16BE(20 + 24), sock.localPort);
    assert.equal(decodePayload('version', v.payload).addrRecv.address, '127.0.0.1');
    peer.close();
  } finally {
    await srv.close();
  }
});

test('natcheck server: per-netgroup cap and handshake timeout; close() ends open connections', async () => {
  const results: NatcheckResult[] = [];
  const srv = await startNatcheckServer({
    host: '127.0.0.1',
    port: 0,
    network: 'regtest',
    perNetgroupLimit: 1,
    handshakeTimeoutMs: 200,
    onResult: (r) => results.push(r),
  });
  try {
    const first = await dial('127.0.0.1', srv.port); // silent: holds the only slot until the timeout
    first.on('error', () => {});
    const second = await dial('127.0.0.1', srv.port);
    second.on('error', () => {});
    await once(second, 'close');
    assert.ok(results.some((r) => r.error === 'NATCHECK_NETGROUP_LIMIT'));
    await once(first, 'close');
    assert.ok(results.some((r) => r.error === 'PEER_HANDSHAKE_TIMEOUT'));
    // slot is free again
    const third = await dial('127.0.0.1', srv.port);
    const r = await new Peer(third, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 2000 }).handshake();
    assert.equal(r.version.addrRecv.port, third.localPort);
    const hanging = await dial('127.0.0.1', srv.port);
    hanging.on('error', () => {});
    const t0 = Date.now();
    await srv.close();
    assert.ok(Date.now() - t0 < 1000);
  } finally {
    await srv.close();
  }
});

test('natcheck server: at the global cap a newcomer of another netgroup evicts from the largest', async () => {
  const results: NatcheckResult[] = [];
  const srv = await startNatcheckServer({
    host: '127.0.0.1',
    port: 0,
    network: 'regtest',
    maxConnections: 3,
    perNetgroupLimit: 4,
    handshakeTimeoutMs: 5000,
    onResult: (r) => results.push(r),
  });
  const socks: Socket[] = [];
  const open = async (from: string) => {
    const s = connect({ port: srv.port, host: '127.0.0.1', localAddress: from });
    s.on('error', () => {});
    socks.push(s);
    await once(s, 'connect');
    return s;
  };
  const until = async (f: () => boolean) => {
    for (let i = 0; i < 100 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    await open('127.1.0.1');
    await open('127.1.0.2');
    const young = await open('127.1.0.3'); // silent: all three slots held by netgroup 127.1
    const youngPort = young.localPort;
    await until(() => srv.connections === 3);
    const fourth = await open('127.1.0.4'); // same netgroup: nothing to gain by evicting, refused
    await once(fourth, 'close');
    assert.equal(results.at(-1)?.error, 'NATCHECK_FULL');
    const legit = await open('127.2.0.1');
    const closed = once(young, 'close');
    const r = await new Peer(legit, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 2000 }).handshake();
    assert.equal(r.version.addrRecv.port, legit.localPort);
    await closed;
    const evicted = results.find((x) => x.error === 'NATCHECK_EVICTED');
    assert.equal(evicted?.client.port, youngPort, 'the youngest of 127.1 was evicted');
  } finally {
    for (const s of socks) s.destroy();
    await srv.close();
  }
});

test('natcheck server: a non-handshake message or an oversized header closes the connection at once', async () => {
  const results: NatcheckResult[] = [];
  const onResult = (r: NatcheckResult) => results.push(r);
  const srv = await startNatcheckServer({ host: '127.0.0.1', port: 0, network: 'regtest', onResult });
  try {
    const a = await dial('127.0.0.1', srv.port);
    a.on('error', () => {});
    a.write(encodeRaw('regtest', 'getaddr'));
    await once(a, 'close');
    const b = await dial('127.0.0.1', srv.port);
    b.on('error', () => {});
    const hdr = encodeRaw('regtest', 'version', Buffer.alloc(NATCHECK_MAX_PAYLOAD + 1)).subarray(0, 24);
    b.write(hdr);
    await once(b, 'close');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      results.map((r) => r.error),
      ['NATCHECK_UNEXPECTED_MESSAGE', 'PEER_WIRE'],
    );
  } finally {
    await srv.close();
  }
});
