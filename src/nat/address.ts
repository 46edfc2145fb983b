/**
 * The target policy: is this an address a punch may target? Only public unicast addresses are acceptable on the
 * real network; the lab uses ranges that never leave a machine (198.18.0.0/15, 100.64.0.0/10, 10.0.0.0/8,
 * fd00::/8) and those are allowed only when the caller sets `allowLab`. The classification itself is the address
 * module's (`classifyAddress` in src/ip.ts), re-exported here for the policy's importers.
 */
import { classifyAddress } from '../ip.js';
import { OnionpunchError } from '../errors.js';

export { classifyAddress, type AddressClass, type AddressKind } from '../ip.js';

export interface TargetPolicy {
  /** Accept the lab's ranges (never on a real network). */
  allowLab?: boolean;
  /** Accept loopback targets: both ends on one machine (the daemon key `loopback`; never on a real network). */
  allowLoopback?: boolean;
}

/** A target address refused by policy; code NAT_TARGET_REFUSED. */
export class AddressPolicyError extends OnionpunchError {
  constructor(message: string) {
    super('NAT_TARGET_REFUSED', message);
  }
}

/** True when `addr` may be a punch target under `policy`. */
export function isAllowedTarget(addr: string, policy: TargetPolicy = {}): boolean {
  const k = classifyAddress(addr);
  if (k.kind === 'public') return true;
  if (policy.allowLoopback === true && k.kind === 'loopback') return true;
  return policy.allowLab === true && k.labRange;
}

/** Throws AddressPolicyError (NAT_TARGET_REFUSED) unless `addr` may be a punch target. */
export function assertAllowedTarget(addr: string, policy: TargetPolicy = {}): void {
  if (isAllowedTarget(addr, policy)) return;
  const k = classifyAddress(addr);
  const hint = k.labRange && !policy.allowLab ? ' (a lab range: allowed only with the lab flag)' : '';
  throw new AddressPolicyError(`refusing target ${addr}: ${k.kind} address is not public unicast${hint}`);
}
