/**
 * Onion-service coordination over a real private Tor network (loopback, no root needed): one network shared by
 * the tests of this file. ADD_ONION/DEL_ONION, an endpoint reached from the second client through SOCKS5 with
 * bytes both ways and a version/verack handshake, tor restart with automatic re-publication, typed dial errors.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { startPrivateTor, type PrivateTor } from '../../src/lab/private-tor.js';
import { TorControlClient } from '../../src/overlay/tor/control.js';
import { TorCoordinationEndpoint } from '../../src/overlay/tor/endpoint.js';
import { TorCoordinationDialer } from '../../src/overlay/tor/dialer.js';
import { TorControlError, TorSocksError } from '../../src/overlay/tor/errors.js';

const log = process.env['ONIONPUNCH_TEST_LOG'] ? (l: string) => process.stderr.write(l + '\n') : () => {};

// ---- a minimal Bitcoin version/verack exchange (test only; the real one lives in src/peer once it lands) ----
const MAGIC = Buffer.from('fabfb5da', 'hex'); // regtest
function frame(command: string, payload: Buffer): Buffer {
  const h = Buffer.alloc(24);
  MAGIC.copy(h, 0);
  h.write(command, 4, 'ascii');
  h.writeUInt32LE(payload.length, 16);
  createHash('sha256').update(createHash('sha256').update(payload).digest()).digest().copy(h, 20, 0, 4);
  return Buffer.concat([h, payload]);
}
function versionPayload(nonce: Buffer): Buffer {
  const p = Buffer.alloc(4 + 8 + 8 + 26 + 26 + 8 + 1 + 4 + 1);
  let o = p.writeInt32LE(70016, 0);
  o = p.writeBigUInt64LE(0n, o); // services: none (B reveals nothing)
  o = p.writeBigInt64LE(BigInt(Math.floor(Date.now() / 1000)), o);
  o += 26 + 26; // addr_recv, addr_from: zero
  o += nonce.copy(p, o);
  o = p.writeUInt8(0, o); // empty user agent
  o = p.writeInt32LE(0, o);
  p.writeUInt8(0, o);
  return p;
}
/** Reads framed messages from a stream; resolves with the next one (checks magic and checksum). */
function reader(s: Duplex): () => Promise<{ command: string; payload: Buffer }> {
  let buf = Buffer.alloc(0);
  const waiters: Array<() => void> = [];
  s.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    waiters.splice(0).forEach((w) => w());
  });
  return async function next() {
    for (;;) {
      if (buf.length >= 24) {
        assert.deepEqual(buf.subarray(0, 4), MAGIC);
        const len = buf.readUInt32LE(16);
        if (buf.length >= 24 + len) {
          const command = buf.toString('ascii', 4, 16).replace(/\0+$/, '');
          const payload = buf.subarray(24, 24 + len);
          const sum = createHash('sha256').update(createHash('sha256').update(payload).digest()).digest().subarray(0, 4);
          assert.deepEqual(buf.subarray(20, 24), sum);
          buf = buf.subarray(24 + len);
          return { command, payload };
        }
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  };
}
/** Initiator (B): version -> expect version + verack, send verack. Responder (A): the mirror image. */
async function handshake(s: Duplex, initiator: boolean): Promise<number> {
  const next = reader(s);
  const nonce = randomBytes(8);
  if (initiator) s.write(frame('version', versionPayload(nonce)));
  const v = await next();
  assert.equal(v.command, 'version');
  const version = v.payload.readInt32LE(0);
  if (!initiator) s.write(frame('version', versionPayload(nonce)));
  s.write(frame('verack', Buffer.alloc(0)));
  const ack = await next();
  assert.equal(ack.command, 'verack');
  return version;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** Dials until it works (a fresh isolation key each try), for after a restart when B may hold a stale descriptor. */
async function dialUntil(d: TorCoordinationDialer, address: string, port: number, budgetMs: number): Promise<{ s: Duplex; tries: number; errors: string[] }> {
  const end = Date.now() + budgetMs;
  const errors: string[] = [];
  for (let tries = 1; ; tries++) {
    try {
      const s = await d.dial(address, port, { timeoutMs: Math.max(1000, Math.min(30_000, end - Date.now())) });
      return { s, tries, errors };
    } catch (e) {
      assert.ok(e instanceof TorSocksError, String(e));
      errors.push(e.code);
      if (Date.now() > end) throw new Error(`not reachable within ${budgetMs} ms: ${errors.join(', ')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

describe('tor onion coordination over a private Tor network', { timeout: 230_000 }, () => {
  let net: PrivateTor | undefined;
  let dialer: TorCoordinationDialer;
  const control = () => ({ port: net!.controlA.port, auth: { cookieFile: net!.controlA.cookieFile! } });

  before(async () => {
    net = await startPrivateTor({ log, timeoutMs: 120_000 });
    log(`bring-up ${JSON.stringify(net.timings)}`);
    dialer = new TorCoordinationDialer({ socksPort: net.socksB.port });
  });
  after(async () => {
    await dialer?.close();
    await net?.stop();
  });

  test('ADD_ONION: NEW key with and without DiscardPK, a stored key gives the same id; DEL_ONION; unknown id is 552', async () => {
    const c = await TorControlClient.connect(control());
    try {
      const a = await c.addOnion({ ports: [{ virtual: 80, target: '127.0.0.1:9' }] });
      assert.match(a.serviceId, /^[a-z2-7]{56}$/);
      assert.match(a.privateKey ?? '', /^ED25519-V3:[A-Za-z0-9+/=]{80,}$/);
      const onions = (await c.getInfo(['onions/current']))['onions/current']!;
      assert.ok(onions.includes(a.serviceId));
      await c.delOnion(a.serviceId);
      assert.ok(!(await c.getInfo(['onions/current']))['onions/current']!.includes(a.serviceId));
      const again = await c.addOnion({ key: a.privateKey!, ports: [{ virtual: 80, target: '127.0.0.1:9' }] });
      assert.equal(again.serviceId, a.serviceId);
      assert.equal(again.privateKey, undefined);
      await c.delOnion(again.serviceId);
      const d = await c.addOnion({ ports: [{ virtual: 8333, target: '127.0.0.1:9' }], flags: ['DiscardPK'] });
      assert.equal(d.privateKey, undefined);
      assert.notEqual(d.serviceId, a.serviceId);
      await c.delOnion(d.serviceId);
      await assert.rejects(c.delOnion(d.serviceId), (e: unknown) => e instanceof TorControlError && e.code === 'TOR_REPLY_552');
      await assert.rejects(c.addOnion({ key: 'ED25519-V3:AAAA', ports: [{ virtual: 1, target: '127.0.0.1:9' }] }), (e: unknown) => e instanceof TorControlError && /^TOR_REPLY_5\d\d$/.test(e.code));
    } finally {
      c.close();
    }
  });

  let ep: TorCoordinationEndpoint | undefined;

  test('an endpoint reached from B through SOCKS5: bytes both ways and a version/verack handshake', async () => {
    const t0 = Date.now();
    ep = await TorCoordinationEndpoint.create({ control: control(), log });
    const publishMs = Date.now() - t0;
    assert.match(ep.address, /^[a-z2-7]{56}\.onion$/);
    assert.equal(ep.port, 8333);
    const served: Promise<number>[] = [];
    ep.on('stream', (s: Duplex, info: object) => {
      assert.deepEqual(info, {});
      served.push(
        (async () => {
          const first = (await once(s, 'data'))[0] as Buffer;
          if (first.toString() === 'ping from B') {
            s.write('pong from A');
            return 0;
          }
          s.unshift(first);
          return handshake(s, false);
        })(),
      );
    });
    const t1 = Date.now();
    const s = await dialer.dial(ep.address, ep.port, { isolationKey: 'session-1', timeoutMs: 90_000 });
    const firstConnectMs = Date.now() - t1;
    s.write('ping from B');
    const reply = (await withTimeout(once(s, 'data'), 20_000, 'pong'))[0] as Buffer;
    assert.equal(reply.toString(), 'pong from A');
    s.destroy();

    const t2 = Date.now();
    const h = await dialer.dial(ep.address, ep.port, { isolationKey: 'session-2' });
    const secondConnectMs = Date.now() - t2;
    const v = await withTimeout(handshake(h, true), 20_000, 'version handshake');
    assert.equal(v, 70016);
    assert.equal(await withTimeout(served[1]!, 5000, 'responder'), 70016);
    h.destroy();
    log(`publish ${publishMs} ms, first connect ${firstConnectMs} ms, second ${secondConnectMs} ms`);
  });

  test('tor A killed and restarted: the endpoint goes down, re-publishes the same key by itself and is reachable again', async () => {
    assert.ok(ep && net);
    const address = ep.address;
    const down = once(ep, 'down');
    await net.stopClient('a', true);
    const [err] = await withTimeout(down, 10_000, 'down event');
    assert.ok(err instanceof TorControlError);
    assert.equal(ep.isUp, false);
    const t0 = Date.now();
    const up = once(ep, 'up');
    await net.startClient('a', false);
    await withTimeout(up, 90_000, 'up event');
    const upMs = Date.now() - t0;
    assert.equal(ep.address, address);
    assert.equal(ep.isUp, true);
    const { s, tries, errors } = await dialUntil(dialer, address, ep.port, 100_000);
    const reachableMs = Date.now() - t0;
    s.write('ping from B');
    assert.equal(((await withTimeout(once(s, 'data'), 20_000, 'pong'))[0] as Buffer).toString(), 'pong from A');
    s.destroy();
    log(`restart: up after ${upMs} ms, reachable after ${reachableMs} ms (${tries} tries: ${errors.join(',')})`);
  });

  test('after close() (DEL_ONION) a dial fails with a typed onion-service error', async () => {
    assert.ok(ep);
    const address = ep.address;
    await ep.close();
    await ep.close(); // idempotent
    const c = await TorControlClient.connect(control());
    try {
      assert.ok(!(await c.getInfo(['onions/current']))['onions/current']!.includes(address.slice(0, 56)));
    } finally {
      c.close();
    }
    // A client that dialed this onion before keeps its descriptor and, once every intro point has refused, may
    // park the stream waiting for a rate-limited descriptor refetch (only the dial timeout ends it). So the
    // typed error is shown on a service B has never contacted: published, removed, then dialed.
    const gone = await TorCoordinationEndpoint.create({ control: control(), log });
    await gone.close();
    const t0 = Date.now();
    const err = await dialer.dial(gone.address, gone.port, { timeoutMs: 60_000 }).then(
      (s) => {
        s.destroy();
        return new Error('dial to a deleted onion succeeded');
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof TorSocksError, String(err));
    assert.ok(['TOR_SOCKS_HS_INTRO_FAILED', 'TOR_SOCKS_HS_INTRO_TIMEDOUT', 'TOR_SOCKS_HS_DESC_NOT_FOUND'].includes(err.code), err.message);
    assert.ok(err.reply! >= 0xf0 && err.reply! <= 0xf7);
    log(`after DEL_ONION: ${err.code} in ${Date.now() - t0} ms`);
    await assert.rejects(dialer.dial('not-an-onion.example', 80), (e: unknown) => e instanceof TorSocksError && e.code === 'TOR_SOCKS_BAD_ADDRESS');
  });
});
