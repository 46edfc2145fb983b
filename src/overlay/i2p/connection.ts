/**
 * One TCP connection to a SAM bridge, in line mode: every read is bounded by a timeout, a size cap and an
 * optional AbortSignal, and fails with a typed {@link SamError}. `detach()` hands the socket over as a raw
 * data stream (with any bytes already read past the last line pushed back).
 */
import { Socket, connect as netConnect } from 'node:net';
import { SamError, samResultError } from './errors.js';
import { parseSamReply, describe, type SamReply } from './reply.js';

/** Where a SAM bridge listens. */
export interface SamAddress {
  host: string;
  port: number;
}

/** Options every SAM operation takes. */
export interface SamOpOptions {
  /** Bound on the operation (defaults differ per operation). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Longest reply line accepted (a destination is ~520 characters; 64 KiB leaves room for options). */
export const SAM_MAX_LINE = 64 * 1024;
/** Default bound on a short command (HELLO, STREAM STATUS, NAMING LOOKUP). */
export const SAM_DEFAULT_TIMEOUT_MS = 30_000;

interface Waiter {
  resolve: (line: string) => void;
  reject: (err: SamError) => void;
  cleanup: () => void;
}

/** A SAM connection in line mode. */
export class SamConnection {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: Waiter | null = null;
  private failure: SamError | null = null;
  private detached = false;
  // 'readable' rather than 'data': removing the last 'readable' listener puts the socket back into its
  // initial (not flowing, not paused) state, so the caller of detach() can read it like a fresh socket.
  private readonly onReadable = () => {
    let d: Buffer | null;
    while (!this.detached && (d = this.socket.read() as Buffer | null) !== null) {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      if (this.buf.length > 4 * SAM_MAX_LINE && !this.waiter) {
        this.fail(new SamError('SAM_REPLY_TOO_LONG', 'SAM bridge sent more than it was asked for'));
        return;
      }
      this.pump();
    }
  };
  private readonly onError = (err: Error) => {
    this.fail(new SamError('SAM_CLOSED', `SAM connection failed: ${err.message}`, { cause: err }));
  };
  private readonly onClose = () => {
    this.fail(new SamError('SAM_CLOSED', 'SAM bridge closed the connection'));
  };

  constructor(readonly socket: Socket) {
    socket.on('readable', this.onReadable);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** True once the connection failed or closed. */
  get closed(): boolean {
    return this.failure !== null;
  }

  /** Writes one command line (a newline is appended). */
  write(line: string): void {
    if (this.failure) return;
    this.socket.write(line + '\n');
  }

  /**
   * Reads one line. `timeoutMs` 0 or undefined means no timeout (only for waits that are meant to be long,
   * e.g. an accept waiting for a peer; they stay abortable through `signal` and end when the socket closes).
   * A timeout or abort closes the connection, unless `keepOnGiveUp` (the caller then skips the late line).
   */
  readLine(timeoutMs: number | undefined, signal?: AbortSignal, keepOnGiveUp = false): Promise<string> {
    if (this.waiter) return Promise.reject(new SamError('SAM_PROTOCOL', 'concurrent reads on one SAM connection'));
    if (this.failure && this.buf.indexOf(10) < 0) return Promise.reject(this.failure);
    if (signal?.aborted) {
      if (!keepOnGiveUp) this.destroy();
      return Promise.reject(new SamError('SAM_ABORTED', 'SAM operation aborted'));
    }
    return new Promise<string>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        const w = this.waiter;
        this.waiter = null;
        w?.cleanup();
        reject(new SamError('SAM_ABORTED', 'SAM operation aborted'));
        if (!keepOnGiveUp) this.destroy();
      };
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.waiter = { resolve, reject, cleanup };
      if (timeoutMs && timeoutMs > 0) {
        timer = setTimeout(() => {
          const w = this.waiter;
          this.waiter = null;
          w?.cleanup();
          reject(new SamError('SAM_TIMEOUT', `no reply from the SAM bridge within ${timeoutMs} ms`));
          if (!keepOnGiveUp) this.destroy();
        }, timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pump();
    });
  }

  /** Sends a command and reads its reply, checking topic, subtopic and `RESULT=` (when `needResult`). */
  async command(
    line: string,
    topic: string,
    sub: string,
    what: string,
    opts: SamOpOptions & { needResult?: boolean } = {},
  ): Promise<SamReply> {
    this.write(line);
    const text = await this.readLine(opts.timeoutMs ?? SAM_DEFAULT_TIMEOUT_MS, opts.signal);
    return checkReply(text, topic, sub, what, opts.needResult ?? true);
  }

  /** Hands the socket over as a raw stream: no more line parsing, buffered bytes pushed back. */
  detach(): Socket {
    this.detached = true;
    this.socket.off('readable', this.onReadable);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
    if (this.buf.length > 0) this.socket.unshift(this.buf);
    this.buf = Buffer.alloc(0);
    return this.socket;
  }

  /** Closes the connection; a pending read rejects with `SAM_CLOSED` (or `err`). */
  destroy(err?: SamError): void {
    this.fail(err ?? new SamError('SAM_CLOSED', 'SAM connection closed'));
  }

  private fail(err: SamError): void {
    if (this.detached) return;
    if (!this.failure) this.failure = err;
    this.socket.destroy();
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w.cleanup();
      w.reject(this.failure);
    }
  }

  private pump(): void {
    const w = this.waiter;
    if (!w) return;
    const nl = this.buf.indexOf(10);
    if (nl > SAM_MAX_LINE || (nl < 0 && this.buf.length > SAM_MAX_LINE)) {
      this.fail(new SamError('SAM_REPLY_TOO_LONG', `SAM reply line longer than ${SAM_MAX_LINE} bytes`));
      return;
    }
    if (nl < 0) {
      if (this.failure) {
        this.waiter = null;
        w.cleanup();
        w.reject(this.failure);
      }
      return;
    }
    let line = this.buf.subarray(0, nl).toString('latin1');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.buf = this.buf.subarray(nl + 1);
    this.waiter = null;
    w.cleanup();
    w.resolve(line);
  }
}

/** Parses a reply and checks it answers the command (`topic sub`), mapping `RESULT=` errors to codes. */
export function checkReply(text: string, topic: string, sub: string, what: string, needResult: boolean): SamReply {
  const reply = parseSamReply(text);
  if (reply.topic !== topic || reply.sub !== sub) {
    throw new SamError('SAM_PROTOCOL', `${what}: expected '${topic} ${sub}', got '${describe(text)}'`);
  }
  const result = reply.fields.get('RESULT');
  if (result === undefined) {
    if (needResult) throw new SamError('SAM_PROTOCOL', `${what}: reply without RESULT (${describe(text)})`);
  } else if (result !== 'OK') {
    throw samResultErrorFrom(reply, result, what);
  }
  return reply;
}

function samResultErrorFrom(reply: SamReply, result: string, what: string): SamError {
  return samResultError(result, what, reply.fields.get('MESSAGE'));
}

/**
 * Opens a TCP connection to the SAM bridge and performs `HELLO VERSION` (3.1). Connection refused or reset →
 * `SAM_UNREACHABLE`; no reply in time → `SAM_TIMEOUT`; an unsupported version → `SAM_NOVERSION`.
 */
export async function openSam(addr: SamAddress, opts: SamOpOptions = {}): Promise<SamConnection> {
  const timeoutMs = opts.timeoutMs ?? SAM_DEFAULT_TIMEOUT_MS;
  if (opts.signal?.aborted) throw new SamError('SAM_ABORTED', 'SAM operation aborted');
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ host: addr.host, port: addr.port });
    s.setNoDelay(true);
    const done = (err?: SamError) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      s.off('connect', onConnect);
      s.off('error', onError);
      if (err) {
        s.destroy();
        reject(err);
      } else resolve(s);
    };
    const onConnect = () => done();
    const onError = (e: Error) =>
      done(
        new SamError('SAM_UNREACHABLE', `cannot reach the SAM bridge at ${addr.host}:${addr.port}: ${e.message}`, {
          cause: e,
        }),
      );
    const onAbort = () => done(new SamError('SAM_ABORTED', 'SAM operation aborted'));
    const timer = setTimeout(
      () =>
        done(new SamError('SAM_TIMEOUT', `SAM bridge ${addr.host}:${addr.port} did not accept within ${timeoutMs} ms`)),
      timeoutMs,
    );
    s.once('connect', onConnect);
    s.once('error', onError);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  const conn = new SamConnection(socket);
  try {
    const reply = await conn.command('HELLO VERSION MIN=3.1 MAX=3.1', 'HELLO', 'REPLY', 'HELLO', {
      timeoutMs,
      signal: opts.signal,
    });
    const version = reply.fields.get('VERSION');
    if (!version || !/^3\.\d+$/.test(version)) {
      throw new SamError('SAM_PROTOCOL', `HELLO: bad VERSION '${describe(version ?? '')}'`);
    }
  } catch (err) {
    conn.destroy();
    throw err;
  }
  return conn;
}
