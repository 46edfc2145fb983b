/**
 * Hole-punch announcements: addrv2 entries of network id NET_HOLEPUNCH that name a coordination endpoint
 * (onion or I2P) and the clearnet endpoint its owner accepts punched inbound on (docs/PROTOCOL.md).
 */
import {
  NET_HOLEPUNCH,
  NODE_HOLEPUNCH,
  NODE_HOLEPUNCH_ZRTT,
  NODE_NETWORK_LIMITED,
  type AddrV2Entry,
} from '../wire/index.js';
import { RelayError } from './errors.js';

/** How long an announcement is worth relaying or dialing: 10 minutes, as the proposal asks. */
export const ANNOUNCEMENT_MAX_AGE_S = 600;
/** Clock skew we tolerate for announcements stamped in the future. */
export const ANNOUNCEMENT_MAX_FUTURE_S = 600;

/** A validated announcement. */
export interface Announcement {
  /** `xxx.onion` or `xxx.b32.i2p`. */
  coordination: string;
  /** Virtual port of the coordination endpoint. */
  coordinationPort: number;
  clearnet: { address: string; port: number };
  services: bigint;
  /** Announcement time, seconds since the epoch. */
  time: number;
}

/** Options for {@link makeAnnouncement}. */
export interface MakeAnnouncementOptions {
  coordination: string;
  coordinationPort: number;
  clearnet: { address: string; port: number };
  /** Extra service bits; NODE_HOLEPUNCH is always set. NETWORK_LIMITED by default, so that nodes
   *  which ignore entries without NETWORK or NETWORK_LIMITED still pass it through their addr logic. */
  services?: bigint;
  /**
   * Sets NODE_HOLEPUNCH_ZRTT: `clearnet` is the listener's warm announced port (`zeroRttEndpoint()`), so B may use
   * zero-round-trip coordination. Only while that endpoint is confirmed.
   */
  zeroRtt?: boolean;
  nowS?: number;
}

/** Builds the addrv2 entry a node announces for itself. */
export function makeAnnouncement(o: MakeAnnouncementOptions): AddrV2Entry {
  return {
    time: o.nowS ?? Math.floor(Date.now() / 1000),
    services: (o.services ?? NODE_NETWORK_LIMITED) | NODE_HOLEPUNCH | (o.zeroRtt ? NODE_HOLEPUNCH_ZRTT : 0n),
    network: 'holepunch',
    networkId: NET_HOLEPUNCH,
    address: o.coordination,
    port: o.coordinationPort,
    clearnet: { ...o.clearnet },
  };
}

/**
 * Turns an addrv2 entry into an Announcement, or throws RELAY_NOT_ANNOUNCEMENT saying why
 * (wrong network, missing service bit, missing clearnet part).
 */
export function toAnnouncement(e: AddrV2Entry): Announcement {
  if (e.network !== 'holepunch')
    throw new RelayError('RELAY_NOT_ANNOUNCEMENT', `network is ${e.network}, not holepunch`);
  if ((e.services & NODE_HOLEPUNCH) === 0n) {
    throw new RelayError('RELAY_NOT_ANNOUNCEMENT', 'services lack NODE_HOLEPUNCH');
  }
  if (!e.clearnet) throw new RelayError('RELAY_NOT_ANNOUNCEMENT', 'holepunch entry without its clearnet endpoint');
  return {
    coordination: e.address,
    coordinationPort: e.port,
    clearnet: { ...e.clearnet },
    services: e.services,
    time: e.time,
  };
}

/** Whether an announcement's time lies within [now - 10 min, now + skew]. */
export function isFresh(a: { time: number }, nowS: number): boolean {
  return a.time <= nowS + ANNOUNCEMENT_MAX_FUTURE_S && a.time >= nowS - ANNOUNCEMENT_MAX_AGE_S;
}

/**
 * Identity of what an announcement announces, without its time: coordination endpoint and clearnet endpoint.
 * The relay's choice of targets hashes this (never the sender-chosen time), so resending one address with other
 * times cannot reach more peers.
 */
export function announcementAddressKey(
  a: Pick<Announcement, 'coordination' | 'coordinationPort' | 'clearnet'>,
): string {
  return `${a.coordination}:${a.coordinationPort}|${a.clearnet.address}|${a.clearnet.port}`;
}

/** Identity of an announcement for deduplication: endpoint, clearnet and time. */
export function announcementKey(a: Announcement): string {
  return `${a.coordination}:${a.coordinationPort}|${a.clearnet.address}|${a.clearnet.port}|${a.time}`;
}
