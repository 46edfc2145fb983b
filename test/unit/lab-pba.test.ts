// The edm-pba site behaviour: parsed by the one spec parser (lab up, demo, lab matrix) and its nft rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSiteBehaviour, parseSiteBehaviour, planLab, PBA_BLOCK, isEdm } from '../../src/lab/topology/spec.js';
import { natStatements, routerRuleset } from '../../src/lab/topology/nft.js';

test('edm-pba parses on either site and round-trips', () => {
  const s = parseSiteBehaviour('edm-pba,rst');
  assert.deepEqual(s, { nat: 'edm-pba', inbound: 'rst' });
  assert.equal(formatSiteBehaviour(s), 'edm-pba,rst');
  assert.throws(() => parseSiteBehaviour('edm,edm-pba'), { code: 'LAB_BAD_SPEC' });
  const plan = planLab({
    sites: [
      { name: 'a', nat: 'edm-pba' },
      { name: 'b', nat: 'eim' },
    ],
  });
  assert.equal(plan.sites[0]!.nat, 'edm-pba');
  assert.ok(isEdm('edm-pba') && isEdm('edm') && !isEdm('eim'));
});

test('edm-pba: random ports inside the 1,024-port block for tcp and udp', () => {
  assert.equal(PBA_BLOCK.high - PBA_BLOCK.low + 1, 1024);
  const r = natStatements('edm-pba', '198.18.10.2', 1);
  assert.deepEqual(r.slice(0, 2), [
    'oifname "wan" meta l4proto tcp masquerade to :40000-41023 fully-random',
    'oifname "wan" meta l4proto udp masquerade to :40000-41023 fully-random',
  ]);
  assert.match(routerRuleset({ nat: 'edm-pba', inbound: 'drop', wanIp: '198.18.10.2', seed: 1 }), /to :40000-41023/);
});
