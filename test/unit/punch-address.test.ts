import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyAddress, isAllowedTarget, assertAllowedTarget, AddressPolicyError } from '../../src/nat/address.js';

test('IPv4 classification', () => {
  const cases: Array<[string, string, boolean]> = [
    ['8.8.8.8', 'public', false],
    ['1.1.1.1', 'public', false],
    ['10.1.2.3', 'private', true],
    ['172.16.0.1', 'private', false],
    ['172.32.0.1', 'public', false],
    ['192.168.1.1', 'private', false],
    ['100.64.0.1', 'cgnat', true],
    ['100.127.255.255', 'cgnat', true],
    ['100.128.0.1', 'public', false],
    ['198.18.0.1', 'benchmark', true],
    ['198.19.255.1', 'benchmark', true],
    ['198.20.0.1', 'public', false],
    ['127.0.0.1', 'loopback', false],
    ['169.254.1.1', 'linklocal', false],
    ['224.0.0.1', 'multicast', false],
    ['239.255.255.250', 'multicast', false],
    ['240.0.0.1', 'reserved', false],
    ['255.255.255.255', 'reserved', false],
    ['0.0.0.0', 'unspecified', false],
    ['0.1.2.3', 'reserved', false],
    ['192.0.2.5', 'documentation', false],
    ['203.0.113.24', 'documentation', false],
  ];
  for (const [a, kind, lab] of cases) {
    const c = classifyAddress(a);
    assert.equal(c.kind, kind, a);
    assert.equal(c.labRange, lab, a);
    assert.equal(c.family, 4);
  }
});

test('IPv6 classification', () => {
  const cases: Array<[string, string, boolean]> = [
    ['2a01:4f8::1', 'public', false],
    ['2606:4700::1111', 'public', false],
    ['::1', 'loopback', false],
    ['::', 'unspecified', false],
    ['fe80::1', 'linklocal', false],
    ['ff02::1', 'multicast', false],
    ['fd00::1', 'private', true],
    ['fd12:3456::1', 'private', true],
    ['fc00::1', 'private', false],
    ['2001:db8::1', 'documentation', false],
    ['2001::1', 'reserved', false],
    ['::ffff:8.8.8.8', 'public', false],
    ['::ffff:127.0.0.1', 'loopback', false],
    ['::ffff:198.18.0.1', 'benchmark', true],
    ['4000::1', 'reserved', false],
    ['fec0::1', 'reserved', false],
  ];
  for (const [a, kind, lab] of cases) {
    const c = classifyAddress(a);
    assert.equal(c.kind, kind, a);
    assert.equal(c.labRange, lab, a);
  }
  assert.equal(classifyAddress('not an ip').kind, 'invalid');
  assert.equal(classifyAddress('1.2.3').kind, 'invalid');
});

test('target policy: only public unicast unless the lab flag is set, and then only the lab ranges', () => {
  assert.equal(isAllowedTarget('8.8.8.8'), true);
  assert.equal(isAllowedTarget('198.18.0.5'), false);
  assert.equal(isAllowedTarget('198.18.0.5', { allowLab: true }), true);
  assert.equal(isAllowedTarget('100.64.1.1', { allowLab: true }), true);
  assert.equal(isAllowedTarget('10.0.0.1', { allowLab: true }), true);
  assert.equal(isAllowedTarget('fd00::5', { allowLab: true }), true);
  for (const bad of ['127.0.0.1', '192.168.1.1', '224.0.0.1', '::1', 'fe80::1', 'fc00::1', '0.0.0.0', 'junk']) {
    assert.equal(isAllowedTarget(bad, { allowLab: true }), false, bad);
  }
  assert.throws(
    () => assertAllowedTarget('198.18.0.5'),
    (e: unknown) => e instanceof AddressPolicyError && e.code === 'NAT_TARGET_REFUSED' && /lab flag/.test(e.message),
  );
  assert.throws(() => assertAllowedTarget('127.0.0.1', { allowLab: true }), /loopback/);
});
