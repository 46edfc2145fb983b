/**
 * Lab state files: one JSON file per lab under /run/onionpunch-lab/, written BEFORE any namespace exists and
 * removed after the last one is gone, so every lab namespace can be traced to its owner. The stale-lab reaper
 * (`lab down --all`) removes every lab whose owner process is gone (or detached), plus namespaces that match
 * the lab name pattern but have no state file.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabPlan } from './spec.js';

export const STATE_DIR = process.env.ONIONPUNCH_LAB_STATE_DIR ?? '/run/onionpunch-lab';

export interface LabState {
  prefix: string;
  /** Process that owns the lab (null: detached, e.g. made by `onionpunch lab up`). */
  ownerPid: number | null;
  /** Start time of the owner (clock ticks since boot, /proc/PID/stat field 22) to detect pid reuse. */
  ownerStart: string | null;
  createdAt: string;
  namespaces: string[];
  /** Helper processes (delay lines) the lab started, killed on down. */
  helperPids: number[];
  plan: LabPlan;
}

export function stateFile(prefix: string): string {
  return join(STATE_DIR, `${prefix.replace(/-$/, '')}.json`);
}

export function writeState(state: LabState): void {
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
  const file = stateFile(state.prefix);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, file);
}

export function removeState(prefix: string): void {
  rmSync(stateFile(prefix), { force: true });
}

export function readAllStates(): LabState[] {
  let names: string[];
  try {
    names = readdirSync(STATE_DIR);
  } catch {
    return [];
  }
  const out: LabState[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    try {
      const s = JSON.parse(readFileSync(join(STATE_DIR, n), 'utf8')) as LabState;
      if (typeof s.prefix === 'string' && Array.isArray(s.namespaces)) out.push(s);
    } catch {
      // a half-written or foreign file: ignore
    }
  }
  return out;
}

/** Start time of a process (field 22 of /proc/PID/stat), or null if it does not exist. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null; // fields after "comm": state is field 3, starttime field 22
  } catch {
    return null;
  }
}

/** True if the lab's owner process is still alive (same pid AND same start time). */
export function ownerAlive(s: LabState): boolean {
  if (s.ownerPid === null) return false;
  const start = processStart(s.ownerPid);
  return start !== null && (s.ownerStart === null || start === s.ownerStart);
}
