/**
 * The relay daemon (src/daemon/relay.ts) in-process over real loopback TCP: a real Peer as each neighbour, the
 * real AnnouncementRelay/AnnouncementDirectory inside, the real native observer as the NAT-check client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { connectPeer, type Peer } from '../../src/peer/index.js';
import {
  PROTOCOL_VERSION,
  encodeMessage,
  formatOnion,
  type AddrV2Entry,
  type AddrV2Payload,
} from '../../src/wire/index.js';
import {
  AnnouncementDirectory,
  AnnouncementRelay,
  RELAY_BUCKET_INITIAL,
  makeAnnouncement,
} from '../../src/relay/index.js';
import { Announcer, AnnouncementCollector } from '../../src/daemon/announce.js';
import { RelayNode } from '../../src/daemon/relay.js';
import { Logger } from '../../src/daemon/log.js';
import { loadConfig, verbKeys } from '../../src/daemon/config.js';
import { NATCHECK_PER_NETGROUP } from '../../src/nat/natcheck-server.js';
import { eimCheck } from '../../src/nat/eim-check.js';
import { nativeObserver } from '../../src/nat/observe.js';
import { probeBind } from '../../src/native/engine.js';
import { checkNat } from '../../src/daemon/punch-setup.js';
import { runProxy } from '../../src/daemon/proxy.js';

const onion = () => formatOnion(randomBytes(32));
const ann = (timeOffsetS = 0, clearPort = 8333): AddrV2Entry =>
  makeAnnouncement({
    coordination: onion(),
    coordinationPort: 8333,
    clearnet: { address: '203.0.113.24', port: clearPort },
    nowS: Math.floor(Date.now() / 1000) + timeOffsetS,
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startRelay(extra: string[] = []): Promise<{ node: RelayNode; port: number; lines: string[] }> {
  const cfg = loadConfig({ args: ['--network', 'regtest', '--bind', '127.0.0.1', '--port', '0', ...extra] });
  const lines: string[] = [];
  const node = new RelayNode(cfg, new Logger({ format: 'json', level: 'debug', write: (l) => lines.push(l) }));
  const { port } = await node.start();
  return { node, port, lines };
}

async function peerTo(port: number): Promise<{ peer: Peer; addrv2: boolean; got: AddrV2Entry[] }> {
  const { peer, receivedBeforeVerack } = await connectPeer({ host: '127.0.0.1', port, network: 'regtest' });
  const got: AddrV2Entry[] = [];
  peer.on('message', (cmd, payload) => {
    if (cmd === 'addrv2') got.push(...peer.decode('addrv2', payload).addrs);
  });
  return { peer, addrv2: receivedBeforeVerack.includes('sendaddrv2'), got };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('relay keys: the relay verb lists its keys; port/addnode/maxconnections parse', () => {
  const keys = verbKeys('relay');
  for (const k of ['conf', 'network', 'bind', 'port', 'addnode', 'maxconnections', 'announceinterval', 'log', 'json']) {
    assert.ok(keys.includes(k), `relay uses ${k}`);
  }
  for (const k of ['torcontrol', 'listen', 'bitcoind', 'peer']) assert.ok(!keys.includes(k), `relay does not use ${k}`);
  const c = loadConfig({
    args: ['--network', 'regtest', '--addnode', '192.0.2.1:18444', '--addnode', '[2001:db8::1]:18444'],
  });
  assert.equal(c.port, 18444, 'port defaults to the network port');
  assert.deepEqual(c.addnode, [
    { host: '192.0.2.1', port: 18444 },
    { host: '2001:db8::1', port: 18444 },
  ]);
  assert.equal(c.maxconnections, 256);
});

test('relay: sendaddrv2; a fresh announcement is forwarded, a stale one not; getaddr answers fresh ones', async (t) => {
  const { node, port } = await startRelay();
  t.after(() => node.stop());
  const a = await peerTo(port);
  const b = await peerTo(port);
  t.after(() => {
    a.peer.close();
    b.peer.close();
  });
  assert.ok(a.addrv2 && b.addrv2, 'the relay sent sendaddrv2 before verack');
  await until('both ready at the relay', () => node.inboundCount === 2 && node.stats.inbound === 2);
  const stale = ann(-700);
  const fresh = ann();
  a.peer.send('addrv2', { addrs: [stale] });
  a.peer.send('addrv2', { addrs: [fresh] });
  await until('the fresh one at b', () => b.got.length >= 1);
  await sleep(100);
  assert.deepEqual(
    b.got.map((e) => e.address),
    [fresh.address],
    'only the fresh one is forwarded',
  );
  assert.equal(node.stats.dropped.stale, 1);
  assert.equal(a.got.length, 0, 'never sent back to its sender');

  // A newcomer asks getaddr: it gets the fresh entry it holds, once per connection.
  const c = await peerTo(port);
  t.after(() => c.peer.close());
  c.peer.send('getaddr');
  c.peer.send('getaddr');
  await until('getaddr answer', () => c.got.length >= 1);
  await sleep(100);
  assert.deepEqual(
    c.got.map((e) => [e.address, e.clearnet]),
    [[fresh.address, fresh.clearnet]],
  );
  assert.equal(node.stats.getaddrAnswered, 1);
});

test(
  'relay: getaddr answered again after getaddrspacing, not sooner, and a reconnect does not reset it',
  {
    timeout: 20_000,
  },
  async (t) => {
    const { node, port } = await startRelay(['--getaddrspacing', '2']);
    t.after(() => node.stop());
    const a = await peerTo(port);
    t.after(() => a.peer.close());
    const fresh = ann();
    a.peer.send('addrv2', { addrs: [fresh] });
    await until('held', () => node.directory.size === 1);
    const c = await peerTo(port);
    c.peer.send('getaddr');
    await until('first answer', () => c.got.length >= 1);
    c.peer.send('getaddr'); // within the spacing: not answered
    await sleep(200);
    assert.equal(node.stats.getaddrAnswered, 1);
    assert.equal(node.stats.getaddrLimited, 1);
    // Reconnecting from the same address earns nothing either (the meter is keyed by address, not connection).
    c.peer.close();
    const d = await peerTo(port);
    t.after(() => d.peer.close());
    d.peer.send('getaddr');
    await sleep(300);
    assert.equal(d.got.length, 0, 'a new connection from the same address within the spacing gets no answer');
    assert.equal(node.stats.getaddrLimited, 2);
    // After the spacing the same connection is answered again (Bitcoin Core would answer only once per connection).
    await sleep(2000);
    d.peer.send('getaddr');
    await until('second answer', () => d.got.length >= 1);
    assert.deepEqual(
      d.got.map((e) => e.address),
      [fresh.address],
    );
    assert.equal(node.stats.getaddrAnswered, 2);
  },
);

test('relay: asks its addnode relays for their fresh set every getaddrinterval', { timeout: 30_000 }, async (t) => {
  const r1 = await startRelay(['--getaddrspacing', '1']);
  t.after(() => r1.node.stop());
  const r2 = await startRelay(['--addnode', `127.0.0.1:${r1.port}`, '--getaddrinterval', '5']);
  t.after(() => r2.node.stop());
  await until('linked', () => r2.node.stats.getaddrSent >= 1);
  await until('first answer', () => r1.node.stats.getaddrAnswered >= 1);
  // Entries r1 holds but never pushes: a message of 11 entries is not gossip (not relayed), so only a pull moves them.
  const s = await peerTo(r1.port);
  t.after(() => s.peer.close());
  const batch = Array.from({ length: 11 }, (_, i) => ann(0, 9000 + i));
  s.peer.send('addrv2', { addrs: batch });
  // A new peer's budget is one message's worth (RELAY_BUCKET_INITIAL): r1 takes 10 of the 11.
  await until('r1 holds them', () => r1.node.directory.size === RELAY_BUCKET_INITIAL);
  assert.equal(r1.node.stats.dropped.rateLimited, 11 - RELAY_BUCKET_INITIAL);
  assert.equal(r2.node.directory.size, 0, 'a message of 11 is not gossip: r2 gets nothing pushed');
  await until('r2 pulled them at its next getaddr', () => r2.node.directory.size === RELAY_BUCKET_INITIAL, 8000);
  assert.ok(r2.node.stats.getaddrSent >= 2);
  assert.equal(r2.node.stats.dropped.rateLimited, 0);
});

test(
  'relay flooded with 10,000 announcements by one peer forwards at most its rate',
  {
    timeout: 60_000,
  },
  async (t) => {
    const { node, port } = await startRelay();
    t.after(() => node.stop());
    const a = await peerTo(port);
    const b = await peerTo(port);
    t.after(() => {
      a.peer.close();
      b.peer.close();
    });
    await until('both ready', () => node.stats.inbound === 2);
    const t0 = Date.now();
    // 1000 messages of 10 (the largest size that is still relayed), sent as the socket drains.
    for (let m = 0; m < 1000; m++) {
      a.peer.send('addrv2', { addrs: Array.from({ length: 10 }, (_, i) => ann(0, 1 + ((m * 10 + i) % 60000))) });
      if (a.peer.sendPaused) await sleep(5);
    }
    await until('the relay read all 1000 messages', () => node.stats.messages === 1000, 30_000);
    await sleep(200);
    const elapsedS = (Date.now() - t0) / 1000;
    // A new peer's bucket holds one message's worth, then earns 0.1/s (RELAY_BUCKET_INITIAL).
    const limit = RELAY_BUCKET_INITIAL + Math.ceil(elapsedS * 0.1) + 1;
    const limited = node.stats.dropped.rateLimited;
    t.diagnostic(`forwarded ${b.got.length} of 10000 in ${elapsedS.toFixed(1)} s; rate-limited ${limited}`);
    assert.ok(b.got.length <= limit, `forwarded ${b.got.length} <= ${limit}`);
    assert.ok(
      b.got.length >= RELAY_BUCKET_INITIAL,
      `the new peer's first ${RELAY_BUCKET_INITIAL} went through (${b.got.length})`,
    );
    assert.ok(node.stats.dropped.rateLimited >= 10_000 - limit);
    assert.ok(node.directory.size <= 1000, 'the directory stays bounded');
    assert.ok(node.relay.seenCount <= 50_000);
  },
);

test('relay answers NAT-check clients on its port: observed address from addr_recv; two give EIM', async (t) => {
  const r1 = await startRelay();
  const r2 = await startRelay();
  t.after(async () => {
    await r1.node.stop();
    await r2.node.stop();
  });
  const local = probeBind({ address: '127.0.0.1', port: 0 });
  const observe = nativeObserver({ network: 'regtest' });
  const seen = await observe(local, { address: '127.0.0.1', port: r1.port }, { timeoutMs: 5000 });
  assert.deepEqual(
    { address: seen.address, port: seen.port },
    { address: '127.0.0.1', port: local.port },
    'addr_recv is the client as the relay saw it',
  );
  const peers = [r1.port, r2.port].map((port) => ({ address: '127.0.0.1', port }));
  const v = await eimCheck({ local: probeBind({ address: '127.0.0.1', port: 0 }), peers, observe, timeoutMs: 5000 });
  assert.equal(v.mapping, 'eim');
  assert.equal(v.portPreserving, true);
});

test('relay inbound has the NAT-check caps: per netgroup and global', async (t) => {
  const { node, port } = await startRelay(['--maxconnections', String(NATCHECK_PER_NETGROUP + 8)]);
  t.after(() => node.stop());
  const socks: Socket[] = [];
  t.after(() => {
    for (const s of socks) s.destroy();
  });
  // Loopback is one netgroup: the cap per netgroup is reached first, the next connection is closed at once.
  for (let i = 0; i < NATCHECK_PER_NETGROUP; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    socks.push(s);
    await once(s, 'connect');
  }
  await until('all counted', () => node.inboundCount === NATCHECK_PER_NETGROUP);
  const extra = connect({ host: '127.0.0.1', port });
  extra.on('error', () => undefined);
  socks.push(extra);
  await once(extra, 'close');
  assert.equal(node.stats.refused.netgroup, 1);
  assert.equal(node.inboundCount, NATCHECK_PER_NETGROUP);
  // Silent connections do not hold a slot past the handshake deadline.
  await until('handshake deadline frees the slots', () => node.inboundCount === 0, 10_000);

  const small = await startRelay(['--maxconnections', '2']);
  t.after(() => small.node.stop());
  const s2 = [0, 1, 2].map(() => connect({ host: '127.0.0.1', port: small.port }).on('error', () => undefined));
  socks.push(...s2);
  await once(s2[2]!, 'close');
  assert.equal(small.node.stats.refused.full, 1, 'the global cap refuses (no larger netgroup to evict from)');
});

test('relay with addnode: keeps a link to the other relay and forwards to it', async (t) => {
  const r1 = await startRelay();
  const r2 = await startRelay(['--addnode', `127.0.0.1:${r1.port}`]);
  t.after(async () => {
    await r2.node.stop();
    await r1.node.stop();
  });
  await until('r2 linked to r1', () => r2.node.stats.outbound === 1 && r1.node.stats.inbound === 1);
  const sender = await peerTo(r1.port);
  const collector = await peerTo(r2.port);
  t.after(() => {
    sender.peer.close();
    collector.peer.close();
  });
  await until('ready', () => r1.node.stats.inbound === 2 && r2.node.stats.inbound === 1);
  const e = ann();
  sender.peer.send('addrv2', { addrs: [e] } satisfies AddrV2Payload);
  await until('collector got it through two relays', () => collector.got.length === 1);
  assert.equal(collector.got[0]!.address, e.address);
});

test('relay with seednode: keeps a link to that relay as with addnode, and merges both lists', async (t) => {
  const r1 = await startRelay();
  const r3 = await startRelay();
  const r2 = await startRelay(['--seednode', `127.0.0.1:${r1.port}`, '--addnode', `127.0.0.1:${r3.port}`]);
  t.after(async () => {
    await r2.node.stop();
    await r1.node.stop();
    await r3.node.stop();
  });
  await until('r2 linked to r1 and r3', () => r2.node.stats.outbound === 2);
  assert.equal(r1.node.stats.inbound, 1);
  assert.equal(r3.node.stats.inbound, 1);
  const sender = await peerTo(r2.port);
  const collector = await peerTo(r1.port);
  t.after(() => {
    sender.peer.close();
    collector.peer.close();
  });
  await until('ready', () => r1.node.stats.inbound === 2 && r2.node.stats.inbound === 1);
  const e = ann();
  sender.peer.send('addrv2', { addrs: [e] } satisfies AddrV2Payload);
  await until('collector got it through the seednode link', () => collector.got.length === 1);
  assert.equal(collector.got[0]!.address, e.address);
});

test('proxy with seednode: learns announcements from that relay (a real proxy daemon)', async (t) => {
  const r1 = await startRelay();
  t.after(() => r1.node.stop());
  const lines: string[] = [];
  const cfg = loadConfig({
    args: ['--network', 'regtest', '--listen', '127.0.0.1:0', '--maxpunchpeers', '0', '--getaddrinterval', '5'],
    env: { ONIONPUNCH_SEEDNODE: `127.0.0.1:${r1.port}` },
  });
  const ac = new AbortController();
  let ready!: (i: Record<string, unknown>) => void;
  const up = new Promise<Record<string, unknown>>((r) => (ready = r));
  const done = runProxy(cfg, new Logger({ format: 'json', level: 'debug', write: (l) => lines.push(l) }), {
    ready,
    signal: ac.signal,
  });
  done.catch(() => undefined);
  t.after(async () => {
    ac.abort();
    await done;
  });
  assert.equal((await up)['peers'], 1, 'one relay: the seednode');
  await until('proxy linked to the relay', () => r1.node.stats.inbound >= 1);
  const sender = await peerTo(r1.port);
  t.after(() => sender.peer.close());
  const e = ann();
  sender.peer.send('addrv2', { addrs: [e] } satisfies AddrV2Payload);
  const learned = () =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'announcement-learned');
  await until('the proxy learned it', () => learned() !== undefined, 15_000);
  assert.match(String(learned()!.clearnet), /^203\.0\.113\.24:8333$/);
});

test('serve/proxy use their relays as NAT-check servers by default: two relays give the EIM check', async (t) => {
  const r1 = await startRelay();
  const r2 = await startRelay();
  t.after(async () => {
    await r1.node.stop();
    await r2.node.stop();
  });
  const [a1, a2] = [`127.0.0.1:${r1.port}`, `127.0.0.1:${r2.port}`];
  const serveCfg = loadConfig({
    args: ['--network', 'regtest', '--bind', '127.0.0.1', '--announce', a1, '--announce', a2],
  });
  assert.deepEqual(serveCfg.natcheck, [
    { host: '127.0.0.1', port: r1.port },
    { host: '127.0.0.1', port: r2.port },
  ]);
  const proxyCfg = loadConfig({ args: ['--network', 'regtest', '--peer', a2, '--peer', a1, '--peer', a2] });
  assert.deepEqual(
    proxyCfg.natcheck.map((h) => h.port),
    [r2.port, r1.port],
    'the peer list, without repeats',
  );
  const own = loadConfig({ args: ['--announce', a1, '--natcheck', '192.0.2.9:8333'] });
  assert.deepEqual(own.natcheck, [{ host: '192.0.2.9', port: 8333 }], 'a configured list replaces the default');
  const lines: string[] = [];
  const log = new Logger({ format: 'json', write: (l) => lines.push(l) });
  const v = await checkNat(serveCfg, log);
  assert.equal(v?.mapping, 'eim', 'the EIM check ran against the two relays');
  assert.equal(v?.publicAddress, '127.0.0.1');
});

test(
  'relay pings its peers and closes one that sent nothing for idletimeout; a live peer stays',
  {
    timeout: 15_000,
  },
  async (t) => {
    const { node, port } = await startRelay(['--idletimeout', '1']);
    t.after(() => node.stop());
    const live = await peerTo(port); // a Peer answers every ping
    t.after(() => live.peer.close());
    // A peer that completes the handshake by hand and then answers nothing (a dead host behind a half-open TCP).
    const dead = connect({ host: '127.0.0.1', port });
    dead.on('error', () => undefined);
    t.after(() => dead.destroy());
    await once(dead, 'connect');
    dead.resume(); // reads (and drops) the relay's messages, pings included, so its FIN is seen
    dead.write(
      encodeMessage('regtest', 'version', {
        version: PROTOCOL_VERSION,
        services: 0n,
        timestamp: BigInt(Math.floor(Date.now() / 1000)),
        addrRecv: { services: 0n, address: '127.0.0.1', port },
        addrFrom: { services: 0n, address: '::', port: 0 },
        nonce: 7n,
        userAgent: '/silent/',
        startHeight: 0,
        relay: false,
      }),
    );
    dead.write(encodeMessage('regtest', 'verack', {}));
    const t0 = Date.now();
    await once(dead, 'close');
    const closedAfter = Date.now() - t0;
    assert.ok(closedAfter >= 900 && closedAfter < 5000, `closed after ${closedAfter} ms`);
    assert.equal(node.stats.idleClosed, 1);
    await sleep(1500);
    assert.ok(!live.peer.isClosed, 'the peer that answers pings is kept');
    assert.equal(node.inboundCount, 1);
  },
);

test('proxy and serve relay what they hear: a collector or announcer between two relays carries it', async (t) => {
  const rA = await startRelay();
  const rB = await startRelay();
  t.after(async () => {
    await rA.node.stop();
    await rB.node.stop();
  });
  const links = [
    { host: '127.0.0.1', port: rA.port },
    { host: '127.0.0.1', port: rB.port },
  ];
  const quiet = new Logger({ write: () => undefined });
  const collector = new AnnouncementCollector({
    peers: links,
    network: 'regtest',
    directory: new AnnouncementDirectory(),
    intervalMs: 60_000,
    log: quiet,
    relay: new AnnouncementRelay(),
  });
  const announcer = new Announcer({
    peers: links,
    network: 'regtest',
    intervalMs: 60_000,
    log: quiet,
    relay: new AnnouncementRelay(),
    announcement: () => ann(),
  });
  t.after(() => {
    collector.stop();
    announcer.stop();
  });
  await collector.start();
  const sender = await peerTo(rA.port);
  const listener = await peerTo(rB.port);
  t.after(() => {
    sender.peer.close();
    listener.peer.close();
  });
  await until('all ready', () => rA.node.stats.inbound === 2 && rB.node.stats.inbound === 2);
  const e = ann();
  sender.peer.send('addrv2', { addrs: [e] });
  await until("relay B's listener got it via the collector", () => listener.got.some((x) => x.address === e.address));
  assert.equal(collector.relayed, 1);
  assert.equal(collector.learned, 1, 'and the proxy learned it');

  // The announcer: its own announcements go to both relays, and what relay A sends it goes on to relay B.
  collector.stop();
  await until('collector gone', () => rA.node.inboundCount === 1 && rB.node.inboundCount === 1);
  await announcer.start();
  await until('announcer linked', () => rA.node.inboundCount === 2 && rB.node.inboundCount === 2);
  const before = listener.got.length;
  const e2 = ann();
  sender.peer.send('addrv2', { addrs: [e2] });
  await until('relayed by the announcer', () => listener.got.some((x) => x.address === e2.address));
  assert.ok(announcer.relayed >= 1);
  assert.ok(listener.got.length > before);
});
