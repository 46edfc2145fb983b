/**
 * Issue 11 item 3 over a real private Tor network (loopback): the real `runProxy` routes a SOCKS5 CONNECT for
 * `<id>.onion:port` to tor's SOCKS port (key `onion`) and bytes go both ways to a server behind that onion
 * (published with ADD_ONION on tor A); with the Tor route unreachable the reply is "network unreachable";
 * `.b32.i2p` without `i2psam` is refused "not allowed"; a domain name is still refused without `resolvenames`.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { startPrivateTor, type PrivateTor } from '../../src/lab/tor/private-tor.js';
import { freePort } from '../../src/lab/tor/private-tor-process.js';
import { TorControlClient } from '../../src/overlay/tor/control.js';
import { startProxy as proxy, socksConnect } from '../helpers/proxy-daemon.js';

const log = process.env['ONIONPUNCH_TEST_LOG'] ? (l: string) => process.stderr.write(l + '\n') : () => {};

function hasTor(): boolean {
  try {
    execFileSync('tor', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const skip = hasTor() ? false : 'tor is not installed';

describe('proxy routes .onion through tor (private Tor network)', { skip, timeout: 240_000 }, () => {
  let net: PrivateTor | undefined;
  let server: Server | undefined;
  let control: TorControlClient | undefined;
  let onion = '';

  before(async () => {
    net = await startPrivateTor({ log, timeoutMs: 150_000 });
    // The server behind the onion answers every chunk with "echo:" + the chunk.
    server = createServer((s) => {
      s.on('error', () => undefined);
      s.on('data', (d: Buffer) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const target = `127.0.0.1:${(server.address() as { port: number }).port}`;
    const auth = { cookieFile: net.controlA.cookieFile! };
    control = await TorControlClient.connect({ port: net.controlA.port, auth });
    const a = await control.addOnion({ ports: [{ virtual: 18444, target }] });
    onion = `${a.serviceId}.onion`;
  });
  after(async () => {
    control?.close();
    server?.close();
    await net?.stop();
  });

  test('a SOCKS client gets bytes through the proxy to the server behind the onion', async () => {
    // Only `proxy` is set: `onion` defaults to it, as bitcoind's -onion defaults to -proxy.
    const p = await proxy(['--proxy', `127.0.0.1:${net!.socksB.port}`]);
    try {
      // A fresh onion's descriptor takes a moment to reach the HSDirs: retry until the budget is spent.
      const end = Date.now() + 150_000;
      const errors: string[] = [];
      let s: Socket | undefined;
      while (!s) {
        const r = await socksConnect(p.port, onion, 18444);
        if (typeof r !== 'string') s = r;
        else {
          errors.push(r);
          // Not yet published is a Tor error (host unreachable, TTL expired); a refusal is the proxy's own.
          assert.doesNotMatch(r, /NotAllowed/, 'the proxy refused the .onion destination');
          assert.ok(Date.now() < end, `onion not reachable through the proxy: ${errors.join('; ')}`);
          await new Promise((res) => setTimeout(res, 1000));
        }
      }
      log(`connected after ${errors.length} failed tries: ${errors.join('; ')}`);
      s.write('ping 1');
      const [d] = (await once(s, 'data')) as [Buffer];
      assert.equal(d.toString(), 'echo:ping 1');
      s.destroy();
      const recs = p.recs();
      assert.ok(
        recs.some((r) => r.event === 'socks-connected' && r['host'] === onion),
        'bridged',
      );
      assert.ok(!recs.some((r) => r.error?.code === 'ENOTFOUND' || r.error?.code === 'EAI_AGAIN'), 'no DNS');
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });

  test('Tor route unreachable: network unreachable; .b32.i2p without i2psam and plain names: not allowed', async () => {
    const closed = await freePort();
    const p = await proxy(['--onion', `127.0.0.1:${closed}`]);
    try {
      assert.match(String(await socksConnect(p.port, onion, 18444, 10_000)), /NetworkUnreachable/);
      assert.match(String(await socksConnect(p.port, `${'a'.repeat(52)}.b32.i2p`, 8333, 10_000)), /NotAllowed/);
      assert.match(String(await socksConnect(p.port, 'example.com', 8333, 10_000)), /NotAllowed/);
      const recs = p.recs();
      assert.ok(recs.some((r) => r.event === 'overlay-not-configured' && /i2psam/.test(String(r['fix']))));
      assert.ok(
        recs.some((r) => r.error?.code === 'TOR_SOCKS_PROXY_UNREACHABLE'),
        JSON.stringify(recs),
      );
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});
