/**
 * Which sessions `lab stress --report` draws whole (src/lab/stress/sampled-timelines.ts), over synthetic worker
 * samples of the shape the workers send (TailSampler entries of session / connected messages).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleTimelines, type Events, type Sample } from '../../src/lab/stress/sampled-timelines.js';

const tl = (start: number, ...events: string[]): Record<string, unknown> => ({
  timeline: { start, events: events.map((event, i) => ({ t: i, event })) },
  engine: [{ kind: 'syn', at: start + 0.5, remote: '198.18.10.2:4000' }],
});

test('sampleTimelines: first sessions, A slowest joined with B, B-only slowest, failures each once', () => {
  const outcomes = [
    { id: 0, b: 'B', ok: true, timeToConnectMs: 100 },
    { id: 1, b: 'B2', ok: true, timeToConnectMs: 900 },
    { id: 2, b: 'B', ok: true, timeToConnectMs: 800 },
    { id: 3, b: 'B2', ok: false, code: 'PUNCH_CONNECT_TIMEOUT', side: 'B' },
    { id: 4, b: 'B', ok: true, timeToConnectMs: 120 },
  ];
  const sessionIds = new Map([
    [0, 's0'],
    [1, 's1'],
    [2, 's2'],
    [4, 's4'],
  ]);
  const first: Events = [{ at: 1, who: 'A', event: 'request' }];
  const aTail: Sample[] = [
    { ms: 900, data: { sessionId: 's1', ...tl(10, 'request', 'established') } },
    { ms: 800, data: { sessionId: 's2', ...tl(20, 'request', 'established') } },
    { ms: 700, data: { sessionId: 'warm-up', ...tl(30, 'request') } },
    { data: { error: { code: 'PUNCH_CONNECT_TIMEOUT' }, ...tl(40, 'request', 'punch-failed') } },
    { data: { error: { code: 'PUNCH_CONNECT_TIMEOUT' }, ...tl(50, 'request', 'punch-failed') } },
  ];
  const bTails = [
    { who: 'B2', samples: [{ ms: 850, data: { id: 1, sessionId: 's1', ...tl(9, 'endpoints-sent') } }], totals: [] },
    {
      who: 'B',
      samples: [{ data: { id: 3, error: { code: 'PUNCH_CONNECT_TIMEOUT' }, ...tl(60, 'punch-failed') } }],
      totals: [
        { ms: 2000, data: { id: 4, sessionId: 's4', ...tl(70, 'start') } },
        { ms: 1900, data: { id: 2, sessionId: 's2', ...tl(80, 'start') } },
      ],
    },
  ];
  const r = sampleTimelines({
    outcomes,
    sessionIds,
    aDetailed: new Map([['s0', first]]),
    bDetailed: new Map(),
    aTail,
    bTails,
    first: 4,
    bOnly: 3,
  });
  assert.deepEqual(
    r.map((t) => t.label),
    [
      'first #1 (100 ms)',
      'slowest #2 (900 ms)',
      'slowest #3 (800 ms, A only)',
      'slowest on B #5 (B 2000 ms, A 120 ms, B only)',
      'failed #4 (PUNCH_CONNECT_TIMEOUT (B), B)',
      'failed on A 1/2 (PUNCH_CONNECT_TIMEOUT, A only)',
      'failed on A 2/2 (PUNCH_CONNECT_TIMEOUT, A only)',
    ],
  );
  assert.equal(new Set(r.map((t) => t.label)).size, r.length, 'every label names one series');
  // The joined session has both sides on one clock, in time order; B's whole session #3 was already shown.
  const joined = r[1]!;
  assert.deepEqual(
    joined.events.map((e) => `${e.who} ${e.event}`),
    ['B2 endpoints-sent', 'B2 engine:syn', 'A request', 'A engine:syn', 'A established'],
  );
  assert.equal(joined.b, 'B2');
  assert.equal(r[5]!.b, 'unknown B');
});
