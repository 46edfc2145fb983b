/**
 * The SAM client against a FAKE SAM bridge on loopback that sends random and mutated reply lines. A real i2pd
 * never sends these, so this fake is the only way to produce the fault; everything else in the I2P tests runs
 * against real i2pd (test/lab/i2p-*.test.ts). Property: every operation settles within its bound, and every
 * failure is a typed SamError — never a hang, never another exception, never a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { fakeSamLines } from '../helpers/fake-sam.js';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { SamError } from '../../src/overlay/i2p/errors.js';
import { openSam, samGenerateDestination, SamSession, SAM_MAX_LINE } from '../../src/overlay/i2p/sam.js';
import { i2pBase64Encode, isB32Address } from '../../src/overlay/i2p/address.js';

const DEST = Buffer.concat([randomBytes(384), Buffer.from([5, 0, 4, 0, 7, 0, 4])]);
const PUB = i2pBase64Encode(DEST);
const PRIV = i2pBase64Encode(Buffer.concat([DEST, randomBytes(288)]));

/** What the fake bridge answers to each command verb. */
type Behaviour =
  | { kind: 'valid' }
  | { kind: 'result'; result: string }
  | { kind: 'mutated'; at: number; insert: string; cut: number }
  | { kind: 'random'; line: string }
  | { kind: 'noNewline'; line: string }
  | { kind: 'close' }
  | { kind: 'silent' }
  | { kind: 'huge' };

const VALID: Record<string, string> = {
  HELLO: 'HELLO REPLY RESULT=OK VERSION=3.1',
  DEST: `DEST REPLY PUB=${PUB} PRIV=${PRIV}`,
  SESSION: `SESSION STATUS RESULT=OK DESTINATION=${PRIV}`,
  STREAM: 'STREAM STATUS RESULT=OK',
  NAMING: `NAMING REPLY RESULT=OK NAME=x VALUE=${PUB}`,
  PEER: PUB,
};
const TOPIC: Record<string, string> = {
  HELLO: 'HELLO REPLY',
  DEST: 'DEST REPLY',
  SESSION: 'SESSION STATUS',
  STREAM: 'STREAM STATUS',
  NAMING: 'NAMING REPLY',
  PEER: 'PEER',
};

function render(verb: string, b: Behaviour): string | 'close' | 'silent' {
  const valid = VALID[verb]!;
  switch (b.kind) {
    case 'valid':
      return valid + '\n';
    case 'result':
      return `${TOPIC[verb]} RESULT=${b.result} MESSAGE="fake"\n`;
    case 'mutated': {
      const at = b.at % (valid.length + 1);
      return valid.slice(0, at) + b.insert + valid.slice(Math.min(valid.length, at + b.cut)) + '\n';
    }
    case 'random':
      return b.line + '\n';
    case 'noNewline':
      return b.line;
    case 'close':
      return 'close';
    case 'silent':
      return 'silent';
    case 'huge':
      return 'A'.repeat(SAM_MAX_LINE + 10);
  }
}

const behaviour: fc.Arbitrary<Behaviour> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'valid' as const }) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        'CANT_REACH_PEER',
        'DUPLICATED_ID',
        'DUPLICATED_DEST',
        'INVALID_KEY',
        'INVALID_ID',
        'TIMEOUT',
        'I2P_ERROR',
        'KEY_NOT_FOUND',
        'PEER_NOT_FOUND',
        'ALREADY_ACCEPTING',
        'LEASESET_NOT_FOUND',
        'NOVERSION',
        'WHATEVER',
        '',
      )
      .map((result) => ({ kind: 'result' as const, result })),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('mutated' as const),
      at: fc.nat(1000),
      insert: fc.string({ maxLength: 8, unit: 'binary' }),
      cut: fc.nat(20),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('random' as const), line: fc.string({ maxLength: 200, unit: 'binary' }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('noNewline' as const), line: fc.string({ maxLength: 50 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'silent' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'huge' as const }) },
);

/** The fake bridge: answers each command line by its verb, as `script` says. */
class FakeSam {
  server: Server;
  script: Record<string, Behaviour> = {};
  private sockets = new Set<Socket>();
  constructor() {
    this.server = createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString('latin1');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const verb = line.split(' ')[0]!;
          this.answer(s, verb);
          // An accept's second line (the caller's destination) follows its status, as script.PEER says.
          if (line.startsWith('STREAM ACCEPT') && this.script['STREAM']?.kind === 'valid') this.answer(s, 'PEER');
        }
      });
    });
  }
  private answer(s: Socket, verb: string): void {
    const b = this.script[verb] ?? { kind: 'valid' };
    const out = render(verb, b);
    if (out === 'close') s.destroy();
    else if (out !== 'silent') s.write(out, 'latin1');
  }
  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    if (!a || typeof a === 'string') throw new Error('no address');
    return { host: '127.0.0.1', port: a.port };
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const OP_TIMEOUT = 60;
const BOUND_MS = 3000;

/** Runs `fn`; it must settle within BOUND_MS and fail only with a SamError. */
async function mustSettle<T>(what: string, fn: () => Promise<T>, check: (v: T) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((r) => (timer = setTimeout(() => r('hang'), BOUND_MS)));
  const outcome = await Promise.race([
    fn().then(
      (v) => ({ v }),
      (e: unknown) => ({ e }),
    ),
    hang,
  ]);
  clearTimeout(timer);
  assert.notEqual(outcome, 'hang', `${what} did not settle within ${BOUND_MS} ms`);
  if (outcome === 'hang') return;
  if ('e' in outcome) {
    assert.ok(outcome.e instanceof SamError, `${what} threw a non-SamError: ${String(outcome.e)}`);
    assert.match(outcome.e.code, /^SAM_[A-Z0-9_]+$/);
  } else check(outcome.v);
}

test('fuzzed SAM replies (fake bridge) give typed errors, never a hang or a crash', { timeout: 120_000 }, async () => {
  const fake = new FakeSam();
  const addr = await fake.listen();
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          HELLO: behaviour,
          DEST: behaviour,
          SESSION: behaviour,
          STREAM: behaviour,
          NAMING: behaviour,
          PEER: behaviour,
        }),
        fc.constantFrom('hello', 'dest', 'session', 'accept', 'connect', 'lookup', 'connect-b32'),
        async (script, op) => {
          fake.script = script;
          const o = { timeoutMs: OP_TIMEOUT };
          if (op === 'hello')
            return mustSettle(
              op,
              () => openSam(addr, o),
              (c) => c.destroy(),
            );
          if (op === 'dest')
            return mustSettle(
              op,
              () => samGenerateDestination(addr, o),
              (k) => assert.ok(isB32Address(k.b32)),
            );
          let session: SamSession | undefined;
          await mustSettle(
            'session',
            () => SamSession.create(addr, o),
            (s) => {
              session = s;
              assert.ok(isB32Address(s.b32));
            },
          );
          if (!session) return;
          const sess = session;
          try {
            if (op === 'accept') {
              await mustSettle(
                op,
                () => sess.accept({ ...o, peerTimeoutMs: OP_TIMEOUT }),
                (a) => {
                  assert.ok(isB32Address(a.peerB32));
                  a.socket.destroy();
                },
              );
            } else if (op === 'connect') {
              await mustSettle(
                op,
                () => sess.connect(PUB, o),
                (sock) => sock.destroy(),
              );
            } else if (op === 'connect-b32') {
              await mustSettle(
                op,
                () => sess.connect('a'.repeat(52) + '.b32.i2p', o),
                (sock) => sock.destroy(),
              );
            } else {
              await mustSettle(
                op,
                () => sess.lookup('x.i2p', o),
                (d) => assert.equal(typeof d, 'string'),
              );
            }
          } finally {
            await sess.close();
          }
        },
      ),
      { numRuns: 200 },
    );
  } finally {
    await fake.close();
  }
});

test('every SAM RESULT value maps to its own typed code (fake bridge)', async () => {
  const fake = new FakeSam();
  const addr = await fake.listen();
  try {
    const session = await SamSession.create(addr, { timeoutMs: 1000 });
    const want: Record<string, string> = {
      CANT_REACH_PEER: 'SAM_CANT_REACH_PEER',
      DUPLICATED_ID: 'SAM_DUPLICATED_ID',
      INVALID_KEY: 'SAM_INVALID_KEY',
      INVALID_ID: 'SAM_INVALID_ID',
      TIMEOUT: 'SAM_TIMEOUT',
      I2P_ERROR: 'SAM_I2P_ERROR',
      KEY_NOT_FOUND: 'SAM_KEY_NOT_FOUND',
      PEER_NOT_FOUND: 'SAM_PEER_NOT_FOUND',
      ALREADY_ACCEPTING: 'SAM_ALREADY_ACCEPTING',
      LEASESET_NOT_FOUND: 'SAM_LEASESET_NOT_FOUND',
      SOMETHING_NEW: 'SAM_UNKNOWN_RESULT',
    };
    for (const [result, code] of Object.entries(want)) {
      fake.script = { STREAM: { kind: 'result', result } };
      await assert.rejects(
        session.connect(PUB, { timeoutMs: 1000 }),
        (e: unknown) => e instanceof SamError && e.code === code && e.result === result,
      );
    }
    fake.script = { STREAM: { kind: 'silent' } };
    await assert.rejects(
      session.connect(PUB, { timeoutMs: 100 }),
      (e: unknown) => e instanceof SamError && e.code === 'SAM_TIMEOUT',
    );
    fake.script = { STREAM: { kind: 'huge' } };
    await assert.rejects(
      session.connect(PUB, { timeoutMs: 1000 }),
      (e: unknown) => e instanceof SamError && e.code === 'SAM_REPLY_TOO_LONG',
    );
    fake.script = { STREAM: { kind: 'close' } };
    await assert.rejects(
      session.connect(PUB, { timeoutMs: 1000 }),
      (e: unknown) => e instanceof SamError && e.code === 'SAM_CLOSED',
    );
    const ac = new AbortController();
    fake.script = { STREAM: { kind: 'silent' } };
    const p = session.connect(PUB, { timeoutMs: 5000, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(p, (e: unknown) => e instanceof SamError && e.code === 'SAM_ABORTED');
    await session.close();
    await assert.rejects(session.connect(PUB), (e: unknown) => e instanceof SamError && e.code === 'SAM_CLOSED');
  } finally {
    await fake.close();
  }
});

test('a refused SAM port is SAM_UNREACHABLE', async () => {
  const fake = new FakeSam();
  const addr = await fake.listen();
  await fake.close();
  await assert.rejects(
    openSam(addr, { timeoutMs: 1000 }),
    (e: unknown) => e instanceof SamError && e.code === 'SAM_UNREACHABLE',
  );
});

test('bytes the bridge sent right after STREAM STATUS reach the stream (nothing lost on detach)', async () => {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => {
      s.write('HELLO REPLY RESULT=OK VERSION=3.1\n');
      s.once('data', () => s.write('STREAM STATUS RESULT=OK\nearly-bytes'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const sessServer = createServer((s) => {
    s.on('error', () => {});
    let n = 0;
    s.on('data', () =>
      s.write(n++ === 0 ? 'HELLO REPLY RESULT=OK VERSION=3.1\n' : `SESSION STATUS RESULT=OK DESTINATION=${PRIV}\n`),
    );
  });
  await new Promise<void>((r) => sessServer.listen(0, '127.0.0.1', r));
  try {
    const session = await SamSession.create({
      host: '127.0.0.1',
      port: (sessServer.address() as { port: number }).port,
    });
    // Operations go to the same bridge as the session; point them at the other fake for this one connect.
    (session as unknown as { sam: { host: string; port: number } }).sam.port = port;
    const sock = await session.connect(PUB, { timeoutMs: 1000 });
    await new Promise((r) => setTimeout(r, 50));
    const got = await new Promise<string>((r) => sock.once('data', (d: Buffer) => r(d.toString())));
    assert.equal(got, 'early-bytes');
    await session.close();
  } finally {
    server.close();
    sessServer.close();
  }
});

test('a NAMING LOOKUP that times out does not end the session; its late reply is skipped (fake bridge)', async () => {
  const DEST2 = i2pBase64Encode(Buffer.concat([randomBytes(384), Buffer.from([5, 0, 4, 0, 7, 0, 4])]));
  let lookups = 0;
  const f = await fakeSamLines((line, s) => {
    if (line.startsWith('HELLO')) s.write('HELLO REPLY RESULT=OK VERSION=3.1\n');
    else if (line.startsWith('SESSION')) s.write(`SESSION STATUS RESULT=OK DESTINATION=${PRIV}\n`);
    else if (line.startsWith('NAMING')) {
      const n = lookups++;
      // The first reply comes late (after the caller gave up); the second at once.
      setTimeout(() => s.write(`NAMING REPLY RESULT=OK NAME=x VALUE=${n === 0 ? PUB : DEST2}\n`), n === 0 ? 150 : 0);
    }
  });
  try {
    const session = await SamSession.create(f.sam, { timeoutMs: 1000 });
    await assert.rejects(
      session.lookup('x.i2p', { timeoutMs: 30 }),
      (e: unknown) => e instanceof SamError && e.code === 'SAM_TIMEOUT',
    );
    assert.equal(session.closed, false);
    assert.equal(await session.lookup('y.i2p', { timeoutMs: 1000 }), DEST2);
    await session.close();
  } finally {
    f.close();
  }
});
