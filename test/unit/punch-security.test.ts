/**
 * The punch protocol's security limits (issue 9, items 1, 2, 5), each against the real listener or client on
 * loopback TCP with the real native engine: a forged announcement cannot redirect B, trickled junk cannot hold
 * a session slot, a full cap is not a lockout, and A cannot be aimed at bad ports, many IPs or one IP often.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { PunchEngine } from '../../src/native/engine.js';
import type { PunchEngineLike, PunchPlanLike } from '../../src/punch/engine-port.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { PunchClient, type PunchTarget } from '../../src/punch/client.js';
import { StreamChannel } from '../../src/punch/channel.js';
import { runInitiator } from '../../src/punch/initiator.js';
import { verifyOrReport } from '../../src/punch/verify.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { Timeline } from '../../src/punch/timeline.js';
import { USER_AGENT } from '../../src/punch/messages.js';
import { makeConnector } from '../../src/daemon/proxy.js';
import { Logger } from '../../src/daemon/log.js';
import { AnnouncementDirectory } from '../../src/relay/index.js';
import {
  codec,
  clientOpts,
  closedWithin,
  listenerOpts,
  loopbackOverlay,
  rawPeer,
  until,
  UNKNOWN_24,
} from '../helpers/punch-loopback.js';

const engA = new PunchEngine();
const engB = new PunchEngine();
after(async () => {
  await engA.stop();
  await engB.stop();
});

/** The real engine, counting the plans it was given (which remotes A or B fired at). */
function counting(eng: PunchEngine): PunchEngineLike & { plans: PunchPlanLike[] } {
  const plans: PunchPlanLike[] = [];
  return {
    plans,
    now: () => eng.now(),
    probeBind: (l) => eng.probeBind(l),
    punch: (p) => (plans.push(p), eng.punch(p)),
  };
}

const sid = (i: number): Buffer => Buffer.alloc(16, i);
const version = { cmd: 'version' as const, nonce: 1n, userAgent: '/attacker/' };

test(
  'redirect: an attacker coordinator answering for an announced victim IP gets PUNCH_VERIFY_FAILED, no SYN',
  { timeout: 30_000 },
  async () => {
    // The forged announcement: "fake.onion @ 127.0.0.1:8333" where fake.onion is the attacker's endpoint, whose
    // A punches from 127.0.0.2 (another host on loopback).
    const attacker = await createPunchListener(listenerOpts(engA, '127.0.0.2'));
    const { server, dialer, port } = await loopbackOverlay(attacker);
    const b = counting(engB);
    try {
      const forged: PunchTarget = { address: 'fake.onion', port, clearnet: { address: '127.0.0.1', port: 8333 } };
      await assert.rejects(
        new PunchClient(clientOpts(b, dialer)).punch(forged),
        (e: unknown) =>
          e instanceof PunchSessionError &&
          e.code === 'PUNCH_VERIFY_FAILED' &&
          e.side === 'A' &&
          e.step === 'opendpoint' &&
          e.mismatch?.expectedIp === '127.0.0.1' &&
          e.mismatch.got.every((g) => g.startsWith('127.0.0.2:')),
      );
      assert.equal(b.plans.length, 0, 'B never fired at the attacker');
      assert.equal(attacker.stats.connected, 0);
      // An expectIp overrides the announcement's IP; null says explicitly that nothing is checked.
      await assert.rejects(
        new PunchClient(clientOpts(b, dialer)).punch({ address: 'fake.onion', port, expectIp: '127.0.0.3' }),
        (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_VERIFY_FAILED',
      );
      const ok = await new PunchClient(clientOpts(b, dialer)).punch({
        address: 'fake.onion',
        port,
        expectIp: '127.0.0.2',
      });
      assert.equal(ok.remote.address, '127.0.0.2');
      ok.socket.destroy();
      const unchecked = await new PunchClient(clientOpts(b, dialer)).punch({
        address: 'fake.onion',
        port,
        expectIp: null,
      });
      unchecked.socket.destroy();
      // A bare coordination address (a JS caller, no types) must say what it expects.
      await assert.rejects(
        new PunchClient(clientOpts(b, dialer)).punch({ address: 'fake.onion', port } as unknown as PunchTarget),
        (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_BAD_TARGET',
      );
    } finally {
      await attacker.close();
      server.close();
    }
  },
);

test(
  'redirect through the daemon proxy: bitcoind asking for the announced IP gets a failure, not the attacker',
  { timeout: 30_000 },
  async () => {
    const attacker = await createPunchListener(listenerOpts(engA, '127.0.0.2'));
    const { server, dialer, port } = await loopbackOverlay(attacker);
    const b = counting(engB);
    try {
      // The forged announcement as the proxy would have learned it: victim 127.0.0.1:8333, attacker's endpoint.
      const forged = {
        coordination: 'fake.onion',
        coordinationPort: port,
        clearnet: { address: '127.0.0.1', port: 8333 },
      };
      const connector = makeConnector({
        cfg: { known: [forged] },
        directory: new AnnouncementDirectory(),
        client: async () => new PunchClient(clientOpts(b, dialer)),
        log: new Logger({ write: () => undefined }),
      });
      await assert.rejects(
        connector({ atyp: 'ipv4', host: '127.0.0.1', port: 8333 }, new AbortController().signal),
        (e: unknown) =>
          e instanceof PunchSessionError &&
          e.code === 'PUNCH_VERIFY_FAILED' &&
          e.mismatch?.got.every((g) => g.startsWith('127.0.0.2:')) === true,
      );
      assert.equal(b.plans.length, 0, 'no SYN');
      assert.equal(attacker.stats.connected, 0);
    } finally {
      await attacker.close();
      server.close();
    }
  },
);

test('redirect: the punched socket must be on the expected IP too (verify step)', { timeout: 10_000 }, async () => {
  const srv = createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.2', r));
  const port = (srv.address() as { port: number }).port;
  const sock = connect(port, '127.0.0.2');
  await new Promise((r) => sock.once('connect', r));
  const other = connect(port, '127.0.0.2');
  await new Promise((r) => other.once('connect', r));
  const ch = new StreamChannel(other, codec);
  try {
    // The peer is in the endpoint list (so the old check passes) but not on the IP the announcement named.
    assert.throws(
      () => verifyOrReport('B', sock, [{ address: '127.0.0.2', port }], ch, sid(1), new Timeline(), '127.0.0.1'),
      (e: unknown) =>
        e instanceof PunchSessionError &&
        e.code === 'PUNCH_VERIFY_FAILED' &&
        e.mismatch?.expectedIp === '127.0.0.1' &&
        e.mismatch.got[0]!.startsWith('127.0.0.2:'),
    );
    assert.ok(sock.destroyed, 'the socket is destroyed');
  } finally {
    sock.destroy();
    ch.close();
    other.destroy();
    srv.close();
  }
});

test(
  'slowloris before the request: 8 trickling connections are closed at the request deadline and do not lock B out',
  { timeout: 30_000 },
  async () => {
    const listener = await createPunchListener(
      listenerOpts(engA, '127.0.0.1', { limits: { requestDeadlineMs: 2500 } }),
    );
    const { server, dialer, port } = await loopbackOverlay(listener);
    const failures: PunchSessionError[] = [];
    listener.on('failure', (e) => failures.push(e));
    try {
      const attackers = await Promise.all(Array.from({ length: 8 }, () => rawPeer(port)));
      for (const a of attackers) a.trickle(200); // a 24-byte unknown message every 200 ms, never a version
      await new Promise((r) => setTimeout(r, 1200)); // older than evictAfterMs (1 s)
      assert.equal(listener.stats.active, 8, 'the attackers hold every slot');
      const r = await new PunchClient(clientOpts(engB, dialer)).punch({
        address: 'a.onion',
        port,
        expectIp: '127.0.0.1',
      });
      r.socket.destroy();
      assert.equal(listener.stats.evicted, 1, 'B got the slot of the longest-waiting attacker');
      const closed = await Promise.all(attackers.map((a) => closedWithin(a, 4000)));
      for (const ms of closed)
        assert.ok(ms !== undefined && ms < 3500, `attacker closed at ${ms} ms despite trickling`);
      const codes = failures.map((f) => `${f.code}:${f.step}`).sort();
      assert.deepEqual(codes, ['PUNCH_EVICTED:version', ...Array(7).fill('PUNCH_SESSION_DEADLINE:version')]);
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  'ignored-message cap: more than 16 unknown messages end the session at once (PUNCH_PROTOCOL)',
  { timeout: 10_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts(engA));
    const { server, port } = await loopbackOverlay(listener);
    const failure = new Promise<PunchSessionError>((r) => listener.once('failure', r));
    try {
      const p = await rawPeer(port);
      p.send(version);
      await until(p, ['verack']);
      p.sock.write(Buffer.concat(Array(17).fill(UNKNOWN_24)));
      assert.ok((await closedWithin(p, 2000)) !== undefined, 'closed');
      const e = await failure;
      assert.equal(e.code, 'PUNCH_PROTOCOL');
      assert.equal(e.step, 'opendpoint');
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  'slowloris after a valid request: the whole-session deadline ends it although each step is refreshed',
  { timeout: 15_000 },
  async () => {
    // Step timeout 15 s (default): only the 2 s session deadline can end this session.
    const listener = await createPunchListener(
      listenerOpts(engA, '127.0.0.1', { limits: { sessionDeadlineMs: 2000 } }),
    );
    const { server, port } = await loopbackOverlay(listener);
    const failure = new Promise<PunchSessionError>((r) => listener.once('failure', r));
    try {
      const p = await rawPeer(port);
      p.send(version);
      p.send({ cmd: 'opendpoint', sessionId: sid(7), flags: 0, endpoints: [{ address: '127.0.0.1', port: 40007 }] });
      await until(p, ['opendpoint']);
      p.trickle(300);
      const ms = await closedWithin(p, 5000);
      assert.ok(ms !== undefined && ms >= 1900 && ms < 3000, `closed at ${ms} ms`);
      const e = await failure;
      assert.equal(e.code, 'PUNCH_SESSION_DEADLINE');
      assert.equal(e.step, 'opfire');
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  'absolute steps: a trickle of unknown messages does not restart the opfire step timeout',
  { timeout: 10_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts(engA, '127.0.0.1', { stepTimeoutMs: 1000 }));
    const { server, port } = await loopbackOverlay(listener);
    const failure = new Promise<PunchSessionError>((r) => listener.once('failure', r));
    try {
      const p = await rawPeer(port);
      p.send(version);
      p.send({ cmd: 'opendpoint', sessionId: sid(8), flags: 0, endpoints: [{ address: '127.0.0.1', port: 40008 }] });
      await until(p, ['opendpoint']);
      p.trickle(200);
      const ms = await closedWithin(p, 4000);
      assert.ok(ms !== undefined && ms >= 900 && ms < 2000, `closed at ${ms} ms`);
      const e = await failure;
      assert.equal(e.code, 'PUNCH_TIMEOUT');
      assert.equal(e.step, 'opfire');
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  'per-source cap: a third session from one I2P destination is refused busy; another destination is served',
  { timeout: 10_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts(engA));
    const evil = await loopbackOverlay(listener, { peer: 'evil.b32.i2p' });
    const good = await loopbackOverlay(listener, { peer: 'good.b32.i2p' });
    try {
      const held = [await rawPeer(evil.port), await rawPeer(evil.port)];
      for (const h of held) h.send(version);
      for (const h of held) await until(h, ['verack']);
      const third = await rawPeer(evil.port);
      third.send(version);
      const m = await until(third, ['opreject', 'verack']);
      assert.equal(m.cmd, 'opreject');
      assert.equal(m.cmd === 'opreject' && m.code, 'busy');
      assert.equal(listener.stats.rejectedSource, 1);
      const other = await rawPeer(good.port);
      other.send(version);
      assert.equal((await until(other, ['opreject', 'verack'])).cmd, 'verack');
      for (const p of [...held, other]) p.sock.destroy();
    } finally {
      await listener.close();
      evil.server.close();
      good.server.close();
    }
  },
);

test(
  'initiator: a hostile A trickling unknown messages is cut off by the whole-session deadline',
  { timeout: 15_000 },
  async () => {
    const hostile = createServer((s) => {
      s.on('error', () => undefined);
      s.write(codec.encode({ cmd: 'version', nonce: 9n, userAgent: USER_AGENT }));
      const t = setInterval(() => (s.writable ? s.write(UNKNOWN_24) : clearInterval(t)), 200);
      s.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
    const port = (hostile.address() as { port: number }).port;
    try {
      const s = connect(port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      const ch = new StreamChannel(s, codec);
      const disco = Promise.resolve({
        endpoints: [{ address: '127.0.0.1', port: 5, method: 'predict' as const }],
        predicted: true,
        portPreserving: true,
        failures: [],
        elapsedMs: 0,
      });
      const t0 = performance.now();
      const run = runInitiator(ch, {
        engine: engB,
        local: { address: '127.0.0.1', port: 5 },
        discovery: disco,
        sessionDeadlineMs: 1500,
        maxIgnoredMessages: 1000,
      });
      const timer = new Promise((_, j) => setTimeout(() => j(new Error('still running after 5 s')), 5000).unref());
      await assert.rejects(
        Promise.race([run, timer]),
        (e: unknown) => e instanceof PunchSessionError && e.code === 'PUNCH_SESSION_DEADLINE' && e.side === 'A',
      );
      const ms = performance.now() - t0;
      assert.ok(ms >= 1400 && ms < 2500, `ended at ${ms.toFixed(0)} ms`);
    } finally {
      hostile.close();
    }
  },
);

test(
  'SYN cannon: bad ports, more than 2 endpoints and several IPs are refused with a code naming the limit',
  { timeout: 15_000 },
  async () => {
    const eng = counting(engA);
    const listener = await createPunchListener(listenerOpts(eng));
    const { server, port } = await loopbackOverlay(listener);
    const failures: PunchSessionError[] = [];
    listener.on('failure', (e) => failures.push(e));
    try {
      const cases: [string, { address: string; port: number }[]][] = [
        ['PUNCH_TARGET_BAD_PORT', [{ address: '127.0.0.1', port: 25 }]],
        [
          'PUNCH_TARGET_BAD_PORT',
          [
            { address: '127.0.0.1', port: 40000 },
            { address: '127.0.0.1', port: 22 },
          ],
        ],
        ['PUNCH_TARGET_TOO_MANY', [1, 2, 3].map((i) => ({ address: '127.0.0.1', port: 40000 + i }))],
        [
          'PUNCH_TARGET_MIXED_IP',
          [
            { address: '127.0.0.1', port: 40000 },
            { address: '127.0.0.2', port: 40000 },
          ],
        ],
      ];
      for (const [code, endpoints] of cases) {
        const p = await rawPeer(port);
        p.send(version);
        p.send({ cmd: 'opendpoint', sessionId: sid(1), flags: 0, endpoints });
        const m = await until(p, ['opreject', 'opendpoint']);
        assert.equal(m.cmd, 'opreject', `${code}: refused, not answered`);
        assert.equal(m.cmd === 'opreject' && m.code, 'bad-request');
        await closedWithin(p, 2000);
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(failures.at(-1)?.code, code);
      }
      assert.equal(eng.plans.length, 0, 'A never fired');
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  'SYN cannon: A punches one target IP at most `targetIpBurst` times, then refuses it (rate-limited)',
  { timeout: 30_000 },
  async () => {
    const eng = counting(engA);
    const listener = await createPunchListener(
      listenerOpts(eng, '127.0.0.1', { limits: { targetIpBurst: 2, targetIpPerSec: 0.001 } }),
    );
    const { server, port } = await loopbackOverlay(listener);
    const failures: PunchSessionError[] = [];
    listener.on('failure', (e) => failures.push(e));
    /** One full request against `ip` (nothing listens there: the punch fails); the reply A gave. */
    const attempt = async (ip: string, i: number): Promise<string> => {
      const p = await rawPeer(port);
      p.send(version);
      p.send({ cmd: 'opendpoint', sessionId: sid(i), flags: 0, endpoints: [{ address: ip, port: 41000 + i }] });
      const m = await until(p, ['opreject', 'opendpoint']);
      if (m.cmd === 'opreject') return `reject:${m.code}`;
      p.send({ cmd: 'opfire', sessionId: sid(i), delayUs: 0, profile: 'plain', deadlineMs: 200 });
      const r = await until(p, ['opresult', 'opreject'], 5000);
      p.sock.destroy();
      return r.cmd;
    };
    try {
      const victim = [];
      for (let i = 1; i <= 4; i++) victim.push(await attempt('127.0.0.3', i));
      assert.deepEqual(victim, ['opresult', 'opresult', 'reject:rate-limited', 'reject:rate-limited']);
      assert.equal(failures.filter((f) => f.code === 'PUNCH_TARGET_RATE_LIMITED').length, 2);
      assert.equal(
        eng.plans.filter((p) => p.remotes[0]!.address === '127.0.0.3').length,
        2,
        'two plans aimed at the victim, no more',
      );
      assert.equal(await attempt('127.0.0.4', 9), 'opresult', 'another IP is still served');
    } finally {
      await listener.close();
      server.close();
    }
  },
);
