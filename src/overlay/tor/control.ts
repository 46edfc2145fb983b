/**
 * A self-contained tor control-port client (control-spec v1): PROTOCOLINFO, AUTHENTICATE (NULL,
 * HASHEDPASSWORD, SAFECOOKIE; never plain COOKIE, see {@link TorAuthOptions}), GETINFO, ADD_ONION, DEL_ONION,
 * SETEVENTS and asynchronous 650 events.
 *
 * Requests are pipelined; replies come back in order. Every request has a timeout. A timeout, a protocol error
 * or a closed connection ends the connection (the reply order cannot be trusted afterwards) and rejects every
 * outstanding request with a typed TorControlError.
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { open } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { TorControlError } from './errors.js';
import { ReplyParser, parseKeywords, quoteString, type ReplyLimits, type TorReply } from './reply.js';

export type { TorReply, ReplyLine } from './reply.js';

/** Where the control port is. */
export interface TorControlAddress {
  host?: string;
  port?: number;
  /** A Unix socket path (ControlSocket) instead of host/port. */
  path?: string;
}

/**
 * How to authenticate. `method` 'auto' (default) picks the best method tor offers for the given secrets.
 *
 * Cookie authentication is SAFECOOKIE only, as Bitcoin Core's torcontrol does: with plain COOKIE we would hand
 * the bytes of whatever 32-byte file the control port names (COOKIEFILE) to whoever listens on that port, while
 * SAFECOOKIE makes the port prove it knows the cookie (SERVERHASH) before we send anything derived from it.
 * A control port that offers only COOKIE is refused with TOR_AUTH_UNSAFE_METHOD.
 */
export interface TorAuthOptions {
  method?: 'auto' | 'NULL' | 'HASHEDPASSWORD' | 'SAFECOOKIE';
  password?: string;
  /** Cookie file; default: the COOKIEFILE tor names in PROTOCOLINFO. */
  cookieFile?: string;
}

export interface TorControlOptions extends TorControlAddress, ReplyLimits {
  /** Timeout of the TCP connect and of every request, ms (default 15000). */
  timeoutMs?: number;
}

export interface TorConnectOptions extends TorControlOptions {
  auth?: TorAuthOptions;
}

/** The size of tor's control_auth_cookie (control-spec 3.5); the only size we accept. */
export const TOR_COOKIE_BYTES = 32;

/** Parsed PROTOCOLINFO. */
export interface ProtocolInfo {
  protocolVersion: number;
  methods: string[];
  cookieFile?: string;
  torVersion?: string;
}

/** An asynchronous event (650 reply). `type` is the first word, e.g. HS_DESC; `text` the first line. */
export interface TorEvent {
  type: string;
  text: string;
  reply: TorReply;
}

/** Options of ADD_ONION. */
export interface AddOnionOptions {
  /** 'NEW' (default: NEW:ED25519-V3) or a stored key 'ED25519-V3:<base64>'. */
  key?: string;
  /** Port mappings: virtual port and target (`host:port` or a port). */
  ports: Array<{ virtual: number; target: string }>;
  flags?: Array<'DiscardPK' | 'Detach' | 'MaxStreamsCloseCircuit' | 'NonAnonymous'>;
  maxStreams?: number;
}

export interface AddOnionResult {
  /** 56 base32 characters, without `.onion`. */
  serviceId: string;
  /** `ED25519-V3:<base64>` unless DiscardPK was given or a key was passed in. */
  privateKey?: string;
}

/** A parsed HS_DESC event (control-spec 4.1.25). */
export interface HsDescEvent {
  action: string;
  address: string;
  hsDir: string;
  reason?: string;
}

const SERVER_KEY = 'Tor safe cookie authentication server-to-controller hash';
const CLIENT_KEY = 'Tor safe cookie authentication controller-to-server hash';
const SERVICE_ID_RE = /^[a-z2-7]{56}$/;

interface Pending {
  resolve: (r: TorReply) => void;
  reject: (e: TorControlError) => void;
  timer: NodeJS.Timeout;
  what: string;
}

/**
 * One control connection. Events: `event` (TorEvent), `hs_desc` (HsDescEvent), `close` (TorControlError | undefined).
 */
export class TorControlClient extends EventEmitter {
  private readonly socket: Socket;
  private readonly parser: ReplyParser;
  private readonly timeoutMs: number;
  private readonly queue: Pending[] = [];
  private closedWith: TorControlError | null = null;
  private closed = false;

  private constructor(socket: Socket, opts: TorControlOptions) {
    super();
    this.socket = socket;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.parser = new ReplyParser(opts);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) =>
      this.fail(new TorControlError('TOR_CLOSED', `control connection error: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => this.fail(new TorControlError('TOR_CLOSED', 'control connection closed')));
  }

  /** Opens a TCP (or Unix socket) connection to the control port; does not authenticate. */
  static open(opts: TorControlOptions): Promise<TorControlClient> {
    const timeoutMs = opts.timeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      const socket = opts.path
        ? createConnection({ path: opts.path })
        : createConnection({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 9051 });
      const where = opts.path ?? `${opts.host ?? '127.0.0.1'}:${opts.port ?? 9051}`;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TorControlError('TOR_TIMEOUT', `connecting to the tor control port ${where} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        resolve(new TorControlClient(socket, opts));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(
          new TorControlError('TOR_CONNECT', `cannot reach the tor control port ${where}: ${err.message}`, {
            cause: err,
          }),
        );
      });
    });
  }

  /** Opens and authenticates (PROTOCOLINFO then AUTHENTICATE). Closes the connection on failure. */
  static async connect(opts: TorConnectOptions): Promise<TorControlClient> {
    const c = await TorControlClient.open(opts);
    try {
      await c.authenticate(opts.auth ?? {});
      return c;
    } catch (err) {
      c.close();
      throw err;
    }
  }

  /** True once the connection has ended. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends one command line (no CRLF) and resolves with its reply; rejects with TOR_REPLY_<status> unless 2xx. */
  async command(line: string): Promise<TorReply> {
    const reply = await this.raw(line);
    if (reply.status < 200 || reply.status > 299) {
      const text = reply.lines.map((l) => l.text).join(' / ');
      throw new TorControlError(`TOR_REPLY_${reply.status}`, `tor answered ${reply.status} ${text}`, {
        status: reply.status,
      });
    }
    return reply;
  }

  /** Sends a command and resolves with whatever reply it gets (errors included). */
  raw(line: string): Promise<TorReply> {
    if (/[\r\n]/.test(line)) {
      return Promise.reject(new TorControlError('TOR_BAD_ARGUMENT', 'a control command must not contain CR or LF'));
    }
    if (this.closed)
      return Promise.reject(this.closedWith ?? new TorControlError('TOR_CLOSED', 'control connection closed'));
    const what = line.split(' ', 1)[0]!;
    return new Promise<TorReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new TorControlError('TOR_TIMEOUT', `tor did not answer ${what} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.queue.push({ resolve, reject, timer, what });
      this.socket.write(line + '\r\n');
    });
  }

  /** PROTOCOLINFO 1 (allowed before authentication). */
  async protocolInfo(): Promise<ProtocolInfo> {
    const r = await this.command('PROTOCOLINFO 1');
    const info: ProtocolInfo = { protocolVersion: 0, methods: [] };
    for (const l of r.lines) {
      if (l.text.startsWith('PROTOCOLINFO ')) info.protocolVersion = Number(l.text.slice(13).trim()) || 0;
      else if (l.text.startsWith('AUTH ')) {
        for (const [k, v] of parseKeywords(l.text.slice(5))) {
          if (k === 'METHODS' && v !== undefined) info.methods = v.split(',').filter(Boolean);
          if (k === 'COOKIEFILE' && v !== undefined) info.cookieFile = v;
        }
      } else if (l.text.startsWith('VERSION ')) {
        for (const [k, v] of parseKeywords(l.text.slice(8))) if (k === 'Tor' && v !== undefined) info.torVersion = v;
      }
    }
    if (info.protocolVersion !== 1)
      throw new TorControlError('TOR_PROTOCOL', 'PROTOCOLINFO reply without protocol version 1');
    return info;
  }

  /**
   * Authenticates with the method chosen by `auth.method` ('auto': HASHEDPASSWORD when a password is given and
   * offered, else SAFECOOKIE, else NULL). Plain COOKIE is never used (TOR_AUTH_UNSAFE_METHOD). Errors:
   * TOR_AUTH_FAILED (tor refused, or no usable method), TOR_AUTH_PASSWORD_REQUIRED (tor takes only a password
   * and none was given), TOR_AUTH_UNSAFE_METHOD, TOR_COOKIE_UNREADABLE, TOR_COOKIE_BAD_SIZE.
   */
  async authenticate(auth: TorAuthOptions = {}): Promise<void> {
    const info = await this.protocolInfo();
    const offered = new Set(info.methods);
    let method: string = auth.method ?? 'auto';
    if (method === 'auto') {
      if (auth.password !== undefined && offered.has('HASHEDPASSWORD')) method = 'HASHEDPASSWORD';
      else if (offered.has('SAFECOOKIE')) method = 'SAFECOOKIE';
      else if (offered.has('NULL')) method = 'NULL';
      else if (offered.has('HASHEDPASSWORD')) {
        throw new TorControlError(
          'TOR_AUTH_PASSWORD_REQUIRED',
          'tor requires a control password (HashedControlPassword) and none was given',
        );
      } else if (offered.has('COOKIE')) {
        throw new TorControlError(
          'TOR_AUTH_UNSAFE_METHOD',
          'the control port offers plain COOKIE but not SAFECOOKIE: refused ' +
            '(a port that cannot prove it knows the cookie could be anyone)',
        );
      } else
        throw new TorControlError(
          'TOR_AUTH_FAILED',
          `no supported authentication method among [${info.methods.join(',')}]`,
        );
    }
    let arg = '';
    if (method === 'HASHEDPASSWORD') {
      if (auth.password === undefined)
        throw new TorControlError('TOR_AUTH_PASSWORD_REQUIRED', 'HASHEDPASSWORD needs a password');
      arg = ' ' + quoteString(auth.password);
    } else if (method === 'SAFECOOKIE') {
      if (!offered.has('SAFECOOKIE')) {
        const only = info.methods.join(',');
        throw new TorControlError('TOR_AUTH_UNSAFE_METHOD', `SAFECOOKIE asked for, but the port offers only [${only}]`);
      }
      const cookie = await readCookie(auth.cookieFile ?? info.cookieFile);
      arg = ' ' + (await this.safeCookieHash(cookie));
    } else if (method !== 'NULL') {
      // 'COOKIE' (plain) is no longer in the type; JavaScript callers may still pass it.
      const why = 'cookie authentication is SAFECOOKIE only';
      throw new TorControlError('TOR_AUTH_UNSAFE_METHOD', `authentication method ${method} is not used (${why})`);
    }
    let r: TorReply;
    try {
      r = await this.raw('AUTHENTICATE' + arg);
    } catch (err) {
      // tor closes the connection right after a failed AUTHENTICATE; the reply may race the close.
      throw new TorControlError('TOR_AUTH_FAILED', `authentication (${method}) failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (r.status !== 250) {
      throw new TorControlError(
        'TOR_AUTH_FAILED',
        `authentication (${method}) failed: ${r.status} ${r.lines.map((l) => l.text).join(' ')}`,
        { status: r.status },
      );
    }
  }

  /** The SAFECOOKIE exchange: AUTHCHALLENGE, check the server's proof, return the client hash (hex). */
  private async safeCookieHash(cookie: Buffer): Promise<string> {
    const clientNonce = randomBytes(32);
    const r = await this.command('AUTHCHALLENGE SAFECOOKIE ' + clientNonce.toString('hex'));
    const text = r.lines[0]?.text ?? '';
    if (!text.startsWith('AUTHCHALLENGE ')) throw new TorControlError('TOR_PROTOCOL', 'malformed AUTHCHALLENGE reply');
    const kv = new Map(parseKeywords(text.slice(14)));
    const serverHash = kv.get('SERVERHASH');
    const serverNonce = kv.get('SERVERNONCE');
    if (
      !serverHash ||
      !serverNonce ||
      !/^[0-9a-fA-F]{64}$/.test(serverHash) ||
      !/^[0-9a-fA-F]+$/.test(serverNonce) ||
      serverNonce.length % 2 !== 0
    ) {
      throw new TorControlError('TOR_PROTOCOL', 'AUTHCHALLENGE reply without valid SERVERHASH/SERVERNONCE');
    }
    const { server, client } = safeCookieHashes(cookie, clientNonce, Buffer.from(serverNonce, 'hex'));
    if (!timingSafeEqual(server, Buffer.from(serverHash, 'hex'))) {
      throw new TorControlError(
        'TOR_AUTH_SERVER_HASH',
        'SAFECOOKIE: the server hash is wrong (not the tor that wrote the cookie)',
      );
    }
    return client.toString('hex');
  }

  /** GETINFO for several keys; values of data blocks are returned whole. */
  async getInfo(keys: string[]): Promise<Record<string, string>> {
    for (const k of keys) checkToken(k, 'GETINFO key');
    const r = await this.command('GETINFO ' + keys.join(' '));
    const out: Record<string, string> = {};
    for (const l of r.lines) {
      const eq = l.text.indexOf('=');
      if (eq < 0) continue;
      const key = l.text.slice(0, eq);
      out[key] = l.data !== undefined ? l.data : l.text.slice(eq + 1);
    }
    for (const k of keys) if (!(k in out)) throw new TorControlError('TOR_PROTOCOL', `GETINFO reply lacks ${k}`);
    return out;
  }

  /** ADD_ONION: creates an onion service mapped to local listeners, tied to this connection unless Detach. */
  async addOnion(opts: AddOnionOptions): Promise<AddOnionResult> {
    const key = opts.key === undefined || opts.key === 'NEW' ? 'NEW:ED25519-V3' : opts.key;
    if (!/^(NEW:(ED25519-V3|BEST)|ED25519-V3:[A-Za-z0-9+/=]+)$/.test(key)) {
      throw new TorControlError('TOR_BAD_ARGUMENT', 'ADD_ONION key must be NEW or ED25519-V3:<base64>');
    }
    if (opts.ports.length === 0) throw new TorControlError('TOR_BAD_ARGUMENT', 'ADD_ONION needs at least one port');
    let line = 'ADD_ONION ' + key;
    if (opts.flags && opts.flags.length > 0) line += ' Flags=' + opts.flags.join(',');
    if (opts.maxStreams !== undefined) line += ' MaxStreams=' + Math.floor(opts.maxStreams);
    for (const p of opts.ports) {
      if (!Number.isInteger(p.virtual) || p.virtual < 1 || p.virtual > 65535)
        throw new TorControlError('TOR_BAD_ARGUMENT', `bad virtual port ${p.virtual}`);
      checkToken(p.target, 'ADD_ONION target');
      line += ` Port=${p.virtual},${p.target}`;
    }
    const r = await this.command(line);
    let serviceId: string | undefined;
    let privateKey: string | undefined;
    for (const l of r.lines) {
      if (l.text.startsWith('ServiceID=')) serviceId = l.text.slice(10);
      else if (l.text.startsWith('PrivateKey=')) privateKey = l.text.slice(11);
    }
    if (!serviceId || !SERVICE_ID_RE.test(serviceId))
      throw new TorControlError('TOR_PROTOCOL', 'ADD_ONION reply without a valid ServiceID');
    return privateKey ? { serviceId, privateKey } : { serviceId };
  }

  /** DEL_ONION: removes a service created by ADD_ONION. Unknown services: TOR_REPLY_552. */
  async delOnion(serviceId: string): Promise<void> {
    if (!SERVICE_ID_RE.test(serviceId))
      throw new TorControlError('TOR_BAD_ARGUMENT', 'DEL_ONION needs a 56-character service id');
    await this.command('DEL_ONION ' + serviceId);
  }

  /** SETEVENTS: replaces the set of asynchronous events this connection receives. */
  async setEvents(events: string[]): Promise<void> {
    for (const e of events) checkToken(e, 'event name');
    await this.command(('SETEVENTS ' + events.join(' ')).trimEnd());
  }

  /**
   * Resolves when an HS_DESC UPLOADED event for `serviceId` arrives (needs SETEVENTS HS_DESC first), rejects
   * with TOR_TIMEOUT after `timeoutMs` or when the connection closes.
   */
  waitForDescUploaded(serviceId: string, timeoutMs: number): Promise<HsDescEvent> {
    return new Promise((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.off('hs_desc', onDesc);
        this.off('close', onClose);
        fn();
      };
      const onDesc = (e: HsDescEvent) => {
        if (e.action === 'UPLOADED' && e.address === serviceId) done(() => resolve(e));
      };
      const onClose = (err?: TorControlError) =>
        done(() => reject(err ?? new TorControlError('TOR_CLOSED', 'control connection closed')));
      const timer = setTimeout(
        () =>
          done(() =>
            reject(new TorControlError('TOR_TIMEOUT', `no HS_DESC UPLOADED for ${serviceId} within ${timeoutMs} ms`)),
          ),
        timeoutMs,
      );
      if (this.closed) return onClose(this.closedWith ?? undefined);
      this.on('hs_desc', onDesc);
      this.on('close', onClose);
    });
  }

  /** Closes the connection; outstanding requests fail with TOR_CLOSED. */
  close(): void {
    this.fail(new TorControlError('TOR_CLOSED', 'control connection closed by us'));
  }

  private onData(chunk: Buffer): void {
    let replies: TorReply[];
    try {
      replies = this.parser.push(chunk);
    } catch (err) {
      this.fail(err as TorControlError);
      return;
    }
    for (const r of replies) {
      if (this.closed) return;
      if (r.status === 650) {
        this.dispatchEvent(r);
        continue;
      }
      const p = this.queue.shift();
      if (!p) {
        this.fail(new TorControlError('TOR_PROTOCOL', `unsolicited control reply ${r.status}`));
        return;
      }
      clearTimeout(p.timer);
      p.resolve(r);
    }
  }

  private dispatchEvent(r: TorReply): void {
    const text = r.lines[0]!.text;
    const type = text.split(' ', 1)[0]!;
    const ev: TorEvent = { type, text, reply: r };
    // Listener bugs must not break the reply stream.
    try {
      this.emit('event', ev);
      if (type === 'HS_DESC') {
        const parsed = parseHsDesc(text);
        if (parsed) this.emit('hs_desc', parsed);
      }
    } catch {
      /* ignored on purpose */
    }
  }

  private fail(err: TorControlError): void {
    if (this.closed) return;
    this.closed = true;
    this.closedWith = err;
    this.socket.destroy();
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.emit('close', err.message === 'control connection closed by us' ? undefined : err);
  }
}

/** Parses the first line of an HS_DESC event: `HS_DESC <Action> <HSAddress> <AuthType> <HsDir> ...`. */
export function parseHsDesc(text: string): HsDescEvent | null {
  const parts = text.split(' ');
  if (parts[0] !== 'HS_DESC' || parts.length < 5) return null;
  const ev: HsDescEvent = { action: parts[1]!, address: parts[2]!, hsDir: parts[4]! };
  for (const p of parts.slice(5)) if (p.startsWith('REASON=')) ev.reason = p.slice(7);
  return ev;
}

/** The two SAFECOOKIE HMACs (control-spec 3.24): server-to-controller and controller-to-server. */
export function safeCookieHashes(
  cookie: Buffer,
  clientNonce: Buffer,
  serverNonce: Buffer,
): { server: Buffer; client: Buffer } {
  const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
  return {
    server: createHmac('sha256', SERVER_KEY).update(msg).digest(),
    client: createHmac('sha256', CLIENT_KEY).update(msg).digest(),
  };
}

/**
 * Reads a control cookie. The file the control port names is not trusted, so at most 33 bytes are read (one
 * more than a cookie, to tell "exactly 32" from "longer"), only from a regular file, and the open does not
 * block (a FIFO named by a hostile port would otherwise hang us). Errors: TOR_COOKIE_UNREADABLE,
 * TOR_COOKIE_BAD_SIZE.
 */
export async function readCookie(file: string | undefined): Promise<Buffer> {
  if (!file) {
    throw new TorControlError('TOR_COOKIE_UNREADABLE', 'no cookie file known (tor named none and none was given)');
  }
  let fh;
  try {
    fh = await open(file, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch (err) {
    const hint = "(is the user in tor's group, CookieAuthFileGroupReadable 1?)";
    const msg = `cannot read the tor cookie file ${file}: ${(err as Error).message} ${hint}`;
    throw new TorControlError('TOR_COOKIE_UNREADABLE', msg, { cause: err });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new TorControlError('TOR_COOKIE_UNREADABLE', `the tor cookie file ${file} is not a regular file`);
    }
    const buf = Buffer.alloc(TOR_COOKIE_BYTES + 1);
    let got = 0;
    // Reads may come back short; loop until 33 bytes or the end of the file, never further.
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got !== TOR_COOKIE_BYTES) {
      const size = got > TOR_COOKIE_BYTES ? `more than ${TOR_COOKIE_BYTES}` : `${got}`;
      const msg = `the tor cookie file ${file} is ${size} bytes, not ${TOR_COOKIE_BYTES}`;
      throw new TorControlError('TOR_COOKIE_BAD_SIZE', msg);
    }
    return buf.subarray(0, TOR_COOKIE_BYTES);
  } catch (err) {
    if (err instanceof TorControlError) throw err;
    const msg = `cannot read the tor cookie file ${file}: ${(err as Error).message}`;
    throw new TorControlError('TOR_COOKIE_UNREADABLE', msg, { cause: err });
  } finally {
    await fh.close();
  }
}

function checkToken(s: string, what: string): void {
  if (s.length === 0 || /[\s"]/.test(s))
    throw new TorControlError('TOR_BAD_ARGUMENT', `${what} must be one non-empty word`);
}
