/**
 * Leftovers of private I2P networks whose owner process died without cleaning up (SIGKILL, a crash): every
 * network records its owner pid, namespaces and i2pd pids in `<tmp>/onionpunch-i2p-*\/owner.json`; a later
 * start removes what dead owners left. Namespace names (`op<n><hex>-i2p`) deliberately do not match the NAT
 * lab's reaper pattern, so the two never remove each other's live namespaces.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

/** Directory name prefix of networks in the temp dir. */
export const PRIVATE_I2P_DIR_PREFIX = 'onionpunch-i2p-';

/** What a running network records about itself. */
export interface PrivateI2pOwner {
  pid: number;
  netns: string[];
  i2pdPids: number[];
}

/** Writes (or rewrites) the owner record of a network directory. */
export function writeOwner(dir: string, owner: PrivateI2pOwner): void {
  writeFileSync(join(dir, 'owner.json'), JSON.stringify(owner));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isOurI2pd(pid: number, dir: string): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    return cmd.includes('i2pd') && cmd.includes(dir);
  } catch {
    return false;
  }
}

/** Removes networks whose owner is gone. Returns the directories removed. */
export function reapStalePrivateI2p(): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(PRIVATE_I2P_DIR_PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    let owner: PrivateI2pOwner;
    try {
      owner = JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf8')) as PrivateI2pOwner;
    } catch {
      continue; // being created right now, or not ours
    }
    if (!Number.isInteger(owner.pid) || alive(owner.pid)) continue;
    for (const pid of owner.i2pdPids ?? []) {
      if (Number.isInteger(pid) && isOurI2pd(pid, dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const ns of owner.netns ?? []) {
      if (!/^op[0-9]{1,4}[0-9a-f]{4}-i2p$/.test(ns)) continue;
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
