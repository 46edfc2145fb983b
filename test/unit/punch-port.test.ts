/**
 * A punch port whose mapping lands on Bitcoin Core's bad-port list is replaced, not announced (the peer would
 * refuse the whole session with PUNCH_TARGET_BAD_PORT; CI saw the lab's eim-shift NAT map A's port to 110).
 *
 * The sessions run over loopback streams with the real native engine. The NAT is a fake observer, named as such:
 * a port-translating NAT that maps a chosen punch port onto the list cannot be picked on demand (the lab's
 * eim-shift NAT hashes the port), so the observer reports 127.0.0.1:110 for the first `bad` ports it is asked
 * about and the true local port afterwards (loopback needs the true one to connect).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { createPunchListener } from '../../src/punch/listener.js';
import { PunchClient } from '../../src/punch/client.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { MAX_PUNCH_PORT_TRIES, preparePunchPort } from '../../src/punch/punch-port.js';
import type { DiscoveryResult } from '../../src/nat/mapping.js';
import type { Endpoint, Observer } from '../../src/nat/types.js';
import type { PunchEngineLike } from '../../src/punch/engine-port.js';
import { clientOpts, listenerOpts, loopbackOverlay, enginePair } from '../helpers/punch-loopback.js';

const { engA, engB } = enginePair();

const ONION = 'x'.repeat(56) + '.onion';
const NATCHECK: Endpoint = { address: '127.0.0.1', port: 9 }; // never contacted: the observer below answers

/** The fake NAT: the first `bad` observations map onto port 110 (pop3), later ones preserve the port. */
function badFirst(bad: number): { observe: Observer; asked: number[] } {
  const asked: number[] = [];
  const observe: Observer = async (local) => {
    asked.push(local.port);
    return { address: '127.0.0.1', port: asked.length <= bad ? 110 : local.port };
  };
  return { observe, asked };
}

function result(...ports: number[]): DiscoveryResult {
  const endpoints = ports.map((port) => ({ address: '198.51.100.7', port, method: 'natcheck' as const }));
  return { endpoints, predicted: false, portPreserving: false, failures: [], elapsedMs: 0 };
}

test('preparePunchPort: a mapping on the bad-port list takes a new port; the first good one is kept', async () => {
  let next = 40_000;
  const maps = [22, 25, 41_000];
  const dropped: string[] = [];
  const p = await preparePunchPort({
    allocate: async () => ({ address: '0.0.0.0', port: next++ }),
    discover: async () => result(maps.shift()!),
    family: 4,
    side: 'A',
    onBadMapping: (l, bad) => dropped.push(`${l.port}->${bad.map((e) => e.port).join(',')}`),
  });
  assert.deepEqual(p.local, { address: '0.0.0.0', port: 40_002 });
  assert.equal(p.discovery.endpoints[0]!.port, 41_000);
  assert.deepEqual(dropped, ['40000->22', '40001->25']);
});

test('preparePunchPort: one bad endpoint spoils the set (the peer refuses it whole)', async () => {
  const sets = [result(41_000, 110), result(41_001)];
  let port = 40_000;
  const p = await preparePunchPort({
    allocate: async () => ({ address: '0.0.0.0', port: port++ }),
    discover: async () => sets.shift()!,
    family: 4,
    side: 'B',
  });
  assert.equal(p.local.port, 40_001);
  assert.deepEqual(
    p.discovery.endpoints.map((e) => e.port),
    [41_001],
  );
});

test(`preparePunchPort: ${MAX_PUNCH_PORT_TRIES} bad mappings in a row are PUNCH_DISCOVERY (B's)`, async () => {
  let port = 40_000;
  let discoveries = 0;
  const dropped: number[] = [];
  await assert.rejects(
    preparePunchPort({
      allocate: async () => ({ address: '0.0.0.0', port: port++ }),
      discover: async () => (discoveries++, result(110)),
      family: 4,
      side: 'B',
      onBadMapping: (l) => dropped.push(l.port),
    }),
    (err: unknown) => err instanceof PunchSessionError && err.code === 'PUNCH_DISCOVERY' && err.side === 'B',
  );
  assert.equal(discoveries, MAX_PUNCH_PORT_TRIES, 'bounded: one discovery per port tried');
  assert.deepEqual(dropped, [40_000, 40_001, 40_002], 'every port tried was dropped for its mapping');
});

test('preparePunchPort: a discovery error passes through untouched (no retry on another port)', async () => {
  const boom = new Error('natcheck down');
  let allocations = 0;
  await assert.rejects(
    preparePunchPort({
      allocate: async () => ({ address: '0.0.0.0', port: 40_000 + allocations++ }),
      discover: async () => {
        throw boom;
      },
      family: 4,
      side: 'A',
    }),
    (err) => err === boom,
  );
  assert.equal(allocations, 1);
});

test(
  "A's NAT maps its punch port to 110: A takes another port and the punch connects",
  { timeout: 20_000 },
  async () => {
    const nat = badFirst(1);
    const listener = await createPunchListener(
      listenerOpts(engA, '127.0.0.1', {
        prewarm: false,
        discovery: { methods: ['natcheck'], natcheckServers: [NATCHECK], observe: nat.observe },
      }),
    );
    const { server, dialer, port } = await loopbackOverlay(listener);
    try {
      const gotA = new Promise<[Socket, { timeline: { at(e: string): number | undefined } }]>((r) =>
        listener.once('connection', (s, i) => r([s, i])),
      );
      const r = await new PunchClient(clientOpts(engB, dialer)).punch({ address: ONION, port, expectIp: '127.0.0.1' });
      const [aSock, info] = await gotA;
      assert.equal(nat.asked.length, 2, 'A discovered two ports');
      assert.notEqual(nat.asked[0], nat.asked[1]);
      assert.equal(aSock.localPort, nat.asked[1], "A punched from its second port (the first one's mapping was 110)");
      assert.equal(r.remote.port, nat.asked[1]);
      assert.ok(info.timeline.at('bad-mapping') !== undefined, "A's timeline names the dropped port");
      aSock.destroy();
      r.socket.destroy();
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  "B's NAT maps its punch port to 110: B takes another port and the punch connects",
  { timeout: 20_000 },
  async () => {
    const nat = badFirst(1);
    const listener = await createPunchListener(listenerOpts(engA));
    const { server, dialer, port } = await loopbackOverlay(listener);
    try {
      const gotA = new Promise<Socket>((r) => listener.once('connection', (s) => r(s)));
      const client = new PunchClient(
        clientOpts(engB, dialer, {
          discovery: { methods: ['natcheck'], natcheckServers: [NATCHECK], observe: nat.observe },
        }),
      );
      const r = await client.punch({ address: ONION, port, expectIp: '127.0.0.1' });
      const aSock = await gotA;
      assert.equal(nat.asked.length, 2);
      assert.equal(r.socket.localPort, nat.asked[1], 'B punched from its second port');
      assert.equal(aSock.remotePort, nat.asked[1], 'A verified the endpoint B announced');
      assert.ok(r.timeline.at('bad-mapping') !== undefined);
      aSock.destroy();
      r.socket.destroy();
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  'the announced zero-RTT port and the prewarmed port never carry a bad-port mapping',
  { timeout: 20_000 },
  async () => {
    const nat = badFirst(2);
    const listener = await createPunchListener(
      listenerOpts(engA, '127.0.0.1', {
        zeroRtt: true,
        prewarm: true,
        discovery: { methods: ['natcheck'], natcheckServers: [NATCHECK], observe: nat.observe },
      }),
    );
    try {
      const announced = await listener.zeroRttReady();
      assert.ok(announced, 'A announces a port');
      assert.notEqual(announced.port, 110);
      // Wait for the prewarm too, then every port the fake NAT mapped to 110 must be out of use.
      for (let i = 0; i < 50 && nat.asked.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(nat.asked.length, 4, 'two ports dropped, one announced, one prewarmed');
      assert.ok(!nat.asked.slice(0, 2).includes(announced.port), 'the announced port is not one mapped to 110');
      assert.equal(listener.zeroRttEndpoint()?.port, announced.port);
    } finally {
      await listener.close();
    }
  },
);

test(
  'A holds its announced and prewarmed ports while it has them; refused ports at once, the rest at close',
  { timeout: 20_000 },
  async () => {
    const held = new Map<number, boolean>(); // port -> still held
    const engine: PunchEngineLike = {
      punch: (p) => engA.punch(p),
      now: () => engA.now(),
      probeBind: (l) => engA.probeBind(l),
      reservePort: (l) => {
        const r = engA.reservePort(l);
        held.set(r.local.port, true);
        return {
          local: r.local,
          release: () => {
            r.release();
            held.set(r.local.port, false);
          },
        };
      },
    };
    const nat = badFirst(2);
    const listener = await createPunchListener(
      listenerOpts(engine, '127.0.0.1', {
        zeroRtt: true,
        prewarm: true,
        discovery: { methods: ['natcheck'], natcheckServers: [NATCHECK], observe: nat.observe },
      }),
    );
    try {
      const announced = await listener.zeroRttReady();
      assert.ok(announced);
      for (let i = 0; i < 50 && nat.asked.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
      const holding = (): number[] => [...held].filter(([, h]) => h).map(([p]) => p);
      // The prewarm's result lands a turn after its discovery.
      for (let i = 0; i < 50 && holding().length > 2; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(held.size, 4, 'every port the listener took was reserved');
      const still = holding();
      assert.equal(still.length, 2, `the announced and the warm port are held (${JSON.stringify([...held])})`);
      assert.ok(still.includes(announced.port));
      for (const p of nat.asked.slice(0, 2)) assert.equal(held.get(p), false, `refused port ${p} released`);
    } finally {
      await listener.close();
    }
    assert.deepEqual(
      [...held].filter(([, h]) => h),
      [],
      'close() released them',
    );
  },
);
