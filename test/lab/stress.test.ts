/**
 * `onionpunch lab stress` as root, over `direct` coordination (plain TCP to A's forwarded port: no private Tor
 * network, so the run is seconds): 100 sessions, 20 at once, from two B sites at 50 ms RTT and 1% loss connect,
 * the final JSON line carries the contract fields, and nothing leaks on A or B. Then `--fault b-kill`: a B
 * worker SIGKILLed mid-run; every session ends in a clear outcome, the ones in flight on it as
 * LAB_WORKER_EXITED, sessions after the fault connect (A recovered by itself), and no lab is left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needsRoot } from '../helpers/root.js';
import { readAllStates } from '../../src/lab/topology/state.js';
import { downByState } from '../../src/lab/topology/lab.js';
import type { stressSummary } from '../../src/lab/stress/stress.js';

type Summary = ReturnType<typeof stressSummary>;

/** Runs the CLI; afterwards removes any lab the child still owned (a crash or a timeout must not leak one). */
interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  leftover: number;
}

function run(args: string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/onionpunch.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      void (async () => {
        const left = readAllStates().filter((x) => x.ownerPid === child.pid);
        for (const s of left) await downByState(s).catch(() => undefined);
        resolve({ code, stdout, stderr, leftover: left.length });
      })();
    });
  });
}

function lastJson(stdout: string): Summary {
  return JSON.parse(stdout.trim().split('\n').pop()!) as Summary;
}

test(
  'lab stress --overlay direct: 100 sessions × 20 at once connect, the JSON contract, no leaks',
  {
    ...needsRoot('network namespaces, nftables, conntrack'),
    timeout: 150_000,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onionpunch-stress-'));
    try {
      const html = join(dir, 'stress.html');
      const r = await run(
        [
          'lab',
          'stress',
          '--overlay',
          'direct',
          '--sites',
          '2',
          '--sessions',
          '100',
          '--concurrency',
          '20',
          '--no-install',
          '--json',
          '--report',
          html,
        ],
        140_000,
      );
      const s = lastJson(r.stdout);
      for (const k of ['sessions', 'connected', 'successRate', 'p50Ms', 'p90Ms', 'p99Ms', 'leaks'] as const) {
        assert.ok(k in s, `final JSON line has ${k}`);
      }
      assert.equal(s.sessions, 100);
      assert.equal(s.overlay, 'direct');
      // 1% loss per link: a session may lose its SYNs beyond the engine's grid and the kernel's retries (rare).
      assert.ok(s.connected >= 98, `${s.connected}/100 connected: ${JSON.stringify(s.failures)}`);
      assert.equal(s.successRate, s.connected / 100);
      assert.ok(s.p50Ms! > 0 && s.p50Ms! <= s.p90Ms! && s.p90Ms! <= s.p99Ms! && s.p99Ms! <= s.maxMs!);
      assert.deepEqual(
        { fds: s.leaks.fds, threads: s.leaks.threads, engineSockets: s.leaks.engineSockets },
        { fds: 0, threads: 0, engineSockets: 0 },
        `leaks: ${JSON.stringify(s.resources)}`,
      );
      assert.ok(s.syns.a >= s.connected && s.syns.b >= s.connected, `SYNs ${JSON.stringify(s.syns)}`);
      assert.ok(Number.isInteger(s.fireFallbacks) && s.fireFallbacks >= 0 && s.fireFallbacks <= s.connected);
      assert.ok(s.resources.before.some((x) => x.who === 'A') && s.resources.after.some((x) => x.who === 'B2'));
      assert.ok(s.conntrack.peak['a-router']! > s.conntrack.before['a-router']!, "A's router's conntrack rose");
      assert.equal(r.code, s.connected >= 99 ? 0 : 1);
      assert.equal(r.leftover, 0, 'the CLI took its lab down');
      // The report is the matrix's model: one group per B site.
      const page = readFileSync(html, 'utf8');
      assert.match(page, /onionpunch lab stress/);
      assert.match(page, /B2 → A/);
      // Sampled sessions: the first few and the tail the workers kept (slowest, joined across A and B).
      assert.match(page, /first #\d+/);
      assert.match(page, /slowest #\d+ \(\d+(\.\d+)? ms\)/, 'a slowest session with both sides');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'lab stress --fault b-kill: every session has an outcome, A recovers, nothing left behind',
  {
    ...needsRoot('network namespaces, nftables, conntrack'),
    timeout: 150_000,
  },
  async () => {
    const r = await run(
      [
        'lab',
        'stress',
        '--overlay',
        'direct',
        '--sites',
        '2',
        '--sessions',
        '80',
        '--concurrency',
        '16',
        '--fault',
        'b-kill',
        '--no-install',
        '--json',
      ],
      140_000,
    );
    const s = lastJson(r.stdout);
    assert.equal(s.faults.length, 1);
    const f = s.faults[0]!;
    assert.equal(f.fault, 'b-kill');
    assert.ok(f.touched > 0 && f.sessions.length === f.touched, JSON.stringify(f));
    // Each touched session ended as connected or a typed failure; none hung.
    for (const x of f.sessions) assert.match(x.outcome, /^(connected|[A-Z][A-Z0-9_]+( \((A|B)\))?)$/);
    // ... and a failure says what happened, not only its code.
    for (const x of f.sessions.filter((y) => y.outcome !== 'connected')) {
      assert.ok(typeof x.message === 'string' && x.message.length > 0, JSON.stringify(x));
    }
    assert.ok(!Object.keys(s.failures).some((k) => k.startsWith('LAB_SESSION_NO_OUTCOME')), JSON.stringify(s.failures));
    assert.ok(
      (f.outcomes['LAB_WORKER_EXITED (B)'] ?? 0) > 0,
      `in flight on the killed B: ${JSON.stringify(f.outcomes)}`,
    );
    // Sessions after the fault connect: A recovered by itself (B2 is back after 1 s).
    assert.ok(f.after.sessions > 0 && f.after.connected >= f.after.sessions - 1, JSON.stringify(f.after));
    assert.equal(s.leaks.fds, 0);
    assert.equal(s.leaks.threads, 0);
    assert.equal(s.leaks.engineSockets, 0);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.equal(r.leftover, 0, 'the CLI took its lab down');
  },
);
