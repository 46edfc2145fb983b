/**
 * An outsider asking A (hardnat on, default spray limits) for the biggest spray the wire allows: A is the easy
 * side, so every probe is a SYN from A to the IP the outsider names. A sends at most its own cap
 * (SPRAY_LIMITS.aSynsPerSession) whatever was asked, never to a bad port, and no more than the spray bucket's
 * burst of spray sessions at once. The real listener and native engine on loopback; the engine is wrapped only
 * to record the plans it is given.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PunchEngine } from '../../src/native/engine.js';
import type { PunchEngineLike, SprayPlanLike } from '../../src/punch/engine-port.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { isBadPort } from '../../src/punch/bad-ports.js';
import { SPRAY_LIMITS } from '../../src/wire/index.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { PunchClient } from '../../src/punch/client.js';
import { loadConfig } from '../../src/daemon/config.js';
import { ConfigError } from '../../src/daemon/errors.js';
import { sprayOptions } from '../../src/daemon/punch-setup.js';
import { ApiError } from '../../src/facade/errors.js';
import { Onionpunch, type HardNatOptions, type OnionpunchOptions } from '../../src/facade/onionpunch.js';
import { clientOpts, edmAt, listenerOpts, loopbackOverlay, rawPeer, until } from '../helpers/punch-loopback.js';

const engA = new PunchEngine();
const engB = new PunchEngine();
after(async () => {
  await engA.stop();
  await engB.stop();
});

function recording(eng: PunchEngine): PunchEngineLike & { sprays: SprayPlanLike[] } {
  const sprays: SprayPlanLike[] = [];
  return {
    sprays,
    now: () => eng.now(),
    probeBind: (l) => eng.probeBind(l),
    punch: (p) => eng.punch(p),
    spray: (p) => (sprays.push(p), eng.spray(p as Parameters<PunchEngine['spray']>[0])),
  };
}

/**
 * An outsider's raw session `i` on `port` asking the most the wire allows: 4,096 probes over a range full of bad
 * ports (ssh, smtp, ...), "B" being hard. Resolves with A's first answer (opspray, opreject or opendpoint).
 */
async function askMaxSpray(port: number, i: number) {
  const p = await rawPeer(port);
  const sessionId = Buffer.alloc(16, i);
  p.send({ cmd: 'version', nonce: BigInt(i), userAgent: '/x/' });
  const wire = { hard: 'B' as const, probeLow: 1, probeHigh: 65_535, sockets: SPRAY_LIMITS.maxSockets };
  p.send({ cmd: 'opspray', sessionId, ...wire, probes: SPRAY_LIMITS.maxProbes, spreadUs: 0 });
  p.send({ cmd: 'opendpoint', sessionId, flags: 0, endpoints: [{ address: '127.0.0.2', port: 40_000 }] });
  return { p, sessionId, first: await until(p, ['opspray', 'opreject', 'opendpoint']) };
}

test(
  'an outsider cannot make A spray beyond its cap: SYNs per session, bad ports, spray sessions at once',
  { timeout: 30_000 },
  async () => {
    const a = recording(engA);
    const cap = SPRAY_LIMITS.aSynsPerSession;
    const listener = await createPunchListener(
      listenerOpts(a, '127.0.0.1', {
        spray: { maxSyns: cap, sessionsPerMinute: SPRAY_LIMITS.aSessionsPerMinute, burst: SPRAY_LIMITS.aSessionBurst },
      }),
    );
    const failures: PunchSessionError[] = [];
    listener.on('failure', (e) => failures.push(e));
    const { server, port } = await loopbackOverlay(listener);
    try {
      const ask = (i: number) => askMaxSpray(port, i);
      const s1 = await ask(1);
      assert.equal(s1.first.cmd, 'opspray');
      if (s1.first.cmd === 'opspray') assert.ok(s1.first.probes <= cap, `A agreed to ${s1.first.probes} probes`);
      await until(s1.p, ['opendpoint']);
      s1.p.send({ cmd: 'opfire', sessionId: s1.sessionId, delayUs: 0, profile: 'plain', deadlineMs: 15_000 });
      const res = await until(s1.p, ['opresult'], 10_000);
      assert.equal(res.cmd, 'opresult');
      assert.equal(a.sprays.length, 1);
      const plan = a.sprays[0]!;
      assert.equal(plan.role, 'easy');
      assert.ok(plan.count <= cap, `A's spray plan has ${plan.count} SYNs (cap ${cap})`);
      const ports = plan.probePorts ?? [];
      assert.equal(ports.length, plan.count);
      assert.equal(new Set(ports).size, ports.length, 'distinct ports');
      assert.deepEqual(ports.filter(isBadPort), [], 'no bad port');
      assert.ok(plan.deadlineMs <= 2500 && plan.synCnt === 1, 'one kernel retransmission at most per socket');
      assert.ok(engA.stats().syns <= cap, `engine counted ${engA.stats().syns} SYNs`);
      s1.p.sock.destroy();

      // The spray bucket's burst (2): a second spray session is agreed, a third at once is refused with the limit.
      const s2 = await ask(2);
      assert.equal(s2.first.cmd, 'opspray');
      const s3 = await ask(3);
      assert.equal(s3.first.cmd, 'opreject');
      if (s3.first.cmd === 'opreject') assert.equal(s3.first.code, 'spray-rate-limited');
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(failures.some((f) => f.code === 'PUNCH_SPRAY_LIMIT' && f.limit === 'sessions-per-minute'));
      s2.p.sock.destroy();
      s3.p.sock.destroy();
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test('spray caps are config keys: lowered freely, never past their ceilings (a ConfigError naming the key)', () => {
  const c = loadConfig({ args: ['--hardnat', '--spraymaxsyns=32', '--sprayrate=1', '--sprayburst=1'] });
  assert.deepEqual(sprayOptions(c, 'A'), { maxSyns: 32, sessionsPerMinute: 1, burst: 1 });
  const d = loadConfig({ args: ['--hardnat', '--spraydialsyns=512', '--sprayspread=20000'] });
  assert.deepEqual(sprayOptions(d, 'B'), { maxSyns: 512, spreadUs: 20_000 });
  // Defaults are SPRAY_LIMITS' (one source for the daemon, the facade and the listener).
  const e = loadConfig({ args: ['--hardnat'] });
  const L = SPRAY_LIMITS;
  assert.deepEqual(sprayOptions(e, 'A'), {
    maxSyns: L.aSynsPerSession,
    sessionsPerMinute: L.aSessionsPerMinute,
    burst: L.aSessionBurst,
  });
  assert.deepEqual(sprayOptions(e, 'B'), { maxSyns: L.bSynsPerSession, spreadUs: L.spreadUs });
  assert.equal(sprayOptions(loadConfig({ args: ['--spraymaxsyns=32'] }), 'A'), undefined, 'hardnat=0: no spray');
  const above: [string, number][] = [
    ['spraymaxsyns', L.aSynsCeiling + 1],
    ['sprayrate', L.aSessionsPerMinuteCeiling + 1],
    ['sprayburst', L.aSessionBurstCeiling + 1],
    ['spraydialsyns', L.maxSockets + 1],
    ['sprayspread', L.maxSpreadUs + 1],
    ['spraymaxsyns', 0],
    ['sprayrate', 0],
  ];
  for (const [key, v] of above) {
    for (const inputs of [{ args: [`--${key}=${v}`] }, { env: { [`ONIONPUNCH_${key.toUpperCase()}`]: String(v) } }]) {
      assert.throws(
        () => loadConfig(inputs),
        (err: unknown) => err instanceof ConfigError && err.code === 'CONFIG_BAD_VALUE' && err.key === key,
        `${key}=${v}`,
      );
    }
  }
  assert.equal(loadConfig({ args: [`--spraymaxsyns=${L.aSynsCeiling}`] }).spraymaxsyns, L.aSynsCeiling);
});

test('facade hardNat: a cap above its ceiling is API_BAD_OPTION naming the option, before anything opens', async () => {
  const nat = { mapping: 'eim' } as unknown as OnionpunchOptions['nat'];
  const bad: HardNatOptions[] = [
    { maxSynsA: SPRAY_LIMITS.aSynsCeiling + 1 },
    { sessionsPerMinute: SPRAY_LIMITS.aSessionsPerMinuteCeiling + 1 },
    { burst: 0 },
    { maxSynsB: SPRAY_LIMITS.maxSockets + 1 },
    { spreadUs: 1.5 },
  ];
  for (const hardNat of bad) {
    const name = Object.keys(hardNat)[0]!;
    await assert.rejects(
      Onionpunch.open({ overlay: {}, nat, hardNat }),
      (e: unknown) => e instanceof ApiError && e.code === 'API_BAD_OPTION' && e.option === `hardNat.${name}`,
      name,
    );
  }
});

test(
  'a lowered config cap is enforced: sprayrate=1 refuses the 2nd spray in the minute, spraymaxsyns=32 clamps A',
  { timeout: 30_000 },
  async () => {
    const a = recording(engA);
    const cfg = loadConfig({ args: ['--hardnat', '--spraymaxsyns=32', '--sprayrate=1', '--sprayburst=1'] });
    const listener = await createPunchListener(listenerOpts(a, '127.0.0.1', { spray: sprayOptions(cfg, 'A')! }));
    const failures: PunchSessionError[] = [];
    listener.on('failure', (e) => failures.push(e));
    const { server, dialer, port } = await loopbackOverlay(listener);
    try {
      // 1st spray: agreed, A's probes lowered from the 4,096 asked to spraymaxsyns (clamped, not refused).
      const s1 = await askMaxSpray(port, 1);
      assert.equal(s1.first.cmd, 'opspray');
      if (s1.first.cmd === 'opspray') assert.equal(s1.first.probes, 32);
      await until(s1.p, ['opendpoint']);
      s1.p.send({ cmd: 'opfire', sessionId: s1.sessionId, delayUs: 0, profile: 'plain', deadlineMs: 15_000 });
      assert.equal((await until(s1.p, ['opresult'], 10_000)).cmd, 'opresult');
      assert.equal(a.sprays.length, 1);
      assert.ok(a.sprays[0]!.count <= 32, `A's spray plan has ${a.sprays[0]!.count} SYNs (spraymaxsyns 32)`);
      s1.p.sock.destroy();

      // 2nd spray within the minute, by a real B behind a hard NAT: refused before any SYN, and B's error says
      // whose limit and which (A's opreject code carries it).
      const synsBefore = engA.stats().syns;
      const cfgB = loadConfig({ args: ['--hardnat', '--spraydialsyns=64'] });
      const b = new PunchClient(clientOpts(engB, dialer, { eim: edmAt('127.0.0.1'), spray: sprayOptions(cfgB, 'B')! }));
      const err = await b.punch({ address: 'a.onion', port, expectIp: '127.0.0.1' }).then(
        () => assert.fail('punched'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof PunchSessionError, String(err));
      assert.equal(err.code, 'PUNCH_SPRAY_LIMIT');
      assert.equal(err.limit, 'sessions-per-minute');
      assert.equal(err.side, 'A');
      assert.equal(err.rejectCode, 'spray-rate-limited');
      await new Promise((r) => setTimeout(r, 50));
      const onA = failures.find((f) => f.code === 'PUNCH_SPRAY_LIMIT');
      assert.equal(onA?.limit, 'sessions-per-minute');
      assert.equal(a.sprays.length, 1, 'no second spray plan');
      assert.equal(engA.stats().syns, synsBefore, 'A sent no SYN for the refused session');
    } finally {
      await listener.close();
      server.close();
    }
  },
);
