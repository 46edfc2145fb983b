// The NAT check's evidence for hard NATs: public-IP stability and the port spread of an edm NAT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockUpperBound, eimCheck, portSpreadOf, verdictFrom, NARROW_SPREAD } from '../../../src/nat/eim-check.js';
import type { Endpoint } from '../../../src/nat/types.js';

const obs = (peer: string, address: string, port: number) => ({ peer, address, port });

test('portSpreadOf: a 1,024-port block is narrow and its probe range covers the block', () => {
  const s = portSpreadOf([40007, 40999, 40412, 40650, 40120, 40871])!;
  assert.equal(s.min, 40007);
  assert.equal(s.max, 40999);
  assert.equal(s.observedRange, 993);
  assert.ok(s.narrow);
  assert.ok(s.estimatedRange >= 993 && s.estimatedRange <= 1500, String(s.estimatedRange));
  assert.ok(s.probeLow <= s.min && s.probeHigh >= s.max);
  assert.ok(s.probeHigh - s.probeLow + 1 <= blockUpperBound(993, 6), `${s.probeLow}..${s.probeHigh}`);
});

test('portSpreadOf: ten samples bunched in part of the block still give a range over the whole block', () => {
  // The lab's block is 40000..41023; a run saw a 716-port span, and the old estimate-wide range missed 220 ports.
  const s = portSpreadOf([40300, 41015, 40410, 40555, 40601, 40702, 40800, 40888, 40950, 40333])!;
  assert.equal(s.observedRange, 716);
  assert.ok(s.probeLow <= 40000 && s.probeHigh >= 41023, `${s.probeLow}..${s.probeHigh}`);
  assert.ok(s.probeHigh - s.probeLow + 1 <= 2 * 1024, `${s.probeLow}..${s.probeHigh}`);
});

test('portSpreadOf: over many ten-sample draws the probe range covers the block ~99% of the time', () => {
  let seed = 12345;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const draws = 2000;
  let whole = 0;
  let covered = 0;
  for (let d = 0; d < draws; d++) {
    const ports = Array.from({ length: 10 }, () => 40000 + Math.floor(rand() * 1024));
    const s = portSpreadOf(ports)!;
    const inter = Math.min(s.probeHigh, 41023) - Math.max(s.probeLow, 40000) + 1;
    if (inter === 1024) whole++;
    covered += inter / 1024;
  }
  // The old range (the unbiased estimate, symmetric) covered ~93% of the block on average, all of it ~40% of draws.
  assert.ok(whole / draws >= 0.95, `whole block in ${whole}/${draws}`);
  assert.ok(covered / draws >= 0.995, `mean coverage ${(covered / draws).toFixed(4)}`);
});

test('portSpreadOf: random-fully ports are wide and the probe range is 1024..65535', () => {
  const s = portSpreadOf([2211, 61000, 33000, 17000, 48000])!;
  assert.equal(s.narrow, false);
  assert.ok(s.estimatedRange > NARROW_SPREAD);
  assert.deepEqual([s.probeLow, s.probeHigh], [1024, 65535]);
});

test('portSpreadOf: fewer than three valid samples give no spread', () => {
  assert.equal(portSpreadOf([1000, 2000]), undefined);
  assert.equal(portSpreadOf([1000, 2000, 0]), undefined);
});

test('verdictFrom: publicIpStable and portSpread (edm only), old fields unchanged', () => {
  const eim = verdictFrom(40000, [obs('p1', '198.18.1.2', 40000), obs('p2', '198.18.1.2', 40000)]);
  assert.equal(eim.mapping, 'eim');
  assert.equal(eim.portPreserving, true);
  assert.equal(eim.publicIpStable, true);
  assert.equal(eim.portSpread, undefined);
  const spread = [
    { ...obs('p1', '198.18.1.2', 40500), localPort: 33001 },
    { ...obs('p2', '198.18.1.2', 40200), localPort: 33002 },
  ];
  const edm = verdictFrom(1, [obs('p1', '198.18.1.2', 40010), obs('p2', '198.18.1.2', 41000)], [], spread);
  assert.equal(edm.mapping, 'edm');
  assert.equal(edm.portPreserving, null);
  assert.equal(edm.publicIpStable, true);
  assert.deepEqual(edm.portSpread!.ports, [40010, 41000, 40500, 40200]);
  assert.equal(edm.portSpread!.narrow, true);
  // a spread sample from another public IP: not stable (address pooling), and it is left out of the spread
  const pooled = verdictFrom(
    1,
    [obs('p1', '198.18.1.2', 40010), obs('p2', '198.18.1.2', 41000)],
    [],
    [...spread, { ...obs('p1', '198.18.1.9', 40300), localPort: 33003 }],
  );
  assert.equal(pooled.publicIpStable, false);
  assert.equal(pooled.portSpread!.ports.length, 4);
  assert.equal(verdictFrom(1, [obs('p1', '198.18.1.2', 1)]).publicIpStable, null);
});

test('eimCheck: spread samples only for edm, each from a fresh local port, round-robin over the peers', async () => {
  const peers: Endpoint[] = [
    { address: '198.18.101.2', port: 8333 },
    { address: '198.18.102.2', port: 8333 },
  ];
  const calls: Array<{ local: number; peer: string }> = [];
  let next = 40000;
  const edm = async (local: Endpoint, peer: Endpoint) => {
    calls.push({ local: local.port, peer: peer.address });
    next += 97;
    return { address: '198.18.10.2', port: next, localPort: local.port === 0 ? 50000 + calls.length : local.port };
  };
  const v = await eimCheck({ local: { address: '0.0.0.0', port: 45000 }, peers, observe: edm, spreadSamples: 3 });
  assert.equal(v.mapping, 'edm');
  assert.deepEqual(
    calls.map((c) => c.local),
    [45000, 45000, 0, 0, 0],
  );
  assert.deepEqual(
    calls.slice(2).map((c) => c.peer),
    ['198.18.101.2', '198.18.102.2', '198.18.101.2'],
  );
  assert.equal(v.spreadObserved!.length, 3);
  assert.deepEqual(
    v.spreadObserved!.map((o) => o.localPort),
    [50003, 50004, 50005],
  );
  assert.equal(v.portSpread!.ports.length, 5);
  assert.equal(v.publicIpStable, true);
  calls.length = 0;
  const eim = await eimCheck({
    local: { address: '0.0.0.0', port: 45000 },
    peers,
    observe: async (l, p) => (calls.push({ local: l.port, peer: p.address }), { address: '198.18.10.2', port: 45000 }),
  });
  assert.equal(eim.mapping, 'eim');
  assert.equal(calls.length, 2, 'no spread samples for eim');
  assert.equal(eim.portSpread, undefined);
});
