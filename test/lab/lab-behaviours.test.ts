// Every NAT behaviour proven from inside a real lab (root): mappings seen by two public hosts, answers to an
// unsolicited SYN, carrier NAT, IPv6 firewall, and that a TTL-2 packet expires between two NATs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../src/lab/topology/lab.js';
import { inboundProbe, randomPort, seenFrom, startEchoServers, ttlProbe } from '../../src/lab/topology/observe.js';
import { needsRoot } from '../helpers/root.js';

describe('lab behaviours', needsRoot('network namespaces and nftables'), () => {
  let lab: Lab;
  const port = randomPort();
  let pubs: string[];

  before(async () => {
    lab = await Lab.up({
      sites: [
        { name: 'a', nat: 'eim', inbound: 'drop' },
        { name: 'b', nat: 'eim', inbound: 'drop', delayMs: 3 },
        { name: 'shift', nat: 'eim-shift' },
        { name: 'edm', nat: 'edm' },
        { name: 'rst', inbound: 'rst' },
        { name: 'icmp', inbound: 'icmp' },
        { name: 'cgn', cgnat: true, ipv6: 'fw6' },
        { name: 'v6', ipv6: 'fw6', hosts: 2 },
      ],
    });
    await startEchoServers(lab, ['pub1', 'pub2'], port);
    pubs = lab.publicHosts.map((p) => p.ip);
  });
  after(async () => {
    await lab?.down();
  });

  const mapping = async (site: string) => {
    const h = lab.sites[site]!.host;
    const lp = randomPort();
    const r = await seenFrom(lab, h.key, h.ip, lp, port, pubs);
    return { lp, r, ports: r.seen.map((s) => s.port), ips: r.seen.map((s) => s.ip) };
  };

  test('eim: one local port is seen from the same (preserved) public port by two public hosts', async () => {
    const { lp, ports, ips } = await mapping('a');
    assert.deepEqual(ips, [lab.sites.a!.publicIp, lab.sites.a!.publicIp]);
    assert.deepEqual(ports, [lp, lp]);
  });

  test('eim-shift: same public port for both public hosts, different from the local port', async () => {
    for (let i = 0; i < 3; i++) {
      const { lp, ports, ips } = await mapping('shift');
      assert.deepEqual(ips, [lab.sites.shift!.publicIp, lab.sites.shift!.publicIp]);
      assert.equal(typeof ports[0], 'number');
      assert.equal(ports[0], ports[1]);
      assert.notEqual(ports[0], lp);
    }
  });

  test('edm: different public ports for the two public hosts', async () => {
    const { ports } = await mapping('edm');
    assert.equal(typeof ports[0], 'number');
    assert.equal(typeof ports[1], 'number');
    assert.notEqual(ports[0], ports[1]);
  });

  test('drop: an unsolicited SYN to the WAN address gets nothing back', async () => {
    const r = await inboundProbe(lab, 'pub1', lab.sites.a!.router.wanIp, randomPort());
    assert.equal(r.result, 'timeout');
    assert.equal(r.rst, false);
    assert.equal(r.icmp, null);
  });

  test('rst: an unsolicited SYN gets a TCP RST from the router', async () => {
    const r = await inboundProbe(lab, 'pub2', lab.sites.rst!.router.wanIp, randomPort());
    assert.equal(r.result, 'refused');
    assert.equal(r.rst, true);
    assert.equal(r.icmp, null);
  });

  test('icmp: an unsolicited SYN gets ICMP port unreachable from the router', async () => {
    const r = await inboundProbe(lab, 'pub1', lab.sites.icmp!.router.wanIp, randomPort());
    assert.deepEqual(r.icmp, { type: 3, code: 3, from: lab.sites.icmp!.router.wanIp });
    assert.equal(r.rst, false);
  });

  test('cgnat: public hosts see the carrier address, not the home router WAN (100.64/10)', async () => {
    const s = lab.sites.cgn!;
    const { ips } = await mapping('cgn');
    assert.match(s.router.wanIp, /^100\.64\./);
    assert.deepEqual(ips, [s.carrier!.wanIp, s.carrier!.wanIp]);
    assert.equal(s.publicIp, s.carrier!.wanIp);
  });

  test('fw6: routed IPv6 without NAT outbound, unsolicited inbound dropped, also behind a carrier', async () => {
    for (const site of ['v6', 'cgn']) {
      const h = lab.sites[site]!.host;
      const lp = randomPort();
      const r = await seenFrom(
        lab,
        h.key,
        h.ip6!,
        lp,
        port,
        lab.publicHosts.map((p) => p.ip6),
      );
      assert.deepEqual(
        r.seen.map((x) => [x.ip, x.port]),
        [
          [h.ip6, lp],
          [h.ip6, lp],
        ],
        site,
      );
      const inb = await inboundProbe(lab, 'pub2', h.ip6!, randomPort());
      assert.equal(inb.result, 'timeout', site);
    }
    // a second host on the same (bridged) LAN goes out through the same NAT
    const h2 = lab.sites.v6!.hosts[1]!;
    const lan = await seenFrom(lab, h2.key, h2.ip, randomPort(), port, [pubs[0]!]);
    assert.equal(lan.seen[0]!.ip, lab.sites.v6!.publicIp);
  });

  test('a TTL-limited packet from a to b expires at core routers between the two NATs (delay line is not a hop)', async () => {
    const a = lab.sites.a!;
    const b = lab.sites.b!;
    assert.equal(a.core, 1);
    assert.equal(b.core, 2);
    const hops = [];
    for (const ttl of [1, 2, 3]) hops.push(await ttlProbe(lab, 'a', b.publicIp, randomPort(), ttl));
    assert.equal(hops[0]!.from, a.router.lanIp);
    assert.equal(hops[0]!.type, 11);
    // ttl 2 expires in core1, ttl 3 in core2 (behind b's delay line), never at b's NAT
    for (const h of hops.slice(1)) {
      assert.equal(h.type, 11, JSON.stringify(hops));
      assert.ok(h.from !== null && h.from.startsWith('198.18.') && h.from !== b.publicIp, JSON.stringify(hops));
    }
    assert.notEqual(hops[1]!.from, hops[2]!.from);
  });

  test('unknown nodes are typed errors', async () => {
    assert.throws(() => lab.ns('nope'), { code: 'LAB_UNKNOWN_NODE' });
  });
});
