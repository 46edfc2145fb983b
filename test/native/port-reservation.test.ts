// A punch port is held from its choice to the plan's bind (docs/ENGINE.md "Local ports"). In a namespace of its
// own (root) with ONE ephemeral port, another connection of the host connects between the choice and the bind:
// with the port only probed (bind + close, the code before) that connection takes the port and the plan's bind
// fails EADDRINUSE (the `bind-error ... after 0 attempt(s)` seen in `lab stress`); with the port reserved the
// other connection finds no ephemeral port and the punch goes through from the port the peer was told.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/addon.js';
import { needsRoot } from '../helpers/root.js';

interface Result {
  mode: string;
  port: number;
  other: string;
  punch: string;
  ports?: number[];
  fdsBefore: number;
  fdsAfter: number;
}

describe('punch port reservation', { ...needsRoot('a network namespace'), timeout: 60_000 }, () => {
  const fixture = join(packageRoot(), 'dist', 'test', 'native', 'fixtures', 'port-reservation.js');
  const made: string[] = [];
  // One namespace per mode: the first run's closed connection stays in TIME_WAIT on the only ephemeral port,
  // and an automatic bind in the second run would find no port at all.
  const inFreshNs = (mode: 'probe' | 'reserve' | 'timewait', range = '40000 40000'): Result => {
    const ns = `op-portres-${mode}-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    made.push(ns);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.ip_local_port_range=${range}`]);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, fixture, mode], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 0, `fixture failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
  };
  afterEach(() => {
    for (const ns of made.splice(0)) spawnSync('ip', ['netns', 'del', ns]);
  });

  test('control: a probed port is taken by another connection and the punch cannot bind (the bug)', (t) => {
    const r = inFreshNs('probe');
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.other, `connected from ${r.port}`, 'the other connection took the probed port');
    assert.equal(r.punch, 'ENGINE_BIND EADDRINUSE');
  });

  test('a reserved port stays the punch port: the other connection gets none, the punch connects', (t) => {
    const r = inFreshNs('reserve');
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.other, 'EADDRNOTAVAIL', 'connect() skipped the held port');
    assert.equal(r.punch, `established from ${r.port}`);
    assert.ok(r.fdsAfter <= r.fdsBefore, `fds ${r.fdsBefore} -> ${r.fdsAfter}: the reservation was closed`);
  });

  test('a reservation never takes a port in TIME_WAIT (the punch from it could collide)', (t) => {
    const r = inFreshNs('timewait', '40000 40001');
    t.diagnostic(JSON.stringify(r));
    assert.deepEqual(r.ports, Array(10).fill(40001));
  });
});
