/**
 * Waiting for a lab helper process (a delay line, the echo service, a NAT-check server) to say it is up: the
 * one copy of the "marker on stdout, else a timeout or its exit" plumbing lab.ts and observe.ts share.
 */
import type { ChildProcess } from 'node:child_process';
import { LabError } from '../errors.js';

/** How {@link untilReady} names the process and how long it waits. */
export interface ReadyOptions {
  /** The process as errors name it, e.g. `echo server on h1`. */
  what: string;
  /** Text on stdout that means "up" (it may arrive split over chunks). */
  marker: string;
  timeoutMs: number;
  /** At most this many characters of stderr in the exit error (default: all of it). */
  stderrChars?: number;
}

/**
 * Resolves once `child` prints `marker` on stdout. Rejects with LAB_TIMEOUT (`<what> did not start`) after
 * `timeoutMs`, or LAB_COMMAND_FAILED (`<what> exited (<code>): <stderr>`) if it exits first. Only its own
 * listeners are removed when it settles: others on the child (the lab's bookkeeping of its children) stay.
 */
export function untilReady(child: ChildProcess, o: ReadyOptions): Promise<void> {
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise<void>((resolve, reject) => {
    let out = '';
    const settle = (e?: LabError): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (e) reject(e);
      else resolve();
    };
    const onData = (d: string): void => {
      out += d;
      if (out.includes(o.marker)) settle();
    };
    const onExit = (code: number | null): void => {
      const text = o.stderrChars === undefined ? err.trim() : err.trim().slice(0, o.stderrChars);
      settle(new LabError('LAB_COMMAND_FAILED', `${o.what} exited (${code}): ${text}`));
    };
    const timer = setTimeout(() => settle(new LabError('LAB_TIMEOUT', `${o.what} did not start`)), o.timeoutMs);
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.on('exit', onExit);
  });
}
