/**
 * B's short-lived view of hole-punch announcements. Every announcement that shares one coordination
 * endpoint counts as ONE address (a coordinator must not flood B with fake peers by announcing many
 * clearnet endpoints); entries expire after 10 minutes; the table is bounded. Nothing goes to addrman.
 */
import { ANNOUNCEMENT_MAX_AGE_S, isFresh, type Announcement } from './announcement.js';

export interface AnnouncementDirectoryOptions {
  /** Most coordination endpoints remembered. */
  maxEndpoints?: number;
  nowS?: () => number;
}

export class AnnouncementDirectory {
  private readonly byEndpoint = new Map<string, Announcement>();
  private readonly maxEndpoints: number;
  private readonly nowS: () => number;

  constructor(opts: AnnouncementDirectoryOptions = {}) {
    this.maxEndpoints = opts.maxEndpoints ?? 1000;
    this.nowS = opts.nowS ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Records an announcement; a newer one for the same endpoint replaces the older. Returns whether kept. */
  add(a: Announcement): boolean {
    const now = this.nowS();
    if (!isFresh(a, now)) return false;
    const key = `${a.coordination}:${a.coordinationPort}`;
    const old = this.byEndpoint.get(key);
    if (old && old.time >= a.time) return false;
    this.byEndpoint.delete(key);
    if (this.byEndpoint.size >= this.maxEndpoints) this.expire();
    if (this.byEndpoint.size >= this.maxEndpoints) {
      const oldest = this.byEndpoint.keys().next().value;
      if (oldest !== undefined) this.byEndpoint.delete(oldest);
    }
    this.byEndpoint.set(key, a);
    return true;
  }

  /** The announcement whose clearnet endpoint is `address:port`, if fresh (the SOCKS proxy's lookup). */
  findByClearnet(address: string, port: number): Announcement | undefined {
    this.expire();
    for (const a of this.byEndpoint.values()) {
      if (a.clearnet.address === address && a.clearnet.port === port) return a;
    }
    return undefined;
  }

  /** Fresh announcements, newest first. */
  list(): Announcement[] {
    this.expire();
    return [...this.byEndpoint.values()].sort((x, y) => y.time - x.time);
  }

  get size(): number {
    return this.byEndpoint.size;
  }

  private expire(): void {
    const cutoff = this.nowS() - ANNOUNCEMENT_MAX_AGE_S;
    for (const [k, a] of this.byEndpoint) if (a.time < cutoff) this.byEndpoint.delete(k);
  }
}
