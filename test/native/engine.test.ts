import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import {
  PunchEngine,
  EngineError,
  NativeError,
  connectFrom,
  probeBind,
  reservePort,
  lastDataReceivedNs,
  type TimelineEvent,
} from '../../src/native/engine.js';
import { PassThrough } from 'node:stream';
import { fdCount, synBlackhole, threadCount, waitFor } from './helpers.js';

const LO = '127.0.0.1';
const engine = new PunchEngine();
after(() => engine.stop());

/** A port nothing listens on (bound once by us, then released). */
function closedPort(): number {
  return probeBind({ address: LO, port: 0 }).port;
}

async function echoServer(host = LO): Promise<net.Server & { port: number }> {
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  srv.listen(0, host);
  await once(srv, 'listening');
  return Object.assign(srv, { port: (srv.address() as net.AddressInfo).port });
}

function kinds(tl: TimelineEvent[]): string[] {
  return tl.map((e) => e.kind);
}

test('connectFrom: ordinary connect from a reusable port hands back a working net.Socket', async () => {
  const srv = await echoServer();
  try {
    const r = await connectFrom({ address: LO, port: 0 }, { address: LO, port: srv.port }, { engine });
    assert.ok(r.socket instanceof net.Socket);
    assert.equal(r.remote.port, srv.port);
    assert.equal(r.socket.remotePort, srv.port);
    assert.equal(r.socket.localPort, r.local.port);
    assert.deepEqual(kinds(r.timeline), ['syn', 'established']);
    assert.ok(r.establishedNs >= r.timeline[0]!.actualNs);
    r.socket.write('ping');
    const [d] = (await once(r.socket, 'data')) as [Buffer];
    assert.equal(d.toString(), 'ping');
    r.socket.end();
    await once(r.socket, 'close');
  } finally {
    srv.close();
  }
});

test('IPv6: connect over ::1', async () => {
  const srv = await echoServer('::1');
  try {
    const r = await connectFrom({ address: '::1', port: 0 }, { address: '::1', port: srv.port }, { engine });
    assert.equal(r.local.address, '::1');
    assert.equal(r.socket.remoteFamily, 'IPv6');
    r.socket.destroy();
  } finally {
    srv.close();
  }
});

test('refused without retry: ENGINE_REFUSED with a NativeError ECONNREFUSED cause', async () => {
  const port = closedPort();
  await assert.rejects(connectFrom({ address: LO, port: 0 }, { address: LO, port }, { engine }), (e: unknown) => {
    assert.ok(e instanceof EngineError);
    assert.equal(e.code, 'ENGINE_REFUSED');
    assert.equal(e.errno, 'ECONNREFUSED');
    assert.equal((e.cause as NativeError).syscall, 'connect');
    assert.ok(e.cause instanceof NativeError);
    assert.equal((e.cause as NativeError).errno > 0, true);
    assert.deepEqual(kinds(e.timeline), ['syn', 'rst']);
    return true;
  });
});

test('reservePort holds one descriptor until release (idempotent); a bad address is a NativeError', () => {
  const before = fdCount();
  const a = reservePort({ address: LO, port: 0 });
  const b = reservePort({ address: LO, port: 0 });
  assert.equal(fdCount(), before + 2, 'each reservation is one bound socket');
  assert.ok(a.held && b.held);
  assert.notEqual(a.local.port, b.local.port, 'a held port is not chosen again');
  assert.equal(a.local.address, LO);
  a.release();
  a.release();
  b.release();
  assert.equal(a.held, false);
  assert.equal(fdCount(), before, 'released, twice for one of them, and nothing closed beyond');
  assert.throws(
    () => reservePort({ address: '192.0.2.1', port: 0 }),
    (e: unknown) => e instanceof NativeError && e.code === 'EADDRNOTAVAIL' && e.syscall === 'bind',
  );
  assert.equal(fdCount(), before);
});

test('lastDataReceivedNs: when data reached the socket, not when the loop read it; else undefined', async () => {
  assert.equal(lastDataReceivedNs(new PassThrough()), undefined);
  assert.equal(lastDataReceivedNs({}), undefined);
  const srv = net.createServer();
  srv.listen(0, LO);
  await once(srv, 'listening');
  const accepted = once(srv, 'connection');
  const c = net.connect((srv.address() as net.AddressInfo).port, LO);
  const [s] = (await accepted) as [net.Socket];
  await once(c, 'connect');
  try {
    c.write('x'); // on loopback the kernel has it on `s` when write() returns
    const sentNs = engine.now();
    const end = performance.now() + 60; // and this loop reads it 60 ms later
    while (performance.now() < end);
    await once(s, 'data');
    const readNs = engine.now();
    const got = lastDataReceivedNs(s);
    assert.ok(got !== undefined);
    // A jiffy (4 ms at HZ=250) either way.
    assert.ok(got >= sentNs - 5_000_000n && got < sentNs + 20_000_000n, `${Number(got - sentNs) / 1e6} ms after`);
    assert.ok(readNs - got > 40_000_000n);
  } finally {
    c.destroy();
    s.destroy();
    srv.close();
  }
  assert.equal(lastDataReceivedNs(s), undefined, 'a closed socket has no descriptor');
});

test('bind errors: ENGINE_BIND / NativeError EADDRINUSE and EADDRNOTAVAIL', async () => {
  const srv = await echoServer(); // a listener without SO_REUSEPORT owns this port
  try {
    assert.throws(
      () => probeBind({ address: LO, port: srv.port }),
      (e: unknown) => {
        assert.ok(e instanceof NativeError);
        assert.equal(e.code, 'EADDRINUSE');
        assert.equal(e.syscall, 'bind');
        return true;
      },
    );
    await assert.rejects(
      engine.punch({ local: { address: LO, port: srv.port }, remotes: [{ address: LO, port: 9 }], deadlineMs: 500 }),
      (e: unknown) =>
        e instanceof EngineError &&
        e.code === 'ENGINE_BIND' &&
        e.errno === 'EADDRINUSE' &&
        e.nativeCause?.syscall === 'bind',
    );
    // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails locally, nothing is sent.
    await assert.rejects(
      engine.punch({ local: { address: '192.0.2.1', port: 0 }, remotes: [{ address: LO, port: 9 }], deadlineMs: 500 }),
      (e: unknown) => e instanceof EngineError && e.code === 'ENGINE_BIND' && e.errno === 'EADDRNOTAVAIL',
    );
  } finally {
    srv.close();
  }
});

test('invalid plans reject with ENGINE_INVALID and never reach the engine', async () => {
  const bad = [
    { local: { address: 'nope', port: 0 }, remotes: [{ address: LO, port: 1 }], deadlineMs: 10 },
    { local: { address: LO, port: 0 }, remotes: [], deadlineMs: 10 },
    { local: { address: LO, port: 0 }, remotes: [{ address: '::1', port: 1 }], deadlineMs: 10 },
    { local: { address: LO, port: 0 }, remotes: [{ address: LO, port: 70000 }], deadlineMs: 10 },
    { local: { address: LO, port: 0 }, remotes: [{ address: LO, port: 1 }], deadlineMs: -1 },
    { local: { address: LO, port: 0 }, remotes: [{ address: LO, port: 1 }], deadlineMs: 10, ackProbeMs: -1 },
    { local: { address: LO, port: 0 }, remotes: [{ address: LO, port: 1 }], deadlineMs: 10, ackProbeMs: NaN },
    { local: { address: LO, port: 0 }, remotes: [{ address: LO, port: 1 }], deadlineMs: 10, ackProbeMs: 10_001 },
  ];
  for (const plan of bad) {
    await assert.rejects(engine.punch(plan), (e: unknown) => e instanceof EngineError && e.code === 'ENGINE_INVALID');
  }
});

test('RST retry: a closed port is re-tried from the same local port until it opens', async () => {
  const localPort = closedPort();
  const remotePort = closedPort();
  const srv = net.createServer();
  const accepted = new Promise<number>((resolve) => srv.once('connection', (s) => resolve(s.remotePort!)));
  const opener = setTimeout(() => srv.listen(remotePort, LO), 120);
  try {
    const r = await engine.punch({
      local: { address: LO, port: localPort },
      remotes: [{ address: LO, port: remotePort }],
      resynIntervalUs: 10_000,
      deadlineMs: 3000,
    });
    const syns = r.timeline.filter((e) => e.kind === 'syn');
    const rsts = r.timeline.filter((e) => e.kind === 'rst');
    assert.ok(syns.length >= 3, `several SYNs before the port opened (got ${syns.length})`);
    assert.ok(rsts.length >= 2 && rsts.every((e) => e.errno === 'ECONNREFUSED'));
    assert.equal(r.timeline.at(-1)!.kind, 'established');
    // Every re-SYN sits on the 10 ms grid from the start.
    for (const s of syns) assert.equal(Number(s.targetNs! - r.startedNs) % 10_000_000, 0);
    // getsockname of the winner and the server's view: the same local port as every attempt was bound to.
    assert.equal(r.local.port, localPort);
    assert.equal(r.socket.localPort, localPort);
    assert.equal(await accepted, localPort);
    r.socket.destroy();
  } finally {
    clearTimeout(opener);
    srv.close();
  }
});

test('timeout: ENGINE_TIMEOUT at the deadline, with the re-SYNs in the timeline', async () => {
  const port = closedPort();
  const t0 = engine.now();
  await assert.rejects(
    engine.punch({
      local: { address: LO, port: 0 },
      remotes: [{ address: LO, port }],
      resynIntervalUs: 20_000,
      deadlineMs: 200,
    }),
    (e: unknown) => {
      assert.ok(e instanceof EngineError);
      assert.equal(e.code, 'ENGINE_TIMEOUT');
      const last = e.timeline.at(-1)!;
      assert.equal(last.kind, 'timeout');
      const late = Number(last.actualNs - last.targetNs!) / 1e6;
      assert.ok(late >= 0 && late < 50, `timeout fired ${late} ms after its target`);
      assert.ok(Number(last.actualNs - t0) / 1e6 >= 200);
      const syns = e.timeline.filter((x) => x.kind === 'syn').length;
      assert.ok(syns >= 3 && syns <= 11, `about one SYN per 20 ms (got ${syns})`);
      return true;
    },
  );
});

test('waves: one SYN per wave at its offset', async () => {
  const port = closedPort();
  const r = engine.punch({
    local: { address: LO, port: 0 },
    remotes: [{ address: LO, port }],
    waves: [0, 60, 150],
    startDelayMs: 20,
    resynIntervalUs: 0,
    deadlineMs: 250,
  });
  await assert.rejects(r, (e: unknown) => {
    assert.ok(e instanceof EngineError && e.code === 'ENGINE_TIMEOUT');
    const syns = e.timeline.filter((x) => x.kind === 'syn');
    assert.equal(syns.length, 3);
    const start = syns[0]!.targetNs!;
    assert.deepEqual(
      syns.map((s) => Number(s.targetNs! - start) / 1e6),
      [0, 60, 150],
    );
    // Loose on purpose (a loaded CI machine); the benchmark measures precision properly.
    for (const s of syns) assert.ok(Number(s.actualNs - s.targetNs!) < 30_000_000, 'SYN near its target');
    return true;
  });
});

test('prime profile: a low-TTL prime SYN at the start, the full SYN primeDelayMs later', async () => {
  const port = closedPort();
  const start = engine.now() + 20_000_000n;
  await assert.rejects(
    engine.punch({
      local: { address: LO, port: 0 },
      remotes: [{ address: LO, port }],
      startAtNs: start,
      profile: 'prime',
      primeTtl: 2,
      primeDelayMs: 50,
      resynIntervalUs: 0,
      deadlineMs: 120,
    }),
    (e: unknown) => {
      assert.ok(e instanceof EngineError);
      const prime = e.timeline.find((x) => x.kind === 'prime')!;
      const syn = e.timeline.find((x) => x.kind === 'syn')!;
      assert.equal(prime.targetNs, start);
      assert.equal(syn.targetNs, start + 50_000_000n);
      // Loopback never decrements the TTL, so here the prime SYN reaches the closed port and is RST.
      assert.ok(e.timeline.some((x) => x.kind === 'rst'));
      return true;
    },
  );
});

test('candidates race: the open one wins, the others are closed', async () => {
  const srv = await echoServer();
  const closed = closedPort();
  const hole = await synBlackhole();
  const filler = await connectFrom({ address: LO, port: 0 }, { address: LO, port: hole.port }, { engine });
  try {
    const r = await engine.punch({
      local: { address: LO, port: 0 },
      remotes: [
        { address: LO, port: closed },
        { address: LO, port: hole.port },
        { address: LO, port: srv.port },
      ],
      deadlineMs: 2000,
    });
    assert.equal(r.remote.port, srv.port);
    assert.equal(engine.stats().sockets, 0, 'losing attempts closed at once');
    r.socket.destroy();
  } finally {
    filler.socket.destroy();
    srv.close();
    await hole.stop();
  }
});

test('abort: closes the plan sockets at once and rejects ENGINE_ABORTED', async () => {
  const hole = await synBlackhole();
  const eng = new PunchEngine();
  try {
    // Fill the black hole's one-slot accept queue so the next SYNs are dropped.
    const filler = await connectFrom({ address: LO, port: 0 }, { address: LO, port: hole.port }, { engine: eng });
    const fds = fdCount();
    const ac = new AbortController();
    const p = eng.punch({
      local: { address: LO, port: 0 },
      remotes: [{ address: LO, port: hole.port }],
      deadlineMs: 10_000,
      signal: ac.signal,
    });
    await waitFor(() => eng.stats().sockets === 1, 2000, 'the SYN in flight');
    assert.equal(fdCount(), fds + 1);
    const t0 = performance.now();
    ac.abort();
    await assert.rejects(
      p,
      (e: unknown) => e instanceof EngineError && e.code === 'ENGINE_ABORTED' && e.timeline.at(-1)!.kind === 'abort',
    );
    assert.ok(performance.now() - t0 < 1000, 'abort answered promptly');
    assert.equal(eng.stats().sockets, 0);
    assert.equal(fdCount(), fds);
    // Already aborted: rejected without touching the engine.
    await assert.rejects(
      eng.punch({
        local: { address: LO, port: 0 },
        remotes: [{ address: LO, port: 1 }],
        deadlineMs: 10,
        signal: ac.signal,
      }),
      (e: unknown) => e instanceof EngineError && e.code === 'ENGINE_ABORTED',
    );
    filler.socket.destroy();
  } finally {
    await eng.stop();
    await hole.stop();
  }
});

test('stop with plans in flight: they reject ENGINE_STOPPED, thread and fds are gone, restart works', async () => {
  const threads = threadCount();
  const fds = fdCount();
  const eng = new PunchEngine();
  const port = closedPort();
  const plans = Array.from({ length: 50 }, () =>
    eng.punch({ local: { address: LO, port: 0 }, remotes: [{ address: LO, port }], deadlineMs: 30_000 }),
  );
  await waitFor(() => eng.stats().syns >= 50, 2000, 'the first SYNs');
  assert.equal(threadCount(), threads + 1, 'one engine thread');
  const settled = Promise.allSettled(plans);
  await eng.stop();
  const res = await settled;
  assert.ok(res.every((r) => r.status === 'rejected' && (r.reason as EngineError).code === 'ENGINE_STOPPED'));
  assert.equal(threadCount(), threads);
  assert.equal(fdCount(), fds);
  const srv = await echoServer();
  try {
    const r = await connectFrom({ address: LO, port: 0 }, { address: LO, port: srv.port }, { engine: eng });
    r.socket.destroy();
  } finally {
    srv.close();
    await eng.stop();
  }
  assert.equal(threadCount(), threads);
});
