/**
 * Demo/lab worker: runs inside one lab namespace as a child node process and talks JSON lines with its
 * parent (demo.ts / matrix.ts / lab tests). Roles:
 *  - `natcheck`: a NAT-check server on a public host;
 *  - `a`: EIM check, Tor (or I2P) coordination endpoint, punch listener; every verified socket answers a
 *    Bitcoin version handshake as responder;
 *  - `b`: EIM check, then on each `{"cmd":"punch"}` line: punch to A, version handshake as initiator.
 * Config: the first argv is a JSON object (WorkerConfig). `{"cmd":"quit"}` on stdin ends the worker.
 */
import { createInterface } from 'node:readline';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { PunchEngine, probeBind } from '../../native/engine.js';
import { startNatcheckServer } from '../../nat/natcheck-server.js';
import { eimCheck, type EimVerdict } from '../../nat/eim-check.js';
import { nativeObserver } from '../../nat/observe.js';
import type { Endpoint } from '../../nat/types.js';
import { Peer } from '../../peer/index.js';
import { createPunchListener, type ConnectionInfo } from '../../punch/listener.js';
import { PunchClient, type PunchTarget } from '../../punch/client.js';
import { NODE_HOLEPUNCH, NODE_HOLEPUNCH_ZRTT } from '../../wire/constants.js';
import { wireCodec } from '../../punch/wire-codec.js';
import { PunchSessionError } from '../../punch/errors.js';
import { SPRAY_LIMITS } from '../../punch/spray.js';
import { emit, wallMs } from './jsonl.js';
import type { CoordinationDialer, CoordinationEndpoint } from '../../overlay/types.js';
import type { WorkerConfig } from './worker-config.js';
import { TailSampler } from './tail-sampler.js';
import { TurnPacer } from './turn-pacer.js';
export type { WorkerConfig } from './worker-config.js';

function fail(err: unknown): never {
  const e = err as { code?: string; message?: string };
  emit('fatal', { code: e.code ?? 'ERROR', message: e.message ?? String(err) });
  process.exit(1);
}

function serializeTimeline(tl: { events: Array<{ t: number; event: string; detail?: string }>; start: number }): {
  start: number;
  events: unknown[];
} {
  return { start: performance.timeOrigin + tl.start, events: tl.events };
}

/** Engine timeline (CLOCK_MONOTONIC ns) → wall ms, for the parent's combined timeline. */
function engineEvents(engine: PunchEngine, tl: unknown): unknown[] {
  if (!Array.isArray(tl)) return [];
  const nowNs = engine.now();
  const nowWall = wallMs();
  return (tl as Array<{ kind: string; actualNs: bigint; remote?: Endpoint; errno?: string }>).map((e) => ({
    kind: e.kind,
    at: nowWall - Number(nowNs - e.actualNs) / 1e6,
    ...(e.remote ? { remote: `${e.remote.address}:${e.remote.port}` } : {}),
    ...(e.errno ? { errno: e.errno } : {}),
  }));
}

/**
 * A session's steps in compact form (lab stress: every session, not only the sampled ones, so the tail can be
 * explained): the first time of each session event and of the engine's first SYN, first stall re-send and
 * establishment, ms since the session's start; and the engine's SYN, stall and RST counts.
 */
function stepsOf(engine: PunchEngine, tl: unknown, eng: unknown): Record<string, number> | undefined {
  const t = tl as { start: number; events: Array<{ t: number; event: string }> } | undefined;
  if (!t) return undefined;
  const out: Record<string, number> = {};
  for (const e of t.events) if (out[e.event] === undefined) out[e.event] = e.t;
  const start = performance.timeOrigin + t.start;
  const counts: Record<string, number> = { syn: 0, stall: 0, rst: 0 };
  for (const e of engineEvents(engine, eng) as Array<{ kind: string; at: number }>) {
    if (counts[e.kind] !== undefined) counts[e.kind]!++;
    const k = `engine:${e.kind}`;
    if (out[k] === undefined) out[k] = Math.round((e.at - start) * 10) / 10;
  }
  return { ...out, syns: counts.syn!, stalls: counts.stall!, rsts: counts.rst! };
}

/**
 * The engine events worth a timeline line: all of them for an ordinary punch; for a spray (thousands of SYNs)
 * the first and last SYN and the established connection (the SYN count is in the spray report).
 */
function sprayEngine(engine: PunchEngine, tl: unknown, spray: unknown): unknown[] {
  const all = engineEvents(engine, tl) as Array<{ kind: string }>;
  if (!spray) return all;
  const syns = all.filter((e) => e.kind === 'syn');
  const ends = all.filter((e) => e.kind === 'established' || e.kind === 'timeout' || e.kind === 'abort');
  return [syns[0], syns[syns.length - 1], ...ends].filter(Boolean);
}

async function runEim(cfg: WorkerConfig): Promise<EimVerdict> {
  const fam = cfg.family ?? 4;
  const local = probeBind({ address: cfg.localAddress ?? (fam === 6 ? '::' : '0.0.0.0'), port: 0 });
  const v = await eimCheck({
    local,
    peers: cfg.natcheck ?? [],
    observe: nativeObserver({ network: cfg.network ?? 'regtest' }),
    timeoutMs: 5000,
  });
  const ps = v.portSpread;
  const spread = ps ? { probeLow: ps.probeLow, probeHigh: ps.probeHigh, narrow: ps.narrow } : undefined;
  emit('eim', {
    mapping: v.mapping,
    portPreserving: v.portPreserving,
    publicAddress: v.publicAddress,
    observed: v.observed,
    reason: v.reason,
    publicIpStable: v.publicIpStable,
    ...(spread ? { spread } : {}),
  });
  return v;
}

async function makeEndpoint(cfg: WorkerConfig): Promise<CoordinationEndpoint> {
  if ((cfg.overlay ?? 'tor') === 'tor') {
    const { TorCoordinationEndpoint } = await import('../../overlay/tor/endpoint.js');
    const c = cfg.control!;
    return TorCoordinationEndpoint.create({
      control: {
        host: c.host,
        port: c.port,
        auth: c.password ? { password: c.password } : c.cookieFile ? { cookieFile: c.cookieFile } : {},
      },
      virtualPort: 8333,
    });
  }
  const { I2pCoordinationEndpoint } = await import('../../overlay/i2p/endpoint.js');
  return I2pCoordinationEndpoint.create({
    sam: cfg.sam!,
    ...(cfg.samOptions ? { sessionOptions: cfg.samOptions } : {}),
    timeoutMs: 120_000,
  });
}

/**
 * `direct` (lab stress): plain TCP to A's forwarded coordination port, named as such. It is not an overlay:
 * the punch code uses a dialer's `kind` only in messages, and OverlayKind names the real ones.
 */
function directDialer(timeoutMs = 10_000): CoordinationDialer {
  return {
    kind: 'direct' as CoordinationDialer['kind'],
    dial: (address, port, opts) =>
      new Promise<Duplex>((resolve, reject) => {
        const s = connect({ host: address, port });
        const fail = (err: Error): void => {
          clearTimeout(timer);
          s.destroy();
          reject(err);
        };
        const why = `direct: no TCP connection to ${address}:${port} in ${opts?.timeoutMs ?? timeoutMs} ms`;
        const timer = setTimeout(() => fail(new Error(why)), opts?.timeoutMs ?? timeoutMs);
        opts?.signal?.addEventListener('abort', () => fail(new Error('direct: dial aborted')), { once: true });
        s.once('error', fail);
        s.once('connect', () => {
          clearTimeout(timer);
          s.off('error', fail);
          resolve(s);
        });
      }),
    close: async () => undefined,
  };
}

/** Engine counters and the process's own resource view, for `{"cmd":"stats"}` (lab stress). */
function emitStats(engine: PunchEngine, extra: Record<string, unknown> = {}): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  // After the GC: the live heap, the figure a leak shows in (RSS keeps the space V8 grew to).
  const m = process.memoryUsage();
  const memory = { heapUsedKb: Math.round(m.heapUsed / 1024), externalKb: Math.round(m.external / 1024), gc: !!gc };
  emit('stats', { engine: engine.stats(), memory, ...extra });
}

async function makeDialer(cfg: WorkerConfig): Promise<CoordinationDialer> {
  if (cfg.overlay === 'direct') return directDialer();
  if ((cfg.overlay ?? 'tor') === 'tor') {
    const { TorCoordinationDialer } = await import('../../overlay/tor/dialer.js');
    return new TorCoordinationDialer({ socksHost: cfg.socks!.host, socksPort: cfg.socks!.port });
  }
  const { I2pCoordinationDialer } = await import('../../overlay/i2p/dialer.js');
  return I2pCoordinationDialer.create({
    sam: cfg.sam!,
    ...(cfg.samOptions ? { sessionOptions: cfg.samOptions } : {}),
    timeoutMs: 120_000,
  });
}

function onCommands(handler: (cmd: Record<string, unknown>) => Promise<void> | void): void {
  const rl = createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    let cmd: Record<string, unknown>;
    try {
      cmd = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    chain = chain.then(() => handler(cmd)).catch(fail);
  });
  rl.on('close', () => process.exit(0));
}

async function roleNatcheck(cfg: WorkerConfig): Promise<void> {
  const s = await startNatcheckServer({
    host: cfg.listen!.address,
    port: cfg.listen!.port,
    network: cfg.network ?? 'regtest',
  });
  emit('ready', { address: s.address, port: s.port });
  onCommands(async (c) => {
    if (c.cmd === 'quit') {
      await s.close();
      process.exit(0);
    }
  });
}

async function roleA(cfg: WorkerConfig): Promise<void> {
  const network = cfg.network ?? 'regtest';
  const engine = PunchEngine.shared();
  const verdict = await runEim(cfg);
  const direct = cfg.overlay === 'direct';
  const endpoint = direct ? undefined : await makeEndpoint(cfg);
  const listener = await createPunchListener({
    ...(endpoint ? { endpoint } : {}),
    engine,
    codec: wireCodec(network),
    discovery: {
      methods: ['predict', 'natcheck'],
      natcheckServers: cfg.natcheck ?? [],
      observe: nativeObserver({ network }),
    },
    eim: verdict,
    allowLab: true,
    // One B punches A over and over (lab matrix --runs N): the per-target-IP budget (4 then one per 30 s) would
    // refuse the fifth attempt, so the lab gives it room; its own unit tests cover the default.
    limits: {
      sessionsPerSec: 20,
      sessionBurst: 50,
      discoveryPerSec: 10,
      discoveryBurst: 20,
      targetIpPerSec: 10,
      targetIpBurst: 1000,
      ...(cfg.limits ?? {}),
    },
    ...(cfg.localAddress
      ? {
          localAddress: {
            v4: cfg.family === 6 ? undefined : cfg.localAddress,
            v6: cfg.family === 6 ? cfg.localAddress : undefined,
          },
        }
      : {}),
    tuning: { ...(cfg.primeTtl ? { primeTtl: cfg.primeTtl } : {}) },
    ...(cfg.zeroRtt ? { zeroRtt: { recheckMs: 60_000 } } : {}),
    // The lab's A is sprayed at over and over (lab matrix --runs N): room in the sprays-a-minute bucket too.
    ...(cfg.hardNat ? { spray: { maxSyns: SPRAY_LIMITS.aSynsPerSession, sessionsPerMinute: 600, burst: 1000 } } : {}),
  });
  let timelinesLeft = cfg.timelines ?? Infinity;
  const whole = (tl: unknown, eng: unknown, spray?: unknown): Record<string, unknown> => ({
    timeline: serializeTimeline(tl as never),
    engine: sprayEngine(engine, eng, spray),
  });
  const detail = (tl: unknown, eng: unknown, spray?: unknown): Record<string, unknown> => {
    if (timelinesLeft <= 0 || !tl) return {};
    timelinesLeft--;
    return whole(tl, eng, spray);
  };
  // lab stress --report: the slowest connections and the first failures, sent when asked (`timelines`).
  const tail = new TailSampler<Record<string, unknown>>(cfg.tail?.slowest ?? 0, cfg.tail?.failed ?? 0);
  let server: Server | undefined;
  if (direct) {
    server = createServer((s) => {
      s.on('error', () => undefined);
      listener.handle(s, {});
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      // `lab stress --overlay direct` opens up to K coordination streams at once: Node's default backlog (511)
      // would drop the handshakes of the rest of a burst of 1,000, which then wait out B's retransmissions.
      const host = cfg.localAddress ?? '0.0.0.0';
      server!.listen({ port: cfg.directPort ?? 9333, host, backlog: 4096 }, () => resolve());
    });
  }
  listener.on('connection', (socket: Socket, info: ConnectionInfo) => {
    const req = info.timeline.at('request');
    const est = info.timeline.at('established');
    const ttcMs = req !== undefined && est !== undefined ? est - req : undefined;
    if (ttcMs !== undefined) {
      const make = (): Record<string, unknown> => whole(info.timeline, info.engineTimeline, info.spray);
      tail.offer(ttcMs, () => ({ sessionId: info.sessionId, ttcMs, ...make() }));
    }
    emit('connected', {
      remote: info.remote,
      local: info.local,
      sessionId: info.sessionId,
      ttcMs,
      ...(cfg.steps ? { steps: stepsOf(engine, info.timeline, info.engineTimeline) } : {}),
      ...detail(info.timeline, info.engineTimeline, info.spray),
      ...(info.spray ? { spray: info.spray } : {}),
      ...(info.zeroRtt ? { zeroRtt: true } : {}),
    });
    const peer = new Peer(socket, { network, role: 'responder', addrRecv: info.remote, handshakeTimeoutMs: 10_000 });
    peer
      .handshake()
      .then((h) =>
        emit('handshake', {
          side: 'A',
          sessionId: info.sessionId,
          userAgent: h.version.userAgent,
          elapsedMs: h.elapsedMs,
        }),
      )
      .catch((err: Error) => emit('handshake-failed', { side: 'A', sessionId: info.sessionId, message: err.message }))
      .finally(() => setTimeout(() => peer.close(), 500));
  });
  listener.on('failure', (err: PunchSessionError) => {
    if (err.timeline) tail.offerFailure(() => ({ error: err.toJSON(), ...whole(err.timeline, err.engineTimeline) }));
    emit('failure', {
      error: err.toJSON(),
      ...(cfg.steps ? { steps: stepsOf(engine, err.timeline, err.engineTimeline) } : {}),
      ...detail(err.timeline, err.engineTimeline),
    });
  });
  // direct: B dials A's public address (the rig knows it; A's router forwards the port).
  const port = endpoint?.port ?? cfg.directPort ?? 9333;
  // Zero-round-trip: the warm port's mapping is what A would announce with NODE_HOLEPUNCH_ZRTT.
  const zrtt = cfg.zeroRtt ? await listener.zeroRttReady() : undefined;
  emit('ready', { address: endpoint?.address ?? '', port, eim: verdict.mapping, ...(zrtt ? { zeroRtt: zrtt } : {}) });
  onCommands(async (c) => {
    if (c.cmd === 'stats') emitStats(engine, { listener: { ...listener.stats } });
    if (c.cmd === 'timelines') emit('timelines', { samples: tail.samples() });
    if (c.cmd === 'quit') {
      await listener.close();
      server?.close();
      await endpoint?.close();
      process.exit(0);
    }
  });
}

async function roleB(cfg: WorkerConfig): Promise<void> {
  const network = cfg.network ?? 'regtest';
  const engine = PunchEngine.shared();
  const verdict = await runEim(cfg);
  const dialer = await makeDialer(cfg);
  const client = new PunchClient({
    dialer,
    engine,
    codec: wireCodec(network),
    discovery: {
      methods: ['predict', 'natcheck'],
      natcheckServers: cfg.natcheck ?? [],
      observe: nativeObserver({ network }),
    },
    eim: verdict,
    family: cfg.family ?? 4,
    ...(cfg.localAddress ? { localAddress: cfg.localAddress } : {}),
    allowLab: true,
    ...(cfg.clientLimits ? { limits: cfg.clientLimits } : {}),
    tuning: { profile: cfg.profile ?? 'prime', ...(cfg.primeTtl ? { primeTtl: cfg.primeTtl } : {}) },
    ...(cfg.deadlineMs ? { deadlineMs: cfg.deadlineMs } : {}),
    ...(cfg.sessionDeadlineMs
      ? { sessionDeadlineMs: cfg.sessionDeadlineMs, dialTimeoutMs: cfg.sessionDeadlineMs }
      : {}),
    ...(cfg.fireDelayMs !== undefined ? { fireDelayMs: cfg.fireDelayMs } : {}),
    ...(cfg.hardNat ? { spray: { maxSyns: SPRAY_LIMITS.bSynsPerSession, spreadUs: SPRAY_LIMITS.spreadUs } } : {}),
  });
  const starts = new TurnPacer();
  emit('ready', { eim: verdict.mapping });
  onCommands(async (c) => {
    if (c.cmd === 'stats') emitStats(engine);
    if (c.cmd === 'timelines') {
      emit('timelines', { samples: bTail?.samples() ?? [], totals: bTotals?.samples() ?? [] });
    }
    if (c.cmd === 'quit') {
      await dialer.close();
      process.exit(0);
    }
    if (c.cmd !== 'punch') return;
    if (typeof c.id === 'number') {
      // lab stress: sessions run side by side (not chained), each answered by one compact `session` line; a
      // burst of them starts one per loop turn (turn-pacer.ts).
      const id = c.id;
      starts.push(() => void stressSession(client, cfg, network, id));
      return;
    }
    const t0 = wallMs();
    try {
      const r = await client.punch(labTarget(cfg, c.zeroRtt === true));
      emit('punched', {
        remote: r.remote,
        local: r.local,
        sessionId: r.sessionId,
        overlayRttMs: r.overlayRttMs,
        timeline: serializeTimeline(r.timeline),
        engine: sprayEngine(engine, r.engineTimeline, r.spray),
        totalMs: wallMs() - t0,
        ...(r.spray ? { spray: r.spray } : {}),
        ...(r.zeroRtt ? { zeroRtt: true } : {}),
      });
      const peer = new Peer(r.socket, { network, role: 'initiator', addrRecv: r.remote, handshakeTimeoutMs: 10_000 });
      try {
        const h = await peer.handshake();
        const directRttMs = await peer.ping(5000).catch(() => undefined);
        emit('handshake', {
          side: 'B',
          sessionId: r.sessionId,
          userAgent: h.version.userAgent,
          elapsedMs: h.elapsedMs,
          directRttMs,
        });
      } catch (err) {
        emit('handshake-failed', { side: 'B', message: (err as Error).message });
      } finally {
        peer.close();
      }
    } catch (err) {
      const e = err instanceof PunchSessionError ? err : new PunchSessionError('PUNCH_ENGINE', String(err));
      emit('punch-failed', {
        error: e.toJSON(),
        timeline: e.timeline ? serializeTimeline(e.timeline as never) : undefined,
        engine: engineEvents(engine, e.engineTimeline),
        totalMs: wallMs() - t0,
      });
    }
  });
}

/**
 * B's target: with `zeroRtt` (and A's warm endpoint known) as an announcement with NODE_HOLEPUNCH_ZRTT would
 * give it (the lab has no relays: A is up and re-checks its port, so the "announcement" is stamped now).
 */
function labTarget(cfg: WorkerConfig, zeroRtt: boolean): PunchTarget {
  const t = cfg.target!;
  const z = cfg.zeroRtt;
  if (!zeroRtt || typeof z !== 'object' || typeof t.expectIp !== 'string') return t;
  return {
    ...t,
    clearnet: { address: t.expectIp, port: z.port },
    announcement: { services: NODE_HOLEPUNCH | NODE_HOLEPUNCH_ZRTT, time: Math.floor(Date.now() / 1000) },
  };
}

/** One lab-stress session on B: punch, Bitcoin handshake over the socket, close; always one `session` line. */
let bTimelinesLeft: number | undefined;
/**
 * lab stress --report, sent when asked (warm-up excluded): B's slowest punches by A's measure seen from B (its
 * request sent to established: these join A's slowest) with the first failures, and its slowest whole sessions
 * (overlay dial and coordination included: a tail A never sees).
 */
let bTail: TailSampler<Record<string, unknown>> | undefined;
let bTotals: TailSampler<Record<string, unknown>> | undefined;
const B_TOTALS_KEPT = 3;

async function stressSession(
  client: PunchClient,
  cfg: WorkerConfig,
  network: WorkerConfig['network'],
  id: number,
): Promise<void> {
  const t0 = wallMs();
  bTimelinesLeft ??= cfg.timelines ?? 0;
  bTail ??= new TailSampler(cfg.tail?.slowest ?? 0, cfg.tail?.failed ?? 0);
  bTotals ??= new TailSampler(cfg.tail ? B_TOTALS_KEPT : 0, 0);
  const whole = (tl: unknown, eng: unknown): Record<string, unknown> => ({
    timeline: serializeTimeline(tl as never),
    engine: engineEvents(PunchEngine.shared(), eng),
  });
  // The first few sessions (not the warm-up, id < 0) carry their whole timelines for the report.
  const detail = (tl: unknown, eng: unknown): Record<string, unknown> => {
    if (id < 0 || bTimelinesLeft! <= 0 || !tl) return {};
    bTimelinesLeft!--;
    return whole(tl, eng);
  };
  const sampled = (ms: number | undefined, extra: Record<string, unknown>, tl: unknown, eng: unknown): void => {
    if (id < 0 || !tl) return;
    const make = (): Record<string, unknown> => ({ id, ...extra, ...whole(tl, eng) });
    if (ms === undefined) bTail!.offerFailure(make);
    else bTail!.offer(ms, make);
  };
  try {
    const r = await client.punch(cfg.target!);
    const punchedMs = wallMs() - t0;
    const peer = new Peer(r.socket, {
      network: network ?? 'regtest',
      role: 'initiator',
      addrRecv: r.remote,
      handshakeTimeoutMs: 10_000,
    });
    try {
      await peer.handshake();
      if (id >= 0) {
        const sent = r.timeline.at('endpoints-sent') ?? r.timeline.at('zero-rtt-sent');
        const est = r.timeline.at('established');
        const extra = { sessionId: r.sessionId, totalMs: punchedMs };
        if (sent !== undefined && est !== undefined) sampled(est - sent, extra, r.timeline, r.engineTimeline);
        bTotals!.offer(punchedMs, () => ({ id, ...extra, ...whole(r.timeline, r.engineTimeline) }));
      }
      emit('session', {
        id,
        ok: true,
        sessionId: r.sessionId,
        totalMs: punchedMs,
        overlayRttMs: r.overlayRttMs,
        ...(cfg.steps ? { steps: stepsOf(PunchEngine.shared(), r.timeline, r.engineTimeline) } : {}),
        ...detail(r.timeline, r.engineTimeline),
      });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const code = e.code ?? 'PEER_PROTOCOL';
      const error = { code, message: e.message ?? String(err), side: 'B', step: 'handshake' };
      sampled(undefined, { sessionId: r.sessionId, error }, r.timeline, r.engineTimeline);
      emit('session', { id, ok: false, sessionId: r.sessionId, totalMs: wallMs() - t0, error });
    } finally {
      peer.close();
    }
  } catch (err) {
    const e = err instanceof PunchSessionError ? err : new PunchSessionError('PUNCH_ENGINE', String(err));
    sampled(undefined, { error: e.toJSON() }, e.timeline, e.engineTimeline);
    emit('session', {
      id,
      ok: false,
      totalMs: wallMs() - t0,
      error: e.toJSON(),
      ...(cfg.steps ? { steps: stepsOf(PunchEngine.shared(), e.timeline, e.engineTimeline) } : {}),
      ...detail(e.timeline, e.engineTimeline),
    });
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  if (cfg.role === 'natcheck') await roleNatcheck(cfg);
  else if (cfg.role === 'a') await roleA(cfg);
  else if (cfg.role === 'b') await roleB(cfg);
  else fail(new Error(`unknown role ${String(cfg.role)}`));
}

main().catch(fail);
