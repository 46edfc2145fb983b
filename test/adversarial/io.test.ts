/**
 * Adversarial I/O suite (issue #9 items 3, 4, 8): attacks on loopback against the real code, with real kernel
 * sockets: the punch listener's coordination channel and a long-lived `Peer` against a peer that floods pings and
 * never reads; a pre-verack flood; the `onionpunch natcheck-server` CLI (a child process, so its fds and RSS are
 * its own) under 8,000+ connections from 2,048 loopback sources, oversized headers, and user agents carrying
 * control characters. Each test reports what the attack cost (RSS growth, queued bytes, fds) and checks the
 * target stays up and still serves a legitimate client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Peer, PeerError, PEER_SEND_PAUSE_BYTES, PEER_MAX_PRE_VERACK } from '../../src/peer/index.js';
import { PunchEngine } from '../../src/native/engine.js';
import { nativeObserver } from '../../src/nat/observe.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { wireCodec } from '../../src/punch/wire-codec.js';
import { COORD_MAX_QUEUED_OUT } from '../../src/punch/channel.js';
import { NATCHECK_MAX_CONNECTIONS } from '../../src/nat/natcheck-server.js';
import { encodeMessage, encodeRaw, MAGIC_BYTES } from '../../src/wire/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = [join(ROOT, 'bin', 'onionpunch.js'), 'natcheck-server', '--listen', '127.0.0.1:0', '--network', 'regtest'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (n: number) => +(n / 1e6).toFixed(1);

/** A version + verack as a peer that will never read would send them, back to back. */
function versionVerack(ua = '/attacker:0/'): Buffer {
  return Buffer.concat([
    encodeMessage('regtest', 'version', {
      version: 70016,
      services: 0n,
      timestamp: 0n,
      nonce: 7n,
      userAgent: ua,
      startHeight: 0,
      relay: false,
      addrRecv: { services: 0n, address: '::', port: 0 },
      addrFrom: { services: 0n, address: '::', port: 0 },
    }),
    encodeMessage('regtest', 'verack', {}),
  ]);
}

/** Writes `frame` repeatedly as fast as the kernel takes it, until the socket closes or `stop()`. */
function flood(sock: Socket, frame: Buffer): { stop: () => void; sent: () => number } {
  const burst = Buffer.concat(new Array<Buffer>(Math.ceil(65536 / frame.length)).fill(frame));
  let sent = 0;
  let stopped = false;
  const pump = (): void => {
    while (!stopped && !sock.destroyed) {
      sent += burst.length;
      if (!sock.write(burst)) {
        sock.once('drain', pump);
        return;
      }
    }
  };
  sock.on('error', () => {});
  pump();
  return { stop: () => void (stopped = true), sent: () => sent };
}

/** Resolves true once `s` closes (for any reason: FIN, RST), false after `ms`. */
function closedWithin(s: Socket, ms: number): Promise<boolean> {
  if (s.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

test('coordination channel: ping flood, never reading: cut off at a few KB queued', { timeout: 30_000 }, async (t) => {
  const listener = await createPunchListener({
    engine: PunchEngine.shared(),
    codec: wireCodec('regtest'),
    discovery: {
      methods: ['natcheck'],
      natcheckServers: [],
      observe: nativeObserver({ network: 'regtest' }),
      timeoutMs: 1000,
    },
    policy: { allowLoopback: true },
    localAddress: { v4: '127.0.0.1' },
    handshakeTimeoutMs: 10_000,
    stepTimeoutMs: 10_000,
  });
  const failures: string[] = [];
  listener.on('failure', (e) => failures.push(e.code));
  let accepted: Socket | undefined;
  const server = createServer((s) => {
    accepted = s;
    listener.handle(s);
  });
  const port = await listen(server);
  const rss0 = process.memoryUsage().rss;
  const attacker = connect(port, '127.0.0.1');
  try {
    await once(attacker, 'connect');
    attacker.pause(); // never reads a byte
    attacker.write(versionVerack());
    const f = flood(attacker, encodeMessage('regtest', 'ping', { nonce: 1n }));
    let maxQueued = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 8000 && !(accepted?.destroyed ?? false)) {
      maxQueued = Math.max(maxQueued, accepted?.writableLength ?? 0);
      await sleep(5);
    }
    f.stop();
    const cutMs = performance.now() - t0;
    const rssGrowth = process.memoryUsage().rss - rss0;
    t.diagnostic(
      JSON.stringify({
        attackerSentMb: mb(f.sent()),
        maxQueuedBytes: maxQueued,
        failures,
        cutAfterMs: Math.round(cutMs),
        rssGrowthMb: mb(rssGrowth),
      }),
    );
    assert.ok(accepted, 'the listener got the connection');
    assert.ok(accepted.destroyed, `the listener dropped the peer (still open after ${Math.round(cutMs)} ms)`);
    assert.ok(maxQueued <= COORD_MAX_QUEUED_OUT, `queued output ${maxQueued} <= ${COORD_MAX_QUEUED_OUT}`);
    await sleep(50);
    assert.deepEqual(failures, ['PUNCH_SEND_BUFFER_FULL']);
    assert.ok(rssGrowth < 64e6, `RSS grew ${mb(rssGrowth)} MB`);
    // The listener still serves: a well-behaved B gets A's version back.
    const b = connect(port, '127.0.0.1');
    await once(b, 'connect');
    const dec = wireCodec('regtest').decoder();
    b.write(wireCodec('regtest').encode({ cmd: 'version', nonce: 9n, userAgent: '/b:0/' }));
    const [chunk] = (await once(b, 'data')) as [Buffer];
    assert.ok(
      dec.push(chunk).some((m) => m.cmd === 'version'),
      'a legitimate client still gets a version',
    );
    b.destroy();
  } finally {
    attacker.destroy();
    await listener.close();
    server.close();
  }
});

// Long-lived Peer (announcer, collector): reading pauses, the queue stays bounded, then PEER_SEND_STALLED.
test('Peer: ping flood, never reading: paused, bounded, PEER_SEND_STALLED', { timeout: 30_000 }, async (t) => {
  const attackers: Socket[] = [];
  let flooding: ReturnType<typeof flood> | undefined;
  const server = createServer((s) => {
    attackers.push(s);
    s.pause(); // never reads
    s.write(versionVerack());
    flooding = flood(s, encodeMessage('regtest', 'ping', { nonce: 2n }));
  });
  const port = await listen(server);
  const rss0 = process.memoryUsage().rss;
  const sock = connect(port, '127.0.0.1');
  await once(sock, 'connect');
  // The announcer/collector's Peer, with a short stall bound so the test does not wait the default minute.
  const peer = new Peer(sock, { network: 'regtest', role: 'initiator', sendStallMs: 2000 });
  try {
    await peer.handshake();
    const closed = once(peer, 'close') as Promise<[PeerError | undefined]>;
    let maxQueued = 0;
    let sawPause = false;
    const t0 = performance.now();
    while (!peer.isClosed && performance.now() - t0 < 15_000) {
      maxQueued = Math.max(maxQueued, sock.writableLength);
      sawPause ||= peer.sendPaused;
      await sleep(5);
    }
    const ms = performance.now() - t0;
    const rssGrowth = process.memoryUsage().rss - rss0;
    t.diagnostic(
      JSON.stringify({
        attackerSentMb: mb(flooding?.sent() ?? 0),
        maxQueuedBytes: maxQueued,
        closedAfterMs: Math.round(ms),
        rssGrowthMb: mb(rssGrowth),
      }),
    );
    assert.ok(peer.isClosed, `peer still open after ${Math.round(ms)} ms`);
    const [why] = await closed;
    assert.ok(why instanceof PeerError && why.code === 'PEER_SEND_STALLED', `closed with ${why?.code}`);
    assert.ok(sawPause, 'reading was paused while the output queue was over the bound');
    // Pause bound + the pongs of the chunk being processed when it was crossed.
    assert.ok(maxQueued <= PEER_SEND_PAUSE_BYTES + 128 * 1024, `queued output ${maxQueued}`);
    assert.equal(peer.pendingTimers, 0);
    // Attacker and victim share this process, and the victim parsed ~8 MB of pings (the kernel's loopback buffers
    // fill before our queue grows): that garbage is most of the growth. Retention is what the queue bound checks.
    assert.ok(rssGrowth < 96e6, `RSS grew ${mb(rssGrowth)} MB`);
  } finally {
    flooding?.stop();
    peer.close();
    for (const s of attackers) s.destroy();
    server.close();
  }
});

// A slow reader is not a flooder: once it reads again we resume, we do not disconnect it.
test('Peer: a peer stops reading for a while, then reads again: paused, resumed', { timeout: 30_000 }, async () => {
  const server = createServer();
  const port = await listen(server);
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const a = connect(port, '127.0.0.1');
  await once(a, 'connect');
  const [b] = await accepted;
  try {
    const ours = new Peer(a, { network: 'regtest', role: 'initiator', sendStallMs: 10_000 });
    const theirs = new Peer(b, { network: 'regtest', role: 'responder' });
    await Promise.all([ours.handshake(), theirs.handshake()]);
    // Their side stops reading and floods pings: our pongs pile up until we pause.
    b.pause();
    const ping = encodeMessage('regtest', 'ping', { nonce: 1n });
    const burst = Buffer.concat(new Array<Buffer>(2048).fill(ping));
    // Write only while the kernel takes it, so that little is left to process once we resume.
    for (let i = 0; i < 4000 && !ours.sendPaused; i++) {
      if (b.writableLength === 0) b.write(burst);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(ours.sendPaused, 'reading paused while our queue is over the bound');
    assert.ok(a.writableLength <= PEER_SEND_PAUSE_BYTES + 128 * 1024, `queued ${a.writableLength}`);
    // They read again: our queue drains, we resume, and the connection still works both ways.
    b.resume();
    for (let i = 0; i < 500 && ours.sendPaused; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(ours.sendPaused, false, 'resumed after drain');
    assert.equal(ours.isClosed, false);
    const rtt = await ours.ping(5000);
    assert.ok(rtt >= 0);
    ours.close();
    theirs.close();
  } finally {
    a.destroy();
    b.destroy();
    server.close();
  }
});

test('Peer: our own sends to a never-reading peer stop at the hard cap', { timeout: 20_000 }, async () => {
  const attackers: Socket[] = [];
  const server = createServer((s) => {
    attackers.push(s);
    s.pause();
    s.write(versionVerack());
  });
  const port = await listen(server);
  const sock = connect(port, '127.0.0.1');
  await once(sock, 'connect');
  const peer = new Peer(sock, { network: 'regtest', role: 'initiator' });
  try {
    await peer.handshake();
    const closed = once(peer, 'close') as Promise<[PeerError | undefined]>;
    const big = Buffer.alloc(60_000);
    let sends = 0;
    let thrown: unknown;
    try {
      // Kernel buffers on loopback take several MB first; our queue then grows to the 1 MiB cap.
      for (; sends < 2000 && !peer.isClosed; sends++) {
        peer.send('junk', big);
        if (sends % 20 === 0) await sleep(1);
      }
    } catch (e) {
      thrown = e;
    }
    assert.ok(peer.isClosed, `still open after ${sends} sends of 60 kB`);
    const [why] = await closed;
    assert.equal(why?.code, 'PEER_SEND_BUFFER_FULL');
    assert.ok(thrown === undefined || (thrown instanceof PeerError && thrown.code === 'PEER_CLOSED'));
  } finally {
    peer.close();
    for (const s of attackers) s.destroy();
    server.close();
  }
});

test('pre-verack flood: a version then 100,000 messages, no verack: cut at the cap', { timeout: 20_000 }, async (t) => {
  const results: Array<{ code: string | undefined; kept: number; ms: number }> = [];
  let t0 = 0;
  const server = createServer((s) => {
    const peer = new Peer(s, { network: 'regtest', role: 'responder' });
    peer.handshake().catch(() => {});
    peer.once('close', (e) => {
      results.push({ code: e?.code, kept: peer.receivedBeforeVerack.length, ms: performance.now() - t0 });
    });
  });
  const port = await listen(server);
  const rss0 = process.memoryUsage().rss;
  const a = connect(port, '127.0.0.1');
  a.on('error', () => {});
  try {
    await once(a, 'connect');
    t0 = performance.now();
    a.write(versionVerack().subarray(0, -24)); // the version only
    const junk = encodeRaw('regtest', 'sendaddrv2');
    a.write(Buffer.concat(new Array<Buffer>(100_000).fill(junk)));
    for (let i = 0; i < 100 && results.length === 0; i++) await sleep(20);
    const rssGrowth = process.memoryUsage().rss - rss0;
    t.diagnostic(JSON.stringify({ ...results[0], rssGrowthMb: mb(rssGrowth) }));
    assert.equal(results.length, 1, 'disconnected within 2 s (not at the 10 s handshake timeout)');
    assert.equal(results[0]!.code, 'PEER_PRE_VERACK_FLOOD');
    assert.ok(results[0]!.kept <= PEER_MAX_PRE_VERACK, `kept ${results[0]!.kept} command names`);
  } finally {
    a.destroy();
    server.close();
  }
});

// --- natcheck-server (the CLI in a child process) -----------------------------------------------------------

interface Child {
  proc: ChildProcess;
  port: number;
  stderr: string[];
  stdout: string[];
  rss(): number;
  fds(): number;
  stop(): Promise<void>;
}

async function startNatcheckCli(...extra: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [...CLI, '--json', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const lines = createInterface({ input: proc.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`natcheck-server did not start: ${stderr.join('\n')}`)), 10_000);
    lines.on('line', (l) => {
      stdout.push(l);
      const m = JSON.parse(l) as { listening?: { port: number } };
      if (m.listening) {
        clearTimeout(t);
        resolve(m.listening.port);
      }
    });
    proc.once('exit', (c) => reject(new Error(`natcheck-server exited ${c}: ${stderr.join('\n')}`)));
  });
  const pid = proc.pid!;
  return {
    proc,
    port,
    stderr,
    stdout,
    rss: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024,
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    stop: async () => {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await once(proc, 'exit');
      clearTimeout(timer);
    },
  };
}

/** A legitimate NAT check: handshake from 127.0.0.1, the server must report the port it saw us from. */
async function legitCheck(port: number): Promise<void> {
  const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
  s.on('error', () => {});
  await once(s, 'connect');
  const peer = new Peer(s, { network: 'regtest', role: 'initiator', handshakeTimeoutMs: 4000 });
  try {
    const r = await peer.handshake();
    assert.equal(r.version.addrRecv.port, s.localPort);
  } finally {
    peer.close();
  }
}

// Global cap holds, fds stay bounded, a legitimate client is still served.
test('natcheck-server: 8,192 silent connections from 2,048 loopback sources', { timeout: 90_000 }, async (t) => {
  const srv = await startNatcheckCli();
  try {
    await sleep(200);
    const fds0 = srv.fds();
    const rss0 = srv.rss();
    // Sources 127.G.S.1: 64 netgroups (/16) of 32 addresses, 4 connections each, at most 1,024 open at a time.
    const sources: string[] = [];
    for (let g = 1; g <= 64; g++) for (let s = 0; s < 32; s++) sources.push(`127.${g}.${s}.1`);
    const TOTAL = sources.length * 4;
    let next = 0;
    let maxFds = 0;
    let maxLived = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          maxFds = Math.max(maxFds, srv.fds());
        } catch {
          // the child is gone: the assertions below say so
        }
        await sleep(20);
      }
    })();
    const one = (i: number): Promise<void> =>
      new Promise((resolve) => {
        const s = connect({ port: srv.port, host: '127.0.0.1', localAddress: sources[i % sources.length]! });
        const t0 = performance.now();
        s.on('error', () => {});
        s.on('close', () => {
          maxLived = Math.max(maxLived, performance.now() - t0);
          resolve();
        });
        // Silent: holds a slot until the server's 5 s handshake deadline, or until the test ends.
        setTimeout(() => s.destroy(), 6000).unref();
      });
    const legit: Array<Promise<void>> = [];
    const workers = Array.from({ length: 1024 }, async () => {
      while (next < TOTAL) await one(next++);
    });
    // Legitimate checks while the flood is on.
    for (let k = 0; k < 5; k++) {
      await sleep(1000);
      legit.push(legitCheck(srv.port));
    }
    const legitResults = await Promise.allSettled(legit);
    await Promise.all(workers);
    sampling = false;
    await sampler;
    const rssGrowth = srv.rss() - rss0;
    t.diagnostic(
      JSON.stringify({
        connections: TOTAL,
        sources: sources.length,
        fdsBefore: fds0,
        maxFds,
        rssGrowthMb: mb(rssGrowth),
        legit: legitResults.map((r) => r.status),
      }),
    );
    assert.equal(srv.proc.exitCode, null, 'the server is still running');
    const fdMsg = `server fds ${maxFds} (before ${fds0}, cap ${NATCHECK_MAX_CONNECTIONS})`;
    assert.ok(maxFds - fds0 <= NATCHECK_MAX_CONNECTIONS + 16, fdMsg);
    for (const r of legitResults) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
    assert.ok(rssGrowth < 64e6, `RSS grew ${mb(rssGrowth)} MB`);
    await legitCheck(srv.port);
  } finally {
    await srv.stop();
  }
});

test('natcheck-server: 4 MB headers, 2 MB of data: closed at the header, RSS flat', { timeout: 60_000 }, async (t) => {
  const srv = await startNatcheckCli();
  try {
    await sleep(200);
    const rss0 = srv.rss();
    const hdr = Buffer.alloc(24);
    Buffer.from(MAGIC_BYTES.regtest, 'hex').copy(hdr, 0);
    hdr.write('version', 4, 'latin1');
    hdr.writeUInt32LE(4_000_000, 16);
    const data = Buffer.alloc(2_000_000, 0x41);
    const closeMs: number[] = [];
    // 64 such clients, each from its own /16 so no netgroup cap stops them before the parser does.
    await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const s = connect({ port: srv.port, host: '127.0.0.1', localAddress: `127.${100 + i}.0.1` });
        s.on('error', () => {});
        await once(s, 'connect');
        const t0 = performance.now();
        s.write(hdr);
        s.write(data);
        closeMs.push((await closedWithin(s, 4000)) ? performance.now() - t0 : Infinity);
        s.destroy();
      }),
    );
    await sleep(300);
    const rssGrowth = srv.rss() - rss0;
    const worst = Math.max(...closeMs);
    t.diagnostic(JSON.stringify({ clients: 64, worstCloseMs: Math.round(worst), rssGrowthMb: mb(rssGrowth) }));
    assert.equal(srv.proc.exitCode, null, 'the server is still running');
    assert.ok(worst < 2000, `all closed quickly (worst ${Math.round(worst)} ms; the handshake timeout is 5,000)`);
    assert.ok(rssGrowth < 40e6, `RSS grew ${mb(rssGrowth)} MB`);
    await legitCheck(srv.port);
  } finally {
    await srv.stop();
  }
});

test('natcheck-server: a ping flood is closed at once and gets nothing back', { timeout: 20_000 }, async () => {
  const srv = await startNatcheckCli();
  try {
    const s = connect({ port: srv.port, host: '127.0.0.1' });
    s.on('error', () => {});
    await once(s, 'connect');
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    const t0 = performance.now();
    const f = flood(s, encodeMessage('regtest', 'ping', { nonce: 3n }));
    const closed = await closedWithin(s, 4000);
    f.stop();
    assert.ok(closed, 'closed');
    assert.ok(performance.now() - t0 < 2000, 'closed before the handshake timeout');
    assert.ok(got <= 1024, `server wrote ${got} bytes back (a version and a pong at most)`);
    s.destroy();
    await legitCheck(srv.port);
  } finally {
    await srv.stop();
  }
});

const EVIL_UA = '/evil:1/\r\n127.0.0.1:1 ok /forged:1/\x1b[2J\x1b]0;pwned\x07\x9b31m\u0085end';

test('natcheck-server --verbose --json: a hostile user agent is escaped', { timeout: 20_000 }, async () => {
  const srv = await startNatcheckCli('--verbose');
  try {
    const s = connect({ port: srv.port, host: '127.0.0.1' });
    await once(s, 'connect');
    const peer = new Peer(s, { network: 'regtest', role: 'initiator', userAgent: EVIL_UA });
    await peer.handshake();
    await once(peer, 'close');
    await sleep(300);
    const out = srv.stdout.filter((l) => l.includes('"result"'));
    assert.equal(out.length, 1, `one result line: ${JSON.stringify(out)}`);
    assert.match(out[0]!, /^[\x20-\x7e]*$/, 'the JSON line is printable ASCII only');
    const rec = JSON.parse(out[0]!) as { result: { userAgent: string } };
    assert.equal(rec.result.userAgent, EVIL_UA, 'the JSON value still round-trips exactly');
  } finally {
    await srv.stop();
  }
});

test('natcheck-server --verbose (text): the user agent is escaped on stderr', { timeout: 20_000 }, async () => {
  // Text mode: no --json, so the listening line is on stderr; find the port there.
  const proc = spawn(process.execPath, [...CLI, '--verbose'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const raw: Buffer[] = [];
  proc.stderr!.on('data', (d: Buffer) => raw.push(d));
  try {
    let port = 0;
    for (let i = 0; i < 100 && !port; i++) {
      await sleep(50);
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(Buffer.concat(raw).toString('latin1'));
      if (m) port = Number(m[1]);
    }
    assert.ok(port, 'server started');
    const s = connect({ port, host: '127.0.0.1' });
    await once(s, 'connect');
    const peer = new Peer(s, { network: 'regtest', role: 'initiator', userAgent: EVIL_UA });
    await peer.handshake();
    await once(peer, 'close');
    await sleep(300);
    const text = Buffer.concat(raw).toString('latin1');
    const lines = text.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, 2, `listening + one result line: ${JSON.stringify(lines)}`);
    for (const l of lines) assert.match(l, /^[\x20-\x7e]*$/, `printable ASCII only: ${JSON.stringify(l)}`);
    const escaped = ' ok /evil:1/\\r\\n127.0.0.1:1 ok /forged:1/\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\x85end';
    assert.ok(lines[1]!.endsWith(escaped), lines[1]);
  } finally {
    proc.kill('SIGTERM');
    if (proc.exitCode === null) await once(proc, 'exit');
  }
});
