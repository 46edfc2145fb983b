/**
 * One Bitcoin P2P connection over any duplex byte stream (net.Socket, a SOCKS stream, a SAM stream).
 *
 * ```ts
 * const peer = new Peer(socket, { network: 'regtest', role: 'initiator' });
 * const { version, receivedBeforeVerack } = await peer.handshake();
 * peer.on('message', (command, payload) => { ... });
 * const rttMs = await peer.ping();
 * peer.close();
 * ```
 *
 * Handshake (both roles): versions are exchanged (the initiator sends first, the responder answers
 * on receipt); on receiving the peer's version we send `wtxidrelay` (if their version >= 70016,
 * BIP339) and `sendaddrv2` (BIP155), then `verack`. The handshake resolves once both veracks have
 * crossed. Pings are always answered. `close()` destroys the stream and clears every timer.
 *
 * Memory is bounded against a hostile peer (Bitcoin Core's send-buffer idea, `-maxsendbuffer`): once our queued
 * output passes {@link PEER_SEND_PAUSE_BYTES} we stop reading the peer (so its pings no longer make us write) and
 * resume on `drain`; a peer that does not take our bytes for {@link PEER_SEND_STALL_MS} is disconnected
 * (PEER_SEND_STALLED), and our own sends past {@link PEER_SEND_MAX_BYTES} disconnect it (PEER_SEND_BUFFER_FULL).
 * At most {@link PEER_MAX_PRE_VERACK} messages are accepted before the peer's verack (PEER_PRE_VERACK_FLOOD).
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  FrameParser,
  PROTOCOL_VERSION,
  USER_AGENT,
  WireError,
  decodePayload,
  encodeMessage,
  encodeRaw,
  type Frame,
  type KnownCommand,
  type NetAddrV1,
  type NetworkName,
  type PayloadMap,
  type VersionPayload,
} from '../wire/index.js';
import { randomNonce } from '../wire/nonce.js';
import { PeerError } from './errors.js';

/** Queued output (bytes) above which we stop reading the peer until the queue drains. */
export const PEER_SEND_PAUSE_BYTES = 64 * 1024;
/** Queued output (bytes) above which the peer is disconnected (Bitcoin Core's default -maxsendbuffer is 1000 KB). */
export const PEER_SEND_MAX_BYTES = 1024 * 1024;
/** How long reading may stay paused because the peer does not take our bytes before we disconnect it. */
export const PEER_SEND_STALL_MS = 60_000;
/**
 * Most messages accepted before the peer's verack. Bitcoin Core sends 3 to 5 (version, wtxidrelay, sendaddrv2,
 * sendtxrcncl); the list of their names is kept for the handshake result, so it must not grow without bound.
 */
export const PEER_MAX_PRE_VERACK = 64;

export type PeerRole = 'initiator' | 'responder';

export interface PeerOptions {
  network: NetworkName;
  role: PeerRole;
  /** Our services (default 0: we serve nothing). */
  services?: bigint;
  /** Default `/onionpunch:0.1.0/`. */
  userAgent?: string;
  /** How we see the peer (the version's addr_recv). Default all-zero `[::]:0`. */
  addrRecv?: { address: string; port: number; services?: bigint };
  /** Our address as we advertise it (addr_from). Default all-zero. */
  addrFrom?: { address: string; port: number; services?: bigint };
  startHeight?: number;
  /** BIP37 relay flag (default false); `null` omits the byte. */
  relay?: boolean | null;
  /** Protocol version (default 70016). */
  protocolVersion?: number;
  /** Version nonce (default random); a peer echoing it means we connected to ourselves. */
  nonce?: bigint;
  /** Version timestamp in seconds (default now). */
  timestamp?: bigint;
  /** Send sendaddrv2 during the handshake (default true). */
  sendAddrV2?: boolean;
  /** Send wtxidrelay during the handshake (default true, only to peers >= 70016). */
  wtxidRelay?: boolean;
  /** Handshake timeout (default 10,000 ms). */
  handshakeTimeoutMs?: number;
  /** Default ping timeout (default 10,000 ms). */
  pingTimeoutMs?: number;
  /** Largest payload accepted, checked at the header before buffering (default and maximum 4,000,000 bytes). */
  maxPayload?: number;
  /** Stop reading while more than this many bytes of our output are queued (default {@link PEER_SEND_PAUSE_BYTES}). */
  sendPauseBytes?: number;
  /** Disconnect when more than this many bytes of our output are queued (default {@link PEER_SEND_MAX_BYTES}). */
  sendMaxBytes?: number;
  /** Disconnect when reading stayed paused this long without a drain (default {@link PEER_SEND_STALL_MS}). */
  sendStallMs?: number;
  /** Most messages accepted before the peer's verack (default {@link PEER_MAX_PRE_VERACK}). */
  maxPreVerackMessages?: number;
}

export interface HandshakeResult {
  /** The peer's version message, every field. */
  version: VersionPayload;
  /** Commands the peer sent before its verack, in order (version included, verack not). */
  receivedBeforeVerack: string[];
  /** Milliseconds from handshake() to completion. */
  elapsedMs: number;
}

export interface PeerEvents {
  /** Every message received (handshake ones included). Known commands can be decoded with `peer.decode`. */
  message: [command: string, payload: Buffer, frame: Frame];
  /** Once, when the connection ends for any reason; `error` is why, if it was not a clean close(). */
  close: [error: PeerError | undefined];
}

const ZERO_ADDR: NetAddrV1 = { services: 0n, address: '::', port: 0 };

export class Peer extends EventEmitter<PeerEvents> {
  readonly network: NetworkName;
  readonly role: PeerRole;
  /** The peer's version once received. */
  peerVersion: VersionPayload | undefined;
  /** Commands received before the peer's verack. */
  readonly receivedBeforeVerack: string[] = [];

  private readonly stream: Duplex;
  private readonly opts: PeerOptions;
  private readonly parser: FrameParser;
  private readonly ourNonce: bigint;
  private sentVersion = false;
  private sentVerack = false;
  private gotVerack = false;
  private closed = false;
  private closeError: PeerError | undefined;
  private handshakeP: Promise<HandshakeResult> | undefined;
  private handshakeDone: ((r: HandshakeResult) => void) | undefined;
  private handshakeFail: ((e: PeerError) => void) | undefined;
  private handshakeStart = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sendPause: number;
  private readonly sendMax: number;
  private readonly maxPreVerack: number;
  /** Set while reading is paused for backpressure: the stall timer. */
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly pings = new Map<
    bigint,
    { start: bigint; resolve: (ms: number) => void; reject: (e: PeerError) => void; timer: NodeJS.Timeout }
  >();

  constructor(stream: Duplex, opts: PeerOptions) {
    super();
    this.stream = stream;
    this.opts = opts;
    this.network = opts.network;
    this.role = opts.role;
    const cap = opts.maxPayload !== undefined ? { maxPayload: opts.maxPayload } : {};
    this.parser = new FrameParser({ network: opts.network, ...cap });
    // A stream whose high-water mark is above the pause bound never asks for a drain below it: pause at the larger.
    this.sendPause = Math.max(opts.sendPauseBytes ?? PEER_SEND_PAUSE_BYTES, stream.writableHighWaterMark ?? 0);
    this.sendMax = Math.max(opts.sendMaxBytes ?? PEER_SEND_MAX_BYTES, this.sendPause);
    this.maxPreVerack = opts.maxPreVerackMessages ?? PEER_MAX_PRE_VERACK;
    this.ourNonce = opts.nonce ?? randomNonce();
    this.onData = this.onData.bind(this);
    this.onEnd = this.onEnd.bind(this);
    this.onError = this.onError.bind(this);
    this.onClose = this.onClose.bind(this);
    this.onDrain = this.onDrain.bind(this);
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('error', this.onError);
    stream.on('close', this.onClose);
  }

  /** True once close() ran or the stream ended. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** True while reading is paused because the peer does not take our output (backpressure). */
  get sendPaused(): boolean {
    return this.stallTimer !== undefined;
  }

  /** True once both veracks crossed. */
  get isReady(): boolean {
    return this.gotVerack && this.sentVerack;
  }

  /**
   * Runs the version handshake (idempotent: later calls return the same promise). Rejects with
   * PEER_HANDSHAKE_TIMEOUT, PEER_CLOSED, PEER_PROTOCOL, PEER_WIRE or PEER_SELF_CONNECT; on failure
   * the connection is closed.
   */
  handshake(): Promise<HandshakeResult> {
    if (this.handshakeP) return this.handshakeP;
    this.handshakeStart = Date.now();
    this.handshakeP = new Promise<HandshakeResult>((resolve, reject) => {
      this.handshakeDone = resolve;
      this.handshakeFail = reject;
    });
    this.handshakeP.catch(() => {}); // the caller's await sees it; never unhandled
    if (this.closed) {
      this.failHandshake(this.closeError ?? new PeerError('PEER_CLOSED', 'connection closed before the handshake'));
      return this.handshakeP;
    }
    const ms = this.opts.handshakeTimeoutMs ?? 10_000;
    this.timer(ms, () =>
      this.destroy(
        new PeerError(
          'PEER_HANDSHAKE_TIMEOUT',
          `no handshake within ${ms} ms (got: ${this.receivedBeforeVerack.join(', ') || 'nothing'})`,
        ),
      ),
    );
    if (this.role === 'initiator') this.sendVersion();
    this.maybeDone();
    return this.handshakeP;
  }

  /** Sends a known command (encoded) or, with a Buffer, any command as raw payload bytes. */
  send<C extends KnownCommand>(command: C, payload: PayloadMap[C]): void;
  send(command: string, payload?: Buffer): void;
  send(command: string, payload?: unknown): void {
    if (this.closed) throw new PeerError('PEER_CLOSED', `cannot send ${command}: connection closed`);
    const bytes =
      Buffer.isBuffer(payload) || payload === undefined
        ? encodeRaw(this.network, command, (payload as Buffer | undefined) ?? Buffer.alloc(0))
        : encodeMessage(this.network, command as KnownCommand, payload as never);
    this.stream.write(bytes);
    this.checkBackpressure();
  }

  /** Decodes a known command's payload (throws WireError on bad bytes). */
  decode<C extends KnownCommand>(command: C, payload: Buffer): PayloadMap[C] {
    return decodePayload(command, payload);
  }

  /** Sends a ping and resolves the round-trip time in milliseconds (fractional). */
  ping(timeoutMs = this.opts.pingTimeoutMs ?? 10_000): Promise<number> {
    if (this.closed) return Promise.reject(new PeerError('PEER_CLOSED', 'cannot ping: connection closed'));
    const nonce = randomNonce();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(nonce);
        reject(new PeerError('PEER_PING_TIMEOUT', `no pong within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(nonce, { start: process.hrtime.bigint(), resolve, reject, timer });
      this.send('ping', { nonce });
    });
  }

  /** Closes the connection: destroys the stream, clears every timer, rejects pending work with PEER_CLOSED. */
  close(): void {
    this.destroy(undefined);
  }

  // --- internals -----------------------------------------------------------------------------------

  private timer(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private versionPayload(): VersionPayload {
    const o = this.opts;
    const a = (x: PeerOptions['addrRecv']): NetAddrV1 =>
      x ? { services: x.services ?? 0n, address: x.address, port: x.port } : ZERO_ADDR;
    return {
      version: o.protocolVersion ?? PROTOCOL_VERSION,
      services: o.services ?? 0n,
      timestamp: o.timestamp ?? BigInt(Math.floor(Date.now() / 1000)),
      addrRecv: a(o.addrRecv),
      addrFrom: a(o.addrFrom),
      nonce: this.ourNonce,
      userAgent: o.userAgent ?? USER_AGENT,
      startHeight: o.startHeight ?? 0,
      relay: o.relay === null ? undefined : (o.relay ?? false),
    };
  }

  private sendVersion(): void {
    if (this.sentVersion) return;
    this.sentVersion = true;
    this.send('version', this.versionPayload());
  }

  /**
   * Applies the send-buffer bounds after every write: over the hard cap disconnect; over the pause bound stop
   * reading (a peer that sends pings but never reads then cannot make our queue grow) until `drain`.
   */
  private checkBackpressure(): void {
    if (this.closed) return;
    const queued = this.stream.writableLength;
    if (queued > this.sendMax) {
      const why = `peer does not read: ${queued} bytes queued > ${this.sendMax}`;
      this.destroy(new PeerError('PEER_SEND_BUFFER_FULL', why));
      return;
    }
    if (queued <= this.sendPause || this.stallTimer) return;
    this.stream.pause();
    this.stream.once('drain', this.onDrain);
    const ms = this.opts.sendStallMs ?? PEER_SEND_STALL_MS;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      const why = `peer took none of our ${this.stream.writableLength} queued bytes for ${ms} ms`;
      this.destroy(new PeerError('PEER_SEND_STALLED', why));
    }, ms);
  }

  private onDrain(): void {
    if (this.closed || !this.stallTimer) return;
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.stream.resume();
  }

  private onData(chunk: Buffer): void {
    const { frames, error } = this.parser.push(chunk);
    for (const f of frames) {
      if (this.closed) return;
      this.onFrame(f);
    }
    if (error && !this.closed)
      this.destroy(new PeerError('PEER_WIRE', `bad data from peer: ${error.code}: ${error.message}`, { cause: error }));
  }

  private onFrame(f: Frame): void {
    try {
      this.handleFrame(f);
    } catch (err) {
      const e =
        err instanceof PeerError
          ? err
          : err instanceof WireError
            ? new PeerError('PEER_WIRE', `bad ${f.command} from peer: ${err.message}`, { cause: err })
            : new PeerError('PEER_PROTOCOL', `handling ${f.command}: ${(err as Error).message}`, { cause: err });
      this.destroy(e);
      return;
    }
    // A send in handleFrame (a pong) may have hit the send-buffer cap and closed us: nothing more to report.
    if (!this.closed) this.emit('message', f.command, f.payload, f);
  }

  private handleFrame(f: Frame): void {
    const cmd = f.command;
    if (!this.gotVerack && cmd !== 'verack') {
      if (this.receivedBeforeVerack.length >= this.maxPreVerack) {
        throw new PeerError('PEER_PRE_VERACK_FLOOD', `more than ${this.maxPreVerack} messages before verack`);
      }
      this.receivedBeforeVerack.push(cmd);
    }
    switch (cmd) {
      case 'version': {
        if (this.peerVersion) throw new PeerError('PEER_PROTOCOL', 'duplicate version message');
        const v = decodePayload('version', f.payload);
        if (v.nonce === this.ourNonce && v.nonce !== 0n)
          throw new PeerError('PEER_SELF_CONNECT', 'connected to ourselves (nonce echo)');
        this.peerVersion = v;
        // Our answer (version as responder, then wtxidrelay, sendaddrv2, verack) leaves in one write: one
        // syscall and segment instead of up to four (lab stress: a few percent of A's CPU per session).
        this.stream.cork();
        try {
          this.sendVersion();
          // BIP339: only when the common version (min of both) is >= 70016.
          const common = Math.min(v.version, this.opts.protocolVersion ?? PROTOCOL_VERSION);
          if ((this.opts.wtxidRelay ?? true) && common >= 70016) this.send('wtxidrelay', {});
          if (this.opts.sendAddrV2 ?? true) this.send('sendaddrv2', {});
          this.send('verack', {});
        } finally {
          this.stream.uncork();
        }
        this.sentVerack = true;
        break;
      }
      case 'verack':
        if (!this.peerVersion) throw new PeerError('PEER_PROTOCOL', 'verack before version');
        this.gotVerack = true;
        break;
      case 'ping': {
        const { nonce } = decodePayload('ping', f.payload);
        this.send('pong', { nonce });
        break;
      }
      case 'pong': {
        const { nonce } = decodePayload('pong', f.payload);
        const p = this.pings.get(nonce);
        if (p) {
          this.pings.delete(nonce);
          clearTimeout(p.timer);
          p.resolve(Number(process.hrtime.bigint() - p.start) / 1e6);
        }
        break;
      }
    }
    this.maybeDone();
  }

  private maybeDone(): void {
    if (!this.handshakeDone || !this.isReady || !this.peerVersion) return;
    const done = this.handshakeDone;
    this.handshakeDone = undefined;
    this.handshakeFail = undefined;
    this.clearTimers();
    done({
      version: this.peerVersion,
      receivedBeforeVerack: [...this.receivedBeforeVerack],
      elapsedMs: Date.now() - this.handshakeStart,
    });
  }

  private failHandshake(e: PeerError): void {
    const fail = this.handshakeFail;
    this.handshakeDone = undefined;
    this.handshakeFail = undefined;
    fail?.(e);
  }

  private onEnd(): void {
    const trunc = this.parser.end();
    this.destroy(
      trunc
        ? new PeerError('PEER_WIRE', `peer closed mid-message: ${trunc.message}`, { cause: trunc })
        : new PeerError(
            'PEER_CLOSED',
            this.peerVersion
              ? 'peer closed the connection'
              : 'peer closed the connection before sending a version (not a Bitcoin node, or another network?)',
          ),
    );
  }

  private onError(err: Error): void {
    this.destroy(
      new PeerError('PEER_SOCKET', `socket error: ${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.trim(), {
        cause: err,
      }),
    );
  }

  private onClose(): void {
    this.destroy(new PeerError('PEER_CLOSED', 'connection closed'));
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private clearStall(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.stream.off('drain', this.onDrain);
  }

  /** Ends everything once. `err` undefined = our own clean close(). */
  private destroy(err: PeerError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    this.clearTimers();
    this.clearStall();
    // The error is built only when something waits for it: a clean close usually has nothing pending, and an
    // Error captures a stack (measurable per session on a busy A: docs/BENCHMARKS.md, worker profile).
    if (this.pings.size > 0 || this.handshakeFail !== undefined) {
      const why = err ?? new PeerError('PEER_CLOSED', 'connection closed by us');
      for (const p of this.pings.values()) {
        clearTimeout(p.timer);
        p.reject(why);
      }
      this.failHandshake(why);
    }
    this.pings.clear();
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onClose);
    // keep an error listener: a late socket error after destroy must not become uncaught
    this.stream.off('error', this.onError);
    this.stream.on('error', () => {});
    this.stream.destroy();
    this.emit('close', err);
  }

  /** Number of live timers (handshake + pings + send stall); 0 after close(). For tests and leak checks. */
  get pendingTimers(): number {
    return this.timers.size + this.pings.size + (this.stallTimer ? 1 : 0);
  }
}
