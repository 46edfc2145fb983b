/**
 * The coordination protocol over a real loopback TCP stream pair (standing in for the Tor/I2P stream), with
 * the real native engine doing the simultaneous open on 127.0.0.1. Mapping discovery is port prediction
 * from an EIM verdict whose public address is 127.0.0.1 (what a loopback "NAT" maps to).
 */
import { loopbackOverlay } from '../helpers/punch-loopback.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { PunchEngine, connectFrom } from '../../src/native/engine.js';
import type { PunchEngineLike } from '../../src/punch/engine-port.js';
import { listeningEngine } from '../helpers/listening-engine.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { PunchClient } from '../../src/punch/client.js';
import { wireCodec } from '../../src/punch/wire-codec.js';
import { StreamChannel } from '../../src/punch/channel.js';
import { runInitiator } from '../../src/punch/initiator.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { verdictFrom, type EimVerdict } from '../../src/nat/eim-check.js';
import type { CoordinationDialer } from '../../src/overlay/types.js';

const codec = wireCodec('regtest');

/**
 * The real native engine does the simultaneous open on 127.0.0.1: one engine (thread) per side, as two hosts
 * would have, and a 1 ms re-SYN grid. (On loopback a SYN is delivered inside the sender's connect(); the
 * other side's socket must already be in SYN_SENT, which the shared start instant and the fine grid make
 * happen within a few slots. The SYN cap is raised accordingly.)
 */
const engA = new PunchEngine();
const engB = new PunchEngine();
after(async () => {
  await engA.stop();
  await engB.stop();
});
const real = engB;
// The two sides' start instants differ by the (sub-ms) skew of the coordination; slightly different re-SYN
// grids (a vernier) make the relative phase sweep through alignment instead of possibly never meeting.
const LOOPBACK_TUNING = { profile: 'plain' as const, resynIntervalUs: 1000 };
const LOOPBACK_TUNING_B = { profile: 'plain' as const, resynIntervalUs: 1037 };

const eim = (mapping: 'eim' | 'edm' = 'eim'): EimVerdict => ({
  ...verdictFrom(
    1,
    mapping === 'eim'
      ? [
          { peer: 'x', address: '127.0.0.1', port: 1 },
          { peer: 'y', address: '127.0.0.1', port: 1 },
        ]
      : [
          { peer: 'x', address: '127.0.0.1', port: 1 },
          { peer: 'y', address: '127.0.0.1', port: 2 },
        ],
  ),
  localPort: 1,
  checkedAt: 0,
});
// portPreserving must be true for prediction: the verdict above has port 1 == localPort 1.

function listenerOpts(
  extra: Partial<Parameters<typeof createPunchListener>[0]> = {},
): Parameters<typeof createPunchListener>[0] {
  return {
    engine: engA,
    codec,
    discovery: { methods: ['predict'] },
    eim: eim(),
    policy: { allowLoopback: true },
    localAddress: { v4: '127.0.0.1' },
    tuning: LOOPBACK_TUNING,
    limits: { maxSynsPerSession: 20_000 },
    ...extra,
  };
}

function clientOpts(
  dialer: CoordinationDialer,
  extra: Partial<ConstructorParameters<typeof PunchClient>[0]> = {},
): ConstructorParameters<typeof PunchClient>[0] {
  return {
    dialer,
    engine: engB,
    codec,
    discovery: { methods: ['predict'] },
    eim: eim(),
    policy: { allowLoopback: true },
    localAddress: '127.0.0.1',
    tuning: LOOPBACK_TUNING_B,
    limits: { maxSynsPerSession: 20_000 },
    fireDelayMs: 10,
    deadlineMs: 8000,
    ...extra,
  };
}

async function echoOnce(a: Socket, b: Socket): Promise<void> {
  const gotA = new Promise<Buffer>((r) => a.once('data', r));
  const gotB = new Promise<Buffer>((r) => b.once('data', r));
  b.write('hello from B');
  a.write('hello from A');
  assert.equal((await gotA).toString(), 'hello from B');
  assert.equal((await gotB).toString(), 'hello from A');
}

test(
  'full session over loopback: B gets a verified socket to A, A emits it, bytes flow both ways',
  { timeout: 20_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts());
    const { server, dialer, port } = await loopbackOverlay(listener);
    try {
      const gotA = new Promise<[Socket, { remote: { port: number }; timeline: { at(e: string): number | undefined } }]>(
        (r) => listener.once('connection', (s, i) => r([s, i])),
      );
      const client = new PunchClient(clientOpts(dialer));
      const r = await client.punch({ address: 'x'.repeat(56) + '.onion', port, expectIp: '127.0.0.1' });
      const [aSock, info] = await gotA;
      assert.equal(r.socket.remotePort, aSock.localPort, "B's peer is A's punch socket");
      assert.equal(aSock.remotePort, r.socket.localPort);
      assert.equal(info.remote.port, r.socket.localPort, 'A verified the endpoint B announced');
      assert.ok(typeof r.overlayRttMs === 'number' && r.overlayRttMs >= 0);
      for (const e of ['version-sent', 'handshake', 'peer-endpoints', 'rtt', 'fire-sent', 'established', 'verified'])
        assert.ok(r.timeline.at(e) !== undefined, `B timeline has ${e}`);
      for (const e of ['request', 'peer-endpoints', 'fire-received', 'established', 'verified'])
        assert.ok(info.timeline.at(e) !== undefined, `A timeline has ${e}`);
      await echoOnce(aSock, r.socket);
      aSock.destroy();
      r.socket.destroy();
      assert.equal(listener.stats.connected, 1);
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  'edm on A: B fails fast with nat-unsuitable naming A; edm on B fails before dialing, naming B',
  { timeout: 10_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts({ eim: eim('edm') }));
    const { server, dialer, port } = await loopbackOverlay(listener);
    try {
      const t0 = performance.now();
      await assert.rejects(
        new PunchClient(clientOpts(dialer)).punch({ address: 'a.onion', port, expectIp: '127.0.0.1' }),
        (e: unknown) =>
          e instanceof PunchSessionError &&
          e.code === 'PUNCH_NAT_UNSUITABLE' &&
          e.side === 'A' &&
          /A's NAT/.test(e.message),
      );
      assert.ok(performance.now() - t0 < 2000, 'fails fast');
      let dialed = 0;
      const counting: CoordinationDialer = {
        ...dialer,
        dial: (a, p, o) => {
          dialed++;
          return dialer.dial(a, p, o);
        },
      };
      await assert.rejects(
        new PunchClient(clientOpts(counting, { eim: eim('edm') })).punch({
          address: 'a.onion',
          port,
          expectIp: '127.0.0.1',
        }),
        (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_NAT_UNSUITABLE' && e.side === 'B',
      );
      assert.equal(dialed, 0, 'B never dials with an EDM NAT');
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test('non-public endpoints are refused unless the lab/loopback flag allows them', { timeout: 10_000 }, async () => {
  const listener = await createPunchListener(listenerOpts({ policy: {} }));
  const { server, dialer, port } = await loopbackOverlay(listener);
  const failures: PunchSessionError[] = [];
  listener.on('failure', (e) => failures.push(e));
  try {
    await assert.rejects(
      new PunchClient(clientOpts(dialer)).punch({ address: 'a.onion', port, expectIp: '127.0.0.1' }),
      (e: unknown) =>
        e instanceof PunchSessionError &&
        e.code === 'PUNCH_REJECTED' &&
        e.rejectCode === 'bad-request' &&
        /not public unicast/.test(e.message),
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(failures[0]?.code, 'PUNCH_TARGET_REFUSED');
  } finally {
    await listener.close();
    server.close();
  }
});

test(
  'every step has a timeout: a silent A gives PUNCH_TIMEOUT at step version; a closed stream PUNCH_CLOSED',
  { timeout: 10_000 },
  async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const s = connect(port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      const ch = new StreamChannel(s, codec);
      const disco = Promise.resolve({
        endpoints: [{ address: '127.0.0.1', port: 5, method: 'predict' as const }],
        predicted: true,
        portPreserving: true,
        failures: [],
        elapsedMs: 0,
      });
      await assert.rejects(
        runInitiator(ch, {
          engine: engB,
          local: { address: '127.0.0.1', port: 5 },
          discovery: disco,
          handshakeTimeoutMs: 300,
        }),
        (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_TIMEOUT' && e.step === 'version',
      );
    } finally {
      silent.close();
    }
    const closing = createServer((s) => s.destroy());
    await new Promise<void>((r) => closing.listen(0, '127.0.0.1', r));
    const port2 = (closing.address() as { port: number }).port;
    try {
      const s = connect(port2, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      const ch = new StreamChannel(s, codec);
      const disco = Promise.resolve({
        endpoints: [{ address: '127.0.0.1', port: 5, method: 'predict' as const }],
        predicted: true,
        portPreserving: true,
        failures: [],
        elapsedMs: 0,
      });
      await assert.rejects(
        runInitiator(ch, {
          engine: engB,
          local: { address: '127.0.0.1', port: 5 },
          discovery: disco,
          handshakeTimeoutMs: 3000,
        }),
        (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_CLOSED',
      );
    } finally {
      closing.close();
    }
  },
);

test('garbage on the coordination stream is a protocol error, not a crash', { timeout: 10_000 }, async () => {
  const listener = await createPunchListener(listenerOpts());
  const { server, port } = await loopbackOverlay(listener);
  const failures: PunchSessionError[] = [];
  listener.on('failure', (e) => failures.push(e));
  try {
    const s = connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.alloc(64, 0x41));
    await new Promise((r) => s.once('close', r));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(failures[0]?.code, 'PUNCH_PROTOCOL');
  } finally {
    await listener.close();
    server.close();
  }
});

test(
  'verify: a connection from an endpoint B did not announce is closed and the session fails (verify-failed)',
  { timeout: 20_000 },
  async () => {
    // The fault — a peer completing the TCP handshake from another port than the one announced over the
    // overlay — cannot be produced with two honest engines (A's SYN_SENT socket only matches the announced
    // 4-tuple). So, named as fault injection: A's side accepts on its punch port from anyone, and B connects
    // (native connectFrom) from port 0 (any) instead of its announced port.
    const listeningA = listeningEngine(() => real.now());
    const wrongPortB: PunchEngineLike = {
      now: () => real.now(),
      probeBind: (local) => real.probeBind(local),
      punch: async (plan) => {
        const startMs = plan.startAtNs !== undefined ? Number(plan.startAtNs - real.now()) / 1e6 : 0;
        if (startMs > 0) await new Promise((r) => setTimeout(r, startMs));
        for (let i = 0; ; i++) {
          try {
            return await connectFrom({ address: plan.local.address, port: 0 }, plan.remotes[0]!, { timeoutMs: 1000 });
          } catch (err) {
            if (i > 100) throw err;
            await new Promise((r) => setTimeout(r, 10));
          }
        }
      },
    };
    const listener = await createPunchListener(listenerOpts({ engine: listeningA }));
    const { server, dialer, port } = await loopbackOverlay(listener);
    const failure = new Promise<PunchSessionError>((r) => listener.once('failure', r));
    try {
      const r = await new PunchClient(clientOpts(dialer, { engine: wrongPortB })).punch({
        address: 'a.onion',
        port,
        expectIp: '127.0.0.1',
      });
      const e = await failure;
      assert.equal(e.code, 'PUNCH_VERIFY_FAILED');
      assert.equal(e.side, 'A');
      assert.equal(listener.stats.connected, 0, 'A never handed the socket out');
      await new Promise((res) => {
        if (r.socket.destroyed) res(undefined);
        else {
          r.socket.on('close', res);
          r.socket.on('error', () => undefined);
          r.socket.resume();
        }
      });
    } finally {
      await listener.close();
      server.close();
    }
  },
);
