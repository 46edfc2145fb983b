/**
 * `onionpunch serve` (A side): coordination endpoint (Tor control port or I2P SAM), punch listener, clearnet
 * announcements, and splice hand-off of every verified punched socket to the local bitcoind. Shuts down on
 * SIGINT/SIGTERM: stop announcing, close the listener and the endpoint (DEL_ONION / SAM close), let bridges
 * finish for `shutdowngrace` seconds, then close them.
 */
import { OnionpunchError } from '../errors.js';
import type { CoordinationEndpoint } from '../overlay/types.js';
import type { Endpoint } from '../nat/types.js';
import { AnnouncementRelay, makeAnnouncement } from '../relay/index.js';
import type { DaemonConfig } from './config.js';
import type { Logger } from './log.js';
import { Announcer } from './announce.js';
import { handOffFd, parseHandoffTarget, spliceToBitcoind } from './handoff.js';
import type { Bridge } from './splice.js';
import { waitForShutdown } from './shutdown.js';
import { configuredPunch, i2pTunnelOptions, type DaemonHooks } from './punch-setup.js';

async function makeEndpoint(cfg: DaemonConfig, log: Logger): Promise<CoordinationEndpoint> {
  if (cfg.overlay === 'tor') {
    const { TorCoordinationEndpoint } = await import('../overlay/tor/endpoint.js');
    log.info('endpoint-creating', { overlay: 'tor', torcontrol: `${cfg.torcontrol.host}:${cfg.torcontrol.port}` });
    return TorCoordinationEndpoint.create({
      control: {
        host: cfg.torcontrol.host,
        port: cfg.torcontrol.port,
        auth: cfg.torpassword ? { password: cfg.torpassword } : {},
      },
      virtualPort: cfg.punchport,
    });
  }
  const { I2pCoordinationEndpoint } = await import('../overlay/i2p/endpoint.js');
  log.info('endpoint-creating', { overlay: 'i2p', i2psam: `${cfg.i2psam.host}:${cfg.i2psam.port}` });
  return I2pCoordinationEndpoint.create({
    sam: { host: cfg.i2psam.host, port: cfg.i2psam.port },
    sessionOptions: i2pTunnelOptions(cfg.i2phops),
    timeoutMs: 120_000,
  });
}

/** Starts everything; `ready` is called once up (serve prints it with --json). */
export async function runServe(cfg: DaemonConfig, log: Logger, hooks: DaemonHooks = {}): Promise<number> {
  const { createPunchListener } = await import('../punch/index.js');
  const { maxSynsPerSession, ...punch } = await configuredPunch(cfg, log);
  const verdict = punch.eim;
  const endpoint = await makeEndpoint(cfg, log);
  log.info('endpoint-published', { overlay: endpoint.kind, coordination: `${endpoint.address}:${endpoint.port}` });
  endpoint.on('down', (err: unknown) => log.warn('endpoint-down', { error: err }));
  endpoint.on('up', () => log.info('endpoint-up'));
  endpoint.on('error', (err: unknown) => log.warn('endpoint-error', { error: err }));

  const listener = await createPunchListener({
    ...punch,
    endpoint,
    limits: { maxConcurrentSessions: cfg.maxsessions, maxSynsPerSession },
    ...(cfg.zerortt ? { zeroRtt: { recheckMs: cfg.announceinterval * 1000 } } : {}),
    ...(cfg.bind ? { localAddress: cfg.bind.includes(':') ? { v6: cfg.bind } : { v4: cfg.bind } } : {}),
  });
  const bridges = new Set<Bridge>();
  const target = parseHandoffTarget(cfg.handoff);
  type Punched = { remote: Endpoint; sessionId: string; zeroRtt?: boolean };
  listener.on('connection', (socket: import('node:net').Socket, info: Punched) => {
    const peer = `${info.remote.address}:${info.remote.port}`;
    log.info('session-punched', { session: info.sessionId, peer, ...(info.zeroRtt ? { zeroRtt: true } : {}) });
    if (target.mode === 'fd') {
      // The socket itself goes to the receiver (bitcoind imports it as an inbound peer: we are A, B dials).
      try {
        const sent = handOffFd(socket, target.path, 'responder');
        log.info('handoff-sent', { session: info.sessionId, peer, local: sent.local, to: `unix:${target.path}` });
      } catch (err) {
        log.error('handoff-failed', { session: info.sessionId, peer, to: `unix:${target.path}`, error: err });
      }
      return;
    }
    if (bridges.size >= cfg.maxclients) {
      log.warn('bridge-refused', { peer, why: `maxclients ${cfg.maxclients} reached` });
      socket.destroy();
      return;
    }
    spliceToBitcoind(socket, cfg.bitcoind, { idleTimeoutMs: cfg.idletimeout * 1000 })
      .then(async (b) => {
        bridges.add(b);
        log.info('bridge-open', { peer, bitcoind: `${cfg.bitcoind.host}:${cfg.bitcoind.port}` });
        const st = await b.done;
        bridges.delete(b);
        log.info('bridge-closed', {
          peer,
          toBitcoind: st.aToB,
          fromBitcoind: st.bToA,
          reason: st.reason,
          error: st.error,
        });
      })
      .catch((err: unknown) => log.error('bridge-failed', { peer, error: err }));
  });
  listener.on('failure', (err: unknown) => log.info('session-failed', { error: err }));

  if (cfg.zerortt) {
    // The first announcement should already carry the warm port: wait for its first check (bounded by
    // discovery's own timeouts); an EDM NAT or a failed check leaves the ordinary announcement.
    const warm = await listener.zeroRttReady();
    if (warm) log.info('zero-rtt-port', { mapped: `${warm.address}:${warm.port}` });
    else log.warn('zero-rtt-off', { why: 'no confirmed EIM mapping for the warm punch port (announced without it)' });
  }
  const clearAddress = cfg.externalip ?? verdict?.publicAddress;
  let announcer: Announcer | undefined;
  const clearnet = clearAddress ? { address: clearAddress, port: cfg.punchport } : undefined;
  if (!clearnet) log.warn('announce-disabled', { why: 'no externalip and no public address from the NAT check' });
  else if (cfg.announce.length === 0) log.warn('announce-disabled', { why: 'no announce peers configured' });
  else {
    announcer = new Announcer({
      peers: cfg.announce,
      network: cfg.network,
      intervalMs: cfg.announceinterval * 1000,
      maxLinks: cfg.maxrelays,
      log,
      // What the announce peers send us is relayed between them (docs/PROTOCOL.md rules), as a relay does.
      relay: new AnnouncementRelay(),
      // With zerortt, the warm port's confirmed mapping is announced with NODE_HOLEPUNCH_ZRTT; while it is
      // unconfirmed (or the NAT is not EIM) the announcement is the ordinary one, without the bit.
      announcement: () => {
        const warm = listener.zeroRttEndpoint();
        const coordination = { coordination: endpoint.address, coordinationPort: endpoint.port };
        return warm && warm.address === clearnet.address
          ? makeAnnouncement({ ...coordination, clearnet: warm, zeroRtt: true })
          : makeAnnouncement({ ...coordination, clearnet });
      },
    });
    void announcer.start();
  }
  const ready = {
    ready: true,
    coordination: `${endpoint.address}:${endpoint.port}`,
    overlay: endpoint.kind,
    clearnet: clearnet ?? null,
    bitcoind: `${cfg.bitcoind.host}:${cfg.bitcoind.port}`,
    handoff: target.mode === 'fd' ? `unix:${target.path}` : 'splice',
  };
  log.info('ready', ready);
  hooks.ready?.(ready);

  const why = await waitForShutdown(hooks.signal);
  log.info('shutdown', { signal: why, bridges: bridges.size });
  announcer?.stop();
  await listener.close();
  try {
    await endpoint.close();
    log.info('endpoint-closed');
  } catch (err) {
    log.warn('endpoint-close-failed', { error: err instanceof OnionpunchError ? err : String(err) });
  }
  if (bridges.size > 0) {
    const all = Promise.all([...bridges].map((b) => b.done));
    await Promise.race([all, new Promise((r) => setTimeout(r, cfg.shutdowngrace * 1000).unref())]);
    for (const b of bridges) b.close();
    await all;
  }
  log.info('stopped');
  return 0;
}
