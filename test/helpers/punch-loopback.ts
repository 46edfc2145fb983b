/**
 * Loopback rig for punch tests: real kernel TCP streams stand in for the overlay, the real native engine
 * punches on 127.0.0.0/8 (every 127.x address is local, so 127.0.0.2 can play "another host"), and a raw
 * client speaks the coordination protocol byte by byte as an attacker would.
 */
import { after } from 'node:test';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { PunchEngine } from '../../src/native/engine.js';
import type { Duplex } from 'node:stream';
import { encodeRaw } from '../../src/wire/frame.js';
import { wireCodec } from '../../src/punch/wire-codec.js';
import type { PunchListener, PunchListenerOptions } from '../../src/punch/listener.js';
import type { PunchClientOptions } from '../../src/punch/client.js';
import type { PunchEngineLike } from '../../src/punch/engine-port.js';
import type { CoordMessage } from '../../src/punch/messages.js';
import { StreamChannel } from '../../src/punch/channel.js';
import { verdictFrom, type EimVerdict } from '../../src/nat/eim-check.js';
import type { AcceptedStreamInfo, CoordinationDialer } from '../../src/overlay/types.js';

export const codec = wireCodec('regtest');

/** A 24-byte frame (header only) with a command nobody knows: what a slowloris peer trickles. */
export const UNKNOWN_24 = encodeRaw('regtest', 'xyzzy');

/** Plain schedule on a 1 ms re-SYN grid (B slightly off, a vernier): how two engines meet on loopback. */
export const LOOPBACK_TUNING = { profile: 'plain' as const, resynIntervalUs: 1000 };
export const LOOPBACK_TUNING_B = { profile: 'plain' as const, resynIntervalUs: 1037 };

/** A connected loopback TCP pair: `near` (a channel's end) and `far`; `close()` destroys both and the server. */
export async function tcpPair(): Promise<{ near: Socket; far: Socket; close: () => void }> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const near = connect((srv.address() as { port: number }).port, '127.0.0.1');
  await new Promise((r) => near.once('connect', r));
  const far = await accepted;
  const close = (): void => {
    near.destroy();
    far.destroy();
    srv.close();
  };
  return { near, far, close };
}

/** A port-preserving EIM verdict whose public address is `ip` (a loopback "NAT" maps to itself). */
export function eimAt(ip = '127.0.0.1'): EimVerdict {
  return {
    ...verdictFrom(1, [
      { peer: 'x', address: ip, port: 1 },
      { peer: 'y', address: ip, port: 1 },
    ]),
    localPort: 1,
    checkedAt: 0,
  };
}

/** An endpoint-dependent verdict on `ip` with a port spread (its NAT check took spread samples). */
export function edmAt(ip: string, ports = [40_010, 40_900, 40_300, 40_555, 40_123]): EimVerdict {
  const observed = [
    { peer: 'x', address: ip, port: 40_001 },
    { peer: 'y', address: ip, port: 40_500 },
  ];
  const spread = ports.map((port, i) => ({ peer: 'x', address: ip, port, localPort: 30_000 + i }));
  return { ...verdictFrom(1, observed, [], spread), checkedAt: 0 };
}

/** One engine (thread) per side, as two hosts would have; both stopped after the file's tests. */
export function enginePair(): { engA: PunchEngine; engB: PunchEngine } {
  const engA = new PunchEngine();
  const engB = new PunchEngine();
  after(async () => {
    await engA.stop();
    await engB.stop();
  });
  return { engA, engB };
}

/** A loopback "overlay": each accepted TCP stream goes to `listener.handle` with `info` (e.g. an I2P peer). */
export async function loopbackOverlay(
  listener: PunchListener,
  info: AcceptedStreamInfo = {},
): Promise<{ server: Server; dialer: CoordinationDialer; port: number }> {
  const server = createServer((s) => listener.handle(s, info));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, dialer: portDialer(), port };
}

/** A "dialer" over loopback TCP: every dial goes to 127.0.0.1:`port` (default: the port the target names). */
export function portDialer(port?: number): CoordinationDialer {
  return {
    kind: 'tor',
    dial: (_a, p) =>
      new Promise<Duplex>((resolve, reject) => {
        const s = connect(port ?? p, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      }),
    close: async () => undefined,
  };
}

/** Listener options for A on `ip` (its punch socket binds there and its mapping is predicted there). */
export function listenerOpts(
  engine: PunchEngineLike,
  ip = '127.0.0.1',
  extra: Partial<PunchListenerOptions> = {},
): PunchListenerOptions {
  return {
    engine,
    codec,
    discovery: { methods: ['predict'] },
    eim: eimAt(ip),
    policy: { allowLoopback: true },
    localAddress: { v4: ip },
    tuning: LOOPBACK_TUNING,
    ...extra,
    limits: { maxSynsPerSession: 20_000, ...(extra.limits ?? {}) },
  };
}

export function clientOpts(
  engine: PunchEngineLike,
  dialer: CoordinationDialer,
  extra: Partial<PunchClientOptions> = {},
): PunchClientOptions {
  return {
    dialer,
    engine,
    codec,
    discovery: { methods: ['predict'] },
    eim: eimAt('127.0.0.1'),
    policy: { allowLoopback: true },
    localAddress: '127.0.0.1',
    tuning: LOOPBACK_TUNING_B,
    limits: { maxSynsPerSession: 20_000 },
    fireDelayMs: 10,
    deadlineMs: 8000,
    ...extra,
  };
}

/** A hand-driven coordination client (an attacker, or a B that stops halfway). */
export interface RawPeer {
  sock: Socket;
  ch: StreamChannel;
  /** Resolves with ms from connect to close. */
  closed: Promise<number>;
  send(m: CoordMessage): void;
  next(ms?: number): Promise<CoordMessage>;
  /** Writes UNKNOWN_24 every `everyMs` until the stream closes. */
  trickle(everyMs: number): void;
}

export async function rawPeer(port: number, host = '127.0.0.1'): Promise<RawPeer> {
  const sock = connect(port, host);
  sock.on('error', () => undefined);
  await new Promise<void>((r, j) => {
    sock.once('connect', () => r());
    sock.once('error', j);
  });
  const t0 = performance.now();
  const closed = new Promise<number>((r) => sock.once('close', () => r(performance.now() - t0)));
  const ch = new StreamChannel(sock, codec);
  return {
    sock,
    ch,
    closed,
    send: (m) => ch.send(m),
    next: (ms = 3000) => ch.next(ms, 'test'),
    trickle: (everyMs) => {
      const t = setInterval(() => {
        if (sock.destroyed || !sock.writable) clearInterval(t);
        else sock.write(UNKNOWN_24);
      }, everyMs);
      void closed.then(() => clearInterval(t));
    },
  };
}

/** Reads messages until one of `cmd` arrives (others skipped), or rejects on close/timeout. */
export async function until<C extends CoordMessage['cmd']>(
  p: RawPeer,
  cmds: C[],
  ms = 3000,
): Promise<Extract<CoordMessage, { cmd: C }>> {
  const end = performance.now() + ms;
  for (;;) {
    const m = await p.ch.next(Math.max(1, end - performance.now()), cmds.join('|'));
    if ((cmds as string[]).includes(m.cmd)) return m as Extract<CoordMessage, { cmd: C }>;
  }
}

/** Resolves `p`'s close time, or `undefined` if it is still open after `ms`. */
export function closedWithin(p: RawPeer, ms: number): Promise<number | undefined> {
  return Promise.race([p.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}
