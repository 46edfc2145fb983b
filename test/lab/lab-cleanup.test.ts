// Nothing is left behind: lab up+down time for two sites, a SIGKILLed owner (delay lines die with it, the
// reaper `lab down --all` removes the rest), a SIGTERMed owner and an owner dying of an uncaught exception
// (both clean up themselves), and the CLI's detached lab (up, exec, status, down).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Lab, listNamespaces } from '../../src/lab/topology/lab.js';
import { stateFile } from '../../src/lab/topology/state.js';
import { needsRoot } from '../helpers/root.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cli = join(root, 'bin', 'onionpunch.js');

function alive(pid: number): boolean {
  try {
    // a zombie is dead for our purposes
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

interface ChildLab {
  child: ChildProcess;
  prefix: string;
  namespaces: string[];
  helperPids: number[];
  sleepPid: number;
}

/** Starts a node process that brings up a two-site lab (with delay lines) and a process inside it, then idles. */
async function childWithLab(mode: 'idle' | 'throw'): Promise<ChildLab> {
  const code = `
    const { Lab } = await import(${JSON.stringify(join(root, 'dist/src/lab/index.js'))});
    const lab = await Lab.up({ sites: [{ name: 'a', delayMs: 5 }, { name: 'b', jitterMs: 1 }] });
    const sleeper = lab.spawn('pub1', ['sleep', '120']);
    await new Promise((r) => sleeper.on('spawn', r));
    const st = JSON.parse((await import('node:fs')).readFileSync(${JSON.stringify(dirname(stateFile('x-')))} + '/' + lab.name + '.json', 'utf8'));
    console.log(JSON.stringify({ prefix: lab.prefix, namespaces: lab.namespaces, helperPids: st.helperPids, sleepPid: sleeper.pid }));
    ${mode === 'throw' ? "setTimeout(() => { throw new Error('test failure inside a lab owner'); }, 200);" : 'setInterval(() => {}, 1000);'}
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`child lab did not come up: ${err}`)), 20000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.on('exit', () => reject(new Error(`child exited early: ${err}`)));
  });
  child.removeAllListeners('exit');
  return { child, ...(JSON.parse(line) as Omit<ChildLab, 'child'>) };
}

async function labNamespacesLeft(prefix: string): Promise<string[]> {
  return (await listNamespaces()).filter((n) => n.startsWith(prefix));
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.on('exit', (code) => r(code)));
}

describe('lab cleanup', needsRoot('network namespaces'), () => {
  test('two-site lab (with delay lines) up + down in under 10 s', async (t) => {
    const t0 = performance.now();
    const lab = await Lab.up({
      sites: [
        { name: 'a', nat: 'eim' },
        { name: 'b', nat: 'edm', inbound: 'rst' },
      ],
      delayMs: 10,
      jitterMs: 1,
      lossPct: 1,
    });
    const up = performance.now() - t0;
    const t1 = performance.now();
    await lab.down();
    const down = performance.now() - t1;
    t.diagnostic(`up ${up.toFixed(0)} ms, down ${down.toFixed(0)} ms`);
    assert.ok(up + down < 10000, `up ${up} ms + down ${down} ms`);
    assert.deepEqual(await labNamespacesLeft(lab.prefix), []);
    assert.equal(existsSync(stateFile(lab.prefix)), false);
  });

  test('SIGKILLed owner: delay lines die with it, `lab down --all` removes the rest', async () => {
    const c = await childWithLab('idle');
    try {
      assert.equal((await labNamespacesLeft(c.prefix)).length, c.namespaces.length);
      assert.equal(c.helperPids.length, 2);
      assert.ok(c.helperPids.every(alive));
      c.child.kill('SIGKILL');
      await exited(c.child);
      assert.ok(await waitFor(() => c.helperPids.every((p) => !alive(p)), 3000), 'delay lines exit with their owner');
      // the namespaces are still there until the reaper runs
      assert.equal((await labNamespacesLeft(c.prefix)).length, c.namespaces.length);
      const r = spawnSync(process.execPath, [cli, 'lab', 'down', '--all', '--json'], {
        encoding: 'utf8',
        timeout: 60000,
      });
      assert.equal(r.status, 0, r.stderr);
      const res = JSON.parse(r.stdout) as { removedLabs: string[] };
      assert.ok(res.removedLabs.includes(c.prefix.replace(/-$/, '')), r.stdout);
      assert.deepEqual(await labNamespacesLeft(c.prefix), []);
      assert.equal(existsSync(stateFile(c.prefix)), false);
      assert.equal(alive(c.sleepPid), false, 'processes inside the lab are killed');
    } finally {
      c.child.kill('SIGKILL');
      spawnSync(process.execPath, [cli, 'lab', 'down', c.prefix.replace(/-$/, '')], { timeout: 30000 });
    }
  });

  test('SIGTERMed owner removes its lab itself', async () => {
    const c = await childWithLab('idle');
    try {
      c.child.kill('SIGTERM');
      const code = await exited(c.child);
      assert.equal(code, 143);
      assert.deepEqual(await labNamespacesLeft(c.prefix), []);
      assert.equal(existsSync(stateFile(c.prefix)), false);
      assert.ok(c.helperPids.every((p) => !alive(p)));
      assert.equal(alive(c.sleepPid), false);
    } finally {
      c.child.kill('SIGKILL');
      spawnSync(process.execPath, [cli, 'lab', 'down', c.prefix.replace(/-$/, '')], { timeout: 30000 });
    }
  });

  test('owner dying of an uncaught exception (a failing test) removes its lab', async () => {
    const c = await childWithLab('throw');
    try {
      const code = await exited(c.child);
      assert.notEqual(code, 0);
      assert.deepEqual(await labNamespacesLeft(c.prefix), []);
      assert.equal(existsSync(stateFile(c.prefix)), false);
      assert.ok(await waitFor(() => c.helperPids.every((p) => !alive(p)), 2000));
    } finally {
      c.child.kill('SIGKILL');
      spawnSync(process.execPath, [cli, 'lab', 'down', c.prefix.replace(/-$/, '')], { timeout: 30000 });
    }
  });

  test('CLI: lab up (detached) / exec / status / down', async () => {
    const up = spawnSync(
      process.execPath,
      [cli, 'lab', 'up', '--nat-b', 'edm,rst', '--delay', '5ms', '--loss', '1%', '--json'],
      {
        encoding: 'utf8',
        timeout: 60000,
      },
    );
    assert.equal(up.status, 0, up.stderr);
    const d = JSON.parse(up.stdout) as {
      name: string;
      prefix: string;
      namespaces: string[];
      sites: Record<string, { nat: string; inbound: string; host: { ip: string } }>;
    };
    try {
      assert.equal(d.sites.b!.nat, 'edm');
      assert.equal(d.sites.b!.inbound, 'rst');
      assert.equal(
        (await labNamespacesLeft(d.prefix)).length,
        d.namespaces.length,
        'the lab stays up after `lab up` exits',
      );
      const ex = spawnSync(process.execPath, [cli, 'lab', 'exec', '--lab', d.name, 'a', '--', 'ip', '-br', 'addr'], {
        encoding: 'utf8',
        timeout: 20000,
      });
      assert.equal(ex.status, 0, ex.stderr);
      assert.match(ex.stdout, new RegExp(d.sites.a!.host.ip.replace(/\./g, '\\.')));
      const st = spawnSync(process.execPath, [cli, 'lab', 'status', '--json'], { encoding: 'utf8', timeout: 20000 });
      const labs = (
        JSON.parse(st.stdout) as { labs: Array<{ name: string; detached: boolean; namespacesPresent: number }> }
      ).labs;
      const mine = labs.find((l) => l.name === d.name);
      assert.ok(mine && mine.detached && mine.namespacesPresent === d.namespaces.length, st.stdout);
      const bad = spawnSync(process.execPath, [cli, 'lab', 'exec', '--lab', d.name, 'zz', '--', 'true'], {
        encoding: 'utf8',
        timeout: 20000,
      });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /LAB_UNKNOWN_NODE/);
    } finally {
      const down = spawnSync(process.execPath, [cli, 'lab', 'down', d.name], { encoding: 'utf8', timeout: 30000 });
      assert.equal(down.status, 0, down.stderr);
    }
    assert.deepEqual(await labNamespacesLeft(d.prefix), []);
    assert.equal(existsSync(stateFile(d.prefix)), false);
  });
});
