import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Peer, PeerError, connectPeer } from '../../../src/peer/index.js';
import { NODE_HOLEPUNCH, WireError, encodeMessage, decodePayload } from '../../../src/wire/index.js';

/** A loopback TCP pair: [client socket, server-side socket], plus the server to close. */
async function pair(host = '127.0.0.1'): Promise<{ a: Socket; b: Socket; server: Server; done: () => Promise<void> }> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const accepted = once(server, 'connection');
  const a = connect(port, host);
  await once(a, 'connect');
  const [b] = (await accepted) as [Socket];
  return {
    a,
    b,
    server,
    done: async () => {
      a.destroy();
      b.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function isPeerErr(code: string) {
  return (e: unknown) => e instanceof PeerError && e.code === code;
}

test('initiator and responder (both ours) complete the handshake over loopback TCP', async () => {
  const { a, b, done } = await pair();
  try {
    const init = new Peer(a, {
      network: 'regtest',
      role: 'initiator',
      services: NODE_HOLEPUNCH,
      userAgent: '/init:1/',
      startHeight: 7,
      relay: true,
      addrRecv: { address: b.localAddress!, port: b.localPort! },
    });
    const resp = new Peer(b, {
      network: 'regtest',
      role: 'responder',
      userAgent: '/resp:2/',
      startHeight: 99,
      addrRecv: { address: '127.0.0.1', port: a.localPort! },
    });
    const seen: string[] = [];
    resp.on('message', (cmd) => seen.push(cmd));
    const [ri, rr] = await Promise.all([init.handshake(), resp.handshake()]);
    assert.equal(ri.version.userAgent, '/resp:2/');
    assert.equal(ri.version.startHeight, 99);
    assert.equal(ri.version.relay, false);
    assert.deepEqual(ri.version.addrRecv, { services: 0n, address: '127.0.0.1', port: a.localPort });
    assert.deepEqual(ri.receivedBeforeVerack, ['version', 'wtxidrelay', 'sendaddrv2']);
    assert.equal(rr.version.userAgent, '/init:1/');
    assert.equal(rr.version.services, NODE_HOLEPUNCH);
    assert.equal(rr.version.relay, true);
    assert.deepEqual(rr.version.addrRecv.port, b.localPort);
    assert.deepEqual(rr.receivedBeforeVerack, ['version', 'wtxidrelay', 'sendaddrv2']);
    assert.ok(init.isReady && resp.isReady);
    assert.equal(init.pendingTimers, 0, 'handshake timer cleared on success');

    // ping is auto-answered; RTT measured
    const rtt = await init.ping(2000);
    assert.ok(rtt > 0 && rtt < 2000, `rtt ${rtt}`);
    assert.ok(seen.includes('ping'));

    // app messages, known and raw
    const got = once(resp, 'message');
    init.send('opreject', { code: 'busy', reason: 'later' });
    const [cmd, payload] = (await got) as [string, Buffer];
    assert.equal(cmd, 'opreject');
    assert.deepEqual(resp.decode('opreject', payload), { code: 'busy', reason: 'later' });
    const raw = once(init, 'message');
    resp.send('foo', Buffer.from([1, 2, 3]));
    assert.deepEqual(await raw, ['foo', Buffer.from([1, 2, 3]), (await raw)[2]]);

    // clean close: the other side sees PEER_CLOSED, nothing left pending
    const closed = once(resp, 'close');
    const pending = init.ping(5000);
    init.close();
    await assert.rejects(pending, isPeerErr('PEER_CLOSED'));
    assert.equal(init.pendingTimers, 0);
    assert.ok(a.destroyed);
    const [why] = (await closed) as [PeerError];
    assert.equal(why.code, 'PEER_CLOSED');
    assert.throws(() => init.send('verack', {}), isPeerErr('PEER_CLOSED'));
  } finally {
    await done();
  }
});

test('relay flag can be omitted; wtxidrelay is only sent to peers >= 70016; sendaddrv2 optional', async () => {
  const { a, b, done } = await pair();
  try {
    const init = new Peer(a, {
      network: 'main',
      role: 'initiator',
      relay: null,
      protocolVersion: 70015,
      sendAddrV2: false,
    });
    const resp = new Peer(b, { network: 'main', role: 'responder' });
    const [ri, rr] = await Promise.all([init.handshake(), resp.handshake()]);
    assert.equal(rr.version.relay, undefined);
    assert.deepEqual(rr.receivedBeforeVerack, ['version']);
    assert.deepEqual(
      ri.receivedBeforeVerack,
      ['version', 'sendaddrv2'],
      'no wtxidrelay when the common version is 70015',
    );
    init.close();
    resp.close();
  } finally {
    await done();
  }
});

test('handshake timeout when the other side says nothing; timers cleared, socket destroyed', async () => {
  const { a, done } = await pair();
  try {
    const p = new Peer(a, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 200 });
    const t0 = Date.now();
    await assert.rejects(p.handshake(), isPeerErr('PEER_HANDSHAKE_TIMEOUT'));
    assert.ok(Date.now() - t0 >= 190);
    assert.equal(p.pendingTimers, 0);
    assert.ok(a.destroyed);
    assert.ok(p.isClosed);
  } finally {
    await done();
  }
});

test('a peer that sends garbage (HTTP) fails the handshake with PEER_WIRE naming the bad magic', async () => {
  const { a, b, done } = await pair();
  try {
    const p = new Peer(a, { network: 'main', role: 'initiator', handshakeTimeoutMs: 5000 });
    const hs = p.handshake();
    b.write('HTTP/1.1 400 Bad Request\r\n\r\n');
    await assert.rejects(
      hs,
      (e: unknown) =>
        e instanceof PeerError &&
        e.code === 'PEER_WIRE' &&
        e.cause instanceof WireError &&
        e.cause.code === 'WIRE_BAD_MAGIC',
    );
    assert.equal(p.pendingTimers, 0);
  } finally {
    await done();
  }
});

test('wrong network magic, bad version payload, peer closing mid-handshake, ping timeout, self-connect', async () => {
  {
    const { a, b, done } = await pair();
    const p = new Peer(a, { network: 'main', role: 'responder' });
    const hs = p.handshake();
    b.write(encodeMessage('testnet4', 'verack', {}));
    await assert.rejects(
      hs,
      (e: unknown) => e instanceof PeerError && e.code === 'PEER_WIRE' && /testnet4/.test(e.message),
    );
    await done();
  }
  {
    const { a, b, done } = await pair();
    const p = new Peer(a, { network: 'main', role: 'responder' });
    const hs = p.handshake();
    b.write(
      Buffer.concat([
        encodeMessage('main', 'ping', { nonce: 1n }).subarray(0, 4),
        Buffer.from('version\0\0\0\0\0', 'latin1'),
        Buffer.from('0300000067f75690', 'hex'),
        Buffer.from([1, 2, 3]),
      ]),
    );
    await assert.rejects(hs, (e: unknown) => e instanceof PeerError && e.code === 'PEER_WIRE');
    await done();
  }
  {
    const { a, b, done } = await pair();
    const p = new Peer(a, { network: 'main', role: 'initiator', handshakeTimeoutMs: 5000 });
    const hs = p.handshake();
    // read their version, then hang up
    await once(b, 'data');
    b.end();
    await assert.rejects(hs, isPeerErr('PEER_CLOSED'));
    await done();
  }
  {
    const { a, b, done } = await pair();
    const p = new Peer(a, { network: 'main', role: 'initiator' });
    b.on('data', () => {}); // swallows pings
    await assert.rejects(p.ping(150), isPeerErr('PEER_PING_TIMEOUT'));
    assert.equal(p.pendingTimers, 0);
    p.close();
    await done();
  }
  {
    const { a, b, done } = await pair();
    const p = new Peer(a, { network: 'main', role: 'initiator', nonce: 77n });
    const hs = p.handshake();
    const [chunk] = (await once(b, 'data')) as [Buffer];
    b.write(chunk); // echo our own version back
    await assert.rejects(hs, isPeerErr('PEER_SELF_CONNECT'));
    await done();
  }
});

test('close() during a pending handshake rejects it with PEER_CLOSED and clears its timer', async () => {
  const { a, b, done } = await pair();
  try {
    const p = new Peer(a, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 60_000 });
    const hs = p.handshake();
    assert.equal(p.pendingTimers, 1);
    const events: unknown[] = [];
    p.on('close', (e) => events.push(e));
    p.close();
    p.close();
    await assert.rejects(hs, isPeerErr('PEER_CLOSED'));
    assert.equal(p.pendingTimers, 0);
    assert.deepEqual(events, [undefined], 'close emitted once, without error for our own close');
    const [first] = (await once(b, 'data')) as [Buffer];
    assert.equal(
      decodePayload('version', first.subarray(24, 24 + first.readUInt32LE(16))).userAgent,
      '/onionpunch:0.1.0/',
    );
  } finally {
    await done();
  }
});

test('connectPeer: refused port and not-Bitcoin are clear errors', async () => {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  await assert.rejects(
    connectPeer({ host: '127.0.0.1', port, network: 'regtest' }),
    (e: unknown) =>
      e instanceof PeerError && e.code === 'PEER_SOCKET' && (e.cause as NodeJS.ErrnoException).code === 'ECONNREFUSED',
  );

  const http = createServer((c) => c.end('HTTP/1.0 200 OK\r\n\r\nhello'));
  const conns = new Set<Socket>();
  http.on('connection', (c: Socket) => conns.add(c));
  http.listen(0, '::1');
  await once(http, 'listening');
  try {
    await assert.rejects(
      connectPeer({
        host: '::1',
        port: (http.address() as AddressInfo).port,
        network: 'regtest',
        handshakeTimeoutMs: 3000,
      }),
      isPeerErr('PEER_WIRE'),
    );
  } finally {
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => http.close(() => r()));
  }
});

test('works over any Duplex, not only net.Socket (an in-memory stream pair stands in for SOCKS/SAM streams)', async () => {
  const { Duplex } = await import('node:stream');
  // Two cross-wired Duplex streams: what one writes, the other reads.
  const make = () => {
    let other: InstanceType<typeof Duplex> | undefined;
    const d = new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        other!.push(chunk);
        cb();
      },
      final(cb) {
        other!.push(null);
        cb();
      },
    });
    return { d, link: (o: InstanceType<typeof Duplex>) => (other = o) };
  };
  const x = make();
  const y = make();
  x.link(y.d);
  y.link(x.d);
  const a = new Peer(x.d, { network: 'signet', role: 'initiator' });
  const b = new Peer(y.d, { network: 'signet', role: 'responder', addrRecv: { address: 'fd00::1', port: 5 } });
  const [ra] = await Promise.all([a.handshake(), b.handshake()]);
  assert.deepEqual(ra.version.addrRecv, { services: 0n, address: 'fd00::1', port: 5 });
  assert.ok((await a.ping(1000)) >= 0);
  a.close();
  b.close();
  assert.ok(x.d.destroyed && y.d.destroyed);
});

test('maxPayload: a header declaring more is refused before its payload is read (PEER_WIRE)', async () => {
  const { a, b, done } = await pair();
  try {
    const peer = new Peer(b, { network: 'regtest', role: 'responder', maxPayload: 100 });
    const hs = peer.handshake();
    a.write(encodeMessage('regtest', 'ping', { nonce: 1n }).subarray(0, 16));
    const hdr = Buffer.alloc(8);
    hdr.writeUInt32LE(101, 0);
    a.write(hdr);
    await assert.rejects(hs, isPeerErr('PEER_WIRE'));
  } finally {
    await done();
  }
});

test('the answer to a version leaves in one write (version, wtxidrelay, sendaddrv2, verack together)', async () => {
  const { Duplex } = await import('node:stream');
  // Each write the Peer's stream hands down: one entry per _write/_writev call, with its frames' commands.
  const writes: string[][] = [];
  const commands = (b: Buffer): string[] => {
    const out: string[] = [];
    for (let o = 0; o + 24 <= b.length; o += 24 + b.readUInt32LE(o + 16)) {
      out.push(
        b
          .subarray(o + 4, o + 16)
          .toString('latin1')
          .replace(/\0+$/, ''),
      );
    }
    return out;
  };
  const d = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      writes.push(commands(chunk));
      cb();
    },
    writev(chunks, cb) {
      writes.push(chunks.flatMap((c) => commands(c.chunk as Buffer)));
      cb();
    },
  });
  const peer = new Peer(d, { network: 'signet', role: 'responder' });
  const hs = peer.handshake().catch(() => undefined);
  const version = encodeMessage('signet', 'version', {
    version: 70016,
    services: 0n,
    timestamp: 0n,
    addrRecv: { services: 0n, address: '::', port: 0 },
    addrFrom: { services: 0n, address: '::', port: 0 },
    nonce: 7n,
    userAgent: '/test/',
    startHeight: 0,
    relay: false,
  });
  d.push(version);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(writes, [['version', 'wtxidrelay', 'sendaddrv2', 'verack']]);
  peer.close();
  await hs;
});
