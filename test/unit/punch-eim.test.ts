import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verdictFrom, eimCheck, EimCache, type EimVerdict } from '../../src/nat/eim-check.js';
import { discoverMapping } from '../../src/nat/mapping.js';
import { NatError } from '../../src/nat/errors.js';
import { parseEndpoint, formatEndpoint } from '../../src/nat/types.js';
import { ManualClock, TokenBucket } from '../../src/limits/index.js';

const obs = (peer: string, address: string, port: number) => ({ peer, address, port });

test('verdict: same address and port from two peers is EIM, port-preserving when port = local port', () => {
  const v = verdictFrom(40000, [obs('p1', '198.18.1.2', 40000), obs('p2', '198.18.1.2', 40000)]);
  assert.equal(v.mapping, 'eim');
  assert.equal(v.portPreserving, true);
  assert.equal(v.publicAddress, '198.18.1.2');
  const w = verdictFrom(40000, [obs('p1', '198.18.1.2', 51000), obs('p2', '198.18.1.2', 51000)]);
  assert.equal(w.mapping, 'eim');
  assert.equal(w.portPreserving, false);
});

test('verdict: different ports is EDM; different addresses, missing addr_recv or failures are unknown with a reason', () => {
  assert.equal(verdictFrom(1, [obs('p1', '198.18.1.2', 1000), obs('p2', '198.18.1.2', 2000)]).mapping, 'edm');
  const u = verdictFrom(1, [obs('p1', '198.18.1.2', 1000), obs('p2', '198.18.1.3', 1000)]);
  assert.equal(u.mapping, 'unknown');
  assert.match(u.reason!, /different public addresses/);
  const z = verdictFrom(1, [obs('p1', '0.0.0.0', 0), obs('p2', '198.18.1.3', 1000)]);
  assert.equal(z.mapping, 'unknown');
  assert.match(z.reason!, /did not report/);
  const f = verdictFrom(1, [obs('p1', '198.18.1.2', 1000)], ['p2: connect timeout']);
  assert.equal(f.mapping, 'unknown');
  assert.match(f.reason!, /connect timeout/);
});

test('eimCheck needs two distinct peers and turns observer failures into unknown', async () => {
  const one = await eimCheck({
    local: { address: '0.0.0.0', port: 5 },
    peers: [
      { address: '198.18.0.1', port: 8333 },
      { address: '198.18.0.1', port: 8333 },
    ],
    observe: async () => ({ address: '1.2.3.4', port: 5 }),
  });
  assert.equal(one.mapping, 'unknown');
  const r = await eimCheck({
    local: { address: '0.0.0.0', port: 5 },
    peers: [
      { address: '198.18.0.1', port: 8333 },
      { address: '198.18.0.2', port: 8333 },
    ],
    observe: async (_l, p) => {
      if (p.address === '198.18.0.2') throw new Error('ECONNREFUSED');
      return { address: '198.18.9.9', port: 5 };
    },
  });
  assert.equal(r.mapping, 'unknown');
  assert.match(r.reason!, /ECONNREFUSED/);
});

test('EIM cache: per network, expires, and drops an entry when the public IP changes', async () => {
  const c = new ManualClock(1000);
  const cache = new EimCache(60_000, c.now);
  const net = { localAddress: '10.1.0.2', gateway: '10.1.0.1' };
  let runs = 0;
  const run = async (): Promise<EimVerdict> => {
    runs++;
    return { ...verdictFrom(7, [obs('a', '198.18.1.1', 7), obs('b', '198.18.1.1', 7)]), checkedAt: c.now() };
  };
  await cache.getOrCheck(net, run);
  await cache.getOrCheck(net, run);
  assert.equal(runs, 1);
  assert.equal(
    cache.get({ localAddress: '10.9.0.2', gateway: '10.9.0.1' }),
    undefined,
    'another network is not cached',
  );
  c.advance(60_001);
  await cache.getOrCheck(net, run);
  assert.equal(runs, 2, 'expired');
  cache.notePublicAddress(net, '198.18.1.1');
  assert.ok(cache.get(net));
  cache.notePublicAddress(net, '198.18.7.7');
  assert.equal(cache.get(net), undefined, 'public IP changed: network changed');
});

test('mapping discovery: predict needs a port-preserving EIM verdict; observed endpoints rank first; budget is enforced', async () => {
  const eim = { ...verdictFrom(4000, [obs('a', '198.18.1.1', 4000), obs('b', '198.18.1.1', 4000)]), checkedAt: 0 };
  const p = await discoverMapping({ local: { address: '0.0.0.0', port: 4444 }, methods: ['predict'], eim });
  assert.deepEqual(p.endpoints.map(formatEndpoint), ['198.18.1.1:4444']);
  assert.equal(p.predicted, true);
  assert.equal(p.portPreserving, true);
  let calls = 0;
  const observe = async () => {
    calls++;
    return { address: '198.18.1.1', port: 4450 };
  };
  const both = await discoverMapping({
    local: { address: '0.0.0.0', port: 4444 },
    methods: ['predict', 'natcheck'],
    firstOnly: false,
    eim,
    observe,
    natcheckServers: [{ address: '198.18.0.9', port: 8333 }],
  });
  assert.deepEqual(
    both.endpoints.map((e) => `${e.method}:${formatEndpoint(e)}`),
    ['natcheck:198.18.1.1:4450', 'predict:198.18.1.1:4444'],
  );
  assert.equal(both.predicted, false);
  const budget = new TokenBucket({ ratePerSec: 0, capacity: 1 });
  await discoverMapping({
    local: { address: '0.0.0.0', port: 1 },
    methods: ['feeler'],
    observe,
    feelerPeers: [{ address: '198.18.0.9', port: 8333 }],
    budget,
  });
  await assert.rejects(
    discoverMapping({
      local: { address: '0.0.0.0', port: 1 },
      methods: ['feeler'],
      observe,
      feelerPeers: [{ address: '198.18.0.9', port: 8333 }],
      budget,
    }),
    (e: unknown) => e instanceof NatError && e.code === 'NAT_NO_MAPPING' && e.has('NAT_BUDGET'),
  );
  assert.equal(calls, 2);
  await assert.rejects(
    discoverMapping({ local: { address: '0.0.0.0', port: 1 }, methods: ['predict'] }),
    /EIM verdict/,
  );
});

test('endpoint text forms', () => {
  assert.deepEqual(parseEndpoint('198.18.0.1:8333'), { address: '198.18.0.1', port: 8333 });
  assert.deepEqual(parseEndpoint('[fd00::1]:8333'), { address: 'fd00::1', port: 8333 });
  assert.equal(parseEndpoint('fd00::1:8333'), undefined);
  assert.equal(parseEndpoint('host:0'), undefined);
  assert.equal(formatEndpoint({ address: 'fd00::1', port: 1 }), '[fd00::1]:1');
});

const confirmTitle =
  'eimCheck: a port-translating EIM reading is confirmed from a fresh local port; a chance match is edm';
test(confirmTitle, async () => {
  const peers = [
    { address: '198.18.0.1', port: 8333 },
    { address: '198.18.0.2', port: 8333 },
  ];
  const local = { address: '0.0.0.0', port: 40_000 };
  // STAND-IN observers (the NAT behaviours, not a network): each call reports the mapping and its local port.
  const run = async (map: (localPort: number, peer: string, call: number) => number) => {
    const calls: Array<{ local: number; peer: string }> = [];
    let fresh = 50_000;
    const v = await eimCheck({
      local,
      peers,
      spreadSamples: 3,
      observe: async (l, p) => {
        const localPort = l.port === 0 ? fresh++ : l.port;
        calls.push({ local: localPort, peer: p.address });
        return { address: '198.18.9.9', port: map(localPort, p.address, calls.length), localPort };
      },
    });
    return { v, calls };
  };
  // Port-translating EIM (every local port to one public port, whatever the peer): eim after two more.
  const shift = await run((l) => l + 1000);
  assert.equal(shift.v.mapping, 'eim');
  assert.equal(shift.v.portPreserving, false);
  assert.deepEqual(
    shift.calls.slice(2).map((c) => c.local),
    [50_000, 50_000],
    'one fresh local port, toward both peers',
  );
  assert.deepEqual(
    shift.calls.slice(2).map((c) => c.peer),
    peers.map((p) => p.address),
  );
  // A random-port NAT whose first two connections met one port by chance (the 1 in 1,024 a lab run met).
  const chance = await run((_l, _p, call) => (call <= 2 ? 61_000 : 60_000 + call * 37));
  assert.equal(chance.v.mapping, 'edm');
  assert.match(chance.v.reason!, /by chance/);
  assert.ok(chance.v.portSpread, 'an edm verdict gets its spread samples (the pair among them)');
  assert.equal(chance.calls.length, 2 + 2 + 3);
  // Port-preserving: no second pair (a random NAT picking the local port twice is 1 in the range squared).
  const same = await run((l) => l);
  assert.equal(same.v.mapping, 'eim');
  assert.equal(same.v.portPreserving, true);
  assert.equal(same.calls.length, 2);
});
