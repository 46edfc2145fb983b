/**
 * TorCoordinationEndpoint: a coordination endpoint published as an ephemeral onion service (ADD_ONION) that
 * forwards to a local TCP listener. The service is tied to our control connection; when tor goes away the
 * endpoint emits `down`, reconnects with exponential backoff and re-publishes the same service from the key it
 * keeps in memory (unless DiscardPK), then emits `up`.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { CoordinationEndpoint, OverlayKind } from '../types.js';
import { TorControlClient, type TorAuthOptions, type TorControlOptions } from './control.js';
import { TorControlError } from './errors.js';

export interface TorEndpointOptions {
  /** The control port and how to authenticate to it. */
  control: TorControlOptions & { auth?: TorAuthOptions };
  /** Virtual port of the onion (default 8333). */
  virtualPort?: number;
  /** Address of the local listener the onion forwards to (default 127.0.0.1; port is always picked freely). */
  listenHost?: string;
  /**
   * Key to publish: default a NEW ED25519-V3 key made for this endpoint only. A stored `ED25519-V3:<base64>`
   * key may be passed to restore an endpoint; never share one key between endpoints.
   */
  key?: string;
  /** Tell tor not to return the private key (the endpoint then cannot be re-published after a tor restart). */
  discardPk?: boolean;
  /** Wait for the first HS_DESC UPLOADED before resolving (default true), ms or true (= 90 s). */
  waitForUpload?: boolean | number;
  /** Reconnect backoff: first delay and cap, ms (default 200 / 5000). */
  reconnect?: { initialMs?: number; maxMs?: number };
  log?: (line: string) => void;
}

/**
 * Events: `stream` (socket, {}), `down` (TorControlError), `up` (), `error` (only emitted when a listener exists).
 */
export class TorCoordinationEndpoint extends EventEmitter implements CoordinationEndpoint {
  readonly kind: OverlayKind = 'tor';
  readonly port: number;
  private _address = '';
  private serviceId = '';
  private privateKey: string | undefined;
  private control: TorControlClient | null = null;
  private server: Server | null = null;
  private target = '';
  private readonly streams = new Set<Socket>();
  private closing = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly log: (line: string) => void;
  /** Time the last publication took until HS_DESC UPLOADED (ms), when waited for. */
  lastPublishMs = -1;

  private constructor(private readonly opts: TorEndpointOptions) {
    super();
    this.port = opts.virtualPort ?? 8333;
    this.log = opts.log ?? (() => {});
  }

  /** Creates the listener, publishes the onion and (by default) waits until its descriptor is uploaded. */
  static async create(opts: TorEndpointOptions): Promise<TorCoordinationEndpoint> {
    const ep = new TorCoordinationEndpoint(opts);
    try {
      await ep.listen();
      await ep.publish(opts.key);
      return ep;
    } catch (err) {
      await ep.close();
      throw err;
    }
  }

  /** `<56 base32>.onion`. */
  get address(): string {
    return this._address;
  }

  /** True while the service is published on a live control connection. */
  get isUp(): boolean {
    return this.control !== null && !this.control.isClosed;
  }

  private listen(): Promise<void> {
    const host = this.opts.listenHost ?? '127.0.0.1';
    const server = createServer((sock) => {
      if (this.closing) return void sock.destroy();
      // Callers attach their own handlers; this one only keeps a reset from crashing an unattended stream.
      sock.on('error', () => {});
      this.streams.add(sock);
      sock.once('close', () => this.streams.delete(sock));
      this.emit('stream', sock, {});
    });
    this.server = server;
    server.on('error', (err) => this.softError(err));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => {
        server.off('error', reject);
        const a = server.address();
        if (a === null || typeof a === 'string') return reject(new Error('listener has no TCP address'));
        this.target = `${host.includes(':') ? `[${host}]` : host}:${a.port}`;
        resolve();
      });
    });
  }

  private async publish(key: string | undefined): Promise<void> {
    const c = await TorControlClient.connect(this.opts.control);
    try {
      const wait = this.opts.waitForUpload ?? true;
      if (wait !== false) await c.setEvents(['HS_DESC']);
      const t0 = Date.now();
      const r = await c.addOnion({
        key: key ?? 'NEW',
        ports: [{ virtual: this.port, target: this.target }],
        ...(this.opts.discardPk ? { flags: ['DiscardPK' as const] } : {}),
      });
      if (this._address && r.serviceId !== this.serviceId) {
        // Cannot happen with the same key; guard so we never announce a different address silently.
        throw new TorControlError(
          'TOR_PROTOCOL',
          `re-published service has id ${r.serviceId}, expected ${this.serviceId}`,
        );
      }
      this.serviceId = r.serviceId;
      this._address = r.serviceId + '.onion';
      if (r.privateKey) this.privateKey = r.privateKey;
      else if (key && key !== 'NEW' && !this.opts.discardPk) this.privateKey = key;
      this.log(`tor endpoint: ADD_ONION ${this._address}:${this.port} -> ${this.target}`);
      if (wait !== false) {
        await c.waitForDescUploaded(r.serviceId, typeof wait === 'number' ? wait : 90_000);
        this.lastPublishMs = Date.now() - t0;
        this.log(`tor endpoint: descriptor uploaded after ${this.lastPublishMs} ms`);
      }
      if (this.closing) {
        c.close();
        return;
      }
      this.control = c;
      c.once('close', (err?: TorControlError) => this.onControlClosed(err));
    } catch (err) {
      c.close();
      throw err;
    }
  }

  private onControlClosed(err: TorControlError | undefined): void {
    this.control = null;
    if (this.closing) return;
    const e = err ?? new TorControlError('TOR_CLOSED', 'control connection closed');
    this.log(`tor endpoint: control connection lost (${e.message})`);
    this.emit('down', e);
    if (!this.privateKey) {
      const lost = new TorControlError(
        'TOR_ENDPOINT_LOST',
        `${this._address} cannot be re-published: its key was discarded`,
      );
      this.softError(lost);
      return;
    }
    this.scheduleReconnect(this.opts.reconnect?.initialMs ?? 200);
  }

  private scheduleReconnect(delay: number): void {
    if (this.closing) return;
    const max = this.opts.reconnect?.maxMs ?? 5000;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.publish(this.privateKey).then(
        () => {
          if (this.closing) return;
          this.log(`tor endpoint: ${this._address} re-published`);
          this.emit('up');
        },
        (err: Error) => {
          this.log(`tor endpoint: re-publish failed (${err.message}); retry in ${Math.min(delay * 2, max)} ms`);
          this.scheduleReconnect(Math.min(delay * 2, max));
        },
      );
    }, delay);
  }

  private softError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** DEL_ONION, closes the listener and every open stream. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const c = this.control;
    this.control = null;
    if (c && !c.isClosed) {
      try {
        await c.delOnion(this.serviceId);
      } catch {
        /* the connection is going away anyway, which also removes the service */
      }
      c.close();
    }
    for (const s of this.streams) s.destroy();
    this.streams.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
