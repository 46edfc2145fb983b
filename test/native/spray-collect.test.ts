// One connection for both sides of a spray (docs/ENGINE.md "Spray: one connection for both sides"). A spray of
// N·M ≈ 4 × range usually establishes several connections; when each side kept the first one IT saw, the two
// could keep different ones and both died. Here, in a namespace of its own (root), loopback is made to behave
// like that: refusals are dropped (so every probe meets its hard socket and one spray establishes several
// connections) and the first handshake ACK toward the easy port of each spray is dropped (so the hard side's
// first connection is not the easy side's first). The control, both sides first-wins (the engine before), ends
// on different connections in about half the sprays; the leader/follower rule must end on the same one in all,
// with a byte going through, and no descriptor left behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/addon.js';
import { needsRoot } from '../helpers/root.js';

const NFT = `table inet t {
  set seen { type inet_service; flags timeout; timeout 300ms; }
  chain o {
    type filter hook output priority 0;
    tcp flags & (rst|ack) == (rst|ack) tcp sequence 0 drop
    tcp dport 45000 tcp flags == ack tcp dport @seen accept
    tcp dport 45000 tcp flags == ack add @seen { tcp dport } drop
  }
}`;

interface Summary {
  runs: number;
  connected: number;
  multi: number;
  same: number;
  talk: number;
  fdsBefore: number;
  fdsAfter: number;
  sockets: number;
  plans: number;
}

describe(
  'spray: both sides keep the same connection',
  { ...needsRoot('a network namespace'), timeout: 120_000 },
  () => {
    const ns = `op-spraycollect-${process.pid}`;
    const fixture = join(packageRoot(), 'dist', 'test', 'native', 'fixtures', 'spray-collect.js');
    const inNs = (mode: string, runs: number): Summary => {
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, fixture, mode, String(runs)], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, `fixture failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as Summary;
    };

    before(() => {
      execFileSync('ip', ['netns', 'add', ns]);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=40000 40003']);
      execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: NFT });
    });
    after(() => {
      spawnSync('ip', ['netns', 'del', ns]);
    });

    test('control: first-wins on both sides ends on different connections (the bug this fixes)', (t) => {
      const s = inNs('first-wins', 10);
      t.diagnostic(`first-wins: ${JSON.stringify(s)}`);
      // Not asserted beyond sanity: it documents the scenario (measured: about half the sprays disagree).
      assert.equal(s.connected, s.runs);
    });

    test('leader/follower: 10 sprays, each with several connections, all end on one and the same', (t) => {
      const s = inNs('spray', 10);
      t.diagnostic(`spray: ${JSON.stringify(s)}`);
      assert.equal(s.connected, 10, 'every spray connected on both sides');
      assert.ok(s.multi >= 5, `the hard side saw >= 2 connections establish in most sprays (${s.multi}/10)`);
      assert.equal(s.same, 10, 'the hard side kept the connection the easy side kept');
      assert.equal(s.talk, 10, 'a byte written on the easy side arrived on the hard side');
      assert.equal(s.sockets, 0, 'no attempt socket left in the engine');
      assert.equal(s.plans, 0);
      assert.ok(s.fdsAfter <= s.fdsBefore, `fds ${s.fdsBefore} -> ${s.fdsAfter}`);
    });

    // B hard in a session: B leads, so the hard side leads and the easy side follows.
    test('hard side leading: 10 sprays end on one connection, the follower reads the first byte', (t) => {
      const s = inNs('hard-leads', 10);
      t.diagnostic(`hard-leads: ${JSON.stringify(s)}`);
      assert.equal(s.connected, 10, 'every spray connected on both sides');
      assert.ok(s.multi >= 5, `the easy side saw >= 2 connections establish in most sprays (${s.multi}/10)`);
      assert.equal(s.same, 10, 'the easy side kept the connection the hard side kept');
      assert.equal(s.talk, 10, "the hard side's first byte arrived on the easy side's winner");
      assert.equal(s.sockets, 0, 'no attempt socket left in the engine');
      assert.ok(s.fdsAfter <= s.fdsBefore, `fds ${s.fdsBefore} -> ${s.fdsAfter}`);
    });

    test('100 sprays in a row leave no descriptor behind', () => {
      const s = inNs('spray-fast', 100);
      assert.equal(s.connected, 100);
      assert.equal(s.same, 100);
      assert.equal(s.sockets, 0);
      assert.ok(s.fdsAfter <= s.fdsBefore, `fds ${s.fdsBefore} -> ${s.fdsAfter}`);
    });
  },
);
