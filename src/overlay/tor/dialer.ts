/**
 * TorCoordinationDialer: opens coordination streams to onion endpoints through tor's SOCKS port, with one
 * circuit family per isolation key.
 */
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { CoordinationDialer, DialOptions, OverlayKind } from '../types.js';
import { dialOnion } from './socks.js';
import { TorSocksError } from './errors.js';

export interface TorDialerOptions {
  socksHost?: string;
  socksPort: number;
  /** Default dial timeout, ms (default 120000: a first onion connect on a cold client takes tens of seconds). */
  timeoutMs?: number;
  /**
   * How long after a dial starts descriptor-not-found (0xF0) is still retried, ms (default 20000, bounded by the
   * dial's timeout). A fresh onion's descriptor reaches its remaining HSDirs within seconds of the first upload;
   * past this window the service is taken to be offline, so a dead onion still fails in about this time.
   */
  descRetryMs?: number;
}

/** First pause before re-dialing after descriptor-not-found (0xF0); doubled per attempt up to the cap. */
const DESC_RETRY_FIRST_MS = 500;
const DESC_RETRY_MAX_MS = 4000;
/** Default window for those retries (see {@link TorDialerOptions.descRetryMs}). */
const DESC_RETRY_WINDOW_MS = 20_000;

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class TorCoordinationDialer implements CoordinationDialer {
  readonly kind: OverlayKind = 'tor';
  /** Dials retried after TOR_SOCKS_HS_DESC_NOT_FOUND so far (observability: a fresh onion's first dial). */
  descRetries = 0;
  private closed = false;
  private readonly open = new Set<Duplex>();

  constructor(private readonly opts: TorDialerOptions) {}

  /**
   * Dials `address` (`<56 base32>.onion`) on `port`. Without `isolationKey` every dial gets a fresh random key,
   * so two coordination sessions never share a circuit. Descriptor-not-found (0xF0) is retried for up to
   * `descRetryMs` within the deadline (a fresh onion's descriptor is not on every HSDir yet); a TTL-expired
   * (0x06) is retried once.
   * Errors: TorSocksError (the last attempt's, e.g. TOR_SOCKS_HS_DESC_NOT_FOUND when still so at the deadline).
   */
  async dial(address: string, port: number, opts: DialOptions = {}): Promise<Duplex> {
    if (this.closed) throw new TorSocksError('TOR_SOCKS_ABORTED', 'dialer is closed');
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    const descDeadline = Math.min(deadline, Date.now() + (this.opts.descRetryMs ?? DESC_RETRY_WINDOW_MS));
    const isolationKey = opts.isolationKey ?? randomUUID();
    const once = (ms: number) =>
      dialOnion(address, port, {
        socksHost: this.opts.socksHost ?? '127.0.0.1',
        socksPort: this.opts.socksPort,
        isolationKey,
        timeoutMs: ms,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    let s: Duplex;
    let ttlRetried = false;
    let pause = DESC_RETRY_FIRST_MS;
    let notFound: TorSocksError | undefined;
    for (;;) {
      try {
        s = await once(Math.max(1, deadline - Date.now()));
        break;
      } catch (err) {
        const code = err instanceof TorSocksError ? err.code : undefined;
        const left = deadline - Date.now();
        if (opts.signal?.aborted || this.closed) throw err;
        if (code === 'TOR_SOCKS_TTL_EXPIRED' && !ttlRetried && left >= 1000) {
          // tor parks a stream whose intro points all refused while it refetches the descriptor, and ends it with
          // a plain TTL-expired (0x06) at SocksTimeout. By then it knows the intro points failed: one more attempt
          // gets the precise extended error (0xF2 ...) within seconds, or connects if the service is back.
          ttlRetried = true;
          continue;
        }
        // Once every responsible HSDir has been asked in vain, tor fails further requests with a bare general
        // failure (0x01; seen after DEL_ONION): the precise answer is still "descriptor not found".
        if (notFound && code === 'TOR_SOCKS_GENERAL_FAILURE') throw notFound;
        if (code === 'TOR_SOCKS_HS_DESC_NOT_FOUND' && left >= pause + 1000 && Date.now() + pause < descDeadline) {
          notFound = err as TorSocksError;
          // A fresh onion's descriptor reaches its HSDirs one by one (HS_DESC UPLOADED fires on the first): the
          // HSDir this client asked may not hold it yet. tor asks another responsible HSDir on the next request,
          // so retry with a growing pause until the dial's own deadline.
          this.descRetries++;
          await sleep(pause, opts.signal);
          pause = Math.min(pause * 2, DESC_RETRY_MAX_MS);
          continue;
        }
        throw err;
      }
    }
    this.open.add(s);
    s.once('close', () => this.open.delete(s));
    return s;
  }

  /** Closes every stream this dialer opened. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.open) s.destroy();
    this.open.clear();
  }
}
