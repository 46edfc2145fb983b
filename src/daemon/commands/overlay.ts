/**
 * `onionpunch overlay selftest [--tor] [--i2p] [--json]`: private network bring-up, endpoint, dial, handshake.
 */
import { UsageError, OnionpunchError } from '../../errors.js';
import { selftestTor } from '../../lab/tor/selftest.js';
import { selftestI2p } from '../../lab/i2p/selftest.js';
import type { OverlaySelftestResult } from '../../overlay/types.js';

export async function main(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'selftest') throw new UsageError('usage: onionpunch overlay selftest [--tor] [--i2p] [--json]');
  let tor = false;
  let i2p = false;
  let json = false;
  for (const a of rest) {
    if (a === '--tor') tor = true;
    else if (a === '--i2p') i2p = true;
    else if (a === '--json') json = true;
    else throw new UsageError(`unknown option '${a}'`);
  }
  if (!tor && !i2p) tor = i2p = true;
  const log = json ? () => {} : (line: string) => process.stderr.write(line + '\n');
  const out: Record<string, OverlaySelftestResult> = {};
  const run = async (name: string, fn: () => Promise<OverlaySelftestResult>) => {
    try {
      out[name] = await fn();
    } catch (err) {
      const e = err instanceof OnionpunchError ? err.toJSON() : { code: 'INTERNAL', message: String(err) };
      out[name] = { ok: false, bringUpMs: -1, firstConnectMs: -1, error: e };
    }
  };
  if (tor) await run('tor', () => selftestTor({ log }));
  if (i2p) await run('i2p', () => selftestI2p({ log }));
  if (json) process.stdout.write(JSON.stringify(out) + '\n');
  else for (const [k, v] of Object.entries(out)) process.stdout.write(`${k}: ${v.ok ? 'ok' : 'FAILED'} bring-up ${v.bringUpMs} ms, first connect ${v.firstConnectMs} ms${v.error ? ` (${v.error.code}: ${v.error.message})` : ''}\n`);
  return Object.values(out).every((v) => v.ok) ? 0 : 1;
}
