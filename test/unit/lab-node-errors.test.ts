/**
 * A lab node's failures are LabNodeErrors with stable codes (src/lab/nodes/bcoin.ts): a worker's `fatal` line
 * is LAB_NODE_FAILED with the worker's own code kept as `workerCode`, a worker that dies before `ready` is
 * LAB_NODE_EXITED. The real bcoin worker is started on a P2P port already taken; a stand-in worker (through the
 * spawner option the lab uses for namespaces) covers a fatal line without a code and an early exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { BcoinProcess, type Spawner } from '../../src/lab/nodes/bcoin.js';
import { LabError, LabNodeError } from '../../src/lab/index.js';
import { freePort } from '../../src/lab/tor/private-tor-process.js';
import { bcoinSkip } from '../helpers/bcoin-node.js';

const cfg = { host: '127.0.0.1', port: 1, rpcHost: '127.0.0.1', rpcPort: 1, apiKey: 'k' };

/** A worker stand-in that runs `script` instead of bcoin-worker.js. */
const standIn =
  (script: string): Spawner =>
  () =>
    spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });

async function startFails(p: Promise<unknown>): Promise<LabNodeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof LabNodeError, `a LabNodeError, got ${String(err)}`);
    assert.ok(err instanceof LabError);
    return err;
  }
  assert.fail('start should have failed');
}

test('a fatal line without a code is LAB_NODE_FAILED, no workerCode', async () => {
  const fatal = `console.log(JSON.stringify({ type: 'fatal', at: 0, message: 'boom' }))`;
  const err = await startFails(BcoinProcess.start('X', cfg, { spawner: standIn(fatal), timeoutMs: 10_000 }));
  assert.equal(err.code, 'LAB_NODE_FAILED');
  assert.equal(err.workerCode, undefined);
});

test('a worker that exits before ready is LAB_NODE_EXITED', async () => {
  const err = await startFails(
    BcoinProcess.start('X', cfg, { spawner: standIn('process.exit(3)'), timeoutMs: 10_000 }),
  );
  assert.equal(err.code, 'LAB_NODE_EXITED');
});

test(
  'the real bcoin worker on a taken P2P port: LAB_NODE_FAILED carrying its EADDRINUSE',
  { skip: bcoinSkip, timeout: 60_000 },
  async (t) => {
    const taken = createServer().listen(await freePort(), '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => taken.close());
    const port = (taken.address() as { port: number }).port;
    const err = await startFails(
      BcoinProcess.start('X', { ...cfg, port, rpcPort: await freePort() }, { timeoutMs: 30_000 }),
    );
    assert.equal(err.code, 'LAB_NODE_FAILED');
    assert.equal(err.workerCode, 'EADDRINUSE');
  },
);
