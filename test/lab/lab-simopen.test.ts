// The lab allows what hole punching needs: a kernel-level TCP simultaneous open (plain python sockets, no
// onionpunch engine) between hosts behind two eim NATs that drop unsolicited SYNs succeeds, between two edm
// NATs it fails; over IPv6 between two fw6 firewalls it succeeds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../src/lab/lab.js';
import { randomPort, simultaneousOpen } from '../../src/lab/observe.js';
import { needsRoot } from '../helpers/root.js';

describe('TCP simultaneous open through lab NATs', needsRoot('network namespaces and nftables'), () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.up({
      sites: [
        { name: 'a', nat: 'eim', inbound: 'drop' },
        { name: 'b', nat: 'eim', inbound: 'drop' },
        { name: 'c', nat: 'edm', inbound: 'drop' },
        { name: 'd', nat: 'edm', inbound: 'drop' },
        { name: 'e', ipv6: 'fw6' },
        { name: 'f', ipv6: 'fw6' },
      ],
    });
  });
  after(async () => {
    await lab?.down();
  });

  const pair = (x: string, y: string, v6 = false) => {
    const sx = lab.sites[x]!;
    const sy = lab.sites[y]!;
    const px = randomPort();
    const py = randomPort();
    // Each side aims at the other's public address and its local port: port-preserving NATs keep it.
    return simultaneousOpen(
      lab,
      { node: sx.host.key, localIp: v6 ? sx.host.ip6! : sx.host.ip, localPort: px, remoteIp: v6 ? sy.host.ip6! : sy.publicIp, remotePort: py },
      { node: sy.host.key, localIp: v6 ? sy.host.ip6! : sy.host.ip, localPort: py, remoteIp: v6 ? sx.host.ip6! : sx.publicIp, remotePort: px },
      2000,
    );
  };

  test('eim(drop) <-> eim(drop): connects and carries data', async () => {
    const [ra, rb] = await pair('a', 'b');
    assert.equal(ra.connected, true, JSON.stringify(ra));
    assert.equal(rb.connected, true, JSON.stringify(rb));
    assert.equal(ra.got, 'hello from ' + lab.sites.b!.host.key);
    assert.equal(rb.got, 'hello from ' + lab.sites.a!.host.key);
  });

  test('edm <-> edm: never connects (random public ports)', async () => {
    const [rc, rd] = await pair('c', 'd');
    assert.equal(rc.connected, false, JSON.stringify(rc));
    assert.equal(rd.connected, false, JSON.stringify(rd));
    assert.ok(rc.tries >= 10, `retried every 50 ms (${rc.tries} tries)`);
  });

  test('fw6 <-> fw6 over IPv6 (no NAT, stateful firewalls): connects', async () => {
    const [re, rf] = await pair('e', 'f', true);
    assert.equal(re.connected, true, JSON.stringify(re));
    assert.equal(rf.connected, true, JSON.stringify(rf));
  });
});
