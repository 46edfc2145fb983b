/**
 * The I2P coordination endpoint (A side): a SAM STREAM session with a key of its own, and a small pool of
 * pending STREAM ACCEPTs (each on its own SAM connection) that is re-armed after every accepted stream.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { AcceptedStreamInfo, CoordinationEndpoint } from '../types.js';
import { SamSession, type SamAddress } from './sam.js';
import { SamError } from './errors.js';

/** Options of {@link I2pCoordinationEndpoint.create}. */
export interface I2pEndpointOptions {
  /** The router's SAM bridge (bitcoind's `-i2psam`, usually 127.0.0.1:7656). */
  sam: SamAddress;
  /**
   * Private key (I2P base64) of this endpoint's own destination, for a stable address across restarts. It must
   * be used for nothing else (never bitcoind's I2P key). Default: a transient destination.
   */
  privateKey?: string;
  /**
   * Pending STREAM ACCEPTs kept armed (default 4). A caller that arrives while none is pending can be lost
   * silently (its STREAM CONNECT already said OK; seen in CI: 3 simultaneous callers, pool 2, one never
   * accepted), so the pool is sized for bursts rather than relying on a fast re-arm.
   */
  acceptPool?: number;
  /** I2CP options of the session (tunnel lengths and quantities). */
  sessionOptions?: Record<string, string | number>;
  /** Bound on session creation, per attempt (default 90 s). */
  timeoutMs?: number;
  /** Session creation attempts after `SAM_TIMEOUT` (default 1; see `SamSessionOptions.attempts`). */
  attempts?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

const RETRY_MS = 1000;

/**
 * A listening I2P coordination endpoint. Events: `stream` (stream: Duplex, info: { peer: b32 }),
 * `down` (err: SamError) when the router ends the session (it is then closed; make a new one).
 */
export class I2pCoordinationEndpoint extends EventEmitter implements CoordinationEndpoint {
  readonly kind = 'i2p' as const;
  /** SAM 3.1 has no ports: always 0. */
  readonly port = 0;
  private closing = false;
  private readonly aborter = new AbortController();
  private readonly loops: Promise<void>[] = [];

  private constructor(
    readonly session: SamSession,
    private readonly log: (line: string) => void,
  ) {
    super();
    session.once('down', (err: SamError) => {
      if (this.closing) return;
      this.closing = true;
      this.aborter.abort();
      this.log(`i2p endpoint ${this.address}: down (${err.code})`);
      this.emit('down', err);
    });
  }

  /** `<52 base32>.b32.i2p` of this endpoint. */
  get address(): string {
    return this.session.b32;
  }

  /** Creates the session (~20 s on a fresh router) and arms the accept pool. */
  static async create(opts: I2pEndpointOptions): Promise<I2pCoordinationEndpoint> {
    const session = await SamSession.create(opts.sam, {
      privateKey: opts.privateKey,
      options: opts.sessionOptions,
      timeoutMs: opts.timeoutMs,
      attempts: opts.attempts,
      signal: opts.signal,
    });
    const ep = new I2pCoordinationEndpoint(session, opts.log ?? (() => {}));
    const pool = Math.max(1, Math.min(opts.acceptPool ?? 4, 16));
    for (let i = 0; i < pool; i++) ep.loops.push(ep.acceptLoop(i));
    return ep;
  }

  private async acceptLoop(slot: number): Promise<void> {
    while (!this.closing) {
      try {
        const acc = await this.session.accept({ signal: this.aborter.signal });
        if (this.closing) {
          acc.socket.destroy();
          return;
        }
        const info: AcceptedStreamInfo = { peer: acc.peerB32 };
        this.emit('stream', acc.socket as Duplex, info);
      } catch (err) {
        if (this.closing || this.session.closed) return;
        // A failed accept that did not end the session (e.g. the bridge refused one connection): retry.
        this.log(`i2p endpoint slot ${slot}: accept failed (${err instanceof SamError ? err.code : String(err)}), retrying`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, RETRY_MS);
          this.aborter.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
        });
      }
    }
  }

  /** Stops accepting and ends the session; open streams close with it. */
  async close(): Promise<void> {
    this.closing = true;
    this.aborter.abort();
    await this.session.close();
    await Promise.allSettled(this.loops);
  }
}
