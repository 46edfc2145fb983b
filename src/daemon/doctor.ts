/**
 * `onionpunch doctor`: the checks an operator runs in the first minute, against the same configuration as
 * `serve`/`proxy`/`relay` (config.ts). Each check talks to the real component (tor's control and SOCKS ports,
 * the SAM bridge, the relays, the NAT-check servers, the node's P2P port and RPC) and returns one
 * {@link CheckResult}: what it found and, when something is wrong, what to change. Nothing here changes state
 * anywhere: no ADD_ONION, no SAM session, no announcement, no addnode.
 */
import { createConnection, type Socket } from 'node:net';
import { statSync } from 'node:fs';
import { OnionpunchError } from '../errors.js';
import { TorControlClient } from '../overlay/tor/control.js';
import { openSam } from '../overlay/i2p/connection.js';
import { connectPeer } from '../peer/connect.js';
import type { EimVerdict } from '../nat/eim-check.js';
import type { DaemonConfig, HostPort } from './config.js';
import { parseHandoffTarget } from './handoff.js';
import { escapeText } from './log.js';
import { NodeRpcError, nodeRpcFromConfig, type NodeRpc } from './node-rpc.js';

/**
 * ok: as it should be; warn: works, but worth a look; fail: onionpunch will not work until fixed; skip: the
 * check does not apply to this configuration (the line says why, e.g. `zerortt` with zerortt=0).
 */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** One check's outcome: one line of `onionpunch doctor`. */
export interface CheckResult {
  /** Stable name of the check (`tor-control`, `tor-socks`, `sam`, `nat`, `relay`, `bitcoind-p2p`, ...). */
  id: string;
  /** What was checked (`127.0.0.1:9051`), when there is one target. */
  target?: string;
  status: CheckStatus;
  /** What was found, for a human; peer-supplied text is escaped. */
  message: string;
  /** What to change (fail and warn). */
  fix?: string;
  /** The error code behind a failure (`TOR_AUTH_FAILED`, `PEER_SOCKET`, ...). */
  code?: string;
  /** How long the check took. */
  ms: number;
}

/** The verbs whose setup doctor checks. */
export type DoctorRole = 'serve' | 'proxy' | 'relay';

/** Bounds on one doctor run. */
export interface DoctorOptions {
  /** Per connection or request, ms (default {@link DOCTOR_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** The node's RPC client; default: the configured one (node-rpc.ts) when proxy uses it (see runDoctor). */
  rpc?: NodeRpcLike;
}

/** Default bound on each connection and request of a check. */
export const DOCTOR_TIMEOUT_MS = 5000;

/** What the RPC checks use of the node's client ({@link NodeRpc}, node-rpc.ts). */
export type NodeRpcLike = Pick<NodeRpc, 'endpoint' | 'call'>;

const hp = (h: HostPort): string => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);
const codeOf = (err: unknown): string => {
  if (err instanceof OnionpunchError) return err.code;
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : 'ERROR';
};
const msgOf = (err: unknown): string => escapeText(err instanceof Error ? err.message : String(err)).slice(0, 300);
const isOverlayName = (host: string): boolean => /\.(onion|i2p)$/i.test(host);

type Found = Omit<CheckResult, 'id' | 'ms' | 'target'>;

async function timed(id: string, target: string | undefined, f: () => Promise<Found>): Promise<CheckResult> {
  const t0 = performance.now();
  let r: Found;
  try {
    r = await f();
  } catch (err) {
    // A check's own bug or an unclassified failure still gives its line, never a crash of the whole run.
    const fix = 'unexpected failure; run again with the component up';
    r = { status: 'fail', message: msgOf(err), code: codeOf(err), fix };
  }
  return { id, ...(target !== undefined ? { target } : {}), ...r, ms: Math.round(performance.now() - t0) };
}

/** Fix lines for the control-port failures, by error code. */
function torControlFix(code: string, cfg: Pick<DaemonConfig, 'torpassword' | 'torcontrol'>): string {
  switch (code) {
    case 'TOR_CONNECT':
      return (
        `nothing listens on ${hp(cfg.torcontrol)}: add "ControlPort ${cfg.torcontrol.port}" to torrc and ` +
        'restart tor, ' +
        'or set torcontrol= to where it listens'
      );
    case 'TOR_AUTH_PASSWORD_REQUIRED':
      return 'tor wants a control password: set torpassword= to the password HashedControlPassword was made from';
    case 'TOR_AUTH_FAILED':
      return (
        'tor refused the password: set torpassword= to the one HashedControlPassword was made from ' +
        '(tor --hash-password PASSWORD gives the torrc line)'
      );
    case 'TOR_COOKIE_UNREADABLE':
      return (
        "cannot read tor's cookie file: run onionpunch as a user in tor's group (Debian: debian-tor) " +
        'with "CookieAuthFileGroupReadable 1" in torrc, or use HashedControlPassword and torpassword='
      );
    case 'TOR_COOKIE_BAD_SIZE':
    case 'TOR_AUTH_SERVER_HASH':
      return (
        "the cookie file tor names is not this tor's (a stale file, or two tors sharing CookieAuthFile): " +
        'give each tor its own CookieAuthFile and restart it'
      );
    case 'TOR_AUTH_UNSAFE_METHOD':
      return (
        'tor offers plain COOKIE only: use "CookieAuthentication 1" on tor >= 0.2.3 (SAFECOOKIE) ' +
        'or HashedControlPassword with torpassword='
      );
    default:
      return (
        `${hp(cfg.torcontrol)} does not answer as a tor control port: is torcontrol= tor's ControlPort ` +
        '(not its SocksPort)?'
      );
  }
}

/**
 * Tor's control port: reachable, a tor (PROTOCOLINFO), authenticating as serve does (`torpassword`, else
 * SAFECOOKIE, else NULL), and bootstrapped (GETINFO status/bootstrap-phase; below 100 % is a warning).
 */
export async function checkTorControl(
  cfg: Pick<DaemonConfig, 'torcontrol' | 'torpassword'>,
  timeoutMs = DOCTOR_TIMEOUT_MS,
): Promise<CheckResult> {
  return timed('tor-control', hp(cfg.torcontrol), async () => {
    const where = { host: cfg.torcontrol.host, port: cfg.torcontrol.port, timeoutMs };
    let methods: string[] = [];
    let version = '';
    try {
      // PROTOCOLINFO on a connection of its own: tor allows it once before AUTHENTICATE, and connect() sends it.
      const probe = await TorControlClient.open(where);
      try {
        const info = await probe.protocolInfo();
        methods = info.methods;
        version = info.torVersion ?? '';
      } finally {
        probe.close();
      }
      const auth = cfg.torpassword !== undefined ? { password: cfg.torpassword } : {};
      const c = await TorControlClient.connect({ ...where, auth });
      try {
        const phase = (await c.getInfo(['status/bootstrap-phase']))['status/bootstrap-phase'] ?? '';
        const progress = Number(/PROGRESS=(\d+)/.exec(phase)?.[1] ?? NaN);
        const usesPassword = cfg.torpassword !== undefined && methods.includes('HASHEDPASSWORD');
        const how = usesPassword ? 'password' : methods.includes('SAFECOOKIE') ? 'SAFECOOKIE' : 'NULL';
        const what = `authenticated (${how}), tor ${escapeText(version).slice(0, 40)}`;
        if (cfg.torpassword !== undefined && !usesPassword) {
          return {
            status: 'warn',
            message: `${what}; tor offers [${methods.join(',')}], not a password`,
            fix: 'remove torpassword= (it is not used), or set HashedControlPassword in torrc',
          };
        }
        if (progress === 100) return { status: 'ok', message: `${what}, bootstrapped 100%` };
        const summary = escapeText(/SUMMARY="([^"]*)"/.exec(phase)?.[1] ?? phase).slice(0, 120);
        return {
          status: 'warn',
          message: `${what}, bootstrapped ${Number.isNaN(progress) ? '?' : progress}% (${summary})`,
          fix: "tor has not reached the Tor network yet: wait, or read tor's log (DisableNetwork, clock, firewall)",
        };
      } finally {
        c.close();
      }
    } catch (err) {
      const code = codeOf(err);
      return { status: 'fail', code, message: `${code}: ${msgOf(err)}`, fix: torControlFix(code, cfg) };
    }
  });
}

/** Reads what a server sends after `data` until it closes, `max` bytes arrive or `ms` pass. */
function exchange(
  h: HostPort,
  data: Buffer | string,
  ms: number,
  max = 512,
): Promise<{ reply: Buffer; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const s: Socket = createConnection({ host: h.host, port: h.port });
    let got = Buffer.alloc(0);
    let done = false;
    const finish = (error?: NodeJS.ErrnoException): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(error ? { reply: got, error } : { reply: got });
    };
    const timer = setTimeout(() => finish(), ms);
    s.on('connect', () => s.write(data));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]).subarray(0, max);
      if (got.length >= max) finish();
    });
    s.on('error', (e: NodeJS.ErrnoException) => finish(got.length > 0 ? undefined : e));
    s.on('close', () => finish());
  });
}

/** What tor's SOCKS port answers to an HTTP request (tor's connection_ap_handshake_process_socks). */
const TOR_HTTP_REPLY = 'Tor is not an HTTP Proxy';

/**
 * Tor's SOCKS port (`proxy`, or `onion`): a SOCKS5 greeting gets `05 00`, and an HTTP request gets tor's
 * "Tor is not an HTTP Proxy" page, which tells tor from another SOCKS5 server (onionpunch's own `listen` port,
 * say). No connection through tor is made.
 */
export async function checkTorSocks(
  id: string,
  key: 'proxy' | 'onion',
  socks: HostPort,
  listen: HostPort | undefined,
  timeoutMs = DOCTOR_TIMEOUT_MS,
): Promise<CheckResult> {
  return timed(id, hp(socks), async () => {
    if (listen && listen.port === socks.port && (listen.host === socks.host || listen.host === '0.0.0.0')) {
      return {
        status: 'fail',
        message: `${key}= is onionpunch proxy's own listen address`,
        fix: `set ${key}= to tor's SocksPort (127.0.0.1:9050 by default), not listen=`,
      };
    }
    const greet = await exchange(socks, Buffer.from([0x05, 0x01, 0x00]), timeoutMs, 2);
    if (greet.error) {
      const code = greet.error.code ?? 'ERROR';
      return {
        status: 'fail',
        code,
        message: `cannot connect: ${code}`,
        fix:
          `nothing listens on ${hp(socks)}: add "SocksPort ${socks.port}" to torrc and restart tor, or set ${key}= ` +
          'to where it listens',
      };
    }
    if (greet.reply.length < 2 || greet.reply[0] !== 0x05 || greet.reply[1] !== 0x00) {
      return {
        status: 'fail',
        code: 'DOCTOR_NOT_SOCKS5',
        message:
          'not a SOCKS5 server without authentication ' +
          `(answered ${greet.reply.subarray(0, 8).toString('hex') || 'nothing'})`,
        fix: `set ${key}= to tor's SocksPort (is it tor's ControlPort or another service?)`,
      };
    }
    const http = await exchange(socks, 'GET / HTTP/1.0\r\n\r\n', timeoutMs);
    if (http.reply.toString('latin1').includes(TOR_HTTP_REPLY)) return { status: 'ok', message: "tor's SOCKS5 port" };
    return {
      status: 'warn',
      code: 'DOCTOR_NOT_TOR',
      message: 'a SOCKS5 server, but it does not answer as tor does',
      fix: `${key}= should be tor's SocksPort itself; .onion peers and coordination dials need tor`,
    };
  });
}

/** The SAM bridge (`i2psam`): reachable and answering HELLO VERSION 3.1. No session is created. */
export async function checkSam(sam: HostPort, timeoutMs = DOCTOR_TIMEOUT_MS): Promise<CheckResult> {
  return timed('sam', hp(sam), async () => {
    try {
      const c = await openSam({ host: sam.host, port: sam.port }, { timeoutMs });
      c.destroy();
      return { status: 'ok', message: 'SAM bridge answers HELLO (SAM 3.1)' };
    } catch (err) {
      const code = codeOf(err);
      const fix =
        code === 'SAM_UNREACHABLE'
          ? `nothing listens on ${hp(sam)}: enable SAM in the I2P router (i2pd.conf: [sam] enabled = true, port = ` +
            `${sam.port}) or set i2psam= to where it listens`
          : code === 'SAM_NOVERSION'
            ? 'the router does not speak SAM 3.1: update i2pd or Java I2P'
            : `${hp(sam)} does not answer as a SAM bridge: is i2psam= the router's SAM port (7656)?`;
      return { status: 'fail', code, message: `${code}: ${msgOf(err)}`, fix };
    }
  });
}

/**
 * The EIM check that serve and proxy run at start, through the configured NAT-check servers (two of them:
 * the callers check that). One run can feed both the `nat` and the `zerortt` line (runDoctor).
 */
export async function eimVerdict(
  cfg: Pick<DaemonConfig, 'natcheck' | 'network' | 'bind'>,
  timeoutMs = DOCTOR_TIMEOUT_MS,
): Promise<EimVerdict> {
  const { probeBind } = await import('../native/engine.js');
  const { eimCheck } = await import('../nat/eim-check.js');
  const { nativeObserver } = await import('../nat/observe.js');
  const v6 = cfg.natcheck[0]!.host.includes(':');
  const local = probeBind({ address: cfg.bind ?? (v6 ? '::' : '0.0.0.0'), port: 0 });
  const peers = cfg.natcheck.map((h) => ({ address: h.host, port: h.port }));
  const observe = nativeObserver({ network: cfg.network });
  return eimCheck({ local, peers, observe, timeoutMs, spreadSamples: 0 });
}

const tooFewNatServers = (n: number): Found => ({
  status: 'fail',
  code: 'DOCTOR_NAT_TOO_FEW_SERVERS',
  message: `${n} NAT-check server(s) configured, the EIM check needs two`,
  fix: 'set two natcheck= lines, or two relays (announce= on serve, peer= on proxy): every relay is one',
});

/**
 * The NAT verdict through the configured NAT-check servers (`natcheck`, by default the relays): the EIM check
 * that serve and proxy run at start. EIM passes; EDM fails (punches are refused); unknown fails with the reason.
 * `verdict`: the result of {@link eimVerdict} when another check shares it.
 */
export async function checkNat(
  cfg: Pick<DaemonConfig, 'natcheck' | 'network' | 'bind'>,
  timeoutMs = DOCTOR_TIMEOUT_MS,
  verdict?: Promise<EimVerdict>,
): Promise<CheckResult> {
  const target = cfg.natcheck.map(hp).join(' ');
  return timed('nat', target || undefined, async () => {
    if (cfg.natcheck.length < 2) return tooFewNatServers(cfg.natcheck.length);
    const v = await (verdict ?? eimVerdict(cfg, timeoutMs));
    const pub = v.publicAddress !== undefined ? `, public address ${v.publicAddress}` : '';
    if (v.mapping === 'eim') {
      return {
        status: 'ok',
        message: `eim (${v.portPreserving ? 'port-preserving' : 'port-translating'})${pub}: hole punching can work`,
      };
    }
    if (v.mapping === 'edm') {
      return {
        status: 'fail',
        code: 'DOCTOR_NAT_EDM',
        message: `edm: the NAT maps each destination to its own port${pub}; punches will be refused`,
        fix:
          'hole punching needs an endpoint-independent NAT: forward the P2P port on the router (then no punch ' +
          'is needed), or put the node behind a NAT with EIM ("full cone", "port restricted")',
      };
    }
    return {
      status: 'fail',
      code: 'DOCTOR_NAT_UNKNOWN',
      message: `unknown: ${escapeText(v.reason ?? 'no verdict').slice(0, 200)}`,
      fix: 'a NAT-check server did not answer: see the relay lines, or set natcheck= to two reachable relays',
    };
  });
}

/**
 * serve's zero-round-trip path (`zerortt=1`; docs/PROTOCOL.md "Zero-round-trip coordination"), set up as serve
 * sets it up: an EIM verdict (two NAT-check servers), a warm punch port allocated as serve's listener allocates
 * it (one reusable bind on an ephemeral port, released again), that port's mapping observed through the NAT-check
 * servers and, on a port-preserving NAT, compared with the prediction serve announces; and the announced address
 * (`externalip`, else the NAT check's) equal to the mapping's, which is when serve's announcement carries
 * NODE_HOLEPUNCH_ZRTT (serve.ts). With zerortt=0 the line says the check is skipped.
 */
export async function checkZeroRtt(
  cfg: Pick<DaemonConfig, 'zerortt' | 'natcheck' | 'network' | 'bind' | 'externalip' | 'announceinterval'>,
  timeoutMs = DOCTOR_TIMEOUT_MS,
  verdict?: Promise<EimVerdict>,
): Promise<CheckResult> {
  if (!cfg.zerortt) {
    const message = 'skipped: zerortt=0 (no warm punch port; announcements go without NODE_HOLEPUNCH_ZRTT)';
    return { id: 'zerortt', status: 'skip', message, ms: 0 };
  }
  const target = cfg.natcheck.map(hp).join(' ');
  return timed('zerortt', target || undefined, async () => {
    const off = 'serve announces without NODE_HOLEPUNCH_ZRTT (B punches the measured-RTT way)';
    if (cfg.natcheck.length < 2) {
      const few = tooFewNatServers(cfg.natcheck.length);
      return { ...few, message: `no EIM verdict: ${few.message}; ${off}` };
    }
    const v = await (verdict ?? eimVerdict(cfg, timeoutMs));
    if (v.mapping !== 'eim') {
      return {
        status: 'fail',
        code: 'DOCTOR_ZRTT_NOT_EIM',
        message: `the EIM check says ${v.mapping}: no stable endpoint to keep warm; ${off}`,
        fix:
          v.mapping === 'edm'
            ? 'zero-round-trip needs an endpoint-independent NAT (see the nat line), or set zerortt=0'
            : 'the EIM check gave no verdict: fix the nat line first',
      };
    }
    const fam: 4 | 6 = cfg.bind?.includes(':') ? 6 : 4;
    const { probeBind } = await import('../native/engine.js');
    const { nativeObserver } = await import('../nat/observe.js');
    const { discoverMapping } = await import('../nat/mapping.js');
    const local = probeBind({ address: cfg.bind ?? (fam === 6 ? '::' : '0.0.0.0'), port: 0 });
    let observed: HostPort | undefined;
    try {
      const r = await discoverMapping({
        local,
        methods: ['natcheck'],
        natcheckServers: cfg.natcheck.map((h) => ({ address: h.host, port: h.port })),
        observe: nativeObserver({ network: cfg.network }),
        timeoutMs,
      });
      const e = r.endpoints.find((x) => x.address.includes(':') === (fam === 6));
      if (e) observed = { host: e.address, port: e.port };
    } catch (err) {
      const code = codeOf(err);
      return {
        status: 'fail',
        code,
        message: `the warm port's mapping was not observed: ${msgOf(err)}; ${off}`,
        fix: 'a NAT-check server did not answer from a second port: see the nat and relay lines',
      };
    }
    if (!observed) {
      return {
        status: 'fail',
        code: 'DOCTOR_ZRTT_NO_MAPPING',
        message: `the NAT-check servers reported no IPv${fam} mapping for the warm port; ${off}`,
        fix: `natcheck= servers of the warm port's family (IPv${fam}: bind=${cfg.bind ?? 'unset'})`,
      };
    }
    // serve's listener discovers 'predict' first: on a port-preserving NAT it announces the local port unobserved.
    const predicted =
      v.portPreserving === true && v.publicAddress !== undefined
        ? { host: v.publicAddress, port: local.port }
        : undefined;
    if (predicted && (predicted.host !== observed.host || predicted.port !== observed.port)) {
      return {
        status: 'fail',
        code: 'DOCTOR_ZRTT_PREDICTION_WRONG',
        message:
          `the warm port ${local.port} maps to ${hp(observed)}, but serve would announce ${hp(predicted)} ` +
          "(predicted: the EIM check saw the NAT keep the port number); B's fast path would miss and fall back",
        fix: 'the NAT does not keep port numbers reliably: run doctor again; if this stays, set zerortt=0',
      };
    }
    const announced = predicted ?? observed;
    const clear = cfg.externalip ?? v.publicAddress;
    if (clear === undefined) {
      return {
        status: 'fail',
        code: 'DOCTOR_ZRTT_NO_ADDRESS',
        message: 'no externalip= and no public address from the NAT check: serve announces nothing',
        fix: "set externalip= to this host's public address",
      };
    }
    if (clear !== announced.host) {
      // serve announces the warm endpoint only when its address is the announced clearnet address, byte for byte.
      const from = cfg.externalip !== undefined ? `externalip=${cfg.externalip}` : 'the NAT check';
      return {
        status: 'fail',
        code: 'DOCTOR_ZRTT_ADDRESS',
        message:
          `the warm port maps to ${hp(announced)}, but the announced address is ${escapeText(clear)} (${from}); ` + off,
        fix:
          cfg.externalip !== undefined
            ? `set externalip=${announced.host}, or remove externalip= (the NAT check's address is announced)`
            : 'the NAT-check servers disagree on the public address: set natcheck= to two relays that see this host',
      };
    }
    const how = predicted ? 'predicted, as serve announces it; observed the same' : 'observed';
    return {
      status: 'ok',
      message:
        `warm punch port ${local.port} maps to ${hp(announced)} (${how}): announced with NODE_HOLEPUNCH_ZRTT, ` +
        `re-checked every ${cfg.announceinterval} s`,
    };
  });
}

/** Why a P2P handshake failed, as a fix line. */
function peerFix(err: unknown, what: string): string {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const code = codeOf(err);
  if (code === 'PEER_SOCKET') return `${what} is not reachable: is it running, is its port open in its firewall?`;
  if (code === 'PEER_HANDSHAKE_TIMEOUT') {
    return `${what} did not finish a version handshake in time: is it a Bitcoin P2P port?`;
  }
  if (code === 'PEER_WIRE' && typeof cause?.code === 'string' && /MAGIC/.test(cause.code)) {
    return `${what} speaks another Bitcoin network: network= must be the same on both`;
  }
  if (code === 'PEER_CLOSED') {
    // A node (and a relay) closes at once on a message of another network's magic, before its version.
    return (
      `${what} closed before its version: another Bitcoin network (network= must be the same on both) ` +
      'or not a P2P port'
    );
  }
  return `${what} does not complete a Bitcoin version handshake: check host, port and network=`;
}

/**
 * One relay (announce/peer/addnode entry): a P2P version handshake as initiator, and whether it sent
 * `sendaddrv2` (without it a relay cannot carry hole-punch announcements, which are addrv2 only).
 */
export async function checkRelay(
  relay: HostPort,
  key: 'seednode' | 'announce' | 'peer' | 'addnode',
  network: DaemonConfig['network'],
  timeoutMs = DOCTOR_TIMEOUT_MS,
): Promise<CheckResult> {
  return timed('relay', hp(relay), async () => {
    if (isOverlayName(relay.host)) {
      return {
        status: 'fail',
        code: 'DOCTOR_RELAY_OVERLAY',
        message: `${key}= names an overlay address`,
        fix: "announcements travel on clearnet only: use the relay's public IP",
      };
    }
    try {
      const r = await connectPeer({ host: relay.host, port: relay.port, network, handshakeTimeoutMs: timeoutMs });
      r.peer.close();
      const ua = escapeText(r.version.userAgent).slice(0, 80);
      if (!r.receivedBeforeVerack.includes('sendaddrv2')) {
        return {
          status: 'warn',
          message: `handshake ok (${ua}), but no sendaddrv2: it cannot carry announcements`,
          fix: `${key}= should be an onionpunch relay or a node that speaks BIP155 addrv2`,
        };
      }
      return { status: 'ok', message: `handshake ok (${ua}, sendaddrv2) in ${Math.round(r.elapsedMs)} ms` };
    } catch (err) {
      const code = codeOf(err);
      return { status: 'fail', code, message: `${code}: ${msgOf(err)}`, fix: peerFix(err, `the ${key}= relay`) };
    }
  });
}

/**
 * serve's hand-off target: in splice mode the node's P2P port (`bitcoind`) must complete a version handshake;
 * in fd hand-off mode the Unix socket must exist (it is not connected to: the receiver expects a descriptor).
 */
export async function checkHandoff(
  cfg: Pick<DaemonConfig, 'bitcoind' | 'handoff' | 'network'>,
  timeoutMs = DOCTOR_TIMEOUT_MS,
): Promise<CheckResult> {
  const t = parseHandoffTarget(cfg.handoff);
  if (t.mode === 'fd') {
    return timed('handoff', `unix:${t.path}`, async () => {
      if (t.path.startsWith('@')) {
        const message = 'abstract socket: not checkable without a hand-off (the receiver must listen)';
        return { status: 'ok', message };
      }
      try {
        if (statSync(t.path).isSocket()) return { status: 'ok', message: 'the hand-off socket exists' };
        const fix = "handoff=unix:PATH must be the receiver's socket";
        return { status: 'fail', code: 'DOCTOR_HANDOFF_NOT_SOCKET', message: 'not a socket', fix };
      } catch (err) {
        return {
          status: 'fail',
          code: (err as NodeJS.ErrnoException).code ?? 'ERROR',
          message: 'no such socket',
          fix: 'start the receiver (a bitcoind with -importpeersocket=PATH) first, or use handoff=splice',
        };
      }
    });
  }
  return timed('bitcoind-p2p', hp(cfg.bitcoind), async () => {
    try {
      const { host, port } = cfg.bitcoind;
      const r = await connectPeer({ host, port, network: cfg.network, handshakeTimeoutMs: timeoutMs });
      r.peer.close();
      const ua = escapeText(r.version.userAgent).slice(0, 80);
      return { status: 'ok', message: `the node answers (${ua}, height ${r.version.startHeight})` };
    } catch (err) {
      const code = codeOf(err);
      const fix =
        code === 'PEER_SOCKET'
          ? `the node does not listen on ${hp(cfg.bitcoind)}: bitcoind -listen=1 -bind=${hp(cfg.bitcoind)} ` +
            '(bcoin: listen: true), or set bitcoind= to its P2P port'
          : peerFix(err, `the node at bitcoind=${hp(cfg.bitcoind)}`);
      return { status: 'fail', code, message: `${code}: ${msgOf(err)}`, fix };
    }
  });
}

/** proxy's own SOCKS5 port (`listen`): answering when the proxy runs; nothing there is a warning (not started). */
export async function checkListen(listen: HostPort, timeoutMs = DOCTOR_TIMEOUT_MS): Promise<CheckResult> {
  return timed('proxy-listen', hp(listen), async () => {
    const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
    const r = await exchange({ host, port: listen.port }, Buffer.from([0x05, 0x01, 0x00]), timeoutMs, 2);
    if (r.error) {
      return {
        status: 'warn',
        code: r.error.code ?? 'ERROR',
        message: 'nothing listens: onionpunch proxy is not running',
        fix: "start onionpunch proxy with this configuration (the node's proxy= points here)",
      };
    }
    if (r.reply[0] === 0x05 && r.reply[1] === 0x00) {
      return { status: 'ok', message: 'a SOCKS5 server answers (onionpunch proxy running)' };
    }
    return {
      status: 'fail',
      code: 'DOCTOR_NOT_SOCKS5',
      message: 'another service holds the port',
      fix: "set listen= to a free port (and the node's proxy= to the same)",
    };
  });
}

/**
 * Every check that applies to `role` with this configuration, run concurrently, in a fixed order:
 * the overlay (tor control for serve, tor SOCKS for proxy, SAM when I2P is used), the relays, the NAT verdict
 * (serve: then its zero-round-trip path, or a skip line), then the node (serve: its P2P port or hand-off socket;
 * proxy: its own SOCKS port; both: the node's RPC).
 */
export async function runDoctor(
  cfg: DaemonConfig & { sources?: Partial<Record<string, string>> },
  role: DoctorRole,
  opts: DoctorOptions = {},
): Promise<CheckResult[]> {
  const ms = opts.timeoutMs ?? DOCTOR_TIMEOUT_MS;
  const jobs: Array<Promise<CheckResult>> = [];
  const explicitSam = (cfg.sources?.['i2psam'] ?? 'default') !== 'default';
  if (role === 'serve') {
    if (cfg.overlay === 'tor') jobs.push(checkTorControl(cfg, ms));
    else jobs.push(checkSam(cfg.i2psam, ms));
  } else if (role === 'proxy') {
    if (cfg.overlay === 'tor') jobs.push(checkTorSocks('tor-socks', 'proxy', cfg.proxy, cfg.listen, ms));
    if (cfg.onion.host !== cfg.proxy.host || cfg.onion.port !== cfg.proxy.port || cfg.overlay !== 'tor') {
      const onion = checkTorSocks('tor-onion', 'onion', cfg.onion, cfg.listen, ms);
      // With I2P coordination tor is only the route of the node's own .onion peers: optional, so a warning.
      jobs.push(
        cfg.overlay === 'tor'
          ? onion
          : onion.then((r) =>
              r.status !== 'fail'
                ? r
                : { ...r, status: 'warn' as const, message: `${r.message} (the node's .onion peers will fail)` },
            ),
      );
    }
    if (cfg.overlay === 'i2p' || explicitSam) jobs.push(checkSam(cfg.i2psam, ms));
  }
  const relays = role === 'serve' ? cfg.announce : role === 'proxy' ? cfg.peer : cfg.addnode;
  const key = role === 'serve' ? 'announce' : role === 'proxy' ? 'peer' : 'addnode';
  if (relays.length === 0 && role !== 'relay') {
    jobs.push(
      Promise.resolve({
        id: 'relay',
        status: 'warn' as const,
        ms: 0,
        message: `no seednode= (or ${key}=) relays configured`,
        fix:
          role === 'serve'
            ? 'without seednode= nobody learns this endpoint: add two relays (onionpunch relay hosts)'
            : 'without seednode= (or known=) the proxy learns no announcements: add two relays',
      }),
    );
  }
  // A relay named by seednode= (merged into the verb's own list by loadConfig) is reported under that key.
  const seed = (r: HostPort): boolean => cfg.seednode.some((s) => s.host === r.host && s.port === r.port);
  for (const r of relays) jobs.push(checkRelay(r, seed(r) ? 'seednode' : key, cfg.network, ms));
  // One EIM check for the nat and zerortt lines (serve's zero-RTT path needs the verdict serve gets at start).
  const verdict = role !== 'relay' && cfg.natcheck.length >= 2 ? eimVerdict(cfg, ms) : undefined;
  verdict?.catch(() => undefined);
  if (role !== 'relay') jobs.push(checkNat(cfg, ms, verdict));
  if (role === 'serve') jobs.push(checkZeroRtt(cfg, ms, verdict));
  if (role === 'serve') jobs.push(checkHandoff(cfg, ms));
  if (role === 'proxy') jobs.push(checkListen(cfg.listen, ms));
  if (role === 'proxy') {
    // The proxy uses the node's RPC for addnode (maxpunchpeers > 0); with that off and no rpc* key set, it does not.
    const rpcSet = ['rpcconnect', 'rpcport', 'rpcuser', 'rpcpassword', 'rpccookiefile'].some(
      (k) => (cfg.sources?.[k] ?? 'default') !== 'default',
    );
    const rpc = opts.rpc ?? (cfg.maxpunchpeers > 0 || rpcSet ? nodeRpcFromConfig(cfg, { timeoutMs: ms }) : undefined);
    if (rpc) jobs.push(...checkNodeRpc(rpc, cfg));
  }
  return Promise.all(jobs);
}

/** One line of the text report: `ok   id  target  message; fix: ...`. */
export function formatCheck(r: CheckResult): string {
  const status = r.status === 'ok' ? 'ok  ' : r.status === 'warn' ? 'WARN' : r.status === 'skip' ? 'skip' : 'FAIL';
  const target = r.target !== undefined ? `${r.target}  ` : '';
  const fix = r.fix !== undefined && (r.status === 'warn' || r.status === 'fail') ? `; fix: ${r.fix}` : '';
  return `${status}  ${r.id.padEnd(13)} ${target}${r.message}${fix}`;
}

interface NetworkEntry {
  name?: unknown;
  limited?: unknown;
  reachable?: unknown;
  proxy?: unknown;
}

/** Fix line for an RPC failure, by the client's code ({@link NodeRpcError}). */
function rpcFix(err: unknown, target: string): string {
  const code = codeOf(err);
  switch (code) {
    case 'RPC_AUTH':
      return (
        'the node refused the credentials: set rpcuser=/rpcpassword= to its rpcuser/rpcpassword (bcoin: any ' +
        'user, its api-key), or unset rpcpassword= to use its cookie (rpccookiefile=)'
      );
    case 'RPC_COOKIE':
      return (
        "cannot use the node's cookie file: set rpccookiefile= to its .cookie (readable by this user: " +
        'bitcoind -rpccookieperms=group), or set rpcuser=/rpcpassword='
      );
    case 'RPC_CONNECT':
      return (
        `nothing answers on ${target}: start the node with server=1 (bcoin: http-port), ` +
        'or set rpcconnect=/rpcport='
      );
    case 'RPC_TIMEOUT':
      return `${target} accepts but does not answer: is rpcport= the node's RPC port (not its P2P port)?`;
    case 'RPC_HTTP':
    case 'RPC_BAD_REPLY':
    case 'RPC_TOO_LARGE':
      return `${target} is not a Bitcoin node's JSON-RPC: check rpcconnect= and rpcport=`;
    case 'RPC_ERROR':
      if (err instanceof NodeRpcError && err.rpcCode === -28) {
        return 'the node is still starting (RPC warm-up): run again shortly';
      }
      return 'the node refused getnetworkinfo: is it bitcoind or bcoin?';
    default:
      return `the node's RPC at ${target} failed: check rpcconnect=, rpcport= and the credentials`;
  }
}

/**
 * The node's JSON-RPC (one `getnetworkinfo`, through the client of node-rpc.ts and its deadline): reachable and
 * authenticating (`node-rpc`), and whether the node sends its clearnet peers through onionpunch (`node-proxy`:
 * `networks[].proxy` of ipv4 and ipv6 is `listen`). A node that does not report its proxies (bcoin answers
 * `networks: []`) gives a warning, not a pass.
 */
export function checkNodeRpc(
  rpc: NodeRpcLike,
  cfg: Pick<DaemonConfig, 'listen' | 'proxy'>,
): Array<Promise<CheckResult>> {
  const info = rpc.call('getnetworkinfo');
  info.catch(() => undefined);
  const out = [
    timed('node-rpc', rpc.endpoint, async () => {
      try {
        const v = (await info) as { subversion?: unknown; connections?: unknown };
        const ua = escapeText(typeof v.subversion === 'string' ? v.subversion : '?').slice(0, 80);
        return { status: 'ok', message: `getnetworkinfo ok (${ua}, ${Number(v.connections) || 0} connections)` };
      } catch (err) {
        const code = codeOf(err);
        const warm = err instanceof NodeRpcError && err.rpcCode === -28;
        const status = warm ? 'warn' : 'fail';
        return { status, code, message: `${code}: ${msgOf(err)}`, fix: rpcFix(err, rpc.endpoint) };
      }
    }),
  ];
  out.push(
    timed('node-proxy', rpc.endpoint, async () => {
      let v: { networks?: unknown };
      try {
        v = (await info) as { networks?: unknown };
      } catch {
        const message = 'no getnetworkinfo (see node-rpc)';
        return { status: 'fail', code: 'DOCTOR_RPC_FAILED', message, fix: 'fix node-rpc first' };
      }
      const want = hp(cfg.listen);
      const nets = Array.isArray(v.networks) ? (v.networks as NetworkEntry[]) : [];
      const line = `proxy=${want}`;
      if (nets.length === 0) {
        return {
          status: 'warn',
          code: 'DOCTOR_NODE_PROXY_UNKNOWN',
          message: 'the node does not report its proxies (bcoin)',
          fix: `check the node's config has proxy: ${want} (bcoin) / ${line} (bitcoind)`,
        };
      }
      const proxyOf = (name: string): { proxy: string; limited: boolean } | undefined => {
        const n = nets.find((e) => e.name === name);
        return n ? { proxy: typeof n.proxy === 'string' ? n.proxy : '', limited: n.limited === true } : undefined;
      };
      const shown: string[] = [];
      const wrong: string[] = [];
      for (const name of ['ipv4', 'ipv6']) {
        const n = proxyOf(name);
        if (!n) continue;
        shown.push(`${name} via ${escapeText(n.proxy || 'direct')}${n.limited ? ' (limited)' : ''}`);
        if (n.proxy !== want && !n.limited) wrong.push(name);
      }
      const onion = proxyOf('onion');
      if (onion) shown.push(`onion via ${escapeText(onion.proxy || 'none')}`);
      const msg = shown.join(', ').slice(0, 200);
      if (wrong.length > 0) {
        const tor = hp(cfg.proxy);
        return {
          status: 'fail',
          code: 'DOCTOR_NODE_PROXY_WRONG',
          message: `${msg}: ${wrong.join(' and ')} not through onionpunch`,
          fix:
            `in bitcoin.conf: ${wrong.map((w) => `${line}=${w}`).join(' and ')} (Bitcoin Core >= 30; keep ` +
            `onion=${tor} for Tor peers), or ${line} on older Core (then .onion goes through onionpunch to tor)`,
        };
      }
      return { status: 'ok', message: `${msg}: clearnet peers go through onionpunch` };
    }),
  );
  return out;
}
