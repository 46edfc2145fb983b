/**
 * The proxy stops promptly while its `.b32.i2p` route is still creating its SAM session. The SAM bridge is a FAKE
 * (test/helpers/fake-sam.ts): a real i2pd cannot be made to hold SESSION CREATE open on demand. Before the fix
 * the shutdown waited for the creation's own deadline (110 s), and a SOCKS client waited as long; the punch
 * client's own I2P session creation (overlay i2p) went on after the stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { fakeSamLines, type FakeSamBridge } from '../helpers/fake-sam.js';
import { startProxy, socksConnect } from '../helpers/proxy-daemon.js';
import { formatB32 } from '../../src/wire/address.js';

/** `p`'s value, or 'late' when it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'late'> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (t = setTimeout(() => r('late'), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(t);
  }
}

/** A fake SAM bridge that greets and never answers SESSION CREATE; `created` gives that command's connection. */
async function silentSam(): Promise<{ f: FakeSamBridge; created: Promise<Socket> }> {
  let sawCreate!: (s: Socket) => void;
  const created = new Promise<Socket>((r) => (sawCreate = r));
  const f = await fakeSamLines((line, s) => {
    if (line.startsWith('HELLO')) s.write('HELLO REPLY RESULT=OK VERSION=3.1\n');
    else if (line.startsWith('SESSION CREATE')) sawCreate(s); // never answered: tunnels that never get built
  });
  return { f, created };
}

test(
  'proxy: SIGTERM during the SAM session creation of a .b32.i2p CONNECT ends it at once',
  { timeout: 60_000 },
  async () => {
    const { f, created } = await silentSam();
    try {
      const p = await startProxy(['--i2psam', `${f.sam.host}:${f.sam.port}`]);
      const dest = formatB32(randomBytes(32));
      const client = socksConnect(p.port, dest, 8333, 50_000);
      await created;
      const code = await within(p.stop(), 10_000);
      assert.equal(code, 0, 'the proxy exits 0 within 10 s, not after the 110 s session deadline');
      const r = await within(client, 10_000);
      assert.equal(typeof r, 'string', 'the SOCKS client is answered (refused or closed), not left waiting');
      const recs = p.recs();
      assert.ok(
        recs.some((x) => x.event === 'stopped'),
        'the proxy logged its stop',
      );
    } finally {
      f.close();
    }
  },
);

test(
  'proxy over I2P: SIGTERM while the punch client creates its SAM session ends it at once',
  { timeout: 60_000 },
  async () => {
    const { f, created } = await silentSam();
    try {
      const known = `${formatB32(randomBytes(32))}:8333@198.51.100.7:8333`;
      const p = await startProxy(['--overlay', 'i2p', '--i2psam', `${f.sam.host}:${f.sam.port}`, '--known', known]);
      // A CONNECT to the announced clearnet address is punched: the punch client is built, its dialer first.
      const client = socksConnect(p.port, '198.51.100.7', 8333, 50_000);
      const control = await created;
      const closed = once(control, 'close');
      const code = await within(p.stop(), 10_000);
      assert.equal(code, 0, 'the proxy exits 0 within 10 s');
      // The creation itself ends with the proxy: left running it would hold a SAM session (and its tunnels)
      // after the stop, up to its 120 s deadline, or for good if the router answered.
      assert.notEqual(await within(closed, 5_000), 'late', 'the stop closes the SAM control connection');
      assert.equal(typeof (await within(client, 10_000)), 'string', 'the SOCKS client is answered, not left waiting');
    } finally {
      f.close();
    }
  },
);
