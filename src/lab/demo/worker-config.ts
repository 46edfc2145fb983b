/** Configuration of a demo/lab worker (see worker.ts), passed as its first argv in JSON. */
import type { Endpoint } from '../../nat/types.js';
import type { NetworkName } from '../../wire/index.js';
import type { PunchProfile } from '../../punch/messages.js';

export interface WorkerConfig {
  role: 'natcheck' | 'a' | 'b';
  network?: NetworkName;
  /** natcheck: listen address. */
  listen?: Endpoint;
  /** a/b: NAT-check servers (two for the EIM check). */
  natcheck?: Endpoint[];
  family?: 4 | 6;
  /** Local address to punch from (IPv6 needs the global one). */
  localAddress?: string;
  overlay?: 'tor' | 'i2p';
  /** a: tor control port (inside A's namespace). */
  control?: { host: string; port: number; cookieFile?: string; password?: string };
  /** b: tor SOCKS port (inside B's namespace). */
  socks?: { host: string; port: number };
  /** a: I2P SAM; b: I2P SAM. */
  sam?: { host: string; port: number };
  /** I2CP options for the SAM session (short tunnels on the private network). */
  samOptions?: Record<string, string | number>;
  /** b: the coordination endpoint to punch, and A's public IP (from A's EIM check; null: unchecked). */
  target?: { address: string; port: number; expectIp: string | null };
  profile?: PunchProfile;
  primeTtl?: number;
  deadlineMs?: number;
  fireDelayMs?: number;
  /** a/b: take part in birthday sprays through endpoint-dependent NATs (`hardnat=1`). */
  hardNat?: boolean;
}
