/** `onionpunch relay`: the relay of hole-punch announcements and NAT-check service (src/daemon/relay.ts). */
import { verbKeys } from '../config.js';
import { runDaemonVerb } from '../run-common.js';

const KEYS = verbKeys('relay');

export async function main(args: string[]): Promise<number> {
  const summary =
    'Public relay: clearnet P2P responder that relays hole-punch announcements (addrv2), answers getaddr ' +
    'with the fresh ones, and answers NAT-check connections on the same port.';
  return runDaemonVerb(args, 'relay', summary, KEYS, async (cfg, log, hooks) => {
    const { runRelay } = await import('../relay.js');
    return runRelay(cfg, log, hooks);
  });
}
