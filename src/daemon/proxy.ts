/**
 * `onionpunch proxy` (B side): a SOCKS5 server for bitcoind's `-proxy=`. A destination that is a known
 * hole-punch announcement (learned from clearnet peers' addrv2, or a static `--known` entry) is reached by
 * punching over the configured overlay; a `.onion` destination through Tor's SOCKS port (`onion`, one circuit per
 * connection); a `.b32.i2p` destination through the SAM bridge when `i2psam` is set; any other destination by a
 * plain TCP connect. An overlay name is never looked up in DNS. With `maxpunchpeers` > 0 the proxy also asks the
 * local node over JSON-RPC to connect to fresh announcements (`addnode onetry`, src/daemon/outbound.ts).
 */
import { isIP, Socket } from 'node:net';
import { lookup } from 'node:dns/promises';
import { randomBytes } from 'node:crypto';
import { AnnouncementDirectory, AnnouncementRelay, type Announcement } from '../relay/index.js';
import type { PunchClient } from '../punch/index.js';
import type { CoordinationDialer } from '../overlay/types.js';
import type { DaemonConfig, HostPort } from './config.js';
import type { ConfigSource } from './errors.js';
import type { Logger } from './log.js';
import { AnnouncementCollector } from './announce.js';
import { tcpConnect } from './handoff.js';
import { Socks5Server, type SocksConnector, type SocksRequest } from './socks5.js';
import {
  checkAddress,
  checkDestination,
  isOverlayName,
  type DestinationPolicy,
  type DestinationRefusal,
} from './socks5-parse.js';
import { SocksServerError } from './errors.js';
import { SamError } from '../overlay/i2p/errors.js';
import { isLoopback } from '../ip.js';
import { waitForShutdown } from './shutdown.js';
import { configuredPunch, i2pTunnelOptions, type DaemonHooks } from './punch-setup.js';
import { nodeRpcFromConfig } from './node-rpc.js';
import { PunchOutbound } from './outbound.js';

/** Static entries first, then the directory of fresh announcements. */
export function lookupTarget(
  cfg: Pick<DaemonConfig, 'known'>,
  directory: AnnouncementDirectory,
  host: string,
  port: number,
): (Omit<Announcement, 'services' | 'time'> & Partial<Pick<Announcement, 'services' | 'time'>>) | undefined {
  const h = host.toLowerCase();
  const k = cfg.known.find((e) => e.clearnet.address.toLowerCase() === h && e.clearnet.port === port);
  if (k) return k;
  return directory.findByClearnet(host, port);
}

type RefusalCode = 'SOCKS_OVERLAY_NAME' | 'SOCKS_NAME_NOT_RESOLVED' | 'SOCKS_LOOPBACK';
const REFUSAL: Record<DestinationRefusal, { code: RefusalCode; why: string }> = {
  'overlay-name': { code: 'SOCKS_OVERLAY_NAME', why: 'is an overlay name this proxy cannot route (never resolved)' },
  'name-not-resolved': { code: 'SOCKS_NAME_NOT_RESOLVED', why: 'is a domain name and resolvenames is off' },
  loopback: { code: 'SOCKS_LOOPBACK', why: 'is a loopback destination and allowloopback is off' },
};

function refuse(host: string, r: DestinationRefusal): SocksServerError {
  return new SocksServerError(REFUSAL[r].code, `${host} ${REFUSAL[r].why}`);
}

/** The destination policy from the configuration. */
export function destinationPolicy(cfg: Pick<DaemonConfig, 'resolvenames' | 'allowloopback'>): DestinationPolicy {
  return { resolveNames: cfg.resolvenames, allowLoopback: cfg.allowloopback };
}

/** Resolves `host` (only called when resolvenames is on) within the signal; one address. */
async function resolveOne(host: string, signal: AbortSignal): Promise<string> {
  const r = await untilAborted(lookup(host, { verbatim: true }), signal);
  return r.address;
}

/** Opens a stream to an overlay destination (`host` is lower-case). */
export type OverlayRoute = (host: string, port: number, signal: AbortSignal) => Promise<Socket>;

/** The overlay routes of the proxy; a missing one means its names are refused. */
export interface OverlayRoutes {
  /** `<56 base32>.onion` (and any other `.onion`: tor says what is wrong with it). */
  onion?: OverlayRoute;
  /** `<52 base32>.b32.i2p`. */
  i2p?: OverlayRoute;
}

/** `.b32.i2p` names (the form Bitcoin nodes use for I2P peers); other `.i2p` names are address-book names. */
export function isB32I2pName(host: string): boolean {
  return /^[a-z2-7]{52,}\.b32\.i2p$/i.test(host);
}

/** `.onion` names, with or without the root dot. */
export function isOnionName(host: string): boolean {
  return /\.onion\.?$/i.test(host);
}

/** Bound on one overlay dial (tor's own circuit timeouts are shorter; SOCKS_TIMEOUT of the server is 120 s). */
export const OVERLAY_DIAL_TIMEOUT_MS = 110_000;

/**
 * The `.onion` route: tor's SOCKS port with fresh random SOCKS credentials per connection, so every connection
 * gets a circuit of its own (tor's IsolateSOCKSAuth, on by default; bitcoind's -proxyrandomize does the same).
 */
export function torOnionRoute(socks: HostPort): OverlayRoute {
  return async (host, port, signal) => {
    const { dialOnion } = await import('../overlay/tor/socks.js');
    return dialOnion(host.replace(/\.$/, ''), port, {
      socksHost: socks.host,
      socksPort: socks.port,
      isolationKey: randomBytes(16).toString('hex'),
      timeoutMs: OVERLAY_DIAL_TIMEOUT_MS,
      signal,
    });
  };
}

/**
 * The `.b32.i2p` route: STREAM CONNECT on one transient SAM session of the proxy's own (created on first use,
 * made again after a failure). SAM 3.1 streams have no ports: the port is ignored, as bitcoind does (port 0).
 */
export function samI2pRoute(
  sam: HostPort,
  sessionOptions: Record<string, number>,
): OverlayRoute & { close: () => Promise<void> } {
  type Dialer = import('../overlay/i2p/dialer.js').I2pCoordinationDialer;
  let dialerP: Promise<Dialer> | undefined;
  // Ends a session creation still under way when the proxy shuts down: without it close() would wait for the
  // creation's own deadline (OVERLAY_DIAL_TIMEOUT_MS) before the daemon could exit.
  const closing = new AbortController();
  const route = async (host: string, port: number, signal: AbortSignal): Promise<Socket> => {
    if (closing.signal.aborted) throw new SamError('SAM_CLOSED', 'the proxy is shutting down');
    if (!dialerP) {
      const p = import('../overlay/i2p/dialer.js').then(({ I2pCoordinationDialer }) =>
        I2pCoordinationDialer.create({
          sam,
          sessionOptions,
          timeoutMs: OVERLAY_DIAL_TIMEOUT_MS,
          signal: closing.signal,
        }),
      );
      dialerP = p;
      p.then(
        // A session the bridge ended (i2pd restarted) is made again on the next request.
        (d) =>
          d.session.once('down', () => {
            if (dialerP === p) dialerP = undefined;
            void d.close().catch(() => undefined);
          }),
        () => {
          if (dialerP === p) dialerP = undefined;
        },
      );
    }
    // The session is shared; this request stops waiting for it when its own signal fires.
    const dialer = await untilAborted(dialerP, signal);
    const s = await dialer.dial(host, port, { timeoutMs: OVERLAY_DIAL_TIMEOUT_MS, signal });
    // SamSession.connect gives the SAM bridge's TCP socket, which is what the bridge and the server need.
    if (!(s instanceof Socket)) {
      s.destroy();
      throw new SamError('SAM_PROTOCOL', `the SAM stream to ${host} is not a socket`);
    }
    return s;
  };
  return Object.assign(route, {
    close: async (): Promise<void> => {
      closing.abort(new SamError('SAM_CLOSED', 'the proxy is shutting down'));
      const p = dialerP;
      dialerP = undefined;
      if (p)
        await p.then(
          (d) => d.close(),
          () => undefined,
        );
    },
  });
}

/** `p`, or the signal's reason as soon as it fires (`p` itself goes on; its rejection is handled). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  p.catch(() => undefined);
  const reason = (): unknown => signal.reason ?? new SocksServerError('SOCKS_CLOSED', 'connect aborted');
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reason());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The overlay routes configured: `.onion` always (through `onion`), `.b32.i2p` only with `i2psam` set. */
export function configuredRoutes(
  cfg: Pick<DaemonConfig, 'onion' | 'i2psam' | 'i2phops'> & { sources?: Partial<Record<string, ConfigSource>> },
): OverlayRoutes & { close: () => Promise<void> } {
  const explicitSam = (cfg.sources?.['i2psam'] ?? 'default') !== 'default';
  const i2p = explicitSam ? samI2pRoute(cfg.i2psam, i2pTunnelOptions(cfg.i2phops)) : undefined;
  return { onion: torOnionRoute(cfg.onion), ...(i2p ? { i2p } : {}), close: async () => i2p?.close() };
}

/**
 * The connector: punch for announced destinations, the overlay routes for `.onion`/`.b32.i2p` names, plain
 * connect otherwise. Before anything is looked up the destination policy applies: an overlay name without a
 * route is refused (it must never reach DNS), other names are resolved only with `resolvenames`, and loopback
 * destinations of the plain path are refused unless `allowloopback` (announced destinations go to the punch
 * client, whose own target policy applies).
 */
export function makeConnector(o: {
  cfg: Pick<DaemonConfig, 'known'> & Partial<Pick<DaemonConfig, 'resolvenames' | 'allowloopback'>>;
  directory: AnnouncementDirectory;
  client: () => Promise<PunchClient>;
  log: Logger;
  plainTimeoutMs?: number;
  routes?: OverlayRoutes;
  /** Told every failed punch of an announced destination (the automatic outbound retries it). */
  onPunchFailed?: (host: string, port: number) => void;
  /** Told every punched connection of an announced destination (the automatic outbound's peer is up). */
  onPunchConnected?: (host: string, port: number) => void;
}): SocksConnector {
  const policy = destinationPolicy({
    resolvenames: o.cfg.resolvenames ?? false,
    allowloopback: o.cfg.allowloopback ?? false,
  });
  let i2pHinted = false;
  return async (req: SocksRequest, signal: AbortSignal): Promise<Socket> => {
    if (isOverlayName(req.host)) {
      const host = req.host.toLowerCase();
      const kind = isOnionName(host) ? 'onion' : isB32I2pName(host) ? 'i2p' : undefined;
      const route = kind ? o.routes?.[kind] : undefined;
      if (route) {
        o.log.debug('overlay-connect', { destination: `${host}:${req.port}`, overlay: kind });
        return route(host, req.port, signal);
      }
      if (kind === 'i2p') {
        // Once: a flood of such requests is logged by the server's rate-limited socks-connect-failed line,
        // whose error message names the key too.
        if (!i2pHinted) {
          i2pHinted = true;
          o.log.info('overlay-not-configured', {
            destination: `${host}:${req.port}`,
            fix: 'set i2psam (host:port of the I2P SAM bridge) to route .b32.i2p destinations',
          });
        }
        const why = 'is a .b32.i2p name and i2psam is not set (never resolved)';
        throw new SocksServerError('SOCKS_OVERLAY_NAME', `${host} ${why}`);
      }
    }
    const refusal = checkDestination(req, policy);
    if (refusal) throw refuse(req.host, refusal);
    const target = lookupTarget(o.cfg, o.directory, req.host, req.port);
    if (!target) {
      const ip = isIP(req.host) !== 0 ? req.host : await resolveOne(req.host, signal);
      const after = checkAddress(ip, policy);
      if (after) throw refuse(ip === req.host ? ip : `${req.host} (${ip})`, after);
      return tcpConnect({ host: ip, port: req.port }, { timeoutMs: o.plainTimeoutMs ?? 10_000, signal });
    }
    const name = `${target.coordination}:${target.coordinationPort}`;
    o.log.info('punch-start', { destination: `${req.host}:${req.port}`, coordination: name });
    const client = await o.client();
    try {
      // expectIp: A must punch from the announced IP, else a forged announcement (victim IP + the attacker's
      // coordination endpoint) would hand bitcoind a socket to the attacker (PUNCH_VERIFY_FAILED instead).
      // An announcement's services and time let the client take the zero-round-trip path when A offers it.
      const { coordination, coordinationPort, clearnet, services, time } = target;
      const announcement = services !== undefined && time !== undefined ? { announcement: { services, time } } : {};
      const r = await client.punch(
        { address: coordination, port: coordinationPort, clearnet, expectIp: clearnet.address, ...announcement },
        { signal },
      );
      o.log.info('punch-connected', {
        destination: `${req.host}:${req.port}`,
        remote: `${r.remote.address}:${r.remote.port}`,
        session: r.sessionId,
        ...(r.zeroRtt ? { zeroRtt: true } : {}),
      });
      o.onPunchConnected?.(req.host, req.port);
      return r.socket;
    } catch (err) {
      o.log.info('punch-failed', { destination: `${req.host}:${req.port}`, coordination: name, error: err });
      o.onPunchFailed?.(req.host, req.port);
      throw err;
    }
  };
}

/** True when `host` (a listen address) is only reachable from this machine. */
export function isLoopbackListen(host: string): boolean {
  return host.toLowerCase() === 'localhost' || isLoopback(host);
}

/** Runs the proxy until SIGINT/SIGTERM (or `hooks.signal`). Resolves the exit code. */
export async function runProxy(
  cfg: DaemonConfig & { sources?: Partial<Record<string, ConfigSource>> },
  log: Logger,
  hooks: DaemonHooks = {},
): Promise<number> {
  const directory = new AnnouncementDirectory();
  let clientP: Promise<PunchClient> | undefined;
  let dialer: CoordinationDialer | undefined;
  // Ends an I2P session creation of the punch client still under way at shutdown (it waits for tunnels).
  const stopping = new AbortController();
  // The punch client (native engine, overlay dialer, NAT check) is built on the first punch only.
  const client = (): Promise<PunchClient> => {
    clientP ??= (async () => {
      const { PunchClient: Client } = await import('../punch/index.js');
      if (cfg.overlay === 'tor') {
        const { TorCoordinationDialer } = await import('../overlay/tor/dialer.js');
        dialer = new TorCoordinationDialer({ socksHost: cfg.proxy.host, socksPort: cfg.proxy.port });
      } else {
        const { I2pCoordinationDialer } = await import('../overlay/i2p/dialer.js');
        dialer = await I2pCoordinationDialer.create({
          sam: { host: cfg.i2psam.host, port: cfg.i2psam.port },
          sessionOptions: i2pTunnelOptions(cfg.i2phops),
          timeoutMs: 120_000,
          signal: stopping.signal,
        });
      }
      const { maxSynsPerSession, ...punch } = await configuredPunch(cfg, log, 'B');
      return new Client({
        ...punch,
        dialer,
        limits: { maxSynsPerSession },
        ...(cfg.bind ? { localAddress: cfg.bind, family: cfg.bind.includes(':') ? 6 : 4 } : {}),
      });
    })();
    clientP.catch(() => (clientP = undefined));
    return clientP;
  };
  const routes = configuredRoutes(cfg);
  // Automatic outbound: announced peers the node is asked to connect to over its JSON-RPC (0 = off).
  const outbound =
    cfg.maxpunchpeers > 0
      ? new PunchOutbound({ rpc: nodeRpcFromConfig(cfg), directory, maxPeers: cfg.maxpunchpeers, log })
      : undefined;
  const server = new Socks5Server({
    connect: makeConnector({
      cfg,
      directory,
      client,
      log,
      routes,
      onPunchFailed: (h, p) => outbound?.punchFailed(h, p),
      onPunchConnected: (h, p) => outbound?.punchConnected(h, p),
    }),
    maxClients: cfg.maxclients,
    idleTimeoutMs: cfg.idletimeout * 1000,
    log,
  });
  const bound = await server.listen(cfg.listen.host, cfg.listen.port);
  if (!isLoopbackListen(cfg.listen.host)) {
    // An open SOCKS5 proxy without authentication: anyone who reaches it relays through this host.
    log.warn('socks-listen-exposed', {
      listen: `${bound.host}:${bound.port}`,
      warning:
        'SOCKS5 proxy listens on a non-loopback address WITHOUT authentication: anyone who can reach it can ' +
        'use it; listen on 127.0.0.1 unless a firewall restricts it',
    });
  }
  log.info('socks-listening', {
    listen: `${bound.host}:${bound.port}`,
    known: cfg.known.length,
    peers: cfg.peer.length,
    onion: `${cfg.onion.host}:${cfg.onion.port}`,
    i2p: routes.i2p ? `${cfg.i2psam.host}:${cfg.i2psam.port}` : 'off',
  });
  const collector = new AnnouncementCollector({
    peers: cfg.peer,
    network: cfg.network,
    directory,
    intervalMs: cfg.getaddrinterval * 1000,
    maxLinks: cfg.maxrelays,
    log,
    relay: new AnnouncementRelay(), // what the peers send is relayed between them, as a relay does
    ...(outbound ? { onLearned: (a: Announcement) => outbound.learned(a) } : {}),
  });
  void collector.start();
  if (outbound) {
    log.info('outbound-on', { rpc: nodeRpcFromConfig(cfg).endpoint, maxpunchpeers: cfg.maxpunchpeers });
    outbound.start();
  }
  const ready = {
    ready: true,
    socks: `${bound.host}:${bound.port}`,
    overlay: cfg.overlay,
    known: cfg.known.length,
    peers: cfg.peer.length,
  };
  log.info('ready', ready);
  hooks.ready?.(ready);
  const why = await waitForShutdown(hooks.signal);
  log.info('shutdown', { signal: why, bridges: server.activeBridges.size });
  collector.stop();
  outbound?.stop();
  await server.close(cfg.shutdowngrace * 1000);
  stopping.abort();
  await clientP?.catch(() => undefined); // a creation in progress ends now; one that finished is closed below
  await dialer?.close().catch(() => undefined);
  await routes.close().catch(() => undefined);
  log.info('stopped');
  return 0;
}
