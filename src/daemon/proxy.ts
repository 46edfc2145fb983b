/**
 * `onionpunch proxy` (B side): a SOCKS5 server for bitcoind's `-proxy=`. A destination that is a known
 * hole-punch announcement (learned from clearnet peers' addrv2, or a static `--known` entry) is reached by
 * punching over the configured overlay; any other destination by a plain TCP connect.
 */
import { isIP, type Socket } from 'node:net';
import { lookup } from 'node:dns/promises';
import { AnnouncementDirectory, AnnouncementRelay, type Announcement } from '../relay/index.js';
import type { PunchClient } from '../punch/index.js';
import type { CoordinationDialer } from '../overlay/types.js';
import type { DaemonConfig } from './config.js';
import type { Logger } from './log.js';
import { AnnouncementCollector } from './announce.js';
import { tcpConnect } from './handoff.js';
import { Socks5Server, type SocksConnector, type SocksRequest } from './socks5.js';
import {
  checkAddress,
  checkDestination,
  isLoopback,
  type DestinationPolicy,
  type DestinationRefusal,
} from './socks5-parse.js';
import { SocksServerError } from './errors.js';
import { waitForShutdown } from './shutdown.js';
import { configuredPunch, type DaemonHooks } from './punch-setup.js';

/** Static entries first, then the directory of fresh announcements. */
export function lookupTarget(cfg: Pick<DaemonConfig, 'known'>, directory: AnnouncementDirectory, host: string, port: number): Omit<Announcement, 'services' | 'time'> | undefined {
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
  const aborted = new Promise<never>((_r, rej) => {
    const onAbort = (): void => rej(signal.reason ?? new SocksServerError('SOCKS_CLOSED', 'connect aborted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  const r = await Promise.race([lookup(host, { verbatim: true }), aborted]);
  return r.address;
}

/**
 * The connector: punch for announced destinations, plain connect otherwise. Before anything is looked up
 * the destination policy applies: `.onion`/`.i2p` names are refused (they must never reach DNS; routing them
 * to the overlay is not implemented), other names are resolved only with `resolvenames`, and loopback
 * destinations of the plain path are refused unless `allowloopback` (announced destinations go to the punch
 * client, whose own target policy applies).
 */
export function makeConnector(o: {
  cfg: Pick<DaemonConfig, 'known'> & Partial<Pick<DaemonConfig, 'resolvenames' | 'allowloopback'>>;
  directory: AnnouncementDirectory;
  client: () => Promise<PunchClient>;
  log: Logger;
  plainTimeoutMs?: number;
}): SocksConnector {
  const policy = destinationPolicy({
    resolvenames: o.cfg.resolvenames ?? false,
    allowloopback: o.cfg.allowloopback ?? false,
  });
  return async (req: SocksRequest, signal: AbortSignal): Promise<Socket> => {
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
      const { coordination, coordinationPort, clearnet } = target;
      const r = await client.punch({ address: coordination, port: coordinationPort, clearnet, expectIp: clearnet.address }, { signal });
      o.log.info('punch-connected', { destination: `${req.host}:${req.port}`, remote: `${r.remote.address}:${r.remote.port}`, session: r.sessionId });
      return r.socket;
    } catch (err) {
      o.log.info('punch-failed', { destination: `${req.host}:${req.port}`, coordination: name, error: err });
      throw err;
    }
  };
}

/** True when `host` (a listen address) is only reachable from this machine. */
export function isLoopbackListen(host: string): boolean {
  return host.toLowerCase() === 'localhost' || isLoopback(host);
}

/** Runs the proxy until SIGINT/SIGTERM (or `hooks.signal`). Resolves the exit code. */
export async function runProxy(cfg: DaemonConfig, log: Logger, hooks: DaemonHooks = {}): Promise<number> {
  const directory = new AnnouncementDirectory();
  let clientP: Promise<PunchClient> | undefined;
  let dialer: CoordinationDialer | undefined;
  // The punch client (native engine, overlay dialer, NAT check) is built on the first punch only.
  const client = (): Promise<PunchClient> => {
    clientP ??= (async () => {
      const { PunchClient: Client } = await import('../punch/index.js');
      if (cfg.overlay === 'tor') {
        const { TorCoordinationDialer } = await import('../overlay/tor/dialer.js');
        dialer = new TorCoordinationDialer({ socksHost: cfg.proxy.host, socksPort: cfg.proxy.port });
      } else {
        const { I2pCoordinationDialer } = await import('../overlay/i2p/dialer.js');
        dialer = await I2pCoordinationDialer.create({ sam: { host: cfg.i2psam.host, port: cfg.i2psam.port }, timeoutMs: 120_000 });
      }
      const { maxSynsPerSession, ...punch } = await configuredPunch(cfg, log);
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
  const server = new Socks5Server({
    connect: makeConnector({ cfg, directory, client, log }),
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
  log.info('socks-listening', { listen: `${bound.host}:${bound.port}`, known: cfg.known.length, peers: cfg.peer.length });
  const collector = new AnnouncementCollector({
    peers: cfg.peer, network: cfg.network, directory, intervalMs: cfg.announceinterval * 1000, log,
    relay: new AnnouncementRelay(), // what the peers send is relayed between them, as a relay does
  });
  void collector.start();
  const ready = { ready: true, socks: `${bound.host}:${bound.port}`, overlay: cfg.overlay, known: cfg.known.length, peers: cfg.peer.length };
  log.info('ready', ready);
  hooks.ready?.(ready);
  const why = await waitForShutdown(hooks.signal);
  log.info('shutdown', { signal: why, bridges: server.activeBridges.size });
  collector.stop();
  await server.close(cfg.shutdowngrace * 1000);
  await dialer?.close().catch(() => undefined);
  log.info('stopped');
  return 0;
}
