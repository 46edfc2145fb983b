/**
 * The main job as a user runs it: `onionpunch demo --json` (as root) builds the lab and the private overlay,
 * punches, runs the Bitcoin handshake, tears down, and ends with the JSON contract line. Tor and I2P.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { needsRoot } from '../helpers/root.js';
import { listNamespaces } from '../../src/lab/index.js';

const BIN = join(process.cwd(), 'bin', 'onionpunch.js');

function runDemo(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, 'demo', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGINT'), timeoutMs);
    c.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, pid: c.pid ?? -1 });
    });
  });
}

for (const overlay of ['tor', 'i2p'] as const) {
  test(
    `onionpunch demo --json --overlay ${overlay}: ok, timeline, contract line, nothing left behind`,
    { ...needsRoot('network namespaces, nftables, tor/i2pd'), timeout: 240_000 },
    async () => {
      const r = await runDemo(['--overlay', overlay, '--loss', '2'], 200_000);
      const last = r.stdout.trim().split('\n').pop() ?? '';
      const j = JSON.parse(last) as {
        ok: boolean;
        timeToConnectMs: number;
        natA: string;
        natB: string;
        overlay: string;
      };
      assert.equal(j.ok, true, `demo failed: ${r.stdout.slice(-3000)} ${r.stderr.slice(-1000)}`);
      assert.equal(r.code, 0);
      assert.equal(j.overlay, overlay);
      assert.equal(j.natA, 'eim');
      assert.equal(j.natB, 'eim');
      assert.ok(j.timeToConnectMs > 0 && j.timeToConnectMs < 5000, `timeToConnectMs ${j.timeToConnectMs}`);
      for (const ev of ['request', 'engine:syn', 'established', 'verified', 'bitcoin-handshake'])
        assert.match(r.stdout, new RegExp(`\\b${ev}\\b`), `timeline shows ${ev}`);
      // The demo's lab namespaces carry its pid (prefix `opl<pid % 10000><3 chars>-`); other labs may be running.
      const mine = new RegExp(`^opl${r.pid % 10000}[a-z0-9]{3}-`);
      const leftover = (await listNamespaces()).filter((n) => mine.test(n));
      assert.deepEqual(leftover, [], 'the demo removed its namespaces');
    },
  );
}

// Both sides hard (the lab's workers allow hard-NAT punching): refused before any SYN, naming both sides.
test(
  'onionpunch demo: edm on both sides is refused fast, PUNCH_NAT_BOTH_HARD naming both, exit code 1',
  { ...needsRoot('network namespaces, nftables, tor'), timeout: 240_000 },
  async () => {
    const r = await runDemo(['--nat-a', 'edm', '--nat-b', 'edm'], 200_000);
    const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
      ok: boolean;
      totalMs?: number;
      error?: { code: string; message: string };
    };
    assert.equal(j.ok, false);
    assert.equal(r.code, 1);
    assert.equal(j.error?.code, 'PUNCH_NAT_BOTH_HARD');
    assert.match(j.error!.message, /A's NAT is endpoint-dependent.*B's is too/);
    // B's whole punch(), the Tor dial included: the refusal itself is one overlay round trip.
    assert.ok(j.totalMs !== undefined && j.totalMs <= 2000, `refused after ${j.totalMs} ms`);
  },
);
