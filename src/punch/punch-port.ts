/**
 * A punch port whose public mapping the peer will accept.
 *
 * The peer refuses a whole endpoint set when any port in it is on Bitcoin Core's bad-port list
 * (checkTargets: PUNCH_TARGET_BAD_PORT), and it must: that list is what keeps a coordination stream from aiming
 * SYNs at ssh or smtp. A port-preserving NAT maps our ephemeral port (32768..60999 on Linux, no bad port) to
 * itself, but a port-translating one maps it anywhere: about one mapping in seven hundred lands on the list
 * (the lab's eim-shift NAT hit 110 in CI). A fresh local port gets a fresh mapping, so the side that owns the
 * mapping takes another port instead of announcing one the peer must refuse.
 */
import type { Endpoint } from '../nat/types.js';
import { formatEndpoint } from '../ip.js';
import type { DiscoveryResult } from '../nat/mapping.js';
import { PunchSessionError, type Side } from './errors.js';
import { isBadPort } from './bad-ports.js';
import { ownEndpoints } from './session-common.js';

/**
 * Punch ports one preparation tries before it gives up (each costs one discovery). Three mappings in a row on
 * the bad-port list by chance has odds near 1e-9; a NAT that does it is mapping onto that list on purpose.
 */
export const MAX_PUNCH_PORT_TRIES = 3;

/** A local punch port and the discovered public mapping we announce for it. */
export interface PreparedPunchPort {
  local: Endpoint;
  discovery: DiscoveryResult;
}

export interface PreparePunchPortOptions {
  /** A fresh local punch port (each call a new one). */
  allocate(): Promise<Endpoint>;
  /** The public mapping of `local` (budgeted by the caller). */
  discover(local: Endpoint): Promise<DiscoveryResult>;
  family: 4 | 6;
  /** Whose mapping this is (the error's `side`). */
  side: Side;
  /** Told of each port dropped because its mapping is on the bad-port list (timelines). */
  onBadMapping?(local: Endpoint, mapped: Endpoint[]): void;
}

/** The mappings among our announced endpoints (ownEndpoints) that a peer's checkTargets would refuse. */
export function badMappings(discovery: DiscoveryResult, family: 4 | 6): Endpoint[] {
  return ownEndpoints(discovery.endpoints, family)
    .filter((e) => isBadPort(e.port))
    .map((e) => ({ address: e.address, port: e.port }));
}

/**
 * Allocates a punch port and discovers its mapping, again on a new port while the mapping is on the bad-port
 * list, at most MAX_PUNCH_PORT_TRIES ports. Discovery errors pass through unchanged; all mappings bad →
 * PUNCH_DISCOVERY naming them.
 */
export async function preparePunchPort(opts: PreparePunchPortOptions): Promise<PreparedPunchPort> {
  const seen: string[] = [];
  for (let i = 0; i < MAX_PUNCH_PORT_TRIES; i++) {
    const local = await opts.allocate();
    const discovery = await opts.discover(local);
    const bad = badMappings(discovery, opts.family);
    if (bad.length === 0) return { local, discovery };
    opts.onBadMapping?.(local, bad);
    seen.push(`${local.port} -> ${bad.map(formatEndpoint).join(' ')}`);
  }
  const why =
    `${opts.side}'s NAT mapped ${MAX_PUNCH_PORT_TRIES} punch ports onto Bitcoin Core's bad-port list, which the ` +
    `peer refuses (${seen.join(', ')})`;
  throw new PunchSessionError('PUNCH_DISCOVERY', why, { step: 'discovery', side: opts.side });
}
