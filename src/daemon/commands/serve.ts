/** `onionpunch serve`: the A side beside bitcoind (src/daemon/serve.ts, docs/DAEMON.md). */
import { verbKeys } from '../config.js';
import { runDaemonVerb } from '../run-common.js';

const KEYS = verbKeys('serve');

export async function main(args: string[]): Promise<number> {
  return runDaemonVerb(
    args,
    'serve',
    'A side: coordination endpoint, clearnet announcements, punched sockets spliced to bitcoind.',
    KEYS,
    async (cfg, log, hooks) => {
      const { runServe } = await import('../serve.js');
      const code = await runServe(cfg, log, hooks);
      // Whatever handle is left (the native engine's thread, a tor control socket) must not keep us alive.
      setTimeout(() => process.exit(code), 1000).unref();
      return code;
    },
  );
}
