/**
 * The simulator's event queue: a binary min-heap on (time, insertion order) over typed arrays, so that millions of
 * pending events cost a few bytes each and no per-event object. Equal times pop in insertion order, which keeps a
 * run deterministic.
 */
export class EventHeap {
  private time: Float64Array;
  private seq: Float64Array;
  private kind: Uint8Array;
  private arg: Int32Array;
  private n = 0;
  private counter = 0;

  constructor(capacity = 1 << 16) {
    this.time = new Float64Array(capacity);
    this.seq = new Float64Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.arg = new Int32Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  push(time: number, kind: number, arg: number): void {
    if (this.n === this.time.length) this.grow();
    let i = this.n++;
    const s = this.counter++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.time[p]! < time || (this.time[p] === time && this.seq[p]! < s)) break;
      this.move(p, i);
      i = p;
    }
    this.time[i] = time;
    this.seq[i] = s;
    this.kind[i] = kind;
    this.arg[i] = arg;
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTime(): number {
    return this.n === 0 ? Infinity : this.time[0]!;
  }

  /** Removes the earliest event; its fields are then in `lastKind`, `lastArg`, `lastTime`. */
  pop(): boolean {
    if (this.n === 0) return false;
    this.lastTime = this.time[0]!;
    this.lastKind = this.kind[0]!;
    this.lastArg = this.arg[0]!;
    const last = --this.n;
    if (last === 0) return true;
    const t = this.time[last]!;
    const s = this.seq[last]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      let c = l;
      const tr = this.time[r]!;
      const tl = this.time[l]!;
      if (r < last && (tr < tl || (tr === tl && this.seq[r]! < this.seq[l]!))) c = r;
      if (t < this.time[c]! || (t === this.time[c] && s < this.seq[c]!)) break;
      this.move(c, i);
      i = c;
    }
    this.time[i] = t;
    this.seq[i] = s;
    this.kind[i] = this.kind[last]!;
    this.arg[i] = this.arg[last]!;
    return true;
  }

  lastTime = 0;
  lastKind = 0;
  lastArg = 0;

  private move(from: number, to: number): void {
    this.time[to] = this.time[from]!;
    this.seq[to] = this.seq[from]!;
    this.kind[to] = this.kind[from]!;
    this.arg[to] = this.arg[from]!;
  }

  private grow(): void {
    const cap = this.time.length * 2;
    const t = new Float64Array(cap);
    t.set(this.time);
    this.time = t;
    const s = new Float64Array(cap);
    s.set(this.seq);
    this.seq = s;
    const k = new Uint8Array(cap);
    k.set(this.kind);
    this.kind = k;
    const a = new Int32Array(cap);
    a.set(this.arg);
    this.arg = a;
  }
}
