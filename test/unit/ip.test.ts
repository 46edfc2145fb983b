/** src/ip.ts: the one address module (IPv4/IPv6 text, IPv4-mapped, netgroups, Endpoint). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addressFamily,
  canonicalAddress,
  formatEndpoint,
  formatIP16,
  isLoopback,
  netgroup,
  parseIP16,
  reachesThisHost,
  unmapIPv4,
} from '../../src/ip.js';
import { netgroupOf } from '../../src/limits/index.js';
import { classifyAddress } from '../../src/nat/address.js';
import { normalizeAddress } from '../../src/punch/verify.js';
import { encodeReply, parseRequest } from '../../src/daemon/socks5.js';
import { checkAddress } from '../../src/daemon/socks5-parse.js';
import { familyOf } from '../../src/punch/session-common.js';

test('IPv4-mapped: one meaning everywhere (unmap, family, canonical text, 16-byte form)', () => {
  assert.equal(unmapIPv4('::ffff:198.18.0.1'), '198.18.0.1');
  assert.equal(unmapIPv4('::FFFF:198.18.0.1'), '198.18.0.1');
  assert.equal(unmapIPv4('fd00::1'), 'fd00::1');
  assert.equal(addressFamily('::ffff:198.18.0.1'), 4);
  assert.equal(addressFamily('::ffff:c612:1'), 4, 'hex-written mapped address is IPv4 too');
  assert.equal(addressFamily('fd00::1'), 6);
  assert.equal(addressFamily('fe80::1%eth0'), 6);
  assert.equal(addressFamily('nope'), 0);
  assert.equal(canonicalAddress('::ffff:c612:1'), '198.18.0.1');
  assert.equal(canonicalAddress('FD00:0:0::1'), 'fd00::1');
  assert.equal(formatIP16(parseIP16('198.18.0.1')!), '198.18.0.1');
  assert.equal(parseIP16('1.2.3.04'), undefined, 'strict dotted quad');
  // The layers that used to carry their own copy now agree with the module.
  assert.equal(familyOf('::ffff:c612:1'), 4);
  assert.equal(normalizeAddress('::ffff:198.18.0.1'), '198.18.0.1');
  assert.equal(normalizeAddress('FD00::0:1'), 'fd00::1');
  assert.equal(classifyAddress('::ffff:c612:1').kind, 'benchmark');
  assert.equal(classifyAddress('fe80::1%eth0').kind, 'linklocal');
});

test('netgroups: /16 v4 (mapped too), /32 v6, zones ignored, junk undefined', () => {
  assert.equal(netgroup('198.18.3.4'), 'v4:198.18');
  assert.equal(netgroup('::ffff:198.18.3.4'), 'v4:198.18');
  assert.equal(netgroup('2001:0db8:ffff::'), 'v6:2001:db8');
  assert.equal(netgroup('fe80::1%eth0'), 'v6:fe80:0');
  assert.equal(netgroup('1.2.3'), undefined);
  assert.equal(netgroupOf('::ffff:c612:1'), 'v4:198.18');
});

test('formatEndpoint brackets IPv6 only', () => {
  assert.equal(formatEndpoint({ address: '198.18.0.1', port: 1 }), '198.18.0.1:1');
  assert.equal(formatEndpoint({ address: 'fd00::1', port: 8333 }), '[fd00::1]:8333');
});

test('SOCKS5 uses the same address module: mapped bound address replied as IPv4, IPv6 request text canonical', () => {
  const mappedReply = encodeReply(0, { address: '::ffff:127.0.0.1', port: 0x1234 });
  assert.deepEqual([...mappedReply], [5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34]);
  const v6 = encodeReply(0, { address: 'fd00::1', port: 1 });
  assert.equal(v6.length, 22);
  assert.equal(formatIP16(v6.subarray(4, 20)), 'fd00::1');
  assert.deepEqual([...encodeReply(1)], [5, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
  const req = (ip: string): Buffer =>
    Buffer.concat([Buffer.from([5, 1, 0, 4]), parseIP16(ip)!, Buffer.from([0x20, 0x8d])]);
  const mapped = parseRequest(req('198.18.0.1'));
  assert.ok('value' in mapped);
  assert.deepEqual(mapped.value, { atyp: 'ipv4', host: '198.18.0.1', port: 8333 });
  // Two equal zero runs: the first is compressed (RFC 5952).
  const plain = parseRequest(req('2001:db8:0:0:1::1'));
  assert.ok('value' in plain);
  assert.deepEqual(plain.value, { atyp: 'ipv6', host: '2001:db8::1:0:0:1', port: 8333 });
});

test('loopback and "this host": one classification for the target policy, the SOCKS guard and the I2P bridge', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '0:0::0:1', '::0:1', '::1%lo']) {
    assert.equal(isLoopback(a), true, a);
    assert.equal(classifyAddress(a).kind, 'loopback', a);
  }
  // IPv4-mapped, dotted or hex: a dual-stack connect() to these reaches 127.0.0.1.
  for (const a of ['::ffff:127.0.0.1', '::FFFF:127.9.9.9', '::ffff:7f00:1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['128.0.0.1', '::2', '::127.0.0.1', 'fe80::1', 'localhost', '', '1.2.3']) {
    assert.equal(isLoopback(a), false, a);
  }
  for (const a of ['0.0.0.0', '0.1.2.3', '::', '0:0::0', '::ffff:0.0.0.0', '::ffff:0.1.2.3', '::ffff:0:0', '::1']) {
    assert.equal(reachesThisHost(a), true, a);
  }
  for (const a of ['1.0.0.0', '240.0.0.1', '255.255.255.255', '::ffff:1.0.0.0', '::2', 'fd00::1', 'x']) {
    assert.equal(reachesThisHost(a), false, a);
  }
  // The SOCKS plain-connect guard (literal or resolved destinations) refuses every spelling.
  const policy = { resolveNames: false, allowLoopback: false };
  for (const a of ['127.0.0.1', '0:0::0:1', '::0:1', '::ffff:7f00:1', '::ffff:127.0.0.1', '0.0.0.0', '::']) {
    assert.equal(checkAddress(a, policy), 'loopback', a);
  }
  assert.equal(checkAddress('198.51.100.7', policy), undefined);
  assert.equal(checkAddress('0:0::0:1', { ...policy, allowLoopback: true }), undefined);
});
