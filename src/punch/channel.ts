/**
 * A message channel over the coordination stream (a Tor/I2P Duplex, or a TCP socket in tests): frames
 * out, a queue of decoded messages in, `next()` with a per-step timeout. The frame codec is pluggable
 * (`FrameCodec`); `wire-codec.ts` provides the real one over src/wire/.
 */
import type { Duplex } from 'node:stream';
import { MAX_OP_PAYLOAD } from '../wire/constants.js';
import type { CoordMessage } from './messages.js';
import { PunchSessionError } from './errors.js';
import { randomNonce } from '../wire/nonce.js';

/** Turns messages into frames and a byte stream back into messages. */
export interface FrameCodec {
  encode(m: CoordMessage): Buffer;
  /** A stateful decoder; `push` returns the complete messages so far and throws on malformed input. */
  decoder(): { push(chunk: Buffer): CoordMessage[] };
}

export interface CoordChannel {
  send(m: CoordMessage): void;
  /** The next message, or a PunchSessionError (PUNCH_TIMEOUT with `step`, PUNCH_CLOSED, PUNCH_PROTOCOL). */
  next(timeoutMs: number, step: string, signal?: AbortSignal): Promise<CoordMessage>;
  /**
   * While `fn` is set, the peer's `opstall` reports go to it at once, at any step; otherwise they are dropped
   * (never queued: they matter only during the punch). More than {@link MAX_STALL_REPORTS} in a session fail
   * the channel (PUNCH_PROTOCOL). Optional: a channel without it drops them all.
   */
  onStall?(fn: ((m: Extract<CoordMessage, { cmd: 'opstall' }>) => void) | undefined): void;
  /**
   * Follows this turn's write with a trailing `ping` of the channel's own and {@link TRAIL_PAD_BYTES} of
   * `oppad`, {@link TRAIL_MS} later in a write of its own, so a lost segment is recovered in about one round trip
   * (docs/PROTOCOL.md "Trailing ping"). The answering `pong` is the channel's and never reaches `next()`; the
   * peer's `oppad` never does either. At most {@link MAX_TRAILS} per channel. Optional: a channel without it
   * sends none.
   */
  trail?(): void;
  /**
   * Whether a message of command `cmd` has been received and waits for `next()` (A asks, right after its
   * `opendpoint`, whether B's `opfire` came before it: pre-timed). Optional: a channel without it answers no.
   */
  hasQueued?(cmd: CoordMessage['cmd']): boolean;
  close(): void;
  readonly closed: boolean;
  /** Bytes received so far (memory accounting, tests). */
  readonly bytesIn: number;
}

/** Longest a peer may keep unparsed bytes buffered: op* payloads are ≤ 1024 bytes, version < 400. */
const MAX_QUEUED = 64;

/**
 * Most bytes of our output that may wait for the peer (not yet written plus the stream's queue). A whole session
 * sends a version, a verack, an opendpoint/opfire/opresult or opreject (each frame ≤ 24 + 1024 bytes), a pong
 * per ping and a trail (ping and padding, ~2 KB) or two. A peer that lets more pile up is not reading (e.g. it
 * floods pings and never reads the pongs), or sends hundreds of pings at once; the channel is then destroyed with
 * PUNCH_SEND_BUFFER_FULL.
 */
export const COORD_MAX_QUEUED_OUT = 8 * 1024;

/** Stall reports a peer may send in one session (docs/PROTOCOL.md `opstall`: a handful are ever useful). */
export const MAX_STALL_REPORTS = 8;

/**
 * Delay of a trailing ping after the write it follows: long enough that tor packs it in a cell (and the kernel in
 * a segment) of its own, far below the round trip it saves.
 */
export const TRAIL_MS = 5;
/** Trailing pings one channel sends (a session trails one write per side; a few spare). */
export const MAX_TRAILS = 4;
/**
 * Padding behind each trailing ping. tor leaves Nagle on for its relay connections, so a small trailing cell
 * waits there behind an unacknowledged one, i.e. behind the very segment whose loss it should reveal; a full-sized
 * segment is never held. 2,000 bytes are 5 relay cells (498 data bytes each), more than one 1,448-1,460-byte
 * segment on any relay hop. Measured: docs/BENCHMARKS.md "A trail tor does not hold back".
 */
export const TRAIL_PAD_BYTES = 2000;
/** `oppad` frames one channel accepts (a trail is 2 of them; a peer sends at most MAX_TRAILS trails). */
export const MAX_PAD_FRAMES = 16;

export class StreamChannel implements CoordChannel {
  private trailWanted = false;
  private trails = 0;
  private trailTimer: NodeJS.Timeout | undefined;
  /** Nonces of our trailing pings whose pong has not come back. */
  private readonly trailNonces = new Set<bigint>();
  private stallHandler: ((m: Extract<CoordMessage, { cmd: 'opstall' }>) => void) | undefined;
  private stallReports = 0;
  private padFrames = 0;
  private readonly queue: CoordMessage[] = [];
  private waiter: ((m: CoordMessage | Error) => void) | undefined;
  private failure: Error | undefined;
  /** Our own close() with nothing waiting: its PUNCH_CLOSED is built only if a later next() asks for it. */
  private closedQuietly = false;
  private isClosed = false;
  private pendingOut: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  bytesIn = 0;

  /** Monotonic ms when the last message was received (set before it is queued). */
  lastReceivedAt = 0;

  /**
   * @param autoPong answer `ping` at once, at any step, without queueing it: the peer's RTT samples then
   *   measure the channel, not our session logic.
   */
  constructor(
    private readonly stream: Duplex,
    private readonly codec: FrameCodec,
    private readonly autoPong = true,
  ) {
    const dec = codec.decoder();
    // Small messages written back to back (version, verack, opendpoint, ping) must not wait for a delayed
    // ACK (Nagle): on the local hop to tor/i2pd that stall is 40 ms per message pair.
    const nd = (stream as { setNoDelay?: (v: boolean) => unknown }).setNoDelay;
    if (typeof nd === 'function') nd.call(stream, true);
    stream.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      let msgs: CoordMessage[];
      try {
        msgs = dec.push(chunk);
      } catch (err) {
        this.fail(
          new PunchSessionError('PUNCH_PROTOCOL', `bad frame from peer: ${(err as Error).message}`, { cause: err }),
        );
        return;
      }
      for (const m of msgs) this.deliver(m);
    });
    // Errors capture a stack: after our own close() (or a first failure) 'end' and 'close' still fire, and
    // building one per stream for nothing was measurable on a busy A (docs/BENCHMARKS.md, worker profile).
    const onEnd = (): void => {
      if (!this.failed) this.fail(new PunchSessionError('PUNCH_CLOSED', 'coordination stream closed by peer'));
    };
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', (err: Error) => {
      if (this.failed) return;
      this.fail(new PunchSessionError('PUNCH_CLOSED', `coordination stream error: ${err.message}`, { cause: err }));
    });
  }

  onStall(fn: ((m: Extract<CoordMessage, { cmd: 'opstall' }>) => void) | undefined): void {
    this.stallHandler = fn;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  hasQueued(cmd: CoordMessage['cmd']): boolean {
    return this.queue.some((m) => m.cmd === cmd);
  }

  private deliver(m: CoordMessage): void {
    this.lastReceivedAt = performance.now();
    if (m.cmd === 'ping' && this.autoPong) {
      this.send({ cmd: 'pong', nonce: m.nonce });
      return;
    }
    if (m.cmd === 'pong' && this.trailNonces.delete(m.nonce)) return;
    if (m.cmd === 'oppad') {
      if (++this.padFrames > MAX_PAD_FRAMES)
        this.fail(new PunchSessionError('PUNCH_PROTOCOL', `peer sent more than ${MAX_PAD_FRAMES} oppad`));
      return;
    }
    if (m.cmd === 'opstall') {
      if (++this.stallReports > MAX_STALL_REPORTS) {
        this.fail(new PunchSessionError('PUNCH_PROTOCOL', `peer sent more than ${MAX_STALL_REPORTS} opstall`));
        return;
      }
      this.stallHandler?.(m);
      return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(m);
      return;
    }
    if (this.queue.length >= MAX_QUEUED) {
      this.fail(new PunchSessionError('PUNCH_PROTOCOL', 'peer flooded the coordination stream'));
      return;
    }
    this.queue.push(m);
  }

  /** A first failure is known (or our quiet close stands for one): later ones are not recorded. */
  private get failed(): boolean {
    return this.failure !== undefined || this.closedQuietly;
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failure = err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(err);
    }
    if (err instanceof PunchSessionError && err.code === 'PUNCH_PROTOCOL') this.close();
  }

  /**
   * Queues a message; everything sent in one turn of the event loop leaves in ONE write. Over Tor that is one
   * relay cell instead of several, and no small write waits behind another for a delayed ACK on the local
   * hop (tor's own socket to us does not disable Nagle): measured 30–60 ms saved per direction.
   */
  send(m: CoordMessage): void {
    if (this.isClosed || this.stream.destroyed) return;
    const frame = this.codec.encode(m);
    const queued = this.pendingBytes + this.stream.writableLength + frame.length;
    if (queued > COORD_MAX_QUEUED_OUT) {
      const why = `peer does not read: ${queued} bytes queued > ${COORD_MAX_QUEUED_OUT}`;
      this.abort(new PunchSessionError('PUNCH_SEND_BUFFER_FULL', why));
      return;
    }
    this.pendingOut.push(frame);
    this.pendingBytes += frame.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  trail(): void {
    // Only behind a write of this turn: a trail asked for with nothing queued would ride on some later write.
    if (this.trails >= MAX_TRAILS || this.isClosed || this.pendingOut.length === 0) return;
    this.trails++;
    this.trailWanted = true;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pendingOut.length === 0 || this.stream.destroyed) return;
    const b = this.pendingOut.length === 1 ? this.pendingOut[0]! : Buffer.concat(this.pendingOut);
    this.pendingOut = [];
    this.pendingBytes = 0;
    this.stream.write(b);
    if (this.trailWanted) {
      this.trailWanted = false;
      // A lone segment whose loss the peer cannot report waits for TCP's tail-loss probe (2 RTT + 200 ms with one
      // segment in flight) or its retransmission timeout; one more segment behind it is SACKed and RACK re-sends
      // the lost one about a round trip later.
      clearTimeout(this.trailTimer);
      this.trailTimer = setTimeout(() => {
        this.trailTimer = undefined;
        const nonce = randomNonce();
        this.trailNonces.add(nonce);
        this.send({ cmd: 'ping', nonce });
        for (let left = TRAIL_PAD_BYTES; left > 0; left -= MAX_OP_PAYLOAD) {
          this.send({ cmd: 'oppad', length: Math.min(left, MAX_OP_PAYLOAD) });
        }
      }, TRAIL_MS);
      this.trailTimer.unref();
    }
  }

  /** Ends the channel at once, dropping queued output: nothing more is worth sending to this peer. */
  private abort(err: PunchSessionError): void {
    clearTimeout(this.trailTimer);
    this.pendingOut = [];
    this.pendingBytes = 0;
    this.isClosed = true;
    this.stream.destroy();
    this.fail(err);
  }

  next(timeoutMs: number, step: string, signal?: AbortSignal): Promise<CoordMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closedQuietly && !this.failure) this.failure = closedError();
    if (this.failure) return Promise.reject(this.failure);
    if (signal?.aborted)
      return Promise.reject(new PunchSessionError('PUNCH_ABORTED', `aborted during ${step}`, { step }));
    return new Promise<CoordMessage>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const timer = setTimeout(() => {
        this.waiter = undefined;
        cleanup();
        reject(new PunchSessionError('PUNCH_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${step}`, { step }));
      }, timeoutMs);
      const onAbort = (): void => {
        this.waiter = undefined;
        cleanup();
        reject(new PunchSessionError('PUNCH_ABORTED', `aborted during ${step}`, { step }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = (m) => {
        cleanup();
        if (m instanceof Error) reject(m);
        else resolve(m);
      };
    });
  }

  close(): void {
    if (this.isClosed) return;
    clearTimeout(this.trailTimer);
    this.trailWanted = false; // nothing follows the last flush of a closing channel
    this.flush();
    this.isClosed = true;
    // end() lets queued frames (opresult/opreject) go out before FIN; destroy after a grace period.
    this.stream.end();
    const t = setTimeout(() => this.stream.destroy(), 2000);
    t.unref();
    if (this.failed) return;
    if (this.waiter) this.fail(closedError());
    else this.closedQuietly = true;
  }
}

function closedError(): PunchSessionError {
  return new PunchSessionError('PUNCH_CLOSED', 'coordination stream closed');
}
