/**
 * A process that started tor and ends without calling stop() — by exiting or by SIGTERM — leaves no tor and no
 * temp dir behind (src/lab/process-cleanup.ts, as private-tor-process.ts registers it; __OwningControllerProcess
 * is only the backstop for SIGKILL, and tor polls it every 15 s, so the 3 s checked here is the hook's doing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Writes a child script that starts an offline tor (DisableNetwork: it contacts nobody), prints its pid, then
 * either exits at once or idles until signalled. */
function childScript(dir: string, work: string, then: 'exit' | 'idle'): string {
  const mod = fileURLToPath(new URL('../../src/lab/tor/private-tor-process.js', import.meta.url));
  const script = join(dir, 'child.mjs');
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
      ${then === 'exit' ? 'process.exit(0);' : 'setInterval(() => {}, 1000);'}
    `,
  );
  return script;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

for (const end of ['exit', 'SIGTERM'] as const) {
  test(
    `tor started by a process is killed and its temp dir removed when that process ends (${end})`,
    { timeout: 30_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'op-torclean-'));
      const work = join(dir, 'work');
      const child = spawn(process.execPath, [childScript(dir, work, end === 'exit' ? 'exit' : 'idle')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let pid = 0;
      try {
        let out = '';
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const nl = out.indexOf('\n');
          if (nl > 0 && pid === 0) {
            pid = Number(out.slice(0, nl));
            if (end === 'SIGTERM') child.kill('SIGTERM');
          }
        });
        const status = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
        assert.ok(pid > 0, `no tor pid from the child (status ${status}): ${err}`);
        assert.equal(status, end === 'exit' ? 0 : 143, err);
        const until = Date.now() + 3000;
        while (alive(pid) && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
        assert.equal(alive(pid), false, `tor ${pid} survived its parent`);
        assert.equal(existsSync(work), false, 'temp dir left behind');
      } finally {
        child.kill('SIGKILL');
        if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
