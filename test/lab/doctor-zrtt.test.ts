/**
 * `onionpunch doctor serve --zerortt=1` from inside NATed lab hosts against two NAT-check servers (the
 * `natcheck-server` command on two public hosts): behind a port-preserving EIM NAT the warm port's predicted
 * endpoint is observed the same (ok), behind the hash-mapped EIM NAT it is observed (ok), behind an EDM NAT the
 * zero-round-trip path cannot work (`DOCTOR_ZRTT_NOT_EIM`), and an `externalip` the warm port does not map to
 * fails `DOCTOR_ZRTT_ADDRESS` naming the mapped address. Tor is not running (its line fails; not looked at here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { needsRoot } from '../helpers/root.js';
import { Lab } from '../../src/lab/index.js';
import type { CheckResult } from '../../src/daemon/doctor.js';

const BIN = join(process.cwd(), 'bin', 'onionpunch.js');

test(
  'doctor serve --zerortt=1 in the lab: eim and eim-shift pass, edm and a wrong externalip fail',
  { ...needsRoot('network namespaces, nftables'), timeout: 120_000 },
  async () => {
    const lab = await Lab.up({
      sites: [
        { name: 'a', nat: 'eim' },
        { name: 'b', nat: 'eim-shift' },
        { name: 'c', nat: 'edm' },
      ],
      publicHosts: 2,
    });
    try {
      for (const p of lab.publicHosts.slice(0, 2)) {
        const child = lab.spawn(p.key, [
          process.execPath,
          BIN,
          'natcheck-server',
          '--listen',
          `${p.ip}:8333`,
          '--network',
          'regtest',
          '--json',
        ]);
        child.stderr!.resume();
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('natcheck-server did not start')), 10_000);
          let out = '';
          child.stdout!.setEncoding('utf8').on('data', (d: string) => {
            out += d;
            if (out.includes('listening')) {
              clearTimeout(t);
              resolve();
            }
          });
          child.on('exit', (c) => {
            clearTimeout(t);
            reject(new Error(`natcheck-server exited ${c}`));
          });
        });
      }
      const [p1, p2] = lab.publicHosts;
      const doctor = async (site: string, ...extra: string[]): Promise<Record<string, CheckResult>> => {
        const args = ['doctor', 'serve', '--network', 'regtest', '--zerortt=1', '--json'];
        args.push('--natcheck', `${p1!.ip}:8333`, '--natcheck', `${p2!.ip}:8333`);
        // Nothing listens on port 9 in the site: tor's and the node's lines fail, fast.
        args.push('--torcontrol', '127.0.0.1:9', '--bitcoind', '127.0.0.1:9', ...extra);
        const r = await lab.exec(site, [process.execPath, BIN, ...args], { timeoutMs: 60_000 });
        const line = r.stdout.trim().split('\n').pop() ?? '';
        assert.ok(line.startsWith('{'), `doctor in ${site} printed JSON: ${r.stdout} ${r.stderr}`);
        const report = JSON.parse(line) as { checks: CheckResult[] };
        return Object.fromEntries(report.checks.map((c) => [c.id, c]));
      };
      const a = await doctor('a');
      assert.equal(a['nat']!.status, 'ok', JSON.stringify(a['nat']));
      assert.equal(a['zerortt']!.status, 'ok', JSON.stringify(a['zerortt']));
      const pubA = lab.sites.a!.publicIp.replace(/\./g, '\\.');
      assert.match(a['zerortt']!.message, new RegExp(`^warm punch port (\\d+) maps to ${pubA}:\\1 \\(predicted`));

      const wrong = await doctor('a', '--externalip', '198.51.100.7');
      assert.equal(wrong['zerortt']!.code, 'DOCTOR_ZRTT_ADDRESS', JSON.stringify(wrong['zerortt']));
      assert.match(wrong['zerortt']!.fix ?? '', new RegExp(`^set externalip=${pubA}, or remove externalip=`));

      // The hash-mapped NAT keeps one mapping per local port but not its number: what serve announces is observed.
      const b = await doctor('b');
      assert.equal(b['zerortt']!.status, 'ok', JSON.stringify(b['zerortt']));
      const pubB = lab.sites.b!.publicIp.replace(/\./g, '\\.');
      assert.match(b['zerortt']!.message, new RegExp(`maps to ${pubB}:\\d+ \\(observed\\)`));

      const c = await doctor('c');
      assert.equal(c['nat']!.code, 'DOCTOR_NAT_EDM', JSON.stringify(c['nat']));
      assert.equal(c['zerortt']!.code, 'DOCTOR_ZRTT_NOT_EIM', JSON.stringify(c['zerortt']));
      assert.match(c['zerortt']!.fix ?? '', /endpoint-independent NAT/);
    } finally {
      await lab.down();
    }
  },
);
