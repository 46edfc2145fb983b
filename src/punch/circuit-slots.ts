/**
 * Which overlay circuit a B session to one coordination endpoint rides. Sessions one after another share one
 * circuit (a warm Tor rendezvous circuit answers in one round trip, a fresh one costs a rendezvous); sessions
 * at the same time to the same endpoint get distinct circuits, up to {@link MAX_CIRCUITS_PER_ENDPOINT}. Tor
 * carries every stream of a circuit in order, so one stall on a shared circuit (a segment lost on one of its
 * links) holds every session on it at once: measured in `lab stress` over the private Tor network, where 100
 * sessions on one circuit gave p99 ÷ median 1.90–3.68 in 12 runs (2 above 3), and slots 1.58–2.41 in 12
 * (docs/BENCHMARKS.md, session 24). A node's own client runs one session per endpoint at a time
 * (`perEndpoint`, default 1), so it always rides slot 0: the circuit it had before.
 */

/** Circuits one endpoint's concurrent sessions spread over at most (each is a rendezvous A builds too). */
export const MAX_CIRCUITS_PER_ENDPOINT = 16;

/** A session's slot: the dialer's isolation key for it, and the release to call when the session ends. */
export interface CircuitSlot {
  slot: number;
  isolationKey: string;
  release: () => void;
}

export class CircuitSlots {
  /** Per endpoint with sessions in flight: sessions per slot. Entries go when their last session ends. */
  private readonly busy = new Map<string, number[]>();

  /** Sessions in flight per slot for `key` (empty when none). */
  load(key: string): readonly number[] {
    return this.busy.get(key) ?? [];
  }

  /** Takes the lowest free slot for `key`, or when all are taken the least loaded one. */
  acquire(key: string): CircuitSlot {
    let counts = this.busy.get(key);
    if (!counts) this.busy.set(key, (counts = []));
    let slot = counts.findIndex((n) => n === 0);
    if (slot < 0) {
      if (counts.length < MAX_CIRCUITS_PER_ENDPOINT) slot = counts.length;
      else slot = counts.indexOf(Math.min(...counts));
    }
    counts[slot] = (counts[slot] ?? 0) + 1;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const c = this.busy.get(key);
      if (!c) return;
      c[slot] = Math.max(0, (c[slot] ?? 0) - 1);
      if (c.every((n) => n === 0)) this.busy.delete(key);
    };
    return { slot, isolationKey: slot === 0 ? key : `${key}#${slot}`, release };
  }
}
