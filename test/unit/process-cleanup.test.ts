// The lab's one process-end cleanup (src/lab/process-cleanup.ts), run in child processes: 'exit' runs the sync
// steps newest first and past a throwing one; a signal runs the async steps, then exits 128 + n; an unregistered
// step does not run; a second signal does not wait for a hung async step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const mod = fileURLToPath(new URL('../../src/lab/process-cleanup.js', import.meta.url));

function script(body: string): string[] {
  return ['--input-type=module', '-e', `import { atProcessEnd } from ${JSON.stringify(mod)};\n${body}`];
}

/** Runs `body` in a child that prints 'ready' and idles; `onReady` signals it. Resolves its exit code and stdout. */
async function idleChild(body: string, onReady: (kill: (sig: NodeJS.Signals) => void) => void) {
  const child = spawn(process.execPath, script(`${body}\nconsole.log('ready');\nsetInterval(() => {}, 1000);`), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let ready = false;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!ready && out.startsWith('ready\n')) {
      ready = true;
      onReady((sig) => child.kill(sig));
    }
  });
  const status = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  return { status, lines: out.trim().split('\n') };
}

test("'exit' runs every sync step, newest first, past one that throws; an unregistered one does not run", () => {
  const r = spawnSync(
    process.execPath,
    script(`
      atProcessEnd({ name: 'first', sync: () => console.log('sync first') });
      atProcessEnd({ name: 'thrower', sync: () => { throw new Error('boom'); } });
      const off = atProcessEnd({ name: 'gone', sync: () => console.log('sync gone') });
      const last = async () => console.log('async last');
      atProcessEnd({ name: 'last', sync: () => console.log('sync last'), async: last });
      off();
      process.exitCode = 3;
    `),
    { encoding: 'utf8', timeout: 20_000 },
  );
  assert.equal(r.status, 3, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['sync last', 'sync first']);
  assert.match(r.stderr, /cleanup of thrower at exit failed: boom/);
});

for (const [sig, code] of [
  ['SIGTERM', 143],
  ['SIGINT', 130],
  ['SIGHUP', 129],
] as const) {
  test(`${sig}: the async steps run (sync where there is none), then exit ${code}`, async () => {
    const r = await idleChild(
      `
        atProcessEnd({ name: 'plain', sync: () => console.log('sync plain') });
        atProcessEnd({
          name: 'gentle',
          sync: () => console.log('sync gentle'),
          async: () => new Promise((r) => setTimeout(() => { console.log('async gentle'); r(); }, 100)),
        });
      `,
      (kill) => kill(sig),
    );
    assert.equal(r.status, code);
    // 'sync plain' is the stand-in run at the signal, then again at 'exit'; 'sync gentle' runs only at 'exit'.
    assert.deepEqual(r.lines, ['ready', 'sync plain', 'async gentle', 'sync gentle', 'sync plain']);
  });
}

test('a second signal exits at once, without waiting for a hung async step', async () => {
  const t0 = Date.now();
  const r = await idleChild(
    "atProcessEnd({ name: 'hung', sync: () => console.log('sync hung'), async: () => new Promise(() => {}) });",
    (kill) => {
      kill('SIGTERM');
      setTimeout(() => kill('SIGINT'), 300);
    },
  );
  assert.equal(r.status, 130);
  assert.ok(Date.now() - t0 < 10_000, 'exited long before the 15 s async deadline');
  assert.deepEqual(r.lines, ['ready', 'sync hung']);
});
