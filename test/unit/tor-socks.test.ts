/**
 * SOCKS dial failures that need no tor: an unreachable SOCKS port, and a local TCP server that accepts and never
 * answers (a stalled proxy: a fault a healthy tor does not produce on demand), for the timeout and abort paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { TorCoordinationDialer } from '../../src/overlay/tor/dialer.js';
import { TorSocksError } from '../../src/overlay/tor/errors.js';

const ONION = 'b'.repeat(56) + '.onion';

async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<Socket>();
  const server = createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

test('an unreachable SOCKS port gives TOR_SOCKS_PROXY_UNREACHABLE', async () => {
  const srv = await silentServer();
  await srv.close();
  const d = new TorCoordinationDialer({ socksPort: srv.port });
  await assert.rejects(d.dial(ONION, 8333, { timeoutMs: 2000 }), (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_PROXY_UNREACHABLE');
});

test('a stalled proxy gives TOR_SOCKS_TIMEOUT; an abort gives TOR_SOCKS_ABORTED; bad addresses are refused locally', async () => {
  const srv = await silentServer();
  try {
    const d = new TorCoordinationDialer({ socksPort: srv.port });
    const t0 = Date.now();
    await assert.rejects(d.dial(ONION, 8333, { timeoutMs: 200 }), (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_TIMEOUT');
    assert.ok(Date.now() - t0 < 2000);
    const ac = new AbortController();
    const p = d.dial(ONION, 8333, { timeoutMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(p, (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_ABORTED');
    for (const bad of ['example.com', 'B'.repeat(56) + '.onion', 'b'.repeat(55) + '.onion', ONION + '.evil']) {
      await assert.rejects(d.dial(bad, 80), (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_BAD_ADDRESS');
    }
    await assert.rejects(d.dial(ONION, 0), (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_BAD_ADDRESS');
    await d.close();
    await assert.rejects(d.dial(ONION, 80), (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_ABORTED');
  } finally {
    await srv.close();
  }
});
