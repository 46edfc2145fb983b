/**
 * 64-bit nonces for `version` (self-connection detection) and `ping`/`pong` (BIP31).
 *
 * Neither is a secret, but both must be unpredictable to a peer (a guessed version nonce could make us drop a
 * connection as our own), so they come from the CSPRNG — through a pool: `randomBytes(8)` per nonce cost about
 * 30 µs a call on a busy A (2.5–3% of each `lab stress` worker's CPU in a profile, docs/BENCHMARKS.md), one
 * 4 KiB fill serves 512 nonces. The pool is never handed out: each nonce is copied out of it as a bigint, and
 * each slot is used once.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** A fresh random 64-bit nonce. */
export function randomNonce(): bigint {
  if (offset + 8 > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const n = pool.readBigUInt64LE(offset);
  offset += 8;
  return n;
}
