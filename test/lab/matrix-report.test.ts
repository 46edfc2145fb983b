/**
 * `onionpunch lab matrix --runs 5 --json --report FILE` as root, for one pair (eim×eim drop, 50 ms RTT, 2% loss,
 * the private Tor network): five consecutive punches from the same B are not refused by A's per-target-IP
 * budget, the JSON carries ratio = median ÷ (1.5 × overlay RTT + 2 × direct RTT) and p90OverMedian, stderr
 * (not a terminal here) has plain progress lines only, and the HTML report is written with the run's data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needsRoot } from '../helpers/root.js';
import type { MatrixRun } from '../../src/lab/report/matrix.js';

const RUNS = 5;

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/onionpunch.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test(
  `lab matrix --runs ${RUNS} --json --report: ratios, plain progress, the report`,
  {
    ...needsRoot('network namespaces, nftables, tor'),
    timeout: 300_000,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onionpunch-matrix-'));
    try {
      const html = join(dir, 'report.html');
      const r = await run([
        'lab',
        'matrix',
        '--pair',
        'eim×eim (drop)',
        '--runs',
        String(RUNS),
        '--no-install',
        '--json',
        '--report',
        html,
      ]);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as MatrixRun;
      assert.equal(out.delayMs, 12.5);
      assert.equal(out.lossPct, 2);
      const p = out.pairs[0]!;
      assert.equal(p.pair, 'eim×eim (drop)');
      assert.equal(p.attempts.length, RUNS);
      // The uncounted warm-up came first: 3 connected (or up to 5 tried), each told on its own line.
      assert.ok(p.warmup && p.warmup.tries >= 3 && p.warmup.tries <= 5, `warm-up: ${JSON.stringify(p.warmup)}`);
      assert.ok(p.warmup.ok === 3 || p.warmup.tries === 5, `warm-up: ${JSON.stringify(p.warmup)}`);
      assert.match(r.stderr, /^eim×eim \(drop\) warm-up #1 \(not counted\): /m);
      // The rig's A used to refuse the fifth punch from the same B (per-target-IP burst 4).
      const codes = p.attempts.filter((a) => !a.ok).map((a) => a.code);
      assert.ok(
        !codes.includes('PUNCH_RATE_LIMITED'),
        `attempts refused by a rate limit: ${JSON.stringify(p.failures)}`,
      );
      // A Tor hiccup (descriptor not yet fetchable) may cost an attempt; most must connect.
      assert.ok(p.ok >= RUNS - 1, `${p.ok}/${RUNS} connected: ${JSON.stringify(p.failures)}`);
      assert.ok(p.medianMs! > 0 && p.boundMs! > 0);
      assert.equal(p.boundMs, Math.round((1.5 * p.medianOverlayRttMs! + 2 * p.medianDirectRttMs!) * 10) / 10);
      assert.equal(p.ratio, Math.round((p.medianMs! / p.boundMs!) * 100) / 100);
      assert.equal(p.p90OverMedian, Math.round((p.p90Ms! / p.medianMs!) * 100) / 100);
      assert.ok(p.timelines.length >= 1 && p.resources.length >= 2 * (RUNS + 1) - 2);
      // stderr is a pipe: one plain line per attempt, no escape codes or carriage returns.
      assert.ok(!/[\x1b\r]/.test(r.stderr), 'no escape codes off a terminal');
      for (let i = 1; i <= RUNS; i++) {
        assert.match(r.stderr, new RegExp(`^lab matrix \\[${i}/${RUNS}\\] eim×eim \\(drop\\) #${i}: `, 'm'));
      }
      assert.match(r.stderr, new RegExp(`^report: ${html}$`, 'm'));
      assert.ok(statSync(html).size > 100_000);
      const page = readFileSync(html, 'utf8');
      assert.ok(page.includes('eim×eim (drop)') && page.includes('data-lib="vega-lite"'));
      assert.equal(r.code, p.ok === RUNS ? 0 : 1, 'exit 0 iff every attempt of a pair that should connect did');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
