import { OnionpunchError } from '../../errors.js';
import type { OverlaySelftestResult } from '../types.js';

/** Brings up the private i2p network, creates an endpoint, dials it, runs a version handshake, tears down. */
export async function selftestI2p(_opts: { log?: (line: string) => void } = {}): Promise<OverlaySelftestResult> {
  throw new OnionpunchError('OVERLAY_NOT_BUILT', 'the i2p transport is not built yet');
}
