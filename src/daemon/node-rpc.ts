/**
 * A small JSON-RPC client for the local Bitcoin node (bitcoind or bcoin): HTTP POST to `rpcconnect:rpcport`
 * with basic auth from `rpcuser`/`rpcpassword` or the cookie file (`rpccookiefile`), the way bitcoin-cli talks
 * to bitcoind. One request per connection, a deadline on the whole exchange, a cap on the response size, and
 * every failure a {@link NodeRpcError} with a stable code: a bad or hostile reply never crashes the caller.
 *
 * ```ts
 * const rpc = nodeRpcFromConfig(cfg);             // or new NodeRpc({ host, port, auth })
 * const height = await rpc.call<number>('getblockcount');
 * await rpc.call('addnode', ['198.51.100.7:8333', 'onetry']);
 * ```
 */
import { request, type IncomingMessage } from 'node:http';
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { OnionpunchError } from '../errors.js';
import type { NetworkName } from '../wire/index.js';

export type NodeRpcErrorCode =
  /** The TCP connection to the RPC port failed (refused, unreachable, reset before a reply). */
  | 'RPC_CONNECT'
  /** No complete reply within the deadline. */
  | 'RPC_TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'RPC_ABORTED'
  /** The node refused the credentials (HTTP 401/403). */
  | 'RPC_AUTH'
  /** The cookie file is missing, unreadable, too large or not `user:password`. */
  | 'RPC_COOKIE'
  /** An HTTP status other than 200 without a JSON-RPC error body. */
  | 'RPC_HTTP'
  /** The body is not a JSON-RPC reply (not JSON, wrong shape, another id). */
  | 'RPC_BAD_REPLY'
  /** The reply is larger than the response cap. */
  | 'RPC_TOO_LARGE'
  /** The node answered with a JSON-RPC error (`rpcCode`: its number, e.g. -28 warming up, -32601 no method). */
  | 'RPC_ERROR';

/** A failed node RPC call; `method` names the call, `rpcCode`/`httpStatus` what the node said when it said it. */
export class NodeRpcError extends OnionpunchError {
  declare readonly code: NodeRpcErrorCode;
  readonly method: string;
  readonly httpStatus: number | undefined;
  readonly rpcCode: number | undefined;
  constructor(
    code: NodeRpcErrorCode,
    message: string,
    o: { method: string; httpStatus?: number; rpcCode?: number; cause?: unknown },
  ) {
    super(code, message, o.cause !== undefined ? { cause: o.cause } : undefined);
    this.method = o.method;
    this.httpStatus = o.httpStatus;
    this.rpcCode = o.rpcCode;
  }
}

/** Credentials: a user and password (`rpcuser`/`rpcpassword`), or the node's cookie file, read on every call. */
export type NodeRpcAuth = { user: string; password: string } | { cookieFile: string };

export interface NodeRpcOptions {
  /** The node's RPC address (`rpcconnect`). */
  host: string;
  /** The node's RPC port (`rpcport`). */
  port: number;
  /** Basic auth; none sends no Authorization header (bcoin without an API key). */
  auth?: NodeRpcAuth;
  /** Deadline of one call, connect to last byte, ms (default {@link NODE_RPC_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** Largest reply body accepted, bytes (default {@link NODE_RPC_MAX_RESPONSE_BYTES}). */
  maxResponseBytes?: number;
}

/** Default deadline of one call (bitcoin-cli's -rpcclienttimeout is 900 s; our calls are small ones). */
export const NODE_RPC_TIMEOUT_MS = 10_000;
/** Default reply cap: a getpeerinfo of bitcoind's 125 peers is ~300 KiB. */
export const NODE_RPC_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** Largest cookie file read (bitcoind's is `__cookie__:` + 64 hex digits). */
const MAX_COOKIE_BYTES = 1024;

/** bitcoind's default RPC port per network (its -rpcport). */
export const RPC_DEFAULT_PORT: Readonly<Record<NetworkName, number>> = Object.freeze({
  main: 8332,
  testnet3: 18332,
  testnet4: 48332,
  signet: 38332,
  regtest: 18443,
});

/** bitcoind's data subdirectory per network. */
const NET_DIR: Readonly<Record<NetworkName, string>> = {
  main: '',
  testnet3: 'testnet3',
  testnet4: 'testnet4',
  signet: 'signet',
  regtest: 'regtest',
};

/** bitcoind's default cookie file: `~/.bitcoin/.cookie`, or `~/.bitcoin/<network>/.cookie`. */
export function defaultCookieFile(network: NetworkName, home: string = homedir()): string {
  return join(home, '.bitcoin', NET_DIR[network], '.cookie');
}

/** Reads `user:password` from a cookie file (first line), bounded. */
export async function readCookie(path: string, method = 'cookie'): Promise<{ user: string; password: string }> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(MAX_COOKIE_BYTES + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_COOKIE_BYTES) {
        throw new NodeRpcError('RPC_COOKIE', `cookie file ${path} is larger than ${MAX_COOKIE_BYTES} bytes`, {
          method,
        });
      }
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof NodeRpcError) throw err;
    const why = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new NodeRpcError('RPC_COOKIE', `cannot read cookie file ${path}: ${why}`, { method, cause: err });
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  const colon = line.indexOf(':');
  if (colon <= 0 || colon === line.length - 1) {
    throw new NodeRpcError('RPC_COOKIE', `cookie file ${path} is not user:password`, { method });
  }
  return { user: line.slice(0, colon), password: line.slice(colon + 1) };
}

/** The RPC settings of the daemon configuration (bitcoind's option names). */
export interface NodeRpcConfig {
  network: NetworkName;
  rpcconnect: string;
  rpcport: number | undefined;
  rpcuser: string | undefined;
  rpcpassword: string | undefined;
  rpccookiefile: string | undefined;
}

/**
 * The client for the configured node: `rpcpassword` (with `rpcuser`, default empty as bitcoin-cli's) wins, else
 * the cookie file (`rpccookiefile`, default bitcoind's for the network); `rpcport` defaults to bitcoind's.
 */
export function nodeRpcFromConfig(
  cfg: NodeRpcConfig,
  o: Pick<NodeRpcOptions, 'timeoutMs' | 'maxResponseBytes'> = {},
): NodeRpc {
  const auth: NodeRpcAuth =
    cfg.rpcpassword !== undefined
      ? { user: cfg.rpcuser ?? '', password: cfg.rpcpassword }
      : { cookieFile: cfg.rpccookiefile ?? defaultCookieFile(cfg.network) };
  return new NodeRpc({ host: cfg.rpcconnect, port: cfg.rpcport ?? RPC_DEFAULT_PORT[cfg.network], auth, ...o });
}

let nextId = 1;

/** A JSON-RPC client of one node (see the module comment). Stateless between calls; safe to share. */
export class NodeRpc {
  private readonly o: Required<Omit<NodeRpcOptions, 'auth'>> & Pick<NodeRpcOptions, 'auth'>;

  constructor(o: NodeRpcOptions) {
    this.o = {
      timeoutMs: NODE_RPC_TIMEOUT_MS,
      maxResponseBytes: NODE_RPC_MAX_RESPONSE_BYTES,
      ...o,
    };
  }

  /** `host:port` (IPv6 in brackets) of the node's RPC server, for log lines. */
  get endpoint(): string {
    return this.o.host.includes(':') ? `[${this.o.host}]:${this.o.port}` : `${this.o.host}:${this.o.port}`;
  }

  /**
   * Calls `method` with positional `params` and resolves its `result`. Rejects with a {@link NodeRpcError} only
   * (see its codes); the signal aborts the call (RPC_ABORTED).
   */
  async call<T = unknown>(
    method: string,
    params: readonly unknown[] = [],
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const auth = this.o.auth;
    if (auth) {
      const cred = 'cookieFile' in auth ? await readCookie(auth.cookieFile, method) : auth;
      headers.authorization = `Basic ${Buffer.from(`${cred.user}:${cred.password}`).toString('base64')}`;
    }
    const id = nextId++;
    // JSON-RPC 1.0 as bitcoin-cli sends it: bitcoind answers errors with HTTP 500/404 and a JSON body.
    const body = JSON.stringify({ jsonrpc: '1.0', id, method, params });
    const { status, text } = await this.post(method, body, headers, opts);
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      reply = undefined;
    }
    const r =
      reply !== null && typeof reply === 'object' && !Array.isArray(reply)
        ? (reply as { result?: unknown; error?: unknown; id?: unknown })
        : undefined;
    if (r && r.error !== undefined && r.error !== null) {
      const e = r.error as { code?: unknown; message?: unknown };
      const rpcCode = typeof e.code === 'number' ? e.code : undefined;
      const msg = typeof e.message === 'string' ? e.message.slice(0, 300) : JSON.stringify(r.error).slice(0, 300);
      throw new NodeRpcError('RPC_ERROR', `${method}: the node answered error ${rpcCode ?? '?'}: ${msg}`, {
        method,
        httpStatus: status,
        ...(rpcCode !== undefined ? { rpcCode } : {}),
      });
    }
    if (status === 401 || status === 403) {
      throw new NodeRpcError('RPC_AUTH', `${method}: ${this.endpoint} refused the credentials (HTTP ${status})`, {
        method,
        httpStatus: status,
      });
    }
    if (status !== 200) {
      throw new NodeRpcError('RPC_HTTP', `${method}: ${this.endpoint} answered HTTP ${status}`, {
        method,
        httpStatus: status,
      });
    }
    if (!r || !('result' in r)) {
      throw new NodeRpcError('RPC_BAD_REPLY', `${method}: ${this.endpoint} sent no JSON-RPC reply`, {
        method,
        httpStatus: status,
      });
    }
    if (r.id !== id) {
      throw new NodeRpcError('RPC_BAD_REPLY', `${method}: the reply is for another request id`, {
        method,
        httpStatus: status,
      });
    }
    return r.result as T;
  }

  private post(
    method: string,
    body: string,
    headers: Record<string, string>,
    opts: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<{ status: number; text: string }> {
    const timeoutMs = opts.timeoutMs ?? this.o.timeoutMs;
    const cap = this.o.maxResponseBytes;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: NodeRpcError | undefined, v?: { status: number; text: string }): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(v!);
      };
      const req = request({
        host: this.o.host,
        port: this.o.port,
        method: 'POST',
        path: '/',
        agent: false,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      });
      const timer = setTimeout(
        () =>
          finish(
            new NodeRpcError('RPC_TIMEOUT', `${method}: no reply from ${this.endpoint} within ${timeoutMs} ms`, {
              method,
            }),
          ),
        timeoutMs,
      );
      const onAbort = (): void => finish(new NodeRpcError('RPC_ABORTED', `${method}: aborted`, { method }));
      if (opts.signal?.aborted) {
        onAbort();
        return;
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) =>
        finish(
          new NodeRpcError(
            'RPC_CONNECT',
            `${method}: cannot talk to the node's RPC at ${this.endpoint}: ` +
              `${(err as NodeJS.ErrnoException).code ?? err.message}`,
            { method, cause: err },
          ),
        ),
      );
      req.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const tooLarge = (): NodeRpcError =>
          new NodeRpcError('RPC_TOO_LARGE', `${method}: the reply is larger than ${cap} bytes`, {
            method,
            httpStatus: status,
          });
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > cap) {
          finish(tooLarge());
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > cap) finish(tooLarge());
          else chunks.push(c);
        });
        res.on('end', () => finish(undefined, { status, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) =>
          finish(
            new NodeRpcError('RPC_CONNECT', `${method}: the reply from ${this.endpoint} broke off: ${err.message}`, {
              method,
              httpStatus: status,
              cause: err,
            }),
          ),
        );
        res.on('aborted', () =>
          finish(
            new NodeRpcError('RPC_CONNECT', `${method}: the reply from ${this.endpoint} broke off`, {
              method,
              httpStatus: status,
            }),
          ),
        );
      });
      req.end(body);
    });
  }
}
