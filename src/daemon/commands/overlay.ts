/**
 * `onionpunch overlay selftest [--tor] [--i2p] [--json]`: private network bring-up, endpoint, dial, handshake.
 */
import { OnionpunchError } from '../../errors.js';
import { dispatch, flag, parseCommand } from '../args.js';
import type { OverlaySelftestResult } from '../../overlay/types.js';
import type { ProgressSink } from '../../lab/progress.js';

const SELFTEST = {
  name: 'overlay selftest',
  summary:
    'Brings up a private Tor and/or I2P network on this host, publishes a coordination endpoint, dials it\n' +
    'and runs a handshake over it; prints bring-up and first-connect times. Needs root (installs tor/i2pd with\n' +
    'apt-get on Debian/Ubuntu when missing).',
  options: {
    tor: flag('Tor only'),
    i2p: flag('I2P only'),
    'no-install': flag('do not install missing packages (apt-get); print the command and stop'),
    json: flag('one JSON object'),
  },
};

async function selftest(args: string[]): Promise<number> {
  const p = parseCommand(SELFTEST, args);
  if (p === null) return 0;
  let { tor, i2p } = p.values;
  const json = p.values.json;
  if (!tor && !i2p) tor = i2p = true;
  const { ensurePrereqs } = await import('../../lab/prereqs.js');
  const needs = [...(tor ? ['tor' as const] : []), ...(i2p ? ['i2p' as const] : [])];
  await ensurePrereqs(needs, { what: 'onionpunch overlay selftest', install: !p.values['no-install'] });
  const { selftestTor } = await import('../../lab/tor/selftest.js');
  const { selftestI2p } = await import('../../lab/i2p/selftest.js');
  const { Progress } = await import('../../lab/progress.js');
  const out: Record<string, OverlaySelftestResult> = {};
  type Run = (log: (line: string) => void, progress?: ProgressSink) => Promise<OverlaySelftestResult>;
  const run = async (name: string, fn: Run) => {
    // On a terminal: a bring-up bar with the log lines above it; otherwise the log lines as before.
    const bar = !json && process.stderr.isTTY ? new Progress({ label: `${name} bring-up` }) : undefined;
    const log = json
      ? () => {}
      : bar
        ? (line: string) => bar.log(line)
        : (line: string) => process.stderr.write(line + '\n');
    try {
      out[name] = await fn(log, bar);
    } catch (err) {
      const e = err instanceof OnionpunchError ? err.toJSON() : { code: 'INTERNAL', message: String(err) };
      out[name] = { ok: false, bringUpMs: -1, firstConnectMs: -1, error: e };
    } finally {
      bar?.finish();
    }
  };
  if (tor) await run('tor', (log, progress) => selftestTor({ log, ...(progress ? { progress } : {}) }));
  if (i2p) await run('i2p', (log, progress) => selftestI2p({ log, ...(progress ? { progress } : {}) }));
  if (json) process.stdout.write(JSON.stringify(out) + '\n');
  else
    for (const [k, v] of Object.entries(out))
      process.stdout.write(
        `${k}: ${v.ok ? 'ok' : 'FAILED'} bring-up ${v.bringUpMs} ms, first connect ${v.firstConnectMs} ms` +
          `${v.error ? ` (${v.error.code}: ${v.error.message})` : ''}\n`,
      );
  return Object.values(out).every((v) => v.ok) ? 0 : 1;
}

export async function main(args: string[]): Promise<number> {
  return dispatch(
    {
      name: 'overlay',
      summary: 'The Tor/I2P coordination transports.',
      subs: { selftest: { summary: 'private network, endpoint, dial, handshake', run: selftest } },
    },
    args,
  );
}
