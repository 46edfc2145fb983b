/**
 * The private Tor network inside network namespaces (root only): the authority and the three relays on a
 * "public" namespace with their own 198.18.0.x addresses, clients A and B in a second namespace joined by a veth.
 * A's ControlPort and B's SocksPort listen on 127.0.0.1 inside the client namespace, so the endpoint and the
 * dial run there too (a child node process under `ip netns exec`).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { needsRoot } from '../helpers/root.js';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';

const log = process.env['ONIONPUNCH_TEST_LOG'] ? (l: string) => process.stderr.write(l + '\n') : () => {};
const prefix = `op${process.pid % 10000}${randomBytes(2).toString('hex')}-`;
const PUB = prefix + 'torpub';
const CLI = prefix + 'torcli';
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

describe(
  'private Tor network inside network namespaces',
  { ...needsRoot('creates network namespaces'), timeout: 200_000 },
  () => {
    let net: PrivateTor | undefined;
    let dir = '';

    before(async () => {
      ip('netns', 'add', PUB);
      ip('netns', 'add', CLI);
      ip('link', 'add', prefix + 'p', 'type', 'veth', 'peer', 'name', prefix + 'c');
      ip('link', 'set', prefix + 'p', 'netns', PUB);
      ip('link', 'set', prefix + 'c', 'netns', CLI);
      for (const a of ['198.18.0.1/24', '198.18.0.2/24', '198.18.0.3/24', '198.18.0.4/24'])
        ip('-n', PUB, 'addr', 'add', a, 'dev', prefix + 'p');
      ip('-n', CLI, 'addr', 'add', '198.18.0.10/24', 'dev', prefix + 'c');
      for (const [ns, dev] of [
        [PUB, prefix + 'p'],
        [CLI, prefix + 'c'],
      ] as const) {
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        ip('-n', ns, 'link', 'set', dev, 'up');
      }
      dir = mkdtempSync(join(tmpdir(), 'op-tornetns-'));
    });

    after(async () => {
      await net?.stop();
      for (const ns of [PUB, CLI]) spawnSync('ip', ['netns', 'del', ns]);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('bring-up across namespaces, then an endpoint in the client namespace is reached from B there', async () => {
      net = await startPrivateTor({
        log,
        roles: {
          authority: { netns: PUB, ip: '198.18.0.1' },
          relays: [
            { netns: PUB, ip: '198.18.0.2' },
            { netns: PUB, ip: '198.18.0.3' },
            { netns: PUB, ip: '198.18.0.4' },
          ],
          a: { netns: CLI, ip: '198.18.0.10' },
          b: { netns: CLI, ip: '198.18.0.10' },
        },
      });
      log(`netns bring-up ${JSON.stringify(net.timings)}`);
      assert.equal(net.controlA.netns, CLI);
      assert.equal(net.socksB.netns, CLI);
      // Nothing of the network listens in the root namespace: the control port is only inside CLI.
      assert.match(execFileSync('ip', ['netns', 'exec', PUB, 'ss', '-ltnH']).toString(), /198\.18\.0\.1:\d+/);
      const tor = (rel: string) => fileURLToPath(new URL(`../../src/overlay/tor/${rel}`, import.meta.url));
      const script = join(dir, 'probe.mjs');
      writeFileSync(
        script,
        `
      import { TorCoordinationEndpoint } from ${JSON.stringify(tor('endpoint.js'))};
      import { TorCoordinationDialer } from ${JSON.stringify(tor('dialer.js'))};
      const ep = await TorCoordinationEndpoint.create({ control: { port: ${net.controlA.port}, auth: { cookieFile: ${JSON.stringify(net.controlA.cookieFile)} } } });
      ep.on('stream', (s) => s.on('data', (d) => s.end('A got ' + d)));
      const d = new TorCoordinationDialer({ socksPort: ${net.socksB.port} });
      const t = Date.now();
      const s = await d.dial(ep.address, ep.port, { timeoutMs: 90000 });
      const ms = Date.now() - t;
      s.write('hello');
      let got = '';
      s.on('data', (b) => (got += b));
      await new Promise((r) => s.on('close', r));
      await d.close(); await ep.close();
      console.log(JSON.stringify({ address: ep.address, got, firstConnectMs: ms }));
    `,
      );
      const r = spawnSync('ip', ['netns', 'exec', CLI, process.execPath, script], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.equal(out.got, 'A got hello');
      log(`netns first connect ${out.firstConnectMs} ms`);
      // The clients' OR connections crossed the veth to the relays' public addresses.
      const conns = execFileSync('ip', ['netns', 'exec', CLI, 'ss', '-tnH']).toString();
      assert.match(conns, /198\.18\.0\.10:\d+\s+198\.18\.0\.[1-4]:\d+/);
    });
  },
);
