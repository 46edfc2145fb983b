/**
 * The proxy stops promptly while its `.b32.i2p` route is still creating its SAM session. The SAM bridge is a FAKE
 * (test/helpers/fake-sam.ts): a real i2pd cannot be made to hold SESSION CREATE open on demand. Before the fix
 * the shutdown waited for the creation's own deadline (110 s), and a SOCKS client waited as long.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fakeSamLines } from '../helpers/fake-sam.js';
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

test(
  'proxy: SIGTERM during the SAM session creation of a .b32.i2p CONNECT ends it at once',
  { timeout: 60_000 },
  async () => {
    let sawCreate!: () => void;
    const created = new Promise<void>((r) => (sawCreate = r));
    const f = await fakeSamLines((line, s) => {
      if (line.startsWith('HELLO')) s.write('HELLO REPLY RESULT=OK VERSION=3.1\n');
      else if (line.startsWith('SESSION CREATE')) sawCreate(); // never answered: tunnels that never get built
    });
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
