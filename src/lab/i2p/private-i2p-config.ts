/**
 * i2pd configuration of one router of the private I2P network (settings measured in LAB-FACTS.md: 198.18.0.x
 * addresses, NTCP2 only, private netid, local zip reseed, no clearnet service of any kind).
 */

/** What differs between the routers of the private network. */
export interface I2pRouterConfig {
  /** The router's 198.18.0.x address (NTCP2 host and bind address). */
  ip: string;
  ntcp2Port: number;
  samHost: string;
  samPort: number;
  floodfill: boolean;
  netId: number;
  datadir: string;
  /** Zip of all routers' router.info; undefined during the key-creation start (no reseed at all then). */
  reseedZip: string | undefined;
  logLevel: 'warn' | 'info' | 'debug';
}

/** The text of i2pd.conf for one router. */
export function i2pdConf(c: I2pRouterConfig): string {
  return [
    `log = file`,
    `logfile = ${c.datadir}/i2pd.log`,
    `loglevel = ${c.logLevel}`,
    `pidfile = ${c.datadir}/i2pd.pid`,
    `daemon = false`,
    `service = false`,
    `host = ${c.ip}`,
    `address4 = ${c.ip}`,
    `port = ${c.ntcp2Port}`,
    `ipv4 = true`,
    `ipv6 = false`,
    `nat = false`,
    `reservedrange = false`,
    `netid = ${c.netId}`,
    `floodfill = ${c.floodfill}`,
    `bandwidth = X`,
    ``,
    `[ntcp2]`,
    `enabled = true`,
    `published = true`,
    `port = ${c.ntcp2Port}`,
    ``,
    `[ssu2]`,
    `enabled = false`,
    ``,
    `[http]`,
    `enabled = false`,
    ``,
    `[httpproxy]`,
    `enabled = false`,
    ``,
    `[socksproxy]`,
    `enabled = false`,
    ``,
    `[sam]`,
    `enabled = true`,
    `address = ${c.samHost}`,
    `port = ${c.samPort}`,
    ``,
    `[bob]`,
    `enabled = false`,
    ``,
    `[i2cp]`,
    `enabled = false`,
    ``,
    `[i2pcontrol]`,
    `enabled = false`,
    ``,
    `[upnp]`,
    `enabled = false`,
    ``,
    `[nettime]`,
    `enabled = false`,
    ``,
    `[precomputation]`,
    `elgamal = false`,
    ``,
    `[reseed]`,
    `verify = false`,
    // No reseed URL is ever contacted: the zip (or nothing, on the key-creation start) is the only source.
    `urls = `,
    `yggurls = `,
    ...(c.reseedZip ? [`zipfile = ${c.reseedZip}`] : []),
    ``,
    // Keep the address book on (a b32 lookup crashes i2pd 2.45.1 without it) but subscribe to nothing.
    `[addressbook]`,
    `enabled = true`,
    `defaulturl = http://127.0.0.1:1/none.txt`,
    `subscriptions = http://127.0.0.1:1/none.txt`,
    ``,
    `[exploratory]`,
    `inbound.length = 1`,
    `outbound.length = 1`,
    `inbound.quantity = 2`,
    `outbound.quantity = 2`,
    ``,
  ].join('\n');
}
