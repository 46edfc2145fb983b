import { OnionpunchError } from '../../errors.js';
import type { OverlaySelftestResult } from '../types.js';

/** Brings up the private tor network, creates an endpoint, dials it, runs a version handshake, tears down. */
export async function selftestTor(_opts: { log?: (line: string) => void } = {}): Promise<OverlaySelftestResult> {
  throw new OnionpunchError('OVERLAY_NOT_BUILT', 'the tor transport is not built yet');
}
