/**
 * A process that started tor and exits without calling stop() leaves no tor and no temp dir behind
 * (the exit hook of src/lab/tor/private-tor-process.ts; __OwningControllerProcess is the backstop for SIGKILL).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

test(
  'tor started by a process is killed and its temp dir removed when that process exits',
  { timeout: 30_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'op-torclean-'));
    try {
      const mod = fileURLToPath(new URL('../../src/lab/tor/private-tor-process.js', import.meta.url));
      const script = join(dir, 'child.mjs');
      const work = join(dir, 'work');
      writeFileSync(
        script,
        `
      import { TorProcess, registerDir, freePort, pollUntil, readText } from ${JSON.stringify(mod)};
      import { mkdirSync, writeFileSync } from 'node:fs';
      mkdirSync(${JSON.stringify(work)}, { recursive: true });
      registerDir(${JSON.stringify(work)});
      const port = await freePort();
      const torrc = ${JSON.stringify(join(work, 'torrc'))};
      const logFile = ${JSON.stringify(join(work, 'notice.log'))};
      writeFileSync(torrc, ['DataDirectory ${work}/data', 'DisableNetwork 1', 'SocksPort 0', 'ControlPort 127.0.0.1:' + port,
        'GeoIPFile ""', 'GeoIPv6File ""', 'Log notice file ' + logFile, '__OwningControllerProcess ' + process.pid].join('\\n'));
      const p = new TorProcess('child', torrc, logFile);
      await pollUntil('control listener', async () => (await readText(logFile)).includes('Opened Control listener'), [p], 20000);
      console.log(p.child.pid);
      process.exit(0);
    `,
      );
      const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 25_000 });
      assert.equal(r.status, 0, r.stderr);
      const pid = Number(r.stdout.trim());
      assert.ok(pid > 0);
      const alive = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const end = Date.now() + 3000;
      while (alive() && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
      assert.equal(alive(), false, `tor ${pid} survived its parent`);
      assert.equal(existsSync(work), false, 'temp dir left behind');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
