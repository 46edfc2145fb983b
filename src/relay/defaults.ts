/**
 * The relay defaults, one table for the daemons (src/daemon/), the relay classes and the simulator (src/sim/).
 * The values follow the simulation's recommendation (docs/SIMULATION.md, "Recommendation"): push gossip with
 * fan-out 2 reaches ~0.1-1.2% of the NATed nodes; relays that keep a fresh set and serve it on every (rate-limited)
 * `getaddr`, asked every 120 s, reach ~100% of them, 90% within ~140 s.
 */

/** Relay targets per pushed announcement (Bitcoin Core: 2 for reachable networks). */
export const RELAY_FANOUT = 2;
/**
 * Most entries in one pushed (relayed) addrv2 message, and the most a message may carry for its entries to be
 * relayed on (Bitcoin Core: 10); a getaddr answer is larger and is not gossip.
 */
export const RELAY_PUSH_MAX_ENTRIES = 10;
/**
 * Tokens a peer's relay bucket (0.1 entry/s, up to 1000) holds when the relay first hears from it: one relayable
 * message's worth, so that a new peer's self-announcement (and its few other endpoints) pass at once, while the
 * rest of the budget is earned by connection time, as Bitcoin Core's addr token bucket, which starts at 1
 * (`m_addr_token_bucket`). A full bucket at connect let every new connection, and every reconnect (a new peer id),
 * push 1000 fresh fakes at once, which then fill the fresh sets relays serve (docs/SIMULATION.md, "Attacks").
 */
export const RELAY_BUCKET_INITIAL = RELAY_PUSH_MAX_ENTRIES;
/** Most entries in one getaddr answer message (Bitcoin Core's MAX_ADDR_TO_SEND; addrv2's limit). */
export const GETADDR_ANSWER_MAX_ENTRIES = 1000;
/** How often a proxy asks its relays, and a relay its `addnode` relays, for their fresh set, s. */
export const GETADDR_INTERVAL_S = 120;
/**
 * Least time between two getaddr answers a relay gives one asker, s, keyed by the asker's address (IPv4, IPv6 /64),
 * not its connection, so that reconnecting does not earn another answer. Half the ask period, so that a client's
 * timer jitter is never refused.
 */
export const GETADDR_MIN_SPACING_S = 60;
/** Self-announcement period of serve, s (the daemon's `announceinterval` default). */
export const ANNOUNCE_INTERVAL_S = 300;
/** Relays a serve/proxy keeps links to (the daemon's `maxrelays` default; the simulator's relays per node). */
export const RELAYS_PER_NODE = 2;

/** Splits `entries` into messages of at most `max` entries (push: {@link RELAY_PUSH_MAX_ENTRIES}). */
export function chunkEntries<T>(entries: readonly T[], max: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < entries.length; i += max) out.push(entries.slice(i, i + max));
  return out;
}
