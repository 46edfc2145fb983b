// Birthday spraying in the native engine, through a real lab (root): a hard side behind edm-pba or edm
// (random-fully) opens N sockets from distinct local ports to the easy side's mapped endpoint; the easy side
// (behind a port-preserving eim NAT) sends M SYNs from its one port to M random ports of the probe range that
// nat-check measured. N × M is chosen for >= 99% by the birthday bound; the winning pair must agree on both
// sides. After the sprays, neither side process has grown its descriptors or threads.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../src/lab/topology/lab.js';
import { PBA_BLOCK } from '../../src/lab/topology/spec.js';
import { natCheck, randomPort, startNatcheckServers } from '../../src/lab/topology/observe.js';
import { needsRoot } from '../helpers/root.js';
import { SpraySide, birthday, sprayTrial, type SideStats, type TrialSetup } from '../helpers/spray-lab.js';
import { PunchEngine, sprayToPunchPlan } from '../../src/native/engine.js';

const LAB = { ...needsRoot('network namespaces and nftables'), timeout: 600_000 };

describe('birthday spray through hard NATs (lab)', LAB, () => {
  let lab: Lab;
  const sides: SpraySide[] = [];
  let pba: TrialSetup;
  let edm: TrialSetup;

  before(async () => {
    lab = await Lab.up({
      sites: [
        { name: 'pba', nat: 'edm-pba' },
        { name: 'edm', nat: 'edm' },
        { name: 'easy', nat: 'eim' },
      ],
      publicHosts: 2,
    });
    const ncPort = randomPort();
    await startNatcheckServers(lab, lab.publicHosts.slice(0, 2), ncPort);
    const peers = lab.publicHosts.slice(0, 2).map((p) => `${p.ip}:${ncPort}`);
    const [hp, he, easy] = await Promise.all(['pba', 'edm', 'easy'].map((n) => SpraySide.start(lab, n)));
    sides.push(hp!, he!, easy!);
    const setup = async (site: string, hard: SpraySide): Promise<TrialSetup> => {
      const nc = await natCheck(lab, site, peers);
      assert.equal(nc.mapping, 'edm');
      assert.equal(nc.publicIpStable, true);
      const s = lab.sites[site]!;
      return {
        hard,
        easy: easy!,
        hardLocalIp: s.host.ip,
        hardPublicIp: nc.publicAddress!,
        easyLocalIp: lab.sites.easy!.host.ip,
        easyPublicIp: lab.sites.easy!.publicIp,
        range: { low: nc.portSpread!.probeLow, high: nc.portSpread!.probeHigh },
      };
    };
    pba = await setup('pba', hp!);
    edm = await setup('edm', he!);
  });
  after(async () => {
    for (const s of sides) s.close();
    await lab?.down();
  });

  type Diag = { diagnostic: (s: string) => void };
  const run = async (t: Diag, s: TrialSetup, n: number, m: number, trials: number, spreadUs: number) => {
    const span = s.range.high - s.range.low + 1;
    let ok = 0;
    const times: number[] = [];
    for (let i = 0; i < trials; i++) {
      const r = await sprayTrial(s, n, m, { spreadUs });
      if (r.hard.ok && r.easy.ok) {
        ok++;
        times.push(r.hard.establishedMs!);
        // one connection seen from both ends: the hard side reached the easy port, the easy side a probed port
        assert.equal(r.hard.pair!.remotePort, r.easy.pair!.localPort);
        assert.ok(r.easy.pair!.remotePort >= s.range.low && r.easy.pair!.remotePort <= s.range.high);
      } else {
        assert.equal(r.hard.ok, r.easy.ok, `both sides agree: ${JSON.stringify(r)}`);
        assert.equal(r.hard.code, 'ENGINE_TIMEOUT', JSON.stringify(r));
      }
      assert.ok(r.hard.syns <= n && r.easy.syns <= m);
    }
    times.sort((a, b) => a - b);
    const bound = (100 * birthday(n, m, span)).toFixed(1);
    const median = times[Math.floor(times.length / 2)]?.toFixed(1);
    t.diagnostic(`N=${n} M=${m} range=${span}: ${ok}/${trials} connected, birthday ${bound}%, median ${median} ms`);
    return ok;
  };

  test('the probe range nat-check gives for edm-pba lies on the block; for edm it is 1024..65535', () => {
    // 10 samples: the range may miss an edge of the block, but it covers most of it and little else
    const r = JSON.stringify(pba.range);
    const overlap = Math.min(pba.range.high, PBA_BLOCK.high) - Math.max(pba.range.low, PBA_BLOCK.low) + 1;
    assert.ok(overlap >= 0.4 * 1024, `overlap ${overlap}: ${r}`);
    assert.ok(pba.range.low >= PBA_BLOCK.low - 1024 && pba.range.high <= PBA_BLOCK.high + 1024, r);
    assert.ok(pba.range.high - pba.range.low < 2048, r);
    assert.deepEqual(edm.range, { low: 1024, high: 65535 });
  });

  test('edm-pba × eim: N=128, M=64 over the block connect in >= 19 of 20 sprays', async (t) => {
    const ok = await run(t, pba, 128, 64, 20, 20_000);
    assert.ok(ok >= 19, `${ok}/20`);
  });

  test('edm (random-fully) × eim: N=1024, M=512 connect in >= 9 of 10 sprays (paced over 100 ms)', async (t) => {
    const ok = await run(t, edm, 1024, 512, 10, 100_000);
    assert.ok(ok >= 9, `${ok}/10`);
  });

  test('no descriptor or thread growth after 20 more spray plans on each side', async () => {
    const before = (await Promise.all(sides.map((s) => s.stats()))) as SideStats[];
    for (let i = 0; i < 20; i++) await sprayTrial(pba, 64, 32, { spreadUs: 5000, deadlineMs: 600 });
    await new Promise((r) => setTimeout(r, 200));
    const afterStats = (await Promise.all(sides.map((s) => s.stats()))) as SideStats[];
    for (let i = 0; i < sides.length; i++) {
      assert.equal(afterStats[i]!.sockets, 0, 'no attempt socket left in the engine');
      assert.equal(afterStats[i]!.plans, 0);
      assert.ok(afterStats[i]!.fds <= before[i]!.fds, `fds ${before[i]!.fds} -> ${afterStats[i]!.fds}`);
      const [t0, t1] = [before[i]!.threads, afterStats[i]!.threads];
      assert.ok(t1 <= t0, `threads ${t0} -> ${t1}`);
    }
  });
});

test('spray plans are validated before anything is sent', async () => {
  const base = { local: { address: '127.0.0.1', port: 0 }, remote: { address: '127.0.0.1', port: 9 }, deadlineMs: 1 };
  const invalid = { code: 'ENGINE_INVALID' };
  assert.throws(() => sprayToPunchPlan({ ...base, role: 'hard', count: 0 }), invalid);
  assert.throws(() => sprayToPunchPlan({ ...base, role: 'hard', count: 16385 }), invalid);
  assert.throws(() => sprayToPunchPlan({ ...base, role: 'easy', count: 11, ports: { low: 100, high: 109 } }), invalid);
  assert.throws(() => sprayToPunchPlan({ ...base, role: 'easy', count: 2, probePorts: [5, 5] }), invalid);
  const easy = sprayToPunchPlan({ ...base, role: 'easy', count: 10, ports: { low: 100, high: 109 } });
  const ports = easy.remotes.map((r) => r.port).sort((a, b) => a - b);
  assert.deepEqual(ports, [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
  assert.equal(easy.localPorts, 'shared');
  const hard = sprayToPunchPlan({ ...base, role: 'hard', count: 3 });
  assert.equal(hard.localPorts, 'distinct');
  assert.equal(hard.remotes.length, 3);
  // a distinct-port plan with a fixed local port is refused by the facade
  await assert.rejects(PunchEngine.shared().punch({ ...hard, local: { address: '127.0.0.1', port: 5000 } }), invalid);
});
