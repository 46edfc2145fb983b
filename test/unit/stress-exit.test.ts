/**
 * `lab stress` exit status: a leak fails the run — descriptors, threads, engine sockets, and A's live heap after a
 * GC grown beyond its bound (the memory check that can fail, not only a reported RSS figure).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitCode } from '../../src/daemon/commands/lab-stress.js';

const clean = {
  failures: {},
  faults: [],
  successRate: 1,
  leaks: { fds: 0, threads: 0, engineSockets: 0, aRssKb: 40_000, aHeapKb: 1200, aHeapBoundKb: 4096, aHeapOk: true },
};

test('lab stress exit: clean run (RSS growth alone does not fail it) → 0', () => {
  assert.equal(exitCode(clean), 0);
});

test('lab stress exit: A heap grown beyond its bound → 1', () => {
  assert.equal(exitCode({ ...clean, leaks: { ...clean.leaks, aHeapKb: 9000, aHeapOk: false } }), 1);
});

test('lab stress exit: a descriptor left → 1; below 99% without faults → 1', () => {
  assert.equal(exitCode({ ...clean, leaks: { ...clean.leaks, fds: 1 } }), 1);
  assert.equal(exitCode({ ...clean, successRate: 0.98 }), 1);
});
