/** Maps an engine failure to a session failure reason and an opresult status. */
import { PunchSessionError, type Side } from './errors.js';
import type { ResultStatus } from './messages.js';

export function classifyEngineError(err: unknown, side: Side): { status: ResultStatus; error: PunchSessionError } {
  const r = classify(err, side);
  r.error.engineTimeline = (err as { timeline?: unknown })?.timeline;
  return r;
}

function classify(err: unknown, side: Side): { status: ResultStatus; error: PunchSessionError } {
  const e = err as { code?: string; message?: string; timeline?: unknown; name?: string };
  const code = String(e?.code ?? '');
  const msg = String(e?.message ?? err);
  const timeline = e?.timeline;
  if (e?.name === 'AbortError' || /ABORT/i.test(code)) {
    return { status: 'aborted', error: new PunchSessionError('PUNCH_ABORTED', `${side}: punch aborted: ${msg}`, { side, step: 'punch', timeline, cause: err }) };
  }
  if (/REFUSED|ECONNREFUSED|RESET/i.test(code) || /refused|reset/i.test(msg)) {
    return { status: 'refused', error: new PunchSessionError('PUNCH_REFUSED', `${side}: simultaneous open refused: ${msg}`, { side, step: 'punch', timeline, cause: err }) };
  }
  if (/TIMEOUT|DEADLINE|ETIMEDOUT/i.test(code) || /timed? ?out|deadline/i.test(msg)) {
    return { status: 'timeout', error: new PunchSessionError('PUNCH_CONNECT_TIMEOUT', `${side}: no connection before the deadline: ${msg}`, { side, step: 'punch', timeline, cause: err }) };
  }
  return { status: 'error', error: new PunchSessionError('PUNCH_ENGINE', `${side}: engine failed: ${msg}`, { side, step: 'punch', timeline, cause: err }) };
}
