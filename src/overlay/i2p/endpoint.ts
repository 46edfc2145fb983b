/**
 * The I2P coordination endpoint (A side): a SAM STREAM session with a key of its own that receives callers
 * through `STREAM FORWARD`: the bridge opens one TCP connection to our local listener per incoming stream, so
 * there is no moment without an acceptor and no caller can be lost (docs/I2P.md, "Accepting callers"). A bridge
 * that refuses FORWARD gets the older pool of pending `STREAM ACCEPT`s, re-armed after every stream.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AcceptedStreamInfo, CoordinationEndpoint } from '../types.js';
import { SamSession, SamConnection, b32Address, SAM_DEFAULT_TIMEOUT_MS, type SamAddress } from './sam.js';
import { SamError } from './errors.js';
import { isLoopback } from '../../ip.js';

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
   * How callers are received. 'forward': STREAM FORWARD (no caller can be lost), which needs the bridge to be
   * able to connect back to us; 'accept': a pool of pending STREAM ACCEPTs. 'auto' (default): 'forward' when we
   * reach the bridge over loopback (bitcoind's usual `-i2psam=127.0.0.1:7656`; nothing can stand between),
   * else 'accept' (a NAT between us and a remote bridge would silently swallow its connections back). A bridge
   * that refuses FORWARD gets 'accept' too.
   */
  mode?: 'auto' | 'forward' | 'accept';
  /**
   * 'accept' mode only: pending STREAM ACCEPTs kept armed (default 4). A caller that arrives while none is
   * pending can be lost silently (its STREAM CONNECT already said OK; seen in CI: 3 simultaneous callers,
   * pool 2, one never accepted), which is why 'forward' is preferred.
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

/** Bound on the destination line the bridge writes first on a forwarded connection. */
export const I2P_FORWARD_LINE_TIMEOUT_MS = 10_000;
/** Forwarded connections still waiting for their destination line, at most (memory bound). */
export const I2P_FORWARD_MAX_PENDING = 64;

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
  private readonly streams = new Set<Socket>();
  private readonly loops: Promise<void>[] = [];
  private server: Server | null = null;
  private forwardConn: SamConnection | null = null;
  private readonly preIdent = new Set<Socket>();
  /** How this endpoint receives callers ('accept' when the bridge refused FORWARD). */
  mode: 'forward' | 'accept' = 'forward';

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
      void this.stopForward();
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
    const mode = opts.mode ?? 'auto';
    if (mode === 'forward' || (mode === 'auto' && isLoopback(session.localAddress ?? ''))) {
      try {
        await ep.startForward(opts.signal);
        return ep;
      } catch (err) {
        // Only a bridge that answered "no" falls back; a dead router or a timeout is the caller's to see.
        const refused =
          err instanceof SamError && ['SAM_I2P_ERROR', 'SAM_PROTOCOL', 'SAM_UNKNOWN_RESULT'].includes(err.code);
        if (!refused || session.closed) {
          await ep.close();
          throw err;
        }
        ep.log(`i2p endpoint ${ep.address}: STREAM FORWARD refused (${err.code}); using pending accepts`);
        await ep.stopForward();
      }
    }
    ep.mode = 'accept';
    const pool = Math.max(1, Math.min(opts.acceptPool ?? 4, 16));
    for (let i = 0; i < pool; i++) ep.loops.push(ep.acceptLoop(i));
    return ep;
  }

  private async startForward(signal: AbortSignal | undefined): Promise<void> {
    const server = createServer((sock) => this.onForwarded(sock));
    this.server = server;
    server.on('error', () => {});
    const conn = await this.session.forward(
      (host) =>
        new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, host, () => {
            server.off('error', reject);
            resolve((server.address() as { port: number }).port);
          });
        }),
      { timeoutMs: SAM_DEFAULT_TIMEOUT_MS, ...(signal ? { signal } : {}) },
    );
    this.forwardConn = conn;
    // Forwarding lasts as long as this connection: if the bridge drops it, no caller can reach us any more.
    conn.socket.once('close', () => {
      if (this.closing) return;
      const err = new SamError('SAM_CLOSED', 'the SAM bridge closed the STREAM FORWARD connection');
      this.closing = true;
      this.aborter.abort();
      this.log(`i2p endpoint ${this.address}: down (${err.code})`);
      this.emit('down', err);
      void this.session.close();
      void this.stopForward();
    });
  }

  /**
   * One forwarded caller: only the bridge may connect (its address), the first line is the caller's
   * destination (bounded in size and time), the rest is the stream.
   */
  private onForwarded(sock: Socket): void {
    const bridge = this.forwardConn?.socket.remoteAddress;
    if (this.closing || !bridge || sock.remoteAddress !== bridge || this.preIdent.size >= I2P_FORWARD_MAX_PENDING) {
      sock.destroy();
      return;
    }
    sock.on('error', () => {});
    this.preIdent.add(sock);
    const conn = new SamConnection(sock);
    conn.readLine(I2P_FORWARD_LINE_TIMEOUT_MS, this.aborter.signal).then(
      (line) => {
        this.preIdent.delete(sock);
        let peer: string;
        try {
          peer = b32Address(line.split(' ')[0] ?? '');
        } catch {
          this.log(`i2p endpoint ${this.address}: forwarded connection without a valid destination line`);
          conn.destroy();
          return;
        }
        if (this.closing) return void conn.destroy();
        const s = conn.detach();
        s.on('error', () => {});
        this.streams.add(s);
        s.once('close', () => this.streams.delete(s));
        const info: AcceptedStreamInfo = { peer };
        this.emit('stream', s as Duplex, info);
      },
      () => {
        this.preIdent.delete(sock);
        conn.destroy();
      },
    );
  }

  private async stopForward(): Promise<void> {
    this.forwardConn?.destroy();
    this.forwardConn = null;
    for (const s of this.preIdent) s.destroy();
    this.preIdent.clear();
    const server = this.server;
    this.server = null;
    if (server?.listening) await new Promise<void>((r) => server.close(() => r()));
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
        this.log(
          `i2p endpoint slot ${slot}: accept failed (${err instanceof SamError ? err.code : String(err)}), retrying`,
        );
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
    for (const s of this.streams) s.destroy();
    this.streams.clear();
    await this.stopForward();
    await Promise.allSettled(this.loops);
  }
}
