import { NetgroupAdmission } from '../../src/limits/netgroup-admission.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ManualClock,
  TokenBucket,
  ConcurrencyCap,
  KeyedBuckets,
  KeyedCaps,
  LimitError,
  netgroupOf,
} from '../../src/limits/index.js';

test('token bucket: burst up to capacity, then refills at the rate', () => {
  const c = new ManualClock();
  const b = new TokenBucket({ ratePerSec: 2, capacity: 5, clock: c.now });
  for (let i = 0; i < 5; i++) assert.equal(b.tryTake(), true);
  assert.equal(b.tryTake(), false);
  assert.equal(b.msUntil(1), 500);
  c.advance(499);
  assert.equal(b.tryTake(), false);
  c.advance(1);
  assert.equal(b.tryTake(), true);
  c.advance(1_000_000);
  assert.equal(b.available(), 5, 'never more than capacity');
});

test('token bucket: fractional rates (0.1/s like Bitcoin Core addr) and take() throws LIMIT_RATE', () => {
  const c = new ManualClock();
  const b = new TokenBucket({ ratePerSec: 0.1, capacity: 1, initial: 0, clock: c.now });
  assert.throws(
    () => b.take(1, 'addr'),
    (e: unknown) => e instanceof LimitError && e.code === 'LIMIT_RATE',
  );
  c.advance(9_999);
  assert.equal(b.tryTake(), false);
  c.advance(1);
  assert.equal(b.tryTake(), true);
  assert.equal(b.msUntil(2), Infinity, 'more than capacity never comes');
});

test('token bucket: bad config is a typed error', () => {
  assert.throws(() => new TokenBucket({ ratePerSec: -1, capacity: 1 }), /ratePerSec/);
  assert.throws(() => new TokenBucket({ ratePerSec: 1, capacity: 0 }), /capacity/);
  assert.throws(
    () => new TokenBucket({ ratePerSec: NaN, capacity: 1 }),
    (e: unknown) => (e as LimitError).code === 'LIMIT_BAD_CONFIG',
  );
});

test('token bucket: default clock is monotonic and real', async () => {
  const b = new TokenBucket({ ratePerSec: 100, capacity: 1 });
  assert.equal(b.tryTake(), true);
  assert.equal(b.tryTake(), false);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(b.tryTake(), true);
});

test('concurrency cap: hard max, idempotent release, run() frees on throw', async () => {
  const cap = new ConcurrencyCap(2);
  const r1 = cap.tryAcquire();
  const r2 = cap.tryAcquire();
  assert.ok(r1 && r2);
  assert.equal(cap.tryAcquire(), undefined);
  r1();
  r1(); // second release must not free another slot
  assert.equal(cap.active, 1);
  const r3 = cap.tryAcquire();
  assert.ok(r3);
  assert.equal(cap.tryAcquire(), undefined);
  r2();
  r3();
  assert.equal(cap.active, 0);
  await assert.rejects(
    cap.run(async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(cap.active, 0, 'no leak on error');
  const held = cap.acquire();
  const held2 = cap.acquire();
  await assert.rejects(
    cap.run(() => 1, 'session'),
    (e: unknown) => e instanceof LimitError && e.code === 'LIMIT_BUSY',
  );
  held();
  held2();
  assert.equal(await cap.run(() => 42), 42);
  assert.equal(cap.active, 0);
});

test('keyed buckets: per-key limits and bounded key count (LRU eviction)', () => {
  const c = new ManualClock();
  const kb = new KeyedBuckets<string>({ ratePerSec: 1, capacity: 2, maxKeys: 3, clock: c.now });
  assert.ok(kb.tryTake('a'));
  assert.ok(kb.tryTake('a'));
  assert.equal(kb.tryTake('a'), false, 'a is empty');
  assert.ok(kb.tryTake('b'));
  assert.ok(kb.tryTake('c'));
  assert.equal(kb.size, 3);
  for (let i = 0; i < 10_000; i++) kb.tryTake(`k${i}`);
  assert.equal(kb.size, 3, 'key table never exceeds maxKeys');
  assert.ok(kb.evictions >= 10_000);
});

test('keyed buckets: eviction prefers full buckets, keeping drained keys limited', () => {
  const c = new ManualClock();
  const kb = new KeyedBuckets<string>({ ratePerSec: 0.001, capacity: 1, maxKeys: 2, clock: c.now });
  assert.ok(kb.tryTake('drained'));
  // 'full' is created and then refilled (it never took): it is the one to forget.
  kb.tryTake('x');
  c.advance(2_000_000);
  assert.ok(kb.tryTake('drained'), 'refilled after a long time');
  assert.equal(kb.tryTake('drained'), false);
  kb.tryTake('new1'); // evicts x (full, oldest) not drained
  assert.equal(kb.tryTake('drained'), false, 'drained key kept its state');
});

test('keyed buckets: `initial` tokens for every new key, then the rate up to the capacity', () => {
  const c = new ManualClock();
  const kb = new KeyedBuckets<string>({ ratePerSec: 1, capacity: 100, initial: 3, maxKeys: 2, clock: c.now });
  let n = 0;
  while (kb.tryTake('a')) n++;
  assert.equal(n, 3, 'a new key starts with `initial`, not the capacity');
  c.advance(500_000);
  n = 0;
  while (kb.tryTake('a')) n++;
  assert.equal(n, 100, 'time fills it up to the capacity');
  // A key forgotten (LRU) and seen again starts with `initial` again, not with a full bucket.
  kb.tryTake('b');
  kb.tryTake('c');
  n = 0;
  while (kb.tryTake('a')) n++;
  assert.equal(n, 3);
});

test('keyed caps: per-key cap, idle keys forgotten, busy key table refuses new keys', () => {
  const kc = new KeyedCaps<string>({ perKey: 2, maxKeys: 2 });
  const a1 = kc.tryAcquire('a');
  const a2 = kc.tryAcquire('a');
  assert.ok(a1 && a2);
  assert.equal(kc.tryAcquire('a'), undefined);
  const b1 = kc.tryAcquire('b');
  assert.ok(b1);
  assert.equal(kc.tryAcquire('c'), undefined, 'all keys busy: refuse rather than evict holders');
  b1();
  assert.equal(kc.size, 1, 'idle key dropped');
  const c1 = kc.tryAcquire('c');
  assert.ok(c1);
  a1();
  a2();
  c1();
  assert.equal(kc.size, 0);
});

test('netgroups: /16 for IPv4 and IPv4-mapped, /32 for IPv6', () => {
  assert.equal(netgroupOf('198.18.3.4'), 'v4:198.18');
  assert.equal(netgroupOf('198.18.200.1'), 'v4:198.18');
  assert.notEqual(netgroupOf('198.19.0.1'), netgroupOf('198.18.0.1'));
  assert.equal(netgroupOf('::ffff:198.18.3.4'), 'v4:198.18');
  assert.equal(netgroupOf('2001:db8:1::1'), 'v6:2001:db8');
  assert.equal(netgroupOf('2001:0db8:ffff::'), 'v6:2001:db8');
  assert.equal(netgroupOf('fd00::1'), 'v6:fd00:0');
  assert.throws(
    () => netgroupOf('not-an-ip'),
    (e: unknown) => (e as LimitError).code === 'LIMIT_BAD_CONFIG',
  );
});

test('netgroups: IPv6 carrying IPv4 groups as that IPv4 /16; he.net by /36 (as Bitcoin Core GetGroup)', () => {
  const v4 = 'v4:198.18';
  assert.equal(netgroupOf('::ffff:0:198.18.3.4'), v4, 'SIIT');
  assert.equal(netgroupOf('64:ff9b::198.18.3.4'), v4, 'NAT64');
  assert.equal(netgroupOf('2002:c612:0304::1'), v4, '6to4');
  // Teredo: 2001:0:server:flags:port:~client (198.18.3.4 inverted = 39ed:fcfb)
  assert.equal(netgroupOf('2001:0:4136:e378:8000:63bf:39ed:fcfb'), v4, 'Teredo');
  assert.equal(netgroupOf('2001:470:1000::1'), 'v6:2001:470:1');
  assert.equal(netgroupOf('2001:470:1fff:ffff::1'), 'v6:2001:470:1');
  assert.notEqual(netgroupOf('2001:470:2000::1'), netgroupOf('2001:470:1000::1'), 'distinct /36s of he.net');
  assert.equal(netgroupOf('2001:db8:ffff:1::1'), netgroupOf('2001:db8::2'), 'one /32 elsewhere');
  assert.equal(netgroupOf('::1'), 'v6:0:0');
});

test('keyed buckets: wouldAllow looks without taking or adding a key', () => {
  const clock = new ManualClock();
  const kb = new KeyedBuckets({ ratePerSec: 1, capacity: 2, maxKeys: 4, clock: clock.now });
  assert.equal(kb.wouldAllow('a'), true, 'an unknown key starts full');
  assert.equal(kb.size, 0, 'and is not added');
  assert.equal(kb.wouldAllow('a', 3), false, 'more than the capacity never fits');
  assert.ok(kb.tryTake('a') && kb.tryTake('a'));
  assert.equal(kb.wouldAllow('a'), false);
  assert.equal(kb.wouldAllow('a'), false, 'looking took nothing');
  clock.advance(1000);
  assert.equal(kb.wouldAllow('a'), true);
  assert.equal(kb.tryTake('a'), true);
});

test("netgroup admission: per-group cap; at the global cap only a group two larger than the newcomer's loses one", () => {
  const adm = new NetgroupAdmission<string>({ maxConnections: 4, perNetgroup: 3 });
  const take = (addr: string, id: string): ReturnType<typeof adm.admit> => {
    const v = adm.admit(addr);
    if (v.ok) {
      if (v.evict !== undefined) adm.remove(v.evict);
      adm.add(v.group, id);
    }
    return v;
  };
  assert.ok(take('10.1.0.1', 'a1').ok && take('10.1.0.2', 'a2').ok && take('10.1.0.3', 'a3').ok);
  assert.deepEqual(adm.admit('10.1.9.9'), { ok: false, why: 'netgroup' }, 'a 4th from one /16 is refused');
  assert.ok(take('10.2.0.1', 'b1').ok, 'another /16 fills the last slot');
  const v = take('10.3.0.1', 'c1');
  assert.ok(v.ok && v.evict === 'a3', 'full: the youngest of the crowded group (3 ≥ 0 + 2) makes room');
  assert.deepEqual(adm.admit('10.1.0.9'), { ok: false, why: 'full' }, 'and cannot evict its way back in (2 < 2 + 2)');
  assert.deepEqual(adm.admit('10.2.0.2'), { ok: false, why: 'full' }, 'a group of 1 may not evict from a group of 2');
  assert.deepEqual(adm.admit('not-an-ip'), { ok: false, why: 'bad-address' });
  assert.equal(adm.size, 4);
  assert.equal(adm.remove('c1'), true);
  assert.equal(adm.remove('c1'), false, 'remove is idempotent');
  assert.deepEqual(adm.all().sort(), ['a1', 'a2', 'b1']);
});
