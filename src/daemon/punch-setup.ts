/**
 * What `serve` (A) and `proxy` (B) set up alike before punching: the EIM check against the configured NAT-check
 * servers, and the punch options that come from configuration (engine, codec, discovery, target policy, SYN
 * schedule and cap). Kept apart from serve.ts so proxy.ts does not import serve.ts (docs/ARCHITECTURE.md).
 */
import type { EimVerdict } from '../nat/eim-check.js';
import type { Endpoint } from '../ip.js';
import type { TargetPolicy } from '../nat/address.js';
import type { PunchEngineLike } from '../punch/engine-port.js';
import type { FrameCodec } from '../punch/channel.js';
import type { DiscoveryConfig } from '../punch/listener.js';
import type { SprayCaps } from '../punch/spray.js';
import type { DaemonConfig, HostPort } from './config.js';
import type { Logger } from './log.js';

export const toEndpoint = (h: HostPort): Endpoint => ({ address: h.host, port: h.port });

/** What a daemon verb gets from its caller besides configuration: the ready callback and a stop signal. */
export interface DaemonHooks {
  ready?: (info: Record<string, unknown>) => void;
  signal?: AbortSignal;
}

/** Runs the EIM check when two NAT-check servers are configured; undefined otherwise. */
export async function checkNat(cfg: DaemonConfig, log: Logger): Promise<EimVerdict | undefined> {
  if (cfg.natcheck.length < 2) {
    log.warn('nat-check-skipped', { why: 'fewer than two natcheck servers configured' });
    return undefined;
  }
  const { probeBind } = await import('../native/engine.js');
  const { eimCheck } = await import('../nat/eim-check.js');
  const { nativeObserver } = await import('../nat/observe.js');
  log.info('nat-check-start', { servers: cfg.natcheck.map((n) => `${n.host}:${n.port}`) });
  const local = probeBind({ address: cfg.bind ?? '0.0.0.0', port: 0 });
  const observe = nativeObserver({ network: cfg.network });
  const v = await eimCheck({ local, peers: cfg.natcheck.map(toEndpoint), observe, timeoutMs: 5000 });
  const { mapping, portPreserving, publicAddress, reason } = v;
  log.info('nat-check-done', { mapping, portPreserving, publicAddress, reason });
  return v;
}

/** The punch options both roles take from configuration (the role adds its own: endpoint or dialer, address). */
export interface ConfiguredPunchOptions {
  engine: PunchEngineLike;
  codec: FrameCodec;
  discovery: DiscoveryConfig;
  eim?: EimVerdict;
  allowLab: boolean;
  policy: TargetPolicy;
  tuning: { profile: 'prime' | 'plain'; resynIntervalUs: number };
  maxSynsPerSession: number;
  /** `hardnat=1`: this side's spray limits (A: SYNs per spray and sprays a minute; B: SYNs per spray). */
  spray?: SprayCaps & { sessionsPerMinute?: number; burst?: number };
}

/**
 * This side's spray caps from configuration (`hardnat=1`; undefined when off). A: `spraymaxsyns` SYNs per spray,
 * `sprayrate` sprays a minute, burst `sprayburst`; B: `spraydialsyns` SYNs, paced over `sprayspread` µs. The
 * defaults and ceilings are SPRAY_LIMITS' (the config keys' range check keeps every value under its ceiling).
 */
export function sprayOptions(cfg: DaemonConfig, role: 'A' | 'B'): ConfiguredPunchOptions['spray'] {
  if (!cfg.hardnat) return undefined;
  if (role === 'A') return { maxSyns: cfg.spraymaxsyns, sessionsPerMinute: cfg.sprayrate, burst: cfg.sprayburst };
  return { maxSyns: cfg.spraydialsyns, spreadUs: cfg.sprayspread };
}

/** Runs the NAT check and builds the configured punch options, with the process's shared native engine. */
export async function configuredPunch(
  cfg: DaemonConfig,
  log: Logger,
  role: 'A' | 'B' = 'A',
): Promise<ConfiguredPunchOptions> {
  const { PunchEngine } = await import('../native/engine.js');
  const { nativeObserver } = await import('../nat/observe.js');
  const { wireCodec } = await import('../punch/wire-codec.js');
  const { hardRange } = await import('../punch/spray.js');
  const verdict = await checkNat(cfg, log);
  const range = hardRange(verdict);
  if (verdict?.mapping === 'edm' && (!cfg.hardnat || typeof range === 'string')) {
    const why = cfg.hardnat
      ? `endpoint-dependent mapping, no spray: ${String(range)}`
      : 'endpoint-dependent mapping: ' + 'punches will be refused (hardnat=1 sprays through it)';
    log.warn('nat-unsuitable', { why });
  } else if (verdict?.mapping === 'edm' && typeof range !== 'string') {
    const why = 'endpoint-dependent mapping: punches spray';
    log.info('nat-hard', { why, probeLow: range.low, probeHigh: range.high });
  }
  const spray = sprayOptions(cfg, role);
  return {
    engine: PunchEngine.shared(),
    codec: wireCodec(cfg.network),
    discovery: {
      methods: ['predict', 'natcheck'],
      natcheckServers: cfg.natcheck.map(toEndpoint),
      observe: nativeObserver({ network: cfg.network }),
    },
    ...(verdict ? { eim: verdict } : {}),
    allowLab: cfg.labranges,
    policy: { allowLab: cfg.labranges, allowLoopback: cfg.loopback },
    tuning: { profile: cfg.punchprofile, resynIntervalUs: cfg.resyninterval },
    maxSynsPerSession: cfg.maxsyns,
    ...(spray ? { spray } : {}),
  };
}

/** The SAM session options for `i2phops` hops each way (i2pd's own default is 3), for serve's and proxy's sessions. */
export function i2pTunnelOptions(hops: number): Record<string, number> {
  return { 'inbound.length': hops, 'outbound.length': hops };
}
