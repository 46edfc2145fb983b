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
  /** `direct`: plain TCP coordination inside the lab (A listens on `directPort`, its router forwards it). */
  overlay?: 'tor' | 'i2p' | 'direct';
  /** a (direct): the TCP port A's coordination server listens on. */
  directPort?: number;
  /** a: listener limits instead of the lab's defaults (lab stress raises them to its concurrency). */
  limits?: Record<string, number>;
  /** b: client limits (attempts at once per endpoint and netgroup) instead of the defaults. */
  clientLimits?: { perEndpoint?: number; perNetgroup?: number; maxKeys?: number };
  /**
   * a: attach the session and engine timelines to only the first `timelines` connections and failures (lab
   * stress: thousands of sessions must not flood the parent); every message still carries `ttcMs`.
   */
  timelines?: number;
  /**
   * a/b (lab stress --report): also keep the whole timelines of the `slowest` slowest sessions (A: request to
   * established; B: its whole punch) and the first `failed` failures, sent on the `timelines` command.
   */
  tail?: { slowest: number; failed: number };
  /** a/b: every session's compact steps (first time of each event, SYN/stall/RST counts) on its line. */
  steps?: boolean;
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
  /** b: the whole session's deadline and the overlay dial's timeout (ms; default the client's, 45 s and 60 s). */
  sessionDeadlineMs?: number;
  fireDelayMs?: number;
  /**
   * a: keep a warm announced punch port and serve zero-round-trip requests (its endpoint goes in `ready`);
   * b: the target offers zero-round-trip (A's `ready` endpoint); each `punch` command's `zeroRtt` picks the path.
   */
  zeroRtt?: { port: number } | boolean;
  /** a/b: take part in birthday sprays through endpoint-dependent NATs (`hardnat=1`). */
  hardNat?: boolean;
}
