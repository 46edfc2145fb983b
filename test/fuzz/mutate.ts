/**
 * Byte mutators for the fuzzer, in the style of AFL's havoc stage: bit flips, interesting values, small
 * arithmetic, deletes, inserts, chunk duplication, splices with another corpus input, dictionary tokens and
 * length-field tweaks (a u8/u16/u32/CompactSize set to the length of what follows, plus or minus a little).
 * Deterministic for a given seed.
 */

/** xoshiro128** (fast, seedable, good 32-bit output; not for cryptography). */
export class Rng {
  private readonly s = new Uint32Array(4);
  constructor(seed: number) {
    // splitmix32 spreads the seed over the state (an all-zero state would be stuck).
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  /** A 32-bit unsigned integer. */
  u32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return r;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)]!;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const INTERESTING_8 = [
  0, 1, 2, 3, 4, 5, 7, 8, 0x0a, 0x0d, 0x10, 0x20, 0x22, 0x2b, 0x2d, 0x2e, 0x3d, 0x40, 0x5c, 0x7f, 0x80, 0xfc, 0xfd,
  0xfe, 0xff,
];
const INTERESTING_32 = [
  0, 1, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x401, 0x1000, 0x7fff, 0x8000, 0xffff, 0x10000, 0x3d0900, 0x3d0901,
  0x7fffffff, 0x80000000, 0xffffffff,
];

export interface MutateContext {
  rng: Rng;
  maxLen: number;
  /** Another corpus input for splices. */
  other: () => Buffer;
  dict: readonly Buffer[];
}

type Mutator = (b: Buffer, c: MutateContext) => Buffer;

const clamp = (b: Buffer, max: number): Buffer => (b.length > max ? b.subarray(0, max) : b);

const mutators: Mutator[] = [
  // Flip one bit.
  (b, c) => {
    if (b.length === 0) return Buffer.from([c.rng.below(256)]);
    const o = Buffer.from(b);
    const i = c.rng.below(o.length);
    o[i]! ^= 1 << c.rng.below(8);
    return o;
  },
  // Random byte.
  (b, c) => {
    if (b.length === 0) return Buffer.from([c.rng.below(256)]);
    const o = Buffer.from(b);
    o[c.rng.below(o.length)] = c.rng.below(256);
    return o;
  },
  // Interesting byte.
  (b, c) => {
    if (b.length === 0) return Buffer.from([c.rng.pick(INTERESTING_8)]);
    const o = Buffer.from(b);
    o[c.rng.below(o.length)] = c.rng.pick(INTERESTING_8);
    return o;
  },
  // Small arithmetic on a byte.
  (b, c) => {
    if (b.length === 0) return b;
    const o = Buffer.from(b);
    const i = c.rng.below(o.length);
    o[i] = (o[i]! + (c.rng.below(33) - 16)) & 0xff;
    return o;
  },
  // Interesting 16/32-bit value, either endianness.
  (b, c) => {
    if (b.length < 2) return b;
    const o = Buffer.from(b);
    const v = c.rng.pick(INTERESTING_32);
    const wide = o.length >= 4 && c.rng.chance(0.5);
    const i = c.rng.below(o.length - (wide ? 3 : 1));
    if (wide) c.rng.chance(0.5) ? o.writeUInt32LE(v >>> 0, i) : o.writeUInt32BE(v >>> 0, i);
    else c.rng.chance(0.5) ? o.writeUInt16LE(v & 0xffff, i) : o.writeUInt16BE(v & 0xffff, i);
    return o;
  },
  // Delete a range.
  (b, c) => {
    if (b.length < 2) return b;
    const i = c.rng.below(b.length);
    const n = 1 + c.rng.below(Math.min(32, b.length - i));
    return Buffer.concat([b.subarray(0, i), b.subarray(i + n)]);
  },
  // Insert random bytes.
  (b, c) => {
    const i = c.rng.below(b.length + 1);
    const ins = Buffer.alloc(1 + c.rng.below(16));
    for (let k = 0; k < ins.length; k++) ins[k] = c.rng.chance(0.5) ? c.rng.below(256) : c.rng.pick(INTERESTING_8);
    return clamp(Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]), c.maxLen);
  },
  // Duplicate a chunk elsewhere (repeated fields, many lines, many frames).
  (b, c) => {
    if (b.length === 0) return b;
    const i = c.rng.below(b.length);
    const n = 1 + c.rng.below(Math.min(128, b.length - i));
    const at = c.rng.below(b.length + 1);
    const chunk = b.subarray(i, i + n);
    const times = c.rng.chance(0.2) ? 1 + c.rng.below(16) : 1;
    return clamp(Buffer.concat([b.subarray(0, at), ...new Array<Buffer>(times).fill(chunk), b.subarray(at)]), c.maxLen);
  },
  // Splice with another input: a head of one, a tail of the other.
  (b, c) => {
    const o = c.other();
    const i = c.rng.below(b.length + 1);
    const j = c.rng.below(o.length + 1);
    return clamp(Buffer.concat([b.subarray(0, i), o.subarray(j)]), c.maxLen);
  },
  // Insert a dictionary token.
  (b, c) => {
    if (c.dict.length === 0) return b;
    const t = c.rng.pick(c.dict);
    const i = c.rng.below(b.length + 1);
    return clamp(Buffer.concat([b.subarray(0, i), t, b.subarray(i)]), c.maxLen);
  },
  // Overwrite with a dictionary token.
  (b, c) => {
    if (c.dict.length === 0 || b.length === 0) return b;
    const t = c.rng.pick(c.dict);
    const i = c.rng.below(b.length);
    const o = Buffer.from(b);
    t.copy(o, i, 0, Math.min(t.length, o.length - i));
    return o;
  },
  // Length-field tweak: write "bytes that follow ± a little" as u8, u16, u32 or CompactSize.
  (b, c) => {
    if (b.length < 2) return b;
    const o = Buffer.from(b);
    const i = c.rng.below(o.length - 1);
    const d = c.rng.below(5) - 2;
    const form = c.rng.below(5);
    const size = [1, 2, 2, 4, 3][form]!;
    if (i + size > o.length) return o;
    const follow = Math.max(0, o.length - i - size + d);
    if (form === 0) o[i] = follow & 0xff;
    else if (form === 1) o.writeUInt16LE(follow & 0xffff, i);
    else if (form === 2) o.writeUInt16BE(follow & 0xffff, i);
    else if (form === 3) o.writeUInt32LE(follow >>> 0, i);
    else {
      o[i] = 0xfd;
      o.writeUInt16LE(follow & 0xffff, i + 1);
    }
    return o;
  },
  // Truncate.
  (b, c) => (b.length < 2 ? b : b.subarray(0, c.rng.below(b.length))),
];

/** 1 to 8 stacked mutations of `input`, at most `maxLen` bytes. */
export function mutate(input: Buffer, c: MutateContext): Buffer {
  let b = input;
  const n = 1 << c.rng.below(4);
  for (let k = 0; k < n; k++) b = mutators[c.rng.below(mutators.length)]!(b, c);
  return clamp(b, c.maxLen);
}
