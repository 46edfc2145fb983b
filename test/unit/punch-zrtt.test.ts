/**
 * Zero-round-trip coordination (docs/PROTOCOL.md "Zero-round-trip coordination") over loopback streams with the
 * real native engine: B's whole request in its first write, A answering from its warm announced port without
 * discovery, the refusal when A holds no warm port, B's fallback to the measured-RTT flow (and its back-off),
 * and the redirect guard on A's zero-RTT opendpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { createPunchListener } from '../../src/punch/listener.js';
import { PunchClient, type PunchTarget } from '../../src/punch/client.js';
import { StreamChannel } from '../../src/punch/channel.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { FLAG_ZERO_RTT, type CoordMessage } from '../../src/punch/messages.js';
import { NODE_HOLEPUNCH, NODE_HOLEPUNCH_ZRTT } from '../../src/wire/constants.js';
import type { CoordinationDialer } from '../../src/overlay/types.js';
import type { Endpoint } from '../../src/nat/types.js';
import { clientOpts, codec, listenerOpts, loopbackOverlay, portDialer, enginePair } from '../helpers/punch-loopback.js';

const { engA, engB } = enginePair();

const ONION = 'x'.repeat(56) + '.onion';

/** A target as an announcement with (or without) NODE_HOLEPUNCH_ZRTT gives it. */
function target(port: number, clearnet: Endpoint, zrtt = true, ageS = 0): PunchTarget {
  const services = NODE_HOLEPUNCH | (zrtt ? NODE_HOLEPUNCH_ZRTT : 0n);
  return { address: ONION, port, clearnet, announcement: { services, time: Math.floor(Date.now() / 1000) - ageS } };
}

test('zero-RTT: A answers from its warm announced port, no discovery, B connects to that endpoint', async () => {
  const listener = await createPunchListener(listenerOpts(engA, '127.0.0.1', { zeroRtt: true }));
  const { server, dialer, port } = await loopbackOverlay(listener);
  try {
    const announced = await listener.zeroRttReady();
    assert.ok(announced, 'A holds a warm port');
    assert.deepEqual(listener.zeroRttEndpoint(), announced);
    const gotA = new Promise<[Socket, { zeroRtt?: boolean; timeline: { at(e: string): number | undefined } }]>((r) =>
      listener.once('connection', (s, i) => r([s, i])),
    );
    const r = await new PunchClient(clientOpts(engB, dialer)).punch(target(port, announced));
    const [aSock, info] = await gotA;
    assert.equal(r.zeroRtt, true);
    assert.equal(info.zeroRtt, true);
    assert.equal(r.remote.port, announced.port, 'B is connected to the announced endpoint');
    assert.equal(aSock.localPort, announced.port, "A's socket is on the warm port");
    assert.ok(info.timeline.at('zero-rtt') !== undefined, 'A served it from the warm port');
    assert.ok(r.timeline.at('zero-rtt-sent') !== undefined);
    assert.equal(r.timeline.at('fire-sent'), undefined, 'no measured-RTT step on B');
    aSock.destroy();
    r.socket.destroy();
    // The warm port stays (it is the announced one): a second session uses it again.
    const r2 = await new PunchClient(clientOpts(engB, dialer)).punch(target(port, announced));
    assert.equal(r2.zeroRtt, true);
    assert.equal(r2.remote.port, announced.port);
    r2.socket.destroy();
  } finally {
    await listener.close();
    server.close();
  }
});

/** A fake A on a loopback server: records B's first chunk and lets `script` answer. */
async function fakeA(
  script: (ch: StreamChannel, first: CoordMessage[]) => Promise<void> | void,
): Promise<{ dialer: CoordinationDialer; port: number; close: () => void; firsts: CoordMessage[][] }> {
  const firsts: CoordMessage[][] = [];
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', (chunk: Buffer) => {
      const first = codec.decoder().push(chunk);
      firsts.push(first);
      const ch = new StreamChannel(s, codec);
      s.emit('data', chunk); // the channel decodes the first chunk too
      void Promise.resolve(script(ch, first)).catch(() => undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const dialer = portDialer(port);
  return { dialer, port, close: () => server.close(), firsts };
}

test("zero-RTT: B's first write carries version, opendpoint (zero-RTT flag), ping and opfire (delay 0)", async () => {
  const a = await fakeA((ch) => ch.close());
  try {
    const client = new PunchClient(clientOpts(engB, a.dialer, { sessionDeadlineMs: 4000 }));
    await client.punch(target(a.port, { address: '127.0.0.1', port: 40999 })).catch(() => undefined);
    const first = a.firsts[0]!;
    assert.deepEqual(
      first.map((m) => m.cmd),
      ['version', 'opendpoint', 'ping', 'opfire'],
    );
    const ep = first[1] as Extract<CoordMessage, { cmd: 'opendpoint' }>;
    const fire = first[3] as Extract<CoordMessage, { cmd: 'opfire' }>;
    assert.ok((ep.flags & FLAG_ZERO_RTT) !== 0);
    assert.equal(fire.delayUs, 0);
    assert.ok(fire.sessionId.equals(ep.sessionId));
  } finally {
    a.close();
  }
});

test('zero-RTT: without NODE_HOLEPUNCH_ZRTT, or with a stale announcement, B uses the measured flow', async () => {
  const a = await fakeA((ch) => ch.close());
  try {
    const client = new PunchClient(clientOpts(engB, a.dialer, { sessionDeadlineMs: 3000 }));
    const ep = { address: '127.0.0.1', port: 40999 };
    await client.punch(target(a.port, ep, false)).catch(() => undefined);
    await client.punch(target(a.port, ep, true, 700)).catch(() => undefined);
    assert.equal(a.firsts.length, 2);
    for (const f of a.firsts) assert.deepEqual(f.map((m) => m.cmd).slice(0, 2), ['version', 'opendpoint']);
    for (const f of a.firsts)
      assert.ok(
        f.every((m) => m.cmd !== 'opfire'),
        'no opfire before A answered',
      );
  } finally {
    a.close();
  }
});

test('A without a warm port refuses no-warm-port; B falls back to the measured flow and connects', async () => {
  const listener = await createPunchListener(listenerOpts(engA));
  const { server, dialer, port } = await loopbackOverlay(listener);
  const failures: PunchSessionError[] = [];
  listener.on('failure', (e: PunchSessionError) => failures.push(e));
  try {
    assert.equal(listener.zeroRttEndpoint(), undefined, 'no warm port, no bit to announce');
    const client = new PunchClient(clientOpts(engB, dialer));
    const r = await client.punch(target(port, { address: '127.0.0.1', port: 40999 }));
    assert.equal(r.zeroRtt, undefined, 'connected on the fallback');
    assert.ok(r.timeline.at('zero-rtt-fallback') !== undefined);
    assert.ok(r.timeline.at('fire-sent') !== undefined);
    r.socket.destroy();
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.code, 'PUNCH_ZRTT_UNAVAILABLE');
    // Back-off: the next punch to this coordination endpoint goes the measured way at once.
    const r2 = await client.punch(target(port, { address: '127.0.0.1', port: 40999 }));
    assert.equal(r2.timeline.at('zero-rtt-fallback'), undefined);
    assert.equal(r2.timeline.at('zero-rtt-sent'), undefined);
    r2.socket.destroy();
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(failures.length, 1, 'no second refused request');
  } finally {
    await listener.close();
    server.close();
  }
});

test("zero-RTT: A's opendpoint naming another endpoint than the announced one fails (no fallback)", async () => {
  const a = await fakeA((ch, first) => {
    const ep = first.find((m) => m.cmd === 'opendpoint') as Extract<CoordMessage, { cmd: 'opendpoint' }>;
    ch.send({ cmd: 'version', nonce: 1n, userAgent: '/evil/' });
    ch.send({
      cmd: 'opendpoint',
      sessionId: ep.sessionId,
      flags: FLAG_ZERO_RTT,
      endpoints: [{ address: '127.0.0.1', port: 41001 }],
    });
  });
  try {
    const client = new PunchClient(clientOpts(engB, a.dialer));
    await assert.rejects(
      client.punch(target(a.port, { address: '127.0.0.1', port: 41000 })),
      (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_VERIFY_FAILED' && /announced/.test(e.message),
    );
    assert.equal(a.firsts.length, 1, 'B did not fall back after a redirect attempt');
  } finally {
    a.close();
  }
});

test('A refuses a zero-RTT request that also asks for a spray (bad-request)', async () => {
  const listener = await createPunchListener(listenerOpts(engA, '127.0.0.1', { zeroRtt: true }));
  const { server, port } = await loopbackOverlay(listener);
  const { rawPeer } = await import('../helpers/punch-loopback.js');
  try {
    await listener.zeroRttReady();
    const p = await rawPeer(port);
    const sessionId = Buffer.alloc(16, 7);
    p.send({ cmd: 'version', nonce: 5n, userAgent: '/t/' });
    p.send({
      cmd: 'opspray',
      sessionId,
      hard: 'B',
      probeLow: 40000,
      probeHigh: 41000,
      sockets: 10,
      probes: 10,
      spreadUs: 1000,
    });
    p.send({ cmd: 'opendpoint', sessionId, flags: FLAG_ZERO_RTT, endpoints: [{ address: '127.0.0.1', port: 40000 }] });
    let m: CoordMessage;
    do m = await p.next();
    while (m.cmd !== 'opreject');
    assert.equal(m.code, 'bad-request');
    p.sock.destroy();
  } finally {
    await listener.close();
    server.close();
  }
});

test('a fast path that does not connect backs off only on the second failure in a row', async () => {
  // A fake A that answers correctly but never fires: B's fast path times out, falls back, and the fake A closes.
  const a = await fakeA((ch, first) => {
    const ep = first.find((m) => m.cmd === 'opendpoint') as Extract<CoordMessage, { cmd: 'opendpoint' }> | undefined;
    if (!ep || (ep.flags & FLAG_ZERO_RTT) === 0) return ch.close();
    ch.send({ cmd: 'version', nonce: 1n, userAgent: '/silent/' });
    ch.send({ cmd: 'opendpoint', sessionId: ep.sessionId, flags: FLAG_ZERO_RTT, endpoints: [announced] });
  });
  const announced = { address: '127.0.0.1', port: 41002 };
  try {
    const client = new PunchClient(clientOpts(engB, a.dialer, { zeroRttDeadlineMs: 200, sessionDeadlineMs: 8000 }));
    const fastTries = (): number => a.firsts.filter((f) => f.some((m) => m.cmd === 'opfire')).length;
    for (let i = 0; i < 3; i++) {
      await assert.rejects(client.punch(target(a.port, announced)), PunchSessionError);
    }
    assert.equal(fastTries(), 2, 'two fast-path tries, then the measured flow only');
    assert.equal(a.firsts.length, 2 + 3, 'each fast try fell back on a new stream; the third punch went measured');
  } finally {
    a.close();
  }
});
