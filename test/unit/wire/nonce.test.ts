/** The pooled nonce source (src/wire/nonce.ts): every nonce fresh, across the pool's refills. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomNonce } from '../../../src/wire/nonce.js';

test('randomNonce: 64-bit values, no repeat over several pool refills (512 nonces each)', () => {
  const seen = new Set<bigint>();
  for (let i = 0; i < 5000; i++) {
    const n = randomNonce();
    assert.equal(typeof n, 'bigint');
    assert.ok(n >= 0n && n < 1n << 64n);
    seen.add(n);
  }
  // 5,000 draws from 2^64: a collision has probability ~7e-13; a pool that was not refilled repeats at once.
  assert.equal(seen.size, 5000);
});
