/**
 * Maps an engine failure to a session failure reason and an opresult status: by class and `ENGINE_*` code
 * (src/native/errors.ts), never by message text.
 */
import { EngineError } from './engine-port.js';
import { PunchSessionError, type PunchSessionCode, type Side } from './errors.js';
import type { ResultStatus } from './messages.js';

export function classifyEngineError(err: unknown, side: Side): { status: ResultStatus; error: PunchSessionError } {
  const r = classify(err, side);
  r.error.engineTimeline = err instanceof EngineError ? err.timeline : undefined;
  return r;
}

const OUTCOMES: Record<'aborted' | 'refused' | 'timeout' | 'error', { code: PunchSessionCode; what: string }> = {
  aborted: { code: 'PUNCH_ABORTED', what: 'punch aborted' },
  refused: { code: 'PUNCH_REFUSED', what: 'simultaneous open refused' },
  timeout: { code: 'PUNCH_CONNECT_TIMEOUT', what: 'no connection before the deadline' },
  error: { code: 'PUNCH_ENGINE', what: 'engine failed' },
};

/** The opresult status an engine failure stands for. */
function statusOf(err: unknown): 'aborted' | 'refused' | 'timeout' | 'error' {
  if (err instanceof EngineError) {
    switch (err.code) {
      case 'ENGINE_ABORTED':
        return 'aborted';
      case 'ENGINE_REFUSED':
        return 'refused';
      case 'ENGINE_UNREACHABLE':
        // A reset in SYN_SENT is the peer's (or its NAT's) answer, like an RST to the SYN.
        return err.errno === 'ECONNRESET' ? 'refused' : 'error';
      case 'ENGINE_TIMEOUT':
        return 'timeout';
      default:
        return 'error';
    }
  }
  // An engine behind the port that honours an AbortSignal the standard way.
  if (err instanceof DOMException && err.name === 'AbortError') return 'aborted';
  return 'error';
}

function classify(err: unknown, side: Side): { status: ResultStatus; error: PunchSessionError } {
  const status = statusOf(err);
  const { code, what } = OUTCOMES[status];
  const msg = err instanceof Error ? err.message : String(err);
  const timeline = err instanceof EngineError ? err.timeline : undefined;
  const info = { side, step: 'punch', timeline, cause: err };
  return { status, error: new PunchSessionError(code, `${side}: ${what}: ${msg}`, info) };
}
