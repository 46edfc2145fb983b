/**
 * The node JSON-RPC client (src/daemon/node-rpc.ts) against a real node — bcoin 1.0.2 on regtest in a child
 * process on loopback — and against real loopback HTTP servers that answer wrong on purpose (junk, a huge body,
 * silence, another id, HTTP errors): every failure is a NodeRpcError with its code, never a crash or a hang.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  NodeRpc,
  NodeRpcError,
  nodeRpcFromConfig,
  defaultCookieFile,
  type NodeRpcErrorCode,
} from '../../src/daemon/node-rpc.js';
import { loadConfig } from '../../src/daemon/config.js';
import { freePort } from '../../src/lab/tor/private-tor-process.js';
import { bcoinSkip, startBcoin } from '../helpers/bcoin-node.js';

async function rejectsWith(p: Promise<unknown>, code: NodeRpcErrorCode): Promise<NodeRpcError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof NodeRpcError, `a NodeRpcError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

async function httpServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<{ port: number; close: () => void }> {
  const server = createServer((req, res) => {
    let body = '';
    req
      .setEncoding('utf8')
      .on('data', (d: string) => (body += d))
      .on('end', () => handler(req, res, body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test(
  'against bcoin 1.0.2: result, auth, cookie, JSON-RPC errors, addnode onetry',
  { timeout: 90_000, skip: bcoinSkip },
  async (t) => {
    const node = await startBcoin('bcoin', { mine: 3, apiKey: 'sekrit' });
    const rpcPort = node.rpcPort;
    const dir = mkdtempSync(join(tmpdir(), 'onionpunch-rpc-'));
    t.after(async () => {
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const rpc = new NodeRpc({ host: '127.0.0.1', port: rpcPort, auth: { user: 'u', password: 'sekrit' } });
    assert.equal(await rpc.call<number>('getblockcount'), 3);
    const best = await rpc.call<string>('getbestblockhash');
    assert.match(best, /^[0-9a-f]{64}$/);
    assert.equal(best, (await node.info()).hash);

    await rejectsWith(
      new NodeRpc({ host: '127.0.0.1', port: rpcPort, auth: { user: 'u', password: 'wrong' } }).call('getblockcount'),
      'RPC_AUTH',
    );
    const noMethod = await rejectsWith(rpc.call('nosuchmethod'), 'RPC_ERROR');
    assert.equal(noMethod.rpcCode, -32601);

    // The cookie file as bitcoind writes it; read on every call (a restarted node writes a new one).
    const cookie = join(dir, '.cookie');
    writeFileSync(cookie, '__cookie__:sekrit');
    const viaCookie = nodeRpcFromConfig({
      network: 'regtest',
      rpcconnect: '127.0.0.1',
      rpcport: rpcPort,
      rpcuser: undefined,
      rpcpassword: undefined,
      rpccookiefile: cookie,
    });
    assert.equal(await viaCookie.call<number>('getblockcount'), 3);
    writeFileSync(cookie, '__cookie__:rotated');
    await rejectsWith(viaCookie.call('getblockcount'), 'RPC_AUTH');
    writeFileSync(cookie, 'no colon here');
    await rejectsWith(viaCookie.call('getblockcount'), 'RPC_COOKIE');
    writeFileSync(cookie, `a:${'x'.repeat(2000)}`);
    await rejectsWith(viaCookie.call('getblockcount'), 'RPC_COOKIE');
    rmSync(cookie);
    await rejectsWith(viaCookie.call('getblockcount'), 'RPC_COOKIE');

    // addnode onetry to a peer that is not there: accepted (null), the node tries and drops it.
    const nobody = await freePort();
    assert.equal(await rpc.call('addnode', [`127.0.0.1:${nobody}`, 'onetry']), null);
  },
);

test('hostile or broken RPC servers give typed errors, never a crash or a hang', { timeout: 30_000 }, async (t) => {
  const closers: Array<() => void> = [];
  t.after(() => closers.forEach((c) => c()));
  const serve = async (h: Parameters<typeof httpServer>[0]): Promise<NodeRpc> => {
    const s = await httpServer(h);
    closers.push(s.close);
    return new NodeRpc({
      host: '127.0.0.1',
      port: s.port,
      auth: { user: 'u', password: 'p' },
      timeoutMs: 500,
      maxResponseBytes: 64 * 1024,
    });
  };
  await rejectsWith((await serve((_q, r) => r.end('<html>not json</html>'))).call('getblockcount'), 'RPC_BAD_REPLY');
  await rejectsWith((await serve((_q, r) => r.end('[1,2,3]'))).call('getblockcount'), 'RPC_BAD_REPLY');
  await rejectsWith((await serve((_q, r) => r.end('{"error":null,"id":1}'))).call('getblockcount'), 'RPC_BAD_REPLY');
  await rejectsWith(
    (await serve((_q, r) => r.end('{"result":1,"error":null,"id":"someone else"}'))).call('getblockcount'),
    'RPC_BAD_REPLY',
  );
  // Bitcoin Core's JSON-RPC 1.0 errors: HTTP 500 (404 for an unknown method) with a JSON body.
  const core = await rejectsWith(
    (
      await serve((_q, r, body) => {
        const id = (JSON.parse(body) as { id: number }).id;
        r.writeHead(500).end(
          JSON.stringify({ result: null, error: { code: -28, message: 'Loading block index…' }, id }),
        );
      })
    ).call('getblockcount'),
    'RPC_ERROR',
  );
  assert.equal(core.rpcCode, -28);
  assert.equal(core.httpStatus, 500);
  await rejectsWith((await serve((_q, r) => r.writeHead(503).end('busy'))).call('getblockcount'), 'RPC_HTTP');
  await rejectsWith((await serve((_q, r) => r.writeHead(403).end())).call('getblockcount'), 'RPC_AUTH');
  // A body past the cap, declared and streamed without a length: cut off at the cap.
  await rejectsWith(
    (
      await serve((_q, r) => {
        r.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
        r.write(Buffer.alloc(1024));
      })
    ).call('getpeerinfo'),
    'RPC_TOO_LARGE',
  );
  let sent = 0;
  await rejectsWith(
    (
      await serve((_q, r) => {
        const more = (): void => {
          while (sent < 100 * 1024 * 1024 && r.write(Buffer.alloc(16 * 1024, 0x20))) sent += 16 * 1024;
          if (!r.destroyed) r.once('drain', more);
        };
        r.on('error', () => undefined);
        more();
      })
    ).call('getpeerinfo'),
    'RPC_TOO_LARGE',
  );
  assert.ok(sent < 8 * 1024 * 1024, `the client stopped reading early (${sent} bytes sent)`);
  // Silence: the deadline holds.
  const t0 = Date.now();
  await rejectsWith((await serve(() => undefined)).call('getblockcount'), 'RPC_TIMEOUT');
  assert.ok(Date.now() - t0 < 3000);
  // Nobody listening.
  await rejectsWith(new NodeRpc({ host: '127.0.0.1', port: await freePort() }).call('getblockcount'), 'RPC_CONNECT');
  // The caller's signal.
  const ac = new AbortController();
  const silent = await serve(() => undefined);
  const p = silent.call('getblockcount', [], { signal: ac.signal, timeoutMs: 5000 });
  ac.abort();
  await rejectsWith(p, 'RPC_ABORTED');
});

test('rpc keys: bitcoind names and defaults', () => {
  const c = loadConfig({ args: ['--network', 'regtest'] });
  assert.equal(c.rpcconnect, '127.0.0.1');
  assert.equal(c.rpcport, 18443);
  assert.equal(c.maxpunchpeers, 2);
  assert.equal(loadConfig({ args: [] }).rpcport, 8332);
  assert.equal(defaultCookieFile('main', '/home/u'), '/home/u/.bitcoin/.cookie');
  assert.equal(defaultCookieFile('regtest', '/home/u'), '/home/u/.bitcoin/regtest/.cookie');
  const f = loadConfig({
    args: ['--rpcport', '48334', '--rpcuser', 'x', '--rpcpassword', 'y', '--maxpunchpeers', '0'],
  });
  assert.deepEqual([f.rpcport, f.rpcuser, f.rpcpassword, f.maxpunchpeers], [48334, 'x', 'y', 0]);
});
