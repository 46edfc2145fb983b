/**
 * The daemons' zero-round-trip wiring: serve's `zerortt` key, and the proxy handing an announcement's services
 * and time to the punch client (which takes the fast path only when NODE_HOLEPUNCH_ZRTT is set).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AnnouncementDirectory, makeAnnouncement, toAnnouncement } from '../../src/relay/index.js';
import { formatOnion, NODE_HOLEPUNCH_ZRTT } from '../../src/wire/index.js';
import { lookupTarget } from '../../src/daemon/proxy.js';
import { loadConfig } from '../../src/daemon/config.js';

const ONION = formatOnion(randomBytes(32));

test('zerortt: off by default, a serve flag and environment key', () => {
  assert.equal(loadConfig({}).zerortt, false);
  assert.equal(loadConfig({ args: ['--zerortt'] }).zerortt, true);
  assert.equal(loadConfig({ env: { ONIONPUNCH_ZERORTT: '1' } }).zerortt, true);
});

test("the proxy's target from a zero-RTT announcement keeps its services and time; a static entry has neither", () => {
  const directory = new AnnouncementDirectory();
  const clearnet = { address: '203.0.113.7', port: 40123 };
  const a = toAnnouncement(makeAnnouncement({ coordination: ONION, coordinationPort: 8333, clearnet, zeroRtt: true }));
  assert.ok(directory.add(a, 'peer1'));
  const t = lookupTarget({ known: [] }, directory, clearnet.address, clearnet.port);
  assert.ok(t);
  assert.equal(t.services, a.services);
  assert.ok(((t.services ?? 0n) & NODE_HOLEPUNCH_ZRTT) !== 0n, 'the bit the client reads');
  assert.equal(t.time, a.time);
  const known = { coordination: ONION, coordinationPort: 1, clearnet: { address: '203.0.113.8', port: 1 } };
  const k = lookupTarget({ known: [known] }, directory, '203.0.113.8', 1);
  assert.equal(k?.services, undefined);
});
