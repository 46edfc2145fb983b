/** `onionpunch proxy`: the B side, a SOCKS5 proxy for bitcoind's -proxy= (src/daemon/proxy.ts, docs/DAEMON.md). */
import { verbKeys } from '../config.js';
import { runDaemonVerb } from '../run-common.js';

const KEYS = verbKeys('proxy');

export async function main(args: string[]): Promise<number> {
  return runDaemonVerb(
    args,
    'proxy',
    'B side: SOCKS5 proxy for bitcoind (-proxy=); announced destinations are punched, others connected plainly.',
    KEYS,
    async (cfg, log, hooks) => {
      const { runProxy } = await import('../proxy.js');
      const code = await runProxy(cfg, log, hooks);
      // Whatever handle is left (the native engine's thread, a tor control socket) must not keep us alive.
      setTimeout(() => process.exit(code), 1000).unref();
      return code;
    },
  );
}
