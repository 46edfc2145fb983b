/**
 * The private I2P network itself: routers in caller-given namespaces (the NAT lab's way), cleanup of a
 * network whose owner was SIGKILLed, and LAB_NOT_ROOT for non-root callers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { needsRoot } from '../helpers/root.js';
import { startPrivateI2p } from '../../src/lab/i2p/private-i2p.js';
import { reapStalePrivateI2p } from '../../src/lab/i2p/private-i2p-reaper.js';

const nsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const i2pdPids = (needle: string) => {
  try {
    return execFileSync('pgrep', ['-f', needle], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};

test(
  'routers in caller-given namespaces: SAM answers inside the namespace; stop() leaves the namespace to its owner',
  { ...needsRoot('network namespaces and i2pd'), timeout: 90_000 },
  async () => {
    const ns = `opt${process.pid % 10000}${randomBytes(2).toString('hex')}-i2pt`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      for (let i = 1; i <= 4; i++) execFileSync('ip', ['-n', ns, 'addr', 'add', `198.18.3.${i}/32`, 'dev', 'lo']);
      const net = await startPrivateI2p({ routers: [1, 2, 3, 4].map((i) => ({ netns: ns, ip: `198.18.3.${i}` })) });
      const dir = net.datadirs[0]!;
      try {
        assert.notEqual(i2pdPids(dir), '');
        assert.equal(net.sam.length, 4);
        assert.deepEqual(net.ownNetns, []);
        for (const s of net.sam) assert.equal(s.netns, ns);
        // A SAM client inside the namespace: HELLO on router 2's bridge.
        const reply = execFileSync(
          'ip',
          [
            'netns',
            'exec',
            ns,
            'bash',
            '-c',
            `exec 3<>/dev/tcp/${net.sam[2]!.host}/${net.sam[2]!.port}; echo 'HELLO VERSION MIN=3.1 MAX=3.1' >&3; ` +
              `head -n1 <&3`,
          ],
          { encoding: 'utf8', timeout: 10_000 },
        );
        assert.match(reply, /^HELLO REPLY RESULT=OK VERSION=3\.1/);
        // The routers talk NTCP2 to each other on 198.18.3.x.
        const deadline = Date.now() + 30_000;
        let established = '';
        while (Date.now() < deadline) {
          established = execFileSync('ip', ['netns', 'exec', ns, 'ss', '-tnH', 'state', 'established'], {
            encoding: 'utf8',
          });
          if (/198\.18\.3\.\d+:1234\d\s/.test(established)) break;
          await new Promise((r) => setTimeout(r, 500));
        }
        assert.match(established, /198\.18\.3\.\d+:1234\d\s/, 'NTCP2 connections between the routers');
      } finally {
        await net.stop();
      }
      assert.ok(nsList().includes(ns), 'a namespace the caller gave is not removed');
      assert.equal(i2pdPids(dir), '', 'its routers are stopped');
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  },
);

test(
  'a network whose owner was SIGKILLed is removed by the next start',
  { ...needsRoot('network namespaces and i2pd'), timeout: 90_000 },
  async () => {
    const script = `
    import { startPrivateI2p } from '${process.cwd()}/dist/src/lab/i2p/private-i2p.js';
    const net = await startPrivateI2p({});
    console.log(JSON.stringify({ ns: net.ownNetns[0], dir: net.datadirs[0] }));
    setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const info = await new Promise<{ ns: string; dir: string }>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out) as { ns: string; dir: string });
      });
      child.on('exit', (c) => reject(new Error(`child exited ${c}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(nsList().includes(info.ns), 'the killed owner left its namespace');
    assert.notEqual(i2pdPids(info.dir), '', 'and its routers');
    // (A network started at this moment by another worktree's tests may reap it first: check the end state.)
    reapStalePrivateI2p();
    assert.ok(!nsList().includes(info.ns));
    assert.ok(!existsSync(info.dir));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(i2pdPids(info.dir), '');
  },
);

test(
  'non-root callers get LAB_NOT_ROOT',
  { ...needsRoot('to switch to an unprivileged user'), timeout: 30_000 },
  async () => {
    const script = `
    import { startPrivateI2p } from '${process.cwd()}/dist/src/lab/i2p/private-i2p.js';
    try { await startPrivateI2p({}); console.log('started'); } catch (e) { console.log(e.code + ' ' + e.name); }`;
    const out = execFileSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    assert.equal(out.trim(), 'LAB_NOT_ROOT PrivateI2pError');
  },
);
