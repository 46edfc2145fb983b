import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/addon.js';

const hasCmake = spawnSync('cmake', ['--version']).status === 0;

test(
  'engine core under AddressSanitizer + UndefinedBehaviorSanitizer (cmake configure, build, ctest)',
  { skip: hasCmake ? false : 'cmake not installed (CI installs it)', timeout: 170_000 },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'onionpunch-san-'));
    try {
      const src = join(packageRoot(), 'native');
      const run = (cmd: string, args: string[], ms: number): string => {
        const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: ms });
        assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
        return r.stdout;
      };
      run('cmake', ['-S', src, '-B', dir, '-DONIONPUNCH_SANITIZE=ON', '-DCMAKE_BUILD_TYPE=Debug'], 60_000);
      run('cmake', ['--build', dir, '-j', '2'], 120_000);
      const out = run('ctest', ['--test-dir', dir, '--output-on-failure', '-V'], 100_000);
      assert.match(out, /all engine tests passed/);
      // It really was the sanitized build.
      const ldd = spawnSync('ldd', [join(dir, 'engine_test')], { encoding: 'utf8' }).stdout;
      assert.match(ldd, /libasan/);
      assert.match(ldd, /libubsan/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
