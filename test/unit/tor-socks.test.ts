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
  await assert.rejects(
    d.dial(ONION, 8333, { timeoutMs: 2000 }),
    (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_PROXY_UNREACHABLE',
  );
});

test('a stalled proxy gives TOR_SOCKS_TIMEOUT; an abort gives TOR_SOCKS_ABORTED; bad addresses are refused locally', async () => {
  const srv = await silentServer();
  try {
    const d = new TorCoordinationDialer({ socksPort: srv.port });
    const t0 = Date.now();
    await assert.rejects(
      d.dial(ONION, 8333, { timeoutMs: 200 }),
      (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_TIMEOUT',
    );
    assert.ok(Date.now() - t0 < 2000);
    const ac = new AbortController();
    const p = d.dial(ONION, 8333, { timeoutMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(p, (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_ABORTED');
    for (const bad of ['example.com', 'B'.repeat(56) + '.onion', 'b'.repeat(55) + '.onion', ONION + '.evil']) {
      await assert.rejects(
        d.dial(bad, 80),
        (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_BAD_ADDRESS',
      );
    }
    await assert.rejects(
      d.dial(ONION, 0),
      (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_BAD_ADDRESS',
    );
    await d.close();
    await assert.rejects(
      d.dial(ONION, 80),
      (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_ABORTED',
    );
  } finally {
    await srv.close();
  }
});

/**
 * A FAKE SOCKS5 proxy answering each connection's CONNECT with the next reply byte of `script` (then the last
 * one forever). Used only for reply sequences a private tor network does not produce on demand (HSDirs
 * exhausted, a descriptor that never appears); the real race is in test/lab/tor-desc-retry.test.ts.
 */
interface ScriptedSocks {
  port: number;
  connections: () => number;
  close: () => Promise<void>;
}

async function scriptedSocks(script: number[]): Promise<ScriptedSocks> {
  const socks = new Set<Socket>();
  let n = 0;
  const server = createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
    const rep = script[Math.min(n, script.length - 1)]!;
    n++;
    let stage = 0;
    s.on('data', (d) => {
      if (stage === 0) s.write(Buffer.from([0x05, d.includes(0x02) ? 0x02 : 0x00]));
      else if (stage === 1 && d[0] === 0x01) s.write(Buffer.from([0x01, 0x00]));
      else {
        s.write(Buffer.from([0x05, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0]));
        if (rep !== 0) s.end();
      }
      stage++;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => n,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const isSocks = (code: string) => (e: unknown) => e instanceof TorSocksError && e.code === code;

test('descriptor-not-found (0xF0) is retried until the onion answers (fake proxy)', async () => {
  const srv = await scriptedSocks([0xf0, 0xf0, 0x00]);
  const d = new TorCoordinationDialer({ socksPort: srv.port });
  try {
    const s = await d.dial(ONION, 8333, { timeoutMs: 10_000 });
    s.destroy();
    assert.equal(d.descRetries, 2);
    assert.equal(srv.connections(), 3);
  } finally {
    await d.close();
    await srv.close();
  }
});

test('0xF0 then a bare 0x01 (HSDirs exhausted) surfaces as TOR_SOCKS_HS_DESC_NOT_FOUND (fake proxy)', async () => {
  const srv = await scriptedSocks([0xf0, 0x01]);
  const d = new TorCoordinationDialer({ socksPort: srv.port });
  try {
    await assert.rejects(d.dial(ONION, 8333, { timeoutMs: 10_000 }), isSocks('TOR_SOCKS_HS_DESC_NOT_FOUND'));
    assert.equal(srv.connections(), 2);
  } finally {
    await d.close();
    await srv.close();
  }
});

test('a descriptor that never appears fails after the retry window, not the dial timeout (fake proxy)', async () => {
  const srv = await scriptedSocks([0xf0]);
  const d = new TorCoordinationDialer({ socksPort: srv.port, descRetryMs: 1500 });
  try {
    const t0 = Date.now();
    await assert.rejects(d.dial(ONION, 8333, { timeoutMs: 60_000 }), isSocks('TOR_SOCKS_HS_DESC_NOT_FOUND'));
    const ms = Date.now() - t0;
    assert.ok(ms < 5000, `took ${ms} ms`);
    assert.ok(srv.connections() >= 2 && srv.connections() <= 4, `${srv.connections()} attempts`);
  } finally {
    await d.close();
    await srv.close();
  }
});
