/**
 * A's side of one coordination session (A is the overlay responder and, on the punched socket, the
 * Bitcoin responder). Steps, each with a timeout: B's version → our version+verack → B's opendpoint →
 * (check NAT, discover our mapping) → our opendpoint → B's opfire → fire at receipt + delay → verify
 * getpeername → opresult. Pings are answered by the channel at any time.
 */
import type { CoordChannel } from './channel.js';
import type { CoordMessage, RejectCode } from './messages.js';
import { FLAG_PORT_PRESERVING, FLAG_PREDICTED, USER_AGENT } from './messages.js';
import { PunchSessionError } from './errors.js';
import type { PunchEngineLike } from './engine-port.js';
import type { Endpoint } from '../nat/types.js';
import type { TargetPolicy } from '../nat/address.js';
import type { DiscoveryResult } from '../nat/mapping.js';
import type { EimVerdict } from '../nat/eim-check.js';
import { NatError } from '../nat/errors.js';
import { Timeline } from './timeline.js';
import { verifyOrReport } from './verify.js';
import { classifyEngineError } from './engine-errors.js';
import { type PlanTuning, type PunchedConnection, capPlan, familyOf, randomNonce, usableEndpoints } from './session-common.js';

export interface ResponderOptions {
  engine: PunchEngineLike;
  /** The local punch endpoint for this session (a fresh reusable port). */
  localEndpoint(family: 4 | 6): Promise<Endpoint>;
  /** Our public mapping for `local` (budgeted by the caller). */
  discover(local: Endpoint, signal: AbortSignal): Promise<DiscoveryResult>;
  /** Our cached NAT verdict: `edm` → reject with nat-unsuitable. */
  natVerdict?(): EimVerdict | undefined;
  policy?: TargetPolicy;
  /** Address family A punches over (default: that of B's first endpoint). */
  family?: 4 | 6;
  handshakeTimeoutMs?: number;
  stepTimeoutMs?: number;
  /** Largest delay_us / deadline_ms A accepts from B. */
  maxDelayUs?: number;
  maxDeadlineMs?: number;
  /** SYN cap for one session (bounds waves × remotes). */
  maxSynsPerSession?: number;
  tuning?: PlanTuning;
  signal?: AbortSignal;
  timeline?: Timeline;
}

function reject(ch: CoordChannel, code: RejectCode, reason: string): void {
  ch.send({ cmd: 'opreject', code, reason: reason.slice(0, 256) });
  ch.close();
}

/** Waits for a message of one of `want`, skipping verack/pong/other; opreject from B is a protocol error. */
async function expect<C extends CoordMessage['cmd']>(ch: CoordChannel, want: C[], timeoutMs: number, step: string, signal?: AbortSignal): Promise<Extract<CoordMessage, { cmd: C }>> {
  for (;;) {
    const m = await ch.next(timeoutMs, step, signal);
    if ((want as string[]).includes(m.cmd)) return m as Extract<CoordMessage, { cmd: C }>;
    if (m.cmd === 'verack' || m.cmd === 'pong' || m.cmd === 'other') continue;
    throw new PunchSessionError('PUNCH_PROTOCOL', `unexpected ${m.cmd} while waiting for ${step}`, { step, side: 'B' });
  }
}

/** Runs one session on an accepted coordination stream. Resolves with the verified punched socket. */
export async function runResponder(ch: CoordChannel, opts: ResponderOptions): Promise<PunchedConnection> {
  const tl = opts.timeline ?? new Timeline();
  const handshakeMs = opts.handshakeTimeoutMs ?? 15_000;
  const stepMs = opts.stepTimeoutMs ?? 15_000;
  const ac = new AbortController();
  const onAbort = (): void => ac.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const v = await expect(ch, ['version'], handshakeMs, 'version', ac.signal);
    tl.mark('request', `B version ${v.userAgent}`);
    ch.send({ cmd: 'version', nonce: randomNonce(), userAgent: USER_AGENT });
    ch.send({ cmd: 'verack' });

    const ep = await expect(ch, ['opendpoint'], stepMs, 'opendpoint', ac.signal);
    tl.mark('peer-endpoints', ep.endpoints.map((e) => `${e.address}:${e.port}`).join(' '));
    const sessionId = ep.sessionId;
    const family = opts.family ?? (ep.endpoints[0] ? familyOf(ep.endpoints[0].address) : 4);
    const { usable, refused } = usableEndpoints(ep.endpoints, family, opts.policy ?? {});
    if (usable.length === 0) {
      reject(ch, 'bad-request', `no usable endpoint: ${refused.join(', ') || 'none given'}`);
      throw new PunchSessionError('PUNCH_TARGET_REFUSED', `B's endpoints refused: ${refused.join(', ')}`, { step: 'opendpoint', side: 'B' });
    }
    const verdict = opts.natVerdict?.();
    if (verdict?.mapping === 'edm') {
      const why = "A's NAT maps endpoint-dependently (edm): hole punching cannot work";
      reject(ch, 'nat-unsuitable', why);
      throw new PunchSessionError('PUNCH_NAT_UNSUITABLE', why, { step: 'nat-check', side: 'A' });
    }

    const local = await opts.localEndpoint(family);
    let disco: DiscoveryResult;
    try {
      disco = await opts.discover(local, ac.signal);
    } catch (err) {
      const budget = err instanceof NatError && err.has('NAT_BUDGET');
      reject(ch, budget ? 'busy' : 'nat-unsuitable', `A: mapping discovery failed: ${(err as Error).message}`);
      throw new PunchSessionError(budget ? 'PUNCH_RATE_LIMITED' : 'PUNCH_DISCOVERY', `A: mapping discovery failed: ${(err as Error).message}`, { step: 'discovery', side: 'A', cause: err });
    }
    const mine = disco.endpoints.filter((e) => familyOf(e.address) === family).slice(0, 8);
    if (mine.length === 0) {
      reject(ch, 'nat-unsuitable', `A has no IPv${family} mapping`);
      throw new PunchSessionError('PUNCH_DISCOVERY', `A has no IPv${family} mapping`, { step: 'discovery', side: 'A' });
    }
    tl.mark('discovered', mine.map((e) => `${e.address}:${e.port}`).join(' '));
    const flags = (disco.portPreserving ? FLAG_PORT_PRESERVING : 0) | (disco.predicted ? FLAG_PREDICTED : 0);
    ch.send({ cmd: 'opendpoint', sessionId, flags, endpoints: mine.map((e) => ({ address: e.address, port: e.port })) });

    const fire = await expect(ch, ['opfire'], stepMs, 'opfire', ac.signal);
    const recvNs = opts.engine.now();
    if (!fire.sessionId.equals(sessionId)) {
      throw new PunchSessionError('PUNCH_PROTOCOL', 'opfire carries another session id', { step: 'opfire', side: 'B' });
    }
    const maxDelayUs = opts.maxDelayUs ?? 5_000_000;
    const maxDeadline = opts.maxDeadlineMs ?? 15_000;
    if (fire.delayUs > maxDelayUs || fire.deadlineMs > maxDeadline || fire.deadlineMs === 0) {
      reject(ch, 'bad-request', `opfire out of bounds (delay ≤ ${maxDelayUs} us, 0 < deadline ≤ ${maxDeadline} ms)`);
      throw new PunchSessionError('PUNCH_PROTOCOL', 'opfire out of bounds', { step: 'opfire', side: 'B' });
    }
    tl.mark('fire-received', `delay ${fire.delayUs} us, profile ${fire.profile}`);

    const tuning = { ...(opts.tuning ?? {}), profile: fire.profile };
    const capped = capPlan(tuning, usable.length, opts.maxSynsPerSession ?? 100, fire.deadlineMs);
    let outcome;
    try {
      outcome = await opts.engine.punch({
        ...tuning,
        local,
        remotes: usable,
        startAtNs: recvNs + BigInt(fire.delayUs) * 1000n,
        ...capped,
        deadlineMs: fire.deadlineMs,
        signal: ac.signal,
      });
    } catch (err) {
      const { status, error } = classifyEngineError(err, 'A');
      tl.mark('punch-failed', error.message);
      ch.send({ cmd: 'opresult', sessionId, status, elapsedMs: Math.round(tl.mark('result')), reason: error.message.slice(0, 256) });
      ch.close();
      error.timeline = tl;
      throw error;
    }
    tl.mark('established', `${outcome.remote.address}:${outcome.remote.port}`);
    const remote = verifyOrReport('A', outcome.socket, usable, ch, sessionId, tl);
    ch.send({ cmd: 'opresult', sessionId, status: 'connected', elapsedMs: Math.round(tl.mark('verified')), reason: '' });
    // B's opresult is informative only; read it briefly in the background, then close.
    void ch.next(3000, 'opresult').catch(() => undefined).finally(() => ch.close());
    return { socket: outcome.socket, local: outcome.local ?? local, remote, sessionId: sessionId.toString('hex'), timeline: tl, engineTimeline: outcome.timeline };
  } catch (err) {
    ch.close();
    if (err instanceof PunchSessionError) {
      if (err.timeline === undefined) err.timeline = tl;
      throw err;
    }
    throw new PunchSessionError('PUNCH_ENGINE', `A: ${(err as Error).message}`, { cause: err });
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
