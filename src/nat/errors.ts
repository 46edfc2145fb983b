import { OnionpunchError } from '../errors.js';

/**
 * NAT-layer failures. Codes: NAT_OBSERVE_FAILED (a discovery connection failed), NAT_BUDGET (discovery
 * budget exhausted), NAT_NO_MAPPING (no method produced an endpoint), NAT_TARGET_REFUSED (address policy).
 */
export class NatError extends OnionpunchError {}
