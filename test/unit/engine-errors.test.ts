/** The session classifies engine failures by class and ENGINE_* code only (src/punch/engine-errors.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyEngineError } from '../../src/punch/engine-errors.js';
import { EngineError, NativeError } from '../../src/punch/engine-port.js';

test('engine codes map to opresult statuses and session codes', () => {
  const reset = new NativeError('ECONNRESET', 104, 'connect');
  const unreach = new NativeError('EHOSTUNREACH', 113, 'connect');
  const cases: [unknown, string, string][] = [
    [new EngineError('ENGINE_ABORTED', 'x'), 'aborted', 'PUNCH_ABORTED'],
    [new EngineError('ENGINE_REFUSED', 'x'), 'refused', 'PUNCH_REFUSED'],
    [new EngineError('ENGINE_UNREACHABLE', 'x', [], { cause: reset }), 'refused', 'PUNCH_REFUSED'],
    [new EngineError('ENGINE_UNREACHABLE', 'x', [], { cause: unreach }), 'error', 'PUNCH_ENGINE'],
    [new EngineError('ENGINE_TIMEOUT', 'x'), 'timeout', 'PUNCH_CONNECT_TIMEOUT'],
    [new EngineError('ENGINE_STOPPED', 'x'), 'error', 'PUNCH_ENGINE'],
    [new EngineError('ENGINE_BIND', 'x'), 'error', 'PUNCH_ENGINE'],
    [new DOMException('stop', 'AbortError'), 'aborted', 'PUNCH_ABORTED'],
  ];
  for (const [err, status, code] of cases) {
    const r = classifyEngineError(err, 'B');
    assert.equal(r.status, status, String(err));
    assert.equal(r.error.code, code, String(err));
    assert.equal(r.error.cause, err);
  }
});

test('message words decide nothing: "refused", "timed out", "abort" in a plain Error are engine failures', () => {
  for (const msg of ['connection refused', 'reset by peer', 'timed out', 'deadline', 'ABORTED']) {
    const r = classifyEngineError(Object.assign(new Error(msg), { code: msg.toUpperCase() }), 'A');
    assert.equal(r.status, 'error', msg);
    assert.equal(r.error.code, 'PUNCH_ENGINE', msg);
  }
  // An EngineError's timeline is the session error's engine timeline.
  const tl = [{ kind: 'syn' as const, actualNs: 1n }];
  assert.equal(classifyEngineError(new EngineError('ENGINE_TIMEOUT', 'x', tl), 'A').error.engineTimeline, tl);
});
