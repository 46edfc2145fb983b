/**
 * Admission of inbound connections by netgroup, shared by every public listener (the NAT-check service, the relay):
 * a cap per netgroup and a global cap at which a newcomer may evict the youngest connection of the most crowded
 * netgroup — only when that group holds at least two more than the newcomer's own, so one network flooding the
 * listener loses its own connections first and cannot push others out (Bitcoin Core's inbound eviction protects
 * netgroup diversity the same way).
 */
import { netgroup } from '../ip.js';

/** Why a newcomer was not admitted: its netgroup is at its cap, or the listener is full with nobody to evict. */
export type AdmissionRefusal = 'netgroup' | 'full' | 'bad-address';

/** The verdict for one newcomer. `evict`, when set, must be closed (and {@link NetgroupAdmission.remove}d). */
export type Admission<T> = { ok: true; group: string; evict?: T } | { ok: false; why: AdmissionRefusal };

export interface NetgroupAdmissionOptions {
  /** Connections at once, all netgroups. */
  maxConnections: number;
  /** Connections at once per netgroup. */
  perNetgroup: number;
}

/** Open connections per netgroup (oldest first) with the two caps; `T` is the caller's connection record. */
export class NetgroupAdmission<T> {
  private readonly groups = new Map<string, Set<T>>();
  private readonly groupOf = new Map<T, string>();

  constructor(private readonly opts: NetgroupAdmissionOptions) {}

  /** Connections admitted and not yet removed. */
  get size(): number {
    return this.groupOf.size;
  }

  /** Decides on a newcomer from `address` (nothing is recorded until {@link add}). */
  admit(address: string): Admission<T> {
    const group = netgroup(address);
    if (group === undefined) return { ok: false, why: 'bad-address' };
    const own = this.groups.get(group)?.size ?? 0;
    if (own >= this.opts.perNetgroup) return { ok: false, why: 'netgroup' };
    if (this.groupOf.size < this.opts.maxConnections) return { ok: true, group };
    let best: Set<T> | undefined;
    for (const set of this.groups.values()) if (!best || set.size > best.size) best = set;
    if (!best || best.size < own + 2) return { ok: false, why: 'full' };
    let youngest: T | undefined;
    for (const c of best) youngest = c;
    return youngest === undefined ? { ok: false, why: 'full' } : { ok: true, group, evict: youngest };
  }

  /** Records an admitted connection under its group. */
  add(group: string, c: T): void {
    let set = this.groups.get(group);
    if (!set) this.groups.set(group, (set = new Set()));
    set.add(c);
    this.groupOf.set(c, group);
  }

  /** Forgets a connection; idempotent (an eviction and the socket's close may both call it). */
  remove(c: T): boolean {
    const group = this.groupOf.get(c);
    if (group === undefined) return false;
    this.groupOf.delete(c);
    const set = this.groups.get(group);
    set?.delete(c);
    if (set && set.size === 0) this.groups.delete(group);
    return true;
  }

  /** Every admitted connection (a copy, safe to close while iterating). */
  all(): T[] {
    return [...this.groupOf.keys()];
  }
}
