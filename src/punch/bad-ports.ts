/**
 * Ports a punch never aims SYNs at: the list of Bitcoin Core's `IsBadPort()` (src/netbase.cpp,
 * doc/p2p-bad-ports.md). They belong to services that are usually not public and need authentication, so
 * a connection attempt to them may look like an attack on that service; a coordination stream must not be
 * able to make A (or B) knock on them. Port 0 is not a port at all and is refused as well.
 */
const BAD_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3306, 3389, 3659, 4045, 5060,
  5061, 5432, 5900, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080, 27017,
]);

/** True when `port` is on Bitcoin Core's bad-port list (or is 0 / out of range). */
export function isBadPort(port: number): boolean {
  return !Number.isInteger(port) || port < 1 || port > 65535 || BAD_PORTS.has(port);
}
