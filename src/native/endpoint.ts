/** A numeric IPv4 or IPv6 address and a TCP port: the one Endpoint type, defined in src/ip.ts. */
export type { Endpoint } from '../ip.js';
