/**
 * `onionpunch nat-check` from inside NATed lab hosts against two NAT-check servers (the `natcheck-server`
 * command on two public hosts): port-preserving masquerade is EIM and port-preserving, the hash-mapped NAT
 * EIM but port-translating, `fully-random` masquerade EDM. fw6 hosts over IPv6: no NAT, EIM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { needsRoot } from '../helpers/root.js';
import { Lab } from '../../src/lab/index.js';

const BIN = join(process.cwd(), 'bin', 'onionpunch.js');

test(
  'nat-check in the lab: eim, eim-shift, edm, and fw6 over IPv6',
  { ...needsRoot('network namespaces, nftables'), timeout: 120_000 },
  async () => {
    const lab = await Lab.up({
      sites: [
        { name: 'a', nat: 'eim', ipv6: 'fw6' },
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
          '[::]:8333',
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
      const check = async (
        site: string,
        v6 = false,
      ): Promise<{
        mapping: string;
        portPreserving: boolean | null;
        localPort: number;
        observed: Array<{ address: string; port: number }>;
      }> => {
        const peers = v6 ? [`[${p1!.ip6}]:8333`, `[${p2!.ip6}]:8333`] : [`${p1!.ip}:8333`, `${p2!.ip}:8333`];
        const r = await lab.exec(
          site,
          [
            process.execPath,
            BIN,
            'nat-check',
            '--peer',
            peers[0]!,
            '--peer',
            peers[1]!,
            '--network',
            'regtest',
            '--json',
          ],
          { timeoutMs: 30_000 },
        );
        const line = r.stdout.trim().split('\n').pop() ?? '';
        assert.ok(line.startsWith('{'), `nat-check in ${site} printed JSON: ${r.stdout} ${r.stderr}`);
        return JSON.parse(line);
      };
      const a = await check('a');
      assert.equal(a.mapping, 'eim');
      assert.equal(a.portPreserving, true);
      assert.equal(a.observed[0]!.address, lab.sites.a!.publicIp);
      const b = await check('b');
      assert.equal(b.mapping, 'eim');
      assert.equal(b.portPreserving, false);
      const c = await check('c');
      assert.equal(c.mapping, 'edm');
      assert.notEqual(c.observed[0]!.port, c.observed[1]!.port);
      const a6 = await check('a', true);
      assert.equal(a6.mapping, 'eim');
      assert.equal(a6.observed[0]!.address, lab.sites.a!.host.ip6);
    } finally {
      await lab.down();
    }
  },
);
