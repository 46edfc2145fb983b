import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodePayload, encodePayload, formatOnion, formatB32, NODE_HOLEPUNCH, type AddrV2Entry } from '../../src/wire/index.js';
import { ManualClock } from '../../src/limits/index.js';
import {
  AnnouncementDirectory,
  AnnouncementRelay,
  makeAnnouncement,
  toAnnouncement,
  type RelayPeer,
} from '../../src/relay/index.js';

const NOW = 1_800_000_000;
const onion = () => formatOnion(randomBytes(32));
const peers = (n: number): RelayPeer[] =>
  Array.from({ length: n }, (_, i) => ({ id: `p${i}`, clearnet: true, addrv2: true }));

function ann(over: Partial<{ time: number; coordination: string; port: number }> = {}): AddrV2Entry {
  return makeAnnouncement({
    coordination: over.coordination ?? onion(),
    coordinationPort: 8333,
    clearnet: { address: '203.0.113.24', port: over.port ?? 8333 },
    nowS: over.time ?? NOW,
  });
}

test('an announcement survives the real addrv2 codec and validates', () => {
  const e = ann();
  const wire = encodePayload('addrv2', { addrs: [e] });
  const [back] = decodePayload('addrv2', wire).addrs;
  assert.ok(back);
  const a = toAnnouncement(back);
  assert.equal(a.coordination, e.address);
  assert.deepEqual(a.clearnet, { address: '203.0.113.24', port: 8333 });
  assert.ok((a.services & NODE_HOLEPUNCH) !== 0n);
  const i2p = makeAnnouncement({ coordination: formatB32(randomBytes(32)), coordinationPort: 0, clearnet: { address: '2001:db8::1', port: 1 }, nowS: NOW });
  const [b2] = decodePayload('addrv2', encodePayload('addrv2', { addrs: [i2p] })).addrs;
  assert.equal(b2?.address, i2p.address);
  assert.deepEqual(b2?.clearnet, { address: '2001:db8::1', port: 1 });
});

test('entries without NODE_HOLEPUNCH or of other networks are not announcements', () => {
  const e = { ...ann(), services: 1n };
  assert.throws(() => toAnnouncement(e), { code: 'RELAY_NOT_ANNOUNCEMENT' });
  assert.throws(() => toAnnouncement({ ...ann(), network: 'ipv4' }), { code: 'RELAY_NOT_ANNOUNCEMENT' });
});

test('fresh entries go to exactly 2 clearnet addrv2 peers, never back to the sender, chosen deterministically', () => {
  const secret = Buffer.alloc(32, 7);
  const ps = [...peers(8), { id: 'tor1', clearnet: false, addrv2: true }, { id: 'v1', clearnet: true, addrv2: false }];
  const e = ann();
  const r1 = new AnnouncementRelay({ secret, nowS: () => NOW });
  const r2 = new AnnouncementRelay({ secret, nowS: () => NOW });
  const d1 = r1.onAddrV2(ps[0]!, [e], ps);
  const d2 = r2.onAddrV2(ps[0]!, [e], ps);
  assert.equal(d1.accepted.length, 1);
  assert.equal(d1.forward.size, 2);
  for (const id of d1.forward.keys()) assert.ok(!['p0', 'tor1', 'v1'].includes(id), id);
  // Same secret, sender and entry: the same two targets.
  assert.deepEqual([...d1.forward.keys()].sort(), [...d2.forward.keys()].sort());
  // A different secret spreads differently over many entries.
  const other = new AnnouncementRelay({ secret: Buffer.alloc(32, 9), nowS: () => NOW });
  let differ = 0;
  for (let i = 0; i < 20; i++) {
    const x = ann();
    const a = [...new AnnouncementRelay({ secret, nowS: () => NOW }).onAddrV2(ps[0]!, [x], ps).forward.keys()].sort().join();
    const b = [...other.onAddrV2(ps[0]!, [x], ps).forward.keys()].sort().join();
    if (a !== b) differ++;
  }
  assert.ok(differ > 0);
});

test('stale, future, duplicate and oversized messages are not relayed', () => {
  const r = new AnnouncementRelay({ nowS: () => NOW });
  const ps = peers(5);
  const stale = ann({ time: NOW - 601 });
  const future = ann({ time: NOW + 601 });
  const d = r.onAddrV2(ps[0]!, [stale, future], ps);
  assert.equal(d.dropped.stale, 2);
  assert.equal(d.forward.size, 0);
  const e = ann();
  assert.equal(r.onAddrV2(ps[0]!, [e], ps).accepted.length, 1);
  const again = r.onAddrV2(ps[1]!, [e], ps);
  assert.equal(again.dropped.duplicate, 1);
  assert.equal(again.forward.size, 0);
  const eleven = Array.from({ length: 11 }, () => ann());
  const big = r.onAddrV2(ps[0]!, eleven, ps);
  assert.equal(big.accepted.length, 11, 'still usable locally');
  assert.equal(big.forward.size, 0, 'but a message of more than 10 entries is not relayed');
});

test('announcements heard over an overlay link are ignored', () => {
  const r = new AnnouncementRelay({ nowS: () => NOW });
  const d = r.onAddrV2({ id: 'tor', clearnet: false, addrv2: true }, [ann()], peers(3));
  assert.equal(d.accepted.length, 0);
  assert.equal(d.forward.size, 0);
});

test('per-peer token bucket: 1000 at once, then 0.1 per second', () => {
  const clock = new ManualClock();
  const r = new AnnouncementRelay({ nowS: () => NOW, clock: clock.now });
  const src = peers(1)[0]!;
  let accepted = 0;
  let limited = 0;
  for (let i = 0; i < 110; i++) {
    const d = r.onAddrV2(src, Array.from({ length: 10 }, () => ann()), []);
    accepted += d.accepted.length;
    limited += d.dropped.rateLimited;
  }
  assert.equal(accepted, 1000);
  assert.equal(limited, 100);
  clock.advance(20_000); // 2 more tokens
  const d = r.onAddrV2(src, Array.from({ length: 5 }, () => ann()), []);
  assert.equal(d.accepted.length, 2);
  assert.equal(d.dropped.rateLimited, 3);
});

test('the dedup table is bounded', () => {
  const r = new AnnouncementRelay({ nowS: () => NOW, maxSeen: 50, bucketCapacity: 1e6 });
  for (let i = 0; i < 30; i++) r.onAddrV2(peers(1)[0]!, Array.from({ length: 10 }, () => ann()), []);
  assert.ok(r.seenCount <= 50);
});

test('directory: one entry per coordination endpoint, expiry after 10 minutes, bounded', () => {
  let now = NOW;
  const dir = new AnnouncementDirectory({ nowS: () => now, maxEndpoints: 3 });
  const c = onion();
  for (let p = 1; p <= 50; p++) dir.add(toAnnouncement(ann({ coordination: c, port: p, time: NOW + p })));
  assert.equal(dir.size, 1, 'a coordinator announcing 50 clearnet endpoints counts as one');
  assert.equal(dir.list()[0]?.clearnet.port, 50);
  assert.equal(dir.findByClearnet('203.0.113.24', 50)?.coordination, c);
  for (let i = 0; i < 5; i++) dir.add(toAnnouncement(ann()));
  assert.equal(dir.size, 3);
  now += 700;
  assert.equal(dir.list().length, 0);
});
