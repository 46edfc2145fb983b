/** A numeric IPv4 or IPv6 address and a TCP port. */
export interface Endpoint {
  address: string;
  port: number;
}
