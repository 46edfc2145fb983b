// Hard NATs in a real lab (root): `edm-pba` keeps every public port inside its 1,024-port block, and the NAT
// check (onionpunch nat-check against two natcheck-servers) sees a narrow port spread behind edm-pba and a
// wide one behind edm (random-fully), with the public IP stable across destinations for both.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../src/lab/topology/lab.js';
import { PBA_BLOCK } from '../../src/lab/topology/spec.js';
import { blockUpperBound } from '../../src/nat/eim-check.js';
import {
  natCheck,
  onionpunchArgv,
  randomPort,
  seenFrom,
  startEchoServers,
  startNatcheckServers,
} from '../../src/lab/topology/observe.js';
import { needsRoot } from '../helpers/root.js';

describe('lab hard NATs (edm, edm-pba)', { ...needsRoot('network namespaces and nftables'), timeout: 180_000 }, () => {
  let lab: Lab;
  const echoPort = randomPort();
  const ncPort = randomPort();
  let peers: string[];

  before(async () => {
    lab = await Lab.up({
      sites: [
        { name: 'edm', nat: 'edm' },
        { name: 'pba', nat: 'edm-pba' },
      ],
      publicHosts: 2,
    });
    await startEchoServers(lab, ['pub1', 'pub2'], echoPort);
    await startNatcheckServers(lab, lab.publicHosts.slice(0, 2), ncPort);
    peers = lab.publicHosts.slice(0, 2).map((p) => `${p.ip}:${ncPort}`);
  });
  after(async () => {
    await lab?.down();
  });

  test('edm-pba: 20 connections from distinct local ports leave from ports inside the block, not alike', async () => {
    const h = lab.sites.pba!.host;
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await seenFrom(
        lab,
        h.key,
        h.ip,
        randomPort(),
        echoPort,
        lab.publicHosts.map((p) => p.ip),
      );
      for (const s of r.seen) {
        assert.equal(s.ip, lab.sites.pba!.publicIp);
        seen.push(s.port!);
      }
    }
    assert.equal(seen.length, 20);
    for (const p of seen) assert.ok(p >= PBA_BLOCK.low && p <= PBA_BLOCK.high, `port ${p} outside the block`);
    assert.ok(new Set(seen).size >= 15, `random inside the block: ${seen.join(',')}`);
  });

  test('nat-check: edm-pba is edm with a narrow spread and a probe range around the block', async () => {
    const r = await natCheck(lab, 'pba', peers);
    assert.equal(r.mapping, 'edm', JSON.stringify(r));
    assert.equal(r.portPreserving, null);
    assert.equal(r.publicIpStable, true);
    const s = r.portSpread!;
    assert.ok(s, JSON.stringify(r));
    assert.equal(s.ports.length, 10);
    assert.equal(s.narrow, true, JSON.stringify(s));
    for (const p of s.ports) assert.ok(p >= PBA_BLOCK.low && p <= PBA_BLOCK.high);
    assert.ok(s.probeLow <= s.min && s.probeHigh >= s.max);
    const most = blockUpperBound(PBA_BLOCK.high - PBA_BLOCK.low + 1, s.ports.length);
    assert.ok(s.probeHigh - s.probeLow + 1 <= most, `probe range ${s.probeLow}..${s.probeHigh}`);
  });

  test('nat-check: edm (random-fully) is edm with a wide spread, probe range 1024..65535', async () => {
    const r = await natCheck(lab, 'edm', peers);
    assert.equal(r.mapping, 'edm', JSON.stringify(r));
    assert.equal(r.publicIpStable, true);
    const s = r.portSpread!;
    assert.ok(s, JSON.stringify(r));
    assert.equal(s.narrow, false, JSON.stringify(s));
    assert.ok(s.max - s.min > 4096, JSON.stringify(s));
    assert.deepEqual([s.probeLow, s.probeHigh], [1024, 65535]);
  });

  test('nat-check --spread 12 (text output) names the spread', async () => {
    const args = ['nat-check', '--spread', '12', ...peers.flatMap((p) => ['--peer', p])];
    const r = await lab.exec('pba', onionpunchArgv(...args), { timeoutMs: 30_000 });
    assert.match(r.stdout, /public IP stable: yes/);
    assert.match(r.stdout, /port spread: 4\d{4}\.\.4\d{4} over 14 samples, .*narrow: port block/);
  });
});
