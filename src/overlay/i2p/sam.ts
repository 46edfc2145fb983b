/**
 * SAM v3.1 client: destinations, STREAM sessions, accept, connect, naming lookups.
 *
 * Each session keeps one control connection open (the session lives as long as it does). Each STREAM ACCEPT
 * and STREAM CONNECT uses a connection of its own, which becomes the raw data stream after
 * `STREAM STATUS RESULT=OK`. Every read is bounded (timeout, 64 KiB line cap) and every failure is a
 * {@link SamError}. When the router goes away the control connection closes: the session emits `down` and every
 * pending operation rejects with `SAM_CLOSED`.
 *
 * Note: `RESULT=OK` on STREAM CONNECT may arrive before the remote side accepted; callers wait for data.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { SamError } from './errors.js';
import {
  openSam,
  checkReply,
  SamConnection,
  SAM_DEFAULT_TIMEOUT_MS,
  type SamAddress,
  type SamOpOptions,
} from './connection.js';
import { b32Address, i2pBase64Decode, isB32Address, publicDestination } from './address.js';
import { describe } from './reply.js';

export { SamError } from './errors.js';
export type { SamErrorCode } from './errors.js';
export { openSam, SamConnection, SAM_MAX_LINE, SAM_DEFAULT_TIMEOUT_MS } from './connection.js';
export type { SamAddress, SamOpOptions } from './connection.js';
export {
  b32Address,
  publicDestination,
  isB32Address,
  i2pBase64Decode,
  i2pBase64Encode,
  destinationLength,
} from './address.js';
export { parseSamReply } from './reply.js';
export type { SamReply } from './reply.js';

/** EdDSA-SHA512-Ed25519, what Bitcoin Core and the I2P network use for new destinations. */
export const SIGNATURE_TYPE_EDDSA = 7;
/** SESSION CREATE waits for tunnels; i2pd re-checks every 20 s, so allow a few cycles. */
export const SAM_SESSION_TIMEOUT_MS = 90_000;

/** A destination and its private key, both I2P base64. */
export interface I2pKeys {
  /** Public destination. */
  destination: string;
  /** Private key (destination + private keys); give it to {@link SamSession.create} to reuse the identity. */
  privateKey: string;
  /** `<52 base32>.b32.i2p` of the destination. */
  b32: string;
}

/**
 * I2CP options every session gets unless the caller sets them. `i2cp.leaseSetEncType=4,0`: offer ECIES-X25519
 * first and ElGamal as the fallback, as Bitcoin Core's i2p.cpp and the SAM v3 guide ask; without it i2pd's
 * default lets two of our own destinations fall back to ElGamal/AES session tags.
 */
export const SAM_SESSION_DEFAULT_OPTIONS: Readonly<Record<string, string>> = { 'i2cp.leaseSetEncType': '4,0' };

/** `DEST GENERATE SIGNATURE_TYPE=7`: a fresh destination, not attached to any session. */
export async function samGenerateDestination(
  addr: SamAddress,
  opts: SamOpOptions & { signatureType?: number } = {},
): Promise<I2pKeys> {
  const conn = await openSam(addr, opts);
  try {
    const reply = await conn.command(
      `DEST GENERATE SIGNATURE_TYPE=${opts.signatureType ?? SIGNATURE_TYPE_EDDSA}`,
      'DEST',
      'REPLY',
      'DEST GENERATE',
      {
        ...opts,
        needResult: false,
      },
    );
    const pub = reply.fields.get('PUB');
    const priv = reply.fields.get('PRIV');
    if (!pub || !priv) throw new SamError('SAM_PROTOCOL', 'DEST GENERATE: reply without PUB/PRIV');
    return keysFromPrivate(priv, pub, 'DEST GENERATE');
  } finally {
    conn.destroy();
  }
}

function keysFromPrivate(priv: string, pub: string | undefined, what: string): I2pKeys {
  let destination: string;
  try {
    destination = publicDestination(priv);
  } catch (err) {
    throw new SamError('SAM_PROTOCOL', `${what}: the bridge sent an invalid private key`, { cause: err });
  }
  if (pub !== undefined && pub !== destination) {
    throw new SamError('SAM_PROTOCOL', `${what}: PUB does not match the destination in PRIV`);
  }
  return { destination, privateKey: priv, b32: b32Address(destination) };
}

/** Options of {@link SamSession.create}. */
export interface SamSessionOptions extends SamOpOptions {
  /** A private key (I2P base64) to keep a stable identity; default a transient destination. */
  privateKey?: string;
  /** Session id (nickname); default random. Must be unique on the router. */
  id?: string;
  signatureType?: number;
  /** I2CP/tunnel options, e.g. `{ 'inbound.length': 1, 'outbound.length': 0 }`. */
  options?: Record<string, string | number>;
  /**
   * Attempts (default 1). After a `SAM_TIMEOUT` (the router never reported the session ready, e.g. its LeaseSet
   * publication failed and i2pd did not retry it) a new session is created, each attempt bounded by `timeoutMs`.
   */
  attempts?: number;
}

/** A stream accepted by {@link SamSession.accept}. */
export interface SamAcceptedStream {
  socket: Socket;
  /** The caller's destination (I2P base64), as the bridge told it. */
  peerDestination: string;
  /** The caller's `.b32.i2p` address. */
  peerB32: string;
}

const TOKEN_RE = /^[^\s"=]+$/;

/** A SAM STREAM session. Events: `down` (err: SamError) when the bridge ends the session. */
export class SamSession extends EventEmitter {
  private readonly pending = new Set<SamConnection>();
  private readonly streams = new Set<Socket>();
  private control: SamConnection;
  private lookupChain: Promise<unknown> = Promise.resolve();
  private staleReplies = 0;
  private closedErr: SamError | null = null;

  private constructor(
    readonly sam: SamAddress,
    readonly id: string,
    readonly keys: I2pKeys,
    control: SamConnection,
  ) {
    super();
    this.control = control;
    control.socket.once('close', () => {
      if (this.closedErr) return;
      this.shutdown(new SamError('SAM_CLOSED', `the I2P router at ${sam.host}:${sam.port} ended SAM session ${id}`));
    });
  }

  /** Public destination (I2P base64). */
  get destination(): string {
    return this.keys.destination;
  }
  /** `.b32.i2p` address of this session. */
  get b32(): string {
    return this.keys.b32;
  }
  /** True after `close()` or after the bridge ended the session. */
  /** Our address on the session's connection to the bridge (what the bridge sees, unless a NAT is between). */
  get localAddress(): string | undefined {
    return this.control.socket.localAddress;
  }

  get closed(): boolean {
    return this.closedErr !== null;
  }

  /**
   * `SESSION CREATE STYLE=STREAM`. Takes ~20 s on a fresh router (tunnels are built first). Fails with
   * `SAM_DUPLICATED_ID`/`SAM_DUPLICATED_DEST`/`SAM_INVALID_KEY`/`SAM_I2P_ERROR`/`SAM_TIMEOUT`/`SAM_UNREACHABLE`.
   */
  static async create(addr: SamAddress, opts: SamSessionOptions = {}): Promise<SamSession> {
    const attempts = Math.max(1, Math.min(opts.attempts ?? 1, 10));
    for (let i = 1; ; i++) {
      try {
        return await SamSession.createOnce(addr, opts);
      } catch (err) {
        if (i >= attempts || !(err instanceof SamError) || err.code !== 'SAM_TIMEOUT' || opts.signal?.aborted)
          throw err;
      }
    }
  }

  private static async createOnce(addr: SamAddress, opts: SamSessionOptions): Promise<SamSession> {
    const id = opts.id ?? 'op' + randomBytes(6).toString('hex');
    if (!TOKEN_RE.test(id)) throw new SamError('SAM_INVALID_ID', 'session id must be one token');
    const key = opts.privateKey ?? 'TRANSIENT';
    if (key !== 'TRANSIENT') i2pBase64Decode(key);
    let line = `SESSION CREATE STYLE=STREAM ID=${id} DESTINATION=${key}`;
    if (key === 'TRANSIENT') line += ` SIGNATURE_TYPE=${opts.signatureType ?? SIGNATURE_TYPE_EDDSA}`;
    for (const [k, v] of Object.entries({ ...SAM_SESSION_DEFAULT_OPTIONS, ...opts.options })) {
      if (!TOKEN_RE.test(k) || !TOKEN_RE.test(String(v)))
        throw new SamError('SAM_PROTOCOL', `bad session option '${k}'`);
      line += ` ${k}=${v}`;
    }
    const timeoutMs = opts.timeoutMs ?? SAM_SESSION_TIMEOUT_MS;
    const conn = await openSam(addr, { timeoutMs: Math.min(timeoutMs, 30_000), signal: opts.signal });
    try {
      const reply = await conn.command(line, 'SESSION', 'STATUS', 'SESSION CREATE', { timeoutMs, signal: opts.signal });
      const priv = reply.fields.get('DESTINATION');
      if (!priv) throw new SamError('SAM_PROTOCOL', 'SESSION CREATE: reply without DESTINATION');
      const keys = keysFromPrivate(priv, undefined, 'SESSION CREATE');
      return new SamSession(addr, id, keys, conn);
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /**
   * `STREAM ACCEPT`: waits for one incoming stream. The status reply is bounded by `timeoutMs`; the wait for a
   * caller is not (it ends with the session, with `signal`, or with `peerTimeoutMs` when given).
   */
  async accept(opts: SamOpOptions & { peerTimeoutMs?: number } = {}): Promise<SamAcceptedStream> {
    const conn = await this.opConnection(opts);
    try {
      await conn.command(`STREAM ACCEPT ID=${this.id} SILENT=false`, 'STREAM', 'STATUS', 'STREAM ACCEPT', opts);
      const first = await conn.readLine(opts.peerTimeoutMs, opts.signal);
      // SAM 3.2 bridges may append FROM_PORT/TO_PORT after the destination.
      const peerDestination = first.split(' ')[0] ?? '';
      let peerB32: string;
      try {
        peerB32 = b32Address(peerDestination);
      } catch (err) {
        throw new SamError('SAM_PROTOCOL', `STREAM ACCEPT: bad peer destination line '${describe(first)}'`, {
          cause: err,
        });
      }
      return { socket: this.adopt(conn), peerDestination: publicDestination(peerDestination), peerB32 };
    } catch (err) {
      conn.destroy();
      throw this.closedErr ?? err;
    } finally {
      this.pending.delete(conn);
    }
  }

  /**
   * `STREAM FORWARD ... SILENT=false`: from now on the bridge opens a TCP connection to us for EVERY incoming
   * stream (no window between accepts in which a caller can be lost) and writes the caller's destination line
   * first. The bridge connects to the address we reach it from (i2pd ignores HOST), so `bind` gets that local
   * address and must return the port it listens on there. Resolves with the forwarding connection: forwarding
   * lasts as long as it does (the session's shutdown closes it too). Errors: `SAM_I2P_ERROR` (e.g. the bridge
   * has accepts pending or does not forward), `SAM_TIMEOUT`, `SAM_CLOSED`, ...
   */
  async forward(bind: (localAddress: string) => Promise<number>, opts: SamOpOptions = {}): Promise<SamConnection> {
    const conn = await this.opConnection(opts);
    try {
      const host = conn.socket.localAddress ?? '127.0.0.1';
      const port = await bind(host);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new SamError('SAM_PROTOCOL', `bad forward port ${port}`);
      }
      const line = `STREAM FORWARD ID=${this.id} PORT=${port} HOST=${host} SILENT=false`;
      await conn.command(line, 'STREAM', 'STATUS', 'STREAM FORWARD', opts);
      if (this.closedErr) throw this.closedErr;
      return conn;
    } catch (err) {
      conn.destroy();
      this.pending.delete(conn);
      throw this.closedErr ?? err;
    }
  }

  /**
   * `STREAM CONNECT` to a full destination (I2P base64) or a `.b32.i2p` address (looked up first).
   * Fails with `SAM_CANT_REACH_PEER`, `SAM_INVALID_KEY`, `SAM_TIMEOUT`, `SAM_CLOSED`, ...
   */
  async connect(destination: string, opts: SamOpOptions = {}): Promise<Socket> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    const dest = isB32Address(destination) ? await this.lookup(destination, { ...opts, timeoutMs }) : destination;
    i2pBase64Decode(dest);
    const left = () => Math.max(1, deadline - Date.now());
    const conn = await this.opConnection({ ...opts, timeoutMs: left() });
    try {
      await conn.command(
        `STREAM CONNECT ID=${this.id} DESTINATION=${dest} SILENT=false`,
        'STREAM',
        'STATUS',
        'STREAM CONNECT',
        {
          timeoutMs: left(),
          signal: opts.signal,
        },
      );
      return this.adopt(conn);
    } catch (err) {
      conn.destroy();
      throw this.closedErr ?? err;
    } finally {
      this.pending.delete(conn);
    }
  }

  /**
   * `NAMING LOOKUP` on the session's control connection (so the session's tunnels find the LeaseSet).
   * `ME` gives this session's destination. Unknown names: `SAM_INVALID_KEY` / `SAM_KEY_NOT_FOUND`.
   */
  lookup(name: string, opts: SamOpOptions = {}): Promise<string> {
    if (!TOKEN_RE.test(name)) return Promise.reject(new SamError('SAM_INVALID_KEY', 'bad name to look up'));
    const run = async (): Promise<string> => {
      if (this.closedErr) throw this.closedErr;
      const deadline = Date.now() + (opts.timeoutMs ?? SAM_DEFAULT_TIMEOUT_MS);
      const left = () => Math.max(1, deadline - Date.now());
      // Replies are in order: skip the late replies of lookups that gave up (a give-up must not end the
      // session, whose lifetime is this connection's).
      while (this.staleReplies > 0) {
        await this.control.readLine(left(), opts.signal, true);
        this.staleReplies--;
      }
      this.control.write(`NAMING LOOKUP NAME=${name}`);
      let text: string;
      try {
        text = await this.control.readLine(left(), opts.signal, true);
      } catch (err) {
        if (err instanceof SamError && (err.code === 'SAM_TIMEOUT' || err.code === 'SAM_ABORTED')) this.staleReplies++;
        throw err;
      }
      const reply = checkReply(text, 'NAMING', 'REPLY', 'NAMING LOOKUP', true);
      const value = reply.fields.get('VALUE');
      if (!value) throw new SamError('SAM_PROTOCOL', 'NAMING LOOKUP: reply without VALUE');
      try {
        return publicDestination(value);
      } catch (err) {
        throw new SamError('SAM_PROTOCOL', 'NAMING LOOKUP: invalid destination in VALUE', { cause: err });
      }
    };
    const p = this.lookupChain.then(run, run);
    this.lookupChain = p.catch(() => undefined);
    return p.catch((err) => {
      throw this.closedErr ?? err;
    });
  }

  /** Ends the session: the control connection, pending operations and open streams all close. */
  async close(): Promise<void> {
    if (this.closedErr) return;
    this.shutdown(new SamError('SAM_CLOSED', `SAM session ${this.id} closed`), false);
  }

  private shutdown(err: SamError, emit = true): void {
    if (this.closedErr) return;
    this.closedErr = err;
    this.control.destroy(err);
    for (const c of this.pending) c.destroy(err);
    this.pending.clear();
    for (const s of this.streams) s.destroy();
    this.streams.clear();
    if (emit) this.emit('down', err);
  }

  private async opConnection(opts: SamOpOptions): Promise<SamConnection> {
    if (this.closedErr) throw this.closedErr;
    let conn: SamConnection;
    try {
      conn = await openSam(this.sam, { timeoutMs: opts.timeoutMs ?? SAM_DEFAULT_TIMEOUT_MS, signal: opts.signal });
    } catch (err) {
      throw this.closedErr ?? err;
    }
    if (this.closedErr) {
      conn.destroy();
      throw this.closedErr;
    }
    this.pending.add(conn);
    return conn;
  }

  private adopt(conn: SamConnection): Socket {
    const s = conn.detach();
    // A reset before the caller attached its handlers must not become an uncaught 'error'.
    s.on('error', () => {});
    this.streams.add(s);
    s.once('close', () => this.streams.delete(s));
    return s;
  }
}
