/**
 * Planted bugs for the harness's own test (test/unit/fuzz-harness.test.ts), never run by `npm run fuzz`:
 * `planted-crash` throws a TypeError only behind a 4-byte magic checked byte by byte (1 in 2^32 for blind
 * random inputs; coverage feedback finds it in seconds), `planted-hang` loops forever on one byte value.
 */
import type { FuzzTarget } from '../targets.js';

const crash: FuzzTarget = {
  name: 'planted-crash',
  about: 'TypeError behind the magic "FUZ!"',
  maxLen: 64,
  errors: [],
  run(d) {
    if (d[0] === 0x46) {
      if (d[1] === 0x55) {
        if (d[2] === 0x5a) {
          if (d[3] === 0x21) throw new TypeError('planted crash reached');
        }
      }
    }
  },
};

const hang: FuzzTarget = {
  name: 'planted-hang',
  about: 'an endless loop when the first byte is 0xa5',
  maxLen: 16,
  errors: [],
  run(d) {
    if (d[0] === 0xa5) for (;;) void 0;
  },
};

export const TARGETS: readonly FuzzTarget[] = [crash, hang];
