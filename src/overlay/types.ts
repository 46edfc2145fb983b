/**
 * The one interface the punch protocol sees over both overlays (Tor onion services, I2P destinations).
 * A coordination endpoint has its own key, used for nothing else, and is never linked to another identity.
 */
import type { Duplex } from 'node:stream';
import type { EventEmitter } from 'node:events';

export type OverlayKind = 'tor' | 'i2p';

/** Information about an accepted coordination stream. */
export interface AcceptedStreamInfo {
  /** I2P: the peer's b32 address (SAM tells it). Tor: undefined (onion services do not reveal callers). */
  peer?: string;
}

/**
 * A listening coordination endpoint (A side).
 * Events: `stream` (stream: Duplex, info: AcceptedStreamInfo), `down` (err), `up` (), `error` (err).
 */
export interface CoordinationEndpoint extends EventEmitter {
  readonly kind: OverlayKind;
  /** Public address: `<56 base32>.onion` or `<52 base32>.b32.i2p`. */
  readonly address: string;
  /** Virtual port the endpoint is reached on (Tor: the onion's virtual port; I2P: 0 unless ports are used). */
  readonly port: number;
  /** Stops accepting, removes the service (DEL_ONION / SAM session close), closes open streams. */
  close(): Promise<void>;
}

/** Options for one dial. */
export interface DialOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Distinct keys get distinct circuits (Tor: SOCKS username/password isolation). */
  isolationKey?: string;
}

/** Opens streams to coordination endpoints (B side). */
export interface CoordinationDialer {
  readonly kind: OverlayKind;
  dial(address: string, port: number, opts?: DialOptions): Promise<Duplex>;
  close(): Promise<void>;
}

/** Result of `onionpunch overlay selftest` for one overlay (JSON contract: ok, bringUpMs, firstConnectMs). */
export interface OverlaySelftestResult {
  ok: boolean;
  bringUpMs: number;
  firstConnectMs: number;
  error?: { code: string; message: string };
  [extra: string]: unknown;
}
