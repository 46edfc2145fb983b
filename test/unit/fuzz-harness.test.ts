/**
 * The fuzz harness finds what it is meant to find: a crash behind a 4-byte magic checked byte by byte (about
 * 1 in 2^32 for blind random inputs, so only coverage feedback gets there within the time), and an endless
 * loop, which the watchdog reports as a hang with its input. Runs `dist/test/fuzz/run.js` as `npm run fuzz`
 * does, with the planted targets of test/fuzz/selftest/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fuzzDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fuzz');

test(
  'coverage guidance finds a planted 4-byte-magic crash; the watchdog reports a planted hang',
  { timeout: 200_000 },
  () => {
    const findings = mkdtempSync(join(tmpdir(), 'fuzz-selftest-'));
    try {
      const r = spawnSync(
        process.execPath,
        [
          join(fuzzDir, 'run.js'),
          '--targets-module',
          join(fuzzDir, 'selftest', 'targets.js'),
          '--target',
          'planted-crash',
          '--target',
          'planted-hang',
          '--seconds',
          '90',
          '--stop-on-finding',
          '--hang-ms',
          '2000',
          '--seed',
          '7',
          '--findings',
          findings,
          '--json',
        ],
        { encoding: 'utf8', timeout: 190_000 },
      );
      assert.equal(r.status, 1, `exit code 1 on findings (stderr: ${r.stderr})`);
      const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        reports: Array<{ target: string; findings: Array<{ kind: string; message: string }> }>;
      };
      const crash = summary.reports.find((x) => x.target === 'planted-crash')!;
      assert.ok(
        crash.findings.some((f) => f.kind === 'crash' && /planted crash reached/.test(f.message)),
        JSON.stringify(crash),
      );
      const files = readdirSync(join(findings, 'planted-crash')).filter((f) => !f.endsWith('.txt'));
      assert.ok(
        files.some(
          (f) =>
            readFileSync(join(findings, 'planted-crash', f))
              .subarray(0, 4)
              .toString('latin1') === 'FUZ!',
        ),
      );
      const hang = summary.reports.find((x) => x.target === 'planted-hang')!;
      assert.equal(hang.findings[0]?.kind, 'hang');
      const hangInput = readdirSync(join(findings, 'planted-hang')).find((f) => !f.endsWith('.txt'))!;
      assert.equal(readFileSync(join(findings, 'planted-hang', hangInput))[0], 0xa5);
    } finally {
      rmSync(findings, { recursive: true, force: true });
    }
  },
);
