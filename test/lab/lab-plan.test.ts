// Pure parts of the NAT lab (no root needed): address plan, nft rulesets, topology, CLI parsing; and the typed
// error a non-root user gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { planLab, planNamespaces, LAB_NS_PATTERN, freshPrefix } from '../../src/lab/topology/spec.js';
import { routerRuleset, lossRuleset } from '../../src/lab/topology/nft.js';
import { buildTopology } from '../../src/lab/topology/topology.js';
import { LabError } from '../../src/lab/errors.js';
import { parseUpArgs } from '../../src/daemon/commands/lab.js';
import { parseDuration, parsePercent } from '../../src/lab/topology/spec.js';
import { isRoot } from '../helpers/root.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('address plan: two cores, sites alternate cores, public hosts differ, prefix on every namespace', () => {
  const plan = planLab({
    prefix: 'opl1abc-',
    sites: [{ name: 'a' }, { name: 'b', nat: 'edm', cgnat: true }, { name: 'c', ipv6: 'fw6' }],
    extraPublicHosts: 2,
  });
  assert.equal(plan.sites[0]!.core, 1);
  assert.equal(plan.sites[1]!.core, 2);
  assert.equal(plan.sites[0]!.router.wanIp, '198.18.10.2');
  assert.equal(plan.sites[0]!.host.ip, '10.1.0.2');
  assert.equal(plan.sites[1]!.router.wanIp, '100.64.2.2');
  assert.equal(plan.sites[1]!.carrier!.wanIp, '198.18.11.2');
  assert.equal(plan.sites[1]!.publicIp, '198.18.11.2');
  assert.equal(plan.sites[2]!.host.ip6, 'fd00:10:3::2');
  assert.equal(plan.publicHosts.length, 4);
  assert.deepEqual(
    plan.publicHosts.map((p) => p.core),
    [1, 2, 1, 2],
  );
  assert.equal(new Set(plan.publicHosts.map((p) => p.ip)).size, 4);
  assert.deepEqual(
    plan.publicHosts.map((p) => p.extra),
    [false, false, true, true],
  );
  const nss = planNamespaces(plan);
  assert.ok(nss.every((n) => n.startsWith('opl1abc-')));
  assert.ok(nss.includes('opl1abc-b-carrier'));
  assert.equal(new Set(nss).size, nss.length);
  for (let i = 0; i < 20; i++) assert.match(freshPrefix(), LAB_NS_PATTERN);
});

test('bad specs are LAB_BAD_SPEC errors, not crashes', () => {
  const bad: unknown[] = [
    null,
    {},
    { sites: [{ name: 'A' }] },
    { sites: [{ name: 'a' }, { name: 'a' }] },
    { sites: [{ name: 'core1' }] },
    { sites: [{ name: 'a', nat: 'full-cone' }] },
    { sites: [{ name: 'a', inbound: 'maybe' }] },
    { sites: [{ name: 'a' }], delayMs: -1 },
    { sites: [{ name: 'a' }], lossPct: 101 },
    { sites: [{ name: 'a' }], publicHosts: 1.5 },
    { sites: [{ name: 'a' }], prefix: 'Bad Prefix' },
  ];
  for (const spec of bad) {
    assert.throws(
      () => planLab(spec as never),
      (e: unknown) => e instanceof LabError && e.code === 'LAB_BAD_SPEC',
      JSON.stringify(spec),
    );
  }
});

test('nft rulesets: one NAT statement per behaviour, inbound verdicts, loss', () => {
  const eim = routerRuleset({ nat: 'eim', inbound: 'drop', wanIp: '198.18.10.2', seed: 1 });
  assert.match(eim, /oifname "wan" masquerade\n/);
  assert.match(eim, /iifname "wan" ct state new drop/);
  const edm = routerRuleset({ nat: 'edm', inbound: 'rst', wanIp: '198.18.10.2', seed: 1 });
  assert.match(edm, /masquerade fully-random/);
  // rst: the router's own stack answers in input (no input rule), forward rejects with a reset
  assert.doesNotMatch(edm.split('chain forward')[0]!, /reject|drop/);
  assert.match(edm, /reject with tcp reset/);
  const shift = routerRuleset({ nat: 'eim-shift', inbound: 'icmp', wanIp: '198.18.10.2', seed: 0xabc });
  assert.match(shift, /snat to 198\.18\.10\.2 : jhash ip saddr \. th sport mod 30000 seed 0xabc offset 20000/);
  assert.match(shift, /reject with icmpx type port-unreachable/);
  assert.match(lossRuleset('wan', 2.5), /numgen random mod 10000 < 250 drop/);
});

test('topology: veths only inside lab namespaces; delay line only where configured', () => {
  const plan = planLab({ prefix: 'opl1abc-', sites: [{ name: 'a', delayMs: 10 }, { name: 'b' }] });
  const topo = buildTopology(plan);
  for (const v of topo.veths) {
    const m = /netns (\S+) type veth peer name \S+ netns (\S+)$/.exec(v);
    assert.ok(m, v);
    assert.ok(m[1]!.startsWith('opl1abc-') && m[2]!.startsWith('opl1abc-'), v);
  }
  assert.deepEqual(
    topo.delayLines.map((d) => [d.site, d.ns, d.delayMs]),
    [['a', 'opl1abc-core1', 10]],
  );
  // no namespace gets a route to anything outside the lab's ranges
  for (const c of topo.configs) {
    for (const l of c.ipBatch) {
      const m = /route add (\S+) via (\S+)/.exec(l);
      if (m) assert.match(m[2]!, /^(198\.18\.|10\.|100\.64\.|fd00:)/, l);
    }
  }
});

test('CLI parsing of lab up', () => {
  const { spec, json } = parseUpArgs([
    '--nat-a',
    'eim',
    '--nat-b',
    'edm,rst,cgnat',
    '--delay',
    '25ms',
    '--jitter',
    '5ms',
    '--loss',
    '1%',
    '--json',
  ])!;
  assert.equal(json, true);
  assert.deepEqual(spec.sites, [
    { name: 'a', nat: 'eim' },
    { name: 'b', nat: 'edm', inbound: 'rst', cgnat: true },
  ]);
  assert.equal(spec.delayMs, 25);
  assert.equal(spec.jitterMs, 5);
  assert.equal(spec.lossPct, 1);
  assert.equal(parseDuration('0.5s'), 500);
  assert.equal(parsePercent('2.5'), 2.5);
  assert.throws(() => parseUpArgs(['--nat-c', 'eim']), /no site 'c'/);
  assert.throws(() => parseUpArgs(['--nat-a', 'cone']), /unknown site behaviour/);
  assert.throws(() => parseDuration('fast'), { code: 'LAB_BAD_SPEC' });
});

test(
  'Lab.up as a non-root user fails with LAB_NOT_ROOT',
  { skip: isRoot ? false : 'run as root to drop privileges for this check' },
  () => {
    const code = `import('${join(root, 'dist/src/lab/index.js')}').then(m => m.Lab.up({ sites: [{ name: 'a' }] }))
    .then(() => console.log('UP'), (e) => console.log(e.code))`;
    const r = spawnSync(process.execPath, ['-e', code], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      timeout: 20000,
      cwd: '/',
    });
    assert.equal(r.stdout.trim(), 'LAB_NOT_ROOT', r.stderr);
  },
);
