/** `onionpunch overlay selftest --i2p` end to end: its own private i2pd network, JSON contract, no leftovers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { needsRoot } from '../helpers/root.js';

test(
  'overlay selftest --i2p --json: ok, bring-up and first-connect times, nothing left behind',
  { ...needsRoot('network namespaces and i2pd'), timeout: 240_000 },
  async () => {
    const child = spawn(process.execPath, ['bin/onionpunch.js', 'overlay', 'selftest', '--i2p', '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    const res = JSON.parse(out) as {
      i2p: {
        ok: boolean;
        bringUpMs: number;
        firstConnectMs: number;
        sessionsMs: number;
        networkUpMs: number;
        endpoint: string;
        handshake: string;
      };
    };
    console.log(`# i2p selftest: ${JSON.stringify(res.i2p)}`);
    assert.equal(code, 0);
    assert.equal(res.i2p.ok, true);
    assert.ok(res.i2p.bringUpMs > 0 && res.i2p.bringUpMs < 120_000);
    assert.ok(res.i2p.firstConnectMs >= 0 && res.i2p.firstConnectMs < 60_000);
    assert.ok(res.i2p.networkUpMs < res.i2p.bringUpMs);
    assert.equal(res.i2p.handshake, 'version/verack');
    assert.match(res.i2p.endpoint, /^[a-z2-7]{52}\.b32\.i2p$/);
    // The selftest's namespace (named op<its pid % 10000><4 hex>-i2p) and its i2pd routers are gone. Other
    // worktrees may run their own networks at the same time: only look for ours (leaked routers would have been
    // re-parented to init when the selftest process exited).
    const ours = new RegExp(`^op${child.pid! % 10000}[0-9a-f]{4}-i2p\\b`, 'm');
    assert.doesNotMatch(await run('ip', ['netns', 'list']), ours);
    const orphans = (await run('ps', ['-eo', 'ppid=,args=']))
      .split('\n')
      .filter((l) => /^\s*1\s+i2pd .*onionpunch-i2p-/.test(l));
    assert.deepEqual(orphans, []);
  },
);

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${c}`))));
  });
}
