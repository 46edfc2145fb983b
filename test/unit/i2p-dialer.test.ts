/**
 * Dialer retry policy against a FAKE SAM bridge on loopback (a real i2pd cannot be made to refuse the first
 * connects on demand; the real behaviour is covered in test/lab/i2p-overlay.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeSamLines } from '../helpers/fake-sam.js';
import { randomBytes } from 'node:crypto';
import { I2pCoordinationDialer } from '../../src/overlay/i2p/dialer.js';
import { SamError } from '../../src/overlay/i2p/errors.js';
import { i2pBase64Encode, b32Address } from '../../src/overlay/i2p/address.js';

const DEST = i2pBase64Encode(Buffer.concat([randomBytes(384), Buffer.from([5, 0, 4, 0, 7, 0, 4])]));
const PRIV = i2pBase64Encode(
  Buffer.concat([Buffer.from(DEST.replace(/-/g, '+').replace(/~/g, '/'), 'base64'), randomBytes(288)]),
);

/** A fake bridge whose first `notFound` lookups and first `refuse` connects fail. */
async function fakeBridge(notFound: number, refuse: number) {
  const counts = { lookups: 0, connects: 0 };
  const f = await fakeSamLines((line, s) => {
    if (line.startsWith('HELLO')) s.write('HELLO REPLY RESULT=OK VERSION=3.1\n');
    else if (line.startsWith('SESSION')) s.write(`SESSION STATUS RESULT=OK DESTINATION=${PRIV}\n`);
    else if (line.startsWith('NAMING')) {
      s.write(
        counts.lookups++ < notFound
          ? 'NAMING REPLY RESULT=INVALID_KEY NAME=x\n'
          : `NAMING REPLY RESULT=OK NAME=x VALUE=${DEST}\n`,
      );
    } else if (line.startsWith('STREAM CONNECT')) {
      if (counts.connects++ < refuse) s.end('STREAM STATUS RESULT=CANT_REACH_PEER\n');
      else s.write('STREAM STATUS RESULT=OK\nhello');
    }
  });
  return { ...f, counts };
}

test(
  'dial retries a not-yet-published LeaseSet and CANT_REACH_PEER until it connects',
  { timeout: 20_000 },
  async () => {
    const f = await fakeBridge(2, 2);
    try {
      const dialer = await I2pCoordinationDialer.create({ sam: f.sam, timeoutMs: 2000 });
      const s = await dialer.dial(b32Address(DEST), 0, { timeoutMs: 10_000 });
      const got = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
      assert.equal(got, 'hello');
      assert.equal(f.counts.lookups, 3);
      assert.equal(f.counts.connects, 3);
      assert.equal(dialer.retries, 4);
      await dialer.close();
    } finally {
      f.close();
    }
  },
);

test('dial gives up at its deadline with the last typed error', { timeout: 20_000 }, async () => {
  const f = await fakeBridge(0, 1000);
  try {
    const dialer = await I2pCoordinationDialer.create({ sam: f.sam, timeoutMs: 2000 });
    const t = performance.now();
    await assert.rejects(
      dialer.dial(DEST, 0, { timeoutMs: 2500 }),
      (e: unknown) => e instanceof SamError && e.code === 'SAM_CANT_REACH_PEER',
    );
    const took = performance.now() - t;
    assert.ok(took < 2600, `bounded (${Math.round(took)} ms)`);
    assert.ok(f.counts.connects >= 2);
    // A full destination is connected directly: no lookup at all.
    assert.equal(f.counts.lookups, 0);
    await dialer.close();
  } finally {
    f.close();
  }
});

test(
  'session creation makes a fresh attempt after SAM_TIMEOUT when attempts > 1 (fake bridge)',
  { timeout: 20_000 },
  async () => {
    let creates = 0;
    const f = await fakeSamLines((line, s) => {
      if (line.startsWith('HELLO')) s.write('HELLO REPLY RESULT=OK VERSION=3.1\n');
      // The first session never becomes ready (no reply); the second does.
      else if (line.startsWith('SESSION') && creates++ > 0) s.write(`SESSION STATUS RESULT=OK DESTINATION=${PRIV}\n`);
    });
    const sam = f.sam;
    try {
      await assert.rejects(
        I2pCoordinationDialer.create({ sam, timeoutMs: 100 }),
        (e: unknown) => e instanceof SamError && e.code === 'SAM_TIMEOUT',
      );
      creates = 0;
      const dialer = await I2pCoordinationDialer.create({ sam, timeoutMs: 100, attempts: 2 });
      assert.equal(creates, 2);
      await dialer.close();
    } finally {
      f.close();
    }
  },
);
