/**
 * Hard-NAT punching, the negotiation: the `opspray` wire format, the spray's shape and probe ports, and
 * sessions between the real listener (A) and client (B) over loopback streams with the real native engine:
 * both sides hard refused fast naming both, an old A (today's decoder, which skips `opspray` as an unknown
 * command) refused with a typed error and no hang, `hardnat` off on A, and the agreed parameters.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PunchEngine } from '../../src/native/engine.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { PunchClient } from '../../src/punch/client.js';
import { PunchSessionError } from '../../src/punch/errors.js';
import { isBadPort } from '../../src/punch/bad-ports.js';
import {
  checkSprayAnswer,
  ourSide,
  probePorts,
  sprayOdds,
  sprayPacingUs,
  sprayRequest,
  sprayShape,
} from '../../src/punch/spray.js';
import { decodePayload, encodePayload, SPRAY_LIMITS, WireError } from '../../src/wire/index.js';
import type { FrameCodec } from '../../src/punch/channel.js';
import {
  clientOpts,
  codec,
  edmAt,
  eimAt,
  listenerOpts,
  loopbackOverlay,
  rawPeer,
  until,
} from '../helpers/punch-loopback.js';

const engA = new PunchEngine();
const engB = new PunchEngine();
after(async () => {
  await engA.stop();
  await engB.stop();
});

const sid = Buffer.alloc(16, 0xab);
const target = (port: number) => ({ address: 'a.onion', port, expectIp: '127.0.0.1' });
/** A PunchSessionError with `code` and every field of `fields` (side, step, rejectCode, limit). */
const isSession =
  (code: string, fields: Partial<Pick<PunchSessionError, 'side' | 'step' | 'rejectCode' | 'limit'>> = {}) =>
  (e: unknown): boolean =>
    e instanceof PunchSessionError &&
    e.code === code &&
    Object.entries(fields).every(([k, v]) => (e as unknown as Record<string, unknown>)[k] === v);

test('opspray: byte layout, round trip, every bound refused', () => {
  const v = {
    sessionId: sid,
    hard: 'B' as const,
    probeLow: 1024,
    probeHigh: 65535,
    sockets: 2048,
    probes: 128,
    spreadUs: 20_000,
  };
  const hex = encodePayload('opspray', v).toString('hex');
  assert.equal(hex, 'ab'.repeat(16) + '02' + '0400' + 'ffff' + '0008' + '8000' + '204e0000');
  assert.deepEqual(decodePayload('opspray', encodePayload('opspray', v)), v);
  const offer = { ...v, hard: 'A' as const, probeLow: 0, probeHigh: 0 };
  assert.deepEqual(decodePayload('opspray', encodePayload('opspray', offer)), offer);
  const bad = (patch: Partial<typeof v>) =>
    assert.throws(() => encodePayload('opspray', { ...v, ...patch }), WireError);
  bad({ sockets: 0 });
  bad({ sockets: SPRAY_LIMITS.maxSockets + 1 });
  bad({ probes: SPRAY_LIMITS.maxProbes + 1 });
  bad({ probeLow: 5000, probeHigh: 4000 });
  bad({ spreadUs: SPRAY_LIMITS.maxSpreadUs + 1 });
  const raw = Buffer.from(hex, 'hex');
  const mut = (i: number, b: number): Buffer => {
    const c = Buffer.from(raw);
    c[i] = b;
    return c;
  };
  assert.throws(() => decodePayload('opspray', mut(16, 3)), WireError, 'hard side 3');
  assert.throws(() => decodePayload('opspray', mut(22, 0x00).fill(0, 21, 23)), WireError, 'zero sockets');
  assert.throws(() => decodePayload('opspray', Buffer.concat([raw, Buffer.from([0])])), WireError, 'trailing byte');
  assert.throws(() => decodePayload('opspray', raw.subarray(0, 28)), WireError, 'truncated');
});

test("spray shape: as even as A's cap allows, B pays the rest, the odds reach 99%", () => {
  const wide = sprayShape(64_512, 'B', SPRAY_LIMITS.bSynsPerSession, SPRAY_LIMITS.aSynsPerSession);
  // √(4.6 × 64,512) ≈ 545 each would be even; A stops at its cap of 256 and B takes the rest.
  assert.deepEqual(wide, { sockets: 1161, probes: 256 });
  assert.ok(sprayOdds(wide.sockets, wide.probes, 64_512) >= 0.99);
  // A port block: even, about 69 each for 1,024 ports (not 16 against 295).
  assert.deepEqual(sprayShape(1024, 'A', 2048, 256), { sockets: 69, probes: 69 });
  for (const range of [1024, 1445, 2067]) {
    for (const hard of ['A', 'B'] as const) {
      const s = sprayShape(range, hard, SPRAY_LIMITS.bSynsPerSession, SPRAY_LIMITS.aSynsPerSession);
      assert.ok(sprayOdds(s.sockets, s.probes, range) >= 0.99, `${hard} hard over ${range}: ${JSON.stringify(s)}`);
    }
  }
  const aHard = sprayShape(64_512, 'A', SPRAY_LIMITS.bSynsPerSession, SPRAY_LIMITS.aSynsPerSession);
  assert.ok(aHard.sockets <= SPRAY_LIMITS.aSynsPerSession && aHard.probes <= 2048, JSON.stringify(aHard));
  const block = sprayShape(1024, 'B', 2048, 256);
  assert.ok(block.probes >= 16 && block.probes <= 256 && sprayOdds(block.sockets, block.probes, 1024) >= 0.99);
  // A asks no more of itself than its cap, whatever B can pay.
  assert.ok(sprayShape(64_512, 'B', 16, 256).probes <= 256);
  // A's cap is what A sends, whatever an even split would be.
  assert.deepEqual(sprayShape(64_512, 'A', 2048, 100), { sockets: 100, probes: 2048 });
  const ports = probePorts(500, 1, 1100);
  assert.equal(new Set(ports).size, 500);
  assert.ok(
    ports.every((p) => p >= 1 && p <= 1100 && !isBadPort(p)),
    'no bad port',
  );
  assert.deepEqual(probePorts(10, 20, 25), [24], 'ports 20..25 but 24 are bad (ftp, ssh, telnet, smtp)');
  // B's check of A's answer: A may not turn the roles round or ask more than B offered.
  const asked = sprayRequest(sid, { role: 'hard', range: { low: 1024, high: 65535 }, maxSyns: 2048 });
  assert.equal(checkSprayAnswer(asked, asked), undefined);
  assert.match(checkSprayAnswer(asked, { ...asked, probes: asked.probes + 1 }) ?? '', /more than/);
  assert.match(checkSprayAnswer(asked, { ...asked, hard: 'A' }) ?? '', /hard side/);
  assert.match(checkSprayAnswer(asked, { ...asked, probeLow: 2000 }) ?? '', /range/);
});

test('spray sides: B leads, A follows, whichever is hard; each side paced at the rate within the window', () => {
  const agreed = { ...sprayRequest(sid, { role: 'hard', range: { low: 1024, high: 65535 }, maxSyns: 2048 }) };
  for (const hard of ['A', 'B'] as const) {
    const p = { ...agreed, hard, probeLow: 1024, probeHigh: 65535 };
    assert.equal(ourSide(p, 'B').lead, true, `B leads (${hard} hard)`);
    assert.equal(ourSide(p, 'A').lead, false, `A follows (${hard} hard)`);
  }
  // 1,161 sockets at 8,192 a second: 142 ms of the 250 ms window; A's 256 probes: 32 ms.
  assert.equal(agreed.sockets, 1161);
  assert.equal(agreed.spreadUs, 250_000);
  assert.equal(sprayPacingUs(agreed, ourSide(agreed, 'B')), Math.ceil((1161 * 1e6) / 8192));
  assert.equal(sprayPacingUs(agreed, ourSide(agreed, 'A')), 31_250);
  // The agreed window stays the ceiling: 4,096 SYNs at the rate would take 500 ms.
  const big = { ...agreed, sockets: 4096 };
  assert.equal(sprayPacingUs(big, ourSide(big, 'B')), 250_000);
});

test(
  'edm x edm: refused in well under 2 s, PUNCH_NAT_BOTH_HARD naming both sides, nothing fired',
  { timeout: 10_000 },
  async () => {
    const listener = await createPunchListener(
      listenerOpts(engA, '127.0.0.1', {
        eim: edmAt('127.0.0.1'),
        spray: { maxSyns: 256 },
      }),
    );
    const { server, dialer, port } = await loopbackOverlay(listener);
    const failures: PunchSessionError[] = [];
    listener.on('failure', (e) => failures.push(e));
    try {
      const client = new PunchClient(clientOpts(engB, dialer, { eim: edmAt('127.0.0.1'), spray: { maxSyns: 2048 } }));
      const t0 = performance.now();
      const err = await client.punch(target(port)).then(
        () => assert.fail('punched'),
        (e: unknown) => e,
      );
      assert.ok(
        isSession('PUNCH_NAT_BOTH_HARD', { side: 'A', step: 'opspray', rejectCode: 'both-hard' })(err),
        String(err),
      );
      // Not a classification: issue #12 asks that the refusal's words name both NATs for the operator.
      assert.match((err as Error).message, /A's NAT is endpoint-dependent.*B's is too/);
      const ms = performance.now() - t0;
      assert.ok(ms < 2000, `refused in ${ms.toFixed(0)} ms`);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(failures[0]?.code, 'PUNCH_NAT_BOTH_HARD');
      assert.equal(engA.stats().syns, 0, 'A sent no SYN');
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  'an old A (its decoder skips opspray as an unknown command): B hard gets PUNCH_SPRAY_UNSUPPORTED, no hang',
  { timeout: 10_000 },
  async () => {
    // Today's wire codec knows no `opspray`: the frame decodes as an unknown command, which the session skips.
    // That is this codec (the real one, with the command renamed on the way in), not a stand-in session.
    const oldCodec: FrameCodec = {
      encode: (m) => codec.encode(m),
      decoder() {
        const d = codec.decoder();
        return {
          push: (chunk) => d.push(chunk).map((m) => (m.cmd === 'opspray' ? { cmd: 'other', command: 'opspray' } : m)),
        };
      },
    };
    const listener = await createPunchListener(listenerOpts(engA, '127.0.0.1', { codec: oldCodec }));
    const { server, dialer, port } = await loopbackOverlay(listener);
    try {
      const client = new PunchClient(clientOpts(engB, dialer, { eim: edmAt('127.0.0.1'), spray: { maxSyns: 2048 } }));
      const t0 = performance.now();
      await assert.rejects(client.punch(target(port)), isSession('PUNCH_SPRAY_UNSUPPORTED', { side: 'A' }));
      assert.ok(performance.now() - t0 < 2000, 'refused at once, not at a timeout');
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  'hardnat off on A: B hard is refused (spray-off: PUNCH_SPRAY_LIMIT hardnat-off, both sides); B off never dials',
  { timeout: 10_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts(engA));
    const { server, dialer, port } = await loopbackOverlay(listener);
    const failures: PunchSessionError[] = [];
    listener.on('failure', (e) => failures.push(e));
    try {
      const client = new PunchClient(clientOpts(engB, dialer, { eim: edmAt('127.0.0.1'), spray: { maxSyns: 2048 } }));
      const refused = { side: 'A' as const, step: 'opspray', limit: 'hardnat-off' as const };
      await assert.rejects(
        client.punch(target(port)),
        isSession('PUNCH_SPRAY_LIMIT', { ...refused, rejectCode: 'spray-off' }),
      );
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(isSession('PUNCH_SPRAY_LIMIT', refused)(failures[0]), String(failures[0]));
      let dialed = 0;
      const counting = {
        ...dialer,
        dial: (a: string, p: number, o?: object) => (dialed++, dialer.dial(a, p, o as never)),
      };
      const off = new PunchClient(clientOpts(engB, counting, { eim: edmAt('127.0.0.1') }));
      await assert.rejects(
        off.punch(target(port)),
        isSession('PUNCH_NAT_UNSUITABLE', { side: 'B', step: 'nat-check' }),
      );
      assert.equal(dialed, 0);
    } finally {
      await listener.close();
      server.close();
    }
  },
);

test(
  "agreement: B hard gets A's opspray before its opendpoint; A hard answers an easy B's offer with its own range",
  { timeout: 10_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts(engA, '127.0.0.1', { spray: { maxSyns: 100 } }));
    const hardA = await createPunchListener(
      listenerOpts(engA, '127.0.0.1', { eim: edmAt('127.0.0.1'), spray: { maxSyns: 100 } }),
    );
    const o1 = await loopbackOverlay(listener);
    const o2 = await loopbackOverlay(hardA);
    try {
      const hello = (p: Awaited<ReturnType<typeof rawPeer>>, spray: object): void => {
        p.send({ cmd: 'version', nonce: 1n, userAgent: '/x/' });
        p.send({ cmd: 'opspray', sessionId: sid, ...spray } as never);
        p.send({ cmd: 'opendpoint', sessionId: sid, flags: 0, endpoints: [{ address: '127.0.0.2', port: 40_000 }] });
      };
      const b = await rawPeer(o1.port);
      hello(b, { hard: 'B', probeLow: 61_000, probeHigh: 65_535, sockets: 4096, probes: 4096, spreadUs: 20_000 });
      const m1 = await until(b, ['opspray', 'opendpoint', 'opreject']);
      assert.equal(m1.cmd, 'opspray');
      assert.ok(
        m1.cmd === 'opspray' && m1.hard === 'B' && m1.probes === 100 && m1.sockets === 4096,
        JSON.stringify(m1),
      );
      assert.equal((await until(b, ['opendpoint'])).cmd, 'opendpoint');
      b.sock.destroy();
      const e = await rawPeer(o2.port);
      hello(e, { hard: 'A', probeLow: 0, probeHigh: 0, sockets: 256, probes: 2048, spreadUs: 20_000 });
      const m2 = await until(e, ['opspray', 'opendpoint', 'opreject']);
      assert.ok(m2.cmd === 'opspray' && m2.hard === 'A' && m2.sockets <= 100 && m2.probes <= 2048, JSON.stringify(m2));
      assert.ok(
        m2.cmd === 'opspray' && m2.probeLow <= 40_010 && m2.probeHigh >= 40_900,
        'A names the range its NAT check saw',
      );
      e.sock.destroy();
    } finally {
      await listener.close();
      await hardA.close();
      o1.server.close();
      o2.server.close();
    }
  },
);

test(
  "an eim A ignores an easy B's offer (an ordinary punch; an old B without opspray is unchanged)",
  { timeout: 20_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts(engA, '127.0.0.1', { spray: { maxSyns: 100 } }));
    const { server, dialer, port } = await loopbackOverlay(listener);
    try {
      const client = new PunchClient(clientOpts(engB, dialer, { eim: eimAt('127.0.0.1'), spray: { maxSyns: 2048 } }));
      const r = await client.punch(target(port));
      assert.equal(r.spray, undefined);
      assert.equal(r.timeline.at('spray-agreed'), undefined);
      r.socket.destroy();
    } finally {
      await listener.close();
      server.close();
    }
  },
);
