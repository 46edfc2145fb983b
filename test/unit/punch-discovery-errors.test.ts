/**
 * A's mapping discovery failures keep their identity up to the session: an exhausted discovery budget
 * (NAT_BUDGET among the NatError causes) makes A answer `busy` and fail PUNCH_RATE_LIMITED; any other
 * discovery failure is `nat-unsuitable` / PUNCH_DISCOVERY, whatever words its message holds. The observer is a
 * STAND-IN that fails (a NAT-check server that does not answer), so the budget is what decides.
 */
import { loopbackOverlay } from '../helpers/punch-loopback.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PunchEngine } from '../../src/native/engine.js';
import { createPunchListener, type PunchListener } from '../../src/punch/listener.js';
import { PunchClient } from '../../src/punch/client.js';
import { wireCodec } from '../../src/punch/wire-codec.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { NatError } from '../../src/nat/errors.js';
import { discoverMapping } from '../../src/nat/mapping.js';
import { TokenBucket } from '../../src/limits/token-bucket.js';
import { verdictFrom, type EimVerdict } from '../../src/nat/eim-check.js';
import type { CoordinationDialer } from '../../src/overlay/types.js';

const codec = wireCodec('regtest');
const engine = new PunchEngine();
after(() => engine.stop());

const eim: EimVerdict = {
  ...verdictFrom(1, [
    { peer: 'x', address: '127.0.0.1', port: 1 },
    { peer: 'y', address: '127.0.0.1', port: 1 },
  ]),
  localPort: 1,
  checkedAt: 0,
};

test('discoverMapping keeps each failure as a typed cause (NatError.has)', async () => {
  const budget = new TokenBucket({ ratePerSec: 0, capacity: 1 });
  const observe = async (): Promise<never> => {
    throw new Error('the server is over its budget'); // words that once decided the classification
  };
  const opts = {
    local: { address: '0.0.0.0', port: 1 },
    methods: ['natcheck' as const],
    observe,
    natcheckServers: [{ address: '198.18.0.9', port: 8333 }],
    budget,
  };
  const first = await discoverMapping(opts).catch((e: unknown) => e);
  assert.ok(first instanceof NatError && first.code === 'NAT_NO_MAPPING');
  assert.equal(first.has('NAT_BUDGET'), false, 'a message that mentions a budget is no budget failure');
  assert.ok(first.has('NAT_OBSERVE_FAILED'));
  const second = await discoverMapping(opts).catch((e: unknown) => e);
  assert.ok(second instanceof NatError && second.code === 'NAT_NO_MAPPING');
  assert.ok(second.has('NAT_BUDGET'));
  assert.ok(second.causes[0] instanceof NatError && (second.causes[0] as NatError).code === 'NAT_BUDGET');
});

type Overlay = { dialer: CoordinationDialer; port: number; close: () => void };

async function overlay(listener: PunchListener): Promise<Overlay> {
  const { server, dialer, port } = await loopbackOverlay(listener);
  return { dialer, port, close: () => server.close() };
}

const title = 'A: a discovery failure that mentions "budget" is nat-unsuitable; an exhausted budget is busy';
test(title, { timeout: 20_000 }, async () => {
  const listener = await createPunchListener({
    engine,
    codec,
    prewarm: false,
    discovery: {
      methods: ['natcheck'],
      natcheckServers: [{ address: '127.0.0.1', port: 9 }],
      observe: async () => {
        throw new Error('natcheck server over budget');
      },
    },
    eim,
    policy: { allowLoopback: true },
    localAddress: { v4: '127.0.0.1' },
    limits: { discoveryBurst: 1, discoveryPerSec: 0 },
  });
  const failures: PunchSessionError[] = [];
  listener.on('failure', (e: PunchSessionError) => failures.push(e));
  const { dialer, port, close } = await overlay(listener);
  const client = new PunchClient({
    dialer,
    engine,
    codec,
    discovery: { methods: ['predict'] },
    eim,
    policy: { allowLoopback: true },
    localAddress: '127.0.0.1',
    deadlineMs: 3000,
  });
  try {
    await assert.rejects(
      client.punch({ address: 'a.onion', port, expectIp: null }),
      (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_NAT_UNSUITABLE' && e.side === 'A',
    );
    await assert.rejects(
      client.punch({ address: 'a.onion', port, expectIp: null }),
      (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_REJECTED' && e.rejectCode === 'busy',
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      failures.map((f) => f.code),
      ['PUNCH_DISCOVERY', 'PUNCH_RATE_LIMITED'],
    );
    assert.ok(failures[1]!.cause instanceof NatError && failures[1]!.cause.has('NAT_BUDGET'));
  } finally {
    await listener.close();
    close();
  }
});
