/**
 * A standalone tor that serves only its control port on loopback (DisableNetwork 1: no network traffic at all),
 * with one authentication config: NULL, a HashedControlPassword, or CookieAuthentication. The lab tests of the
 * control port's auth and of `doctor` both start it; the caller stops `proc`.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TorProcess, freePort, pollUntil, readText, run } from '../../src/lab/tor/private-tor-process.js';

export type StandaloneTorAuth = 'null' | 'password' | 'cookie';

export interface StandaloneTor {
  port: number;
  proc: TorProcess;
  dataDir: string;
  /** Where tor writes its control cookie (kind 'cookie'). */
  cookie: string;
}

/**
 * Starts tor in `dir/<kind>` and waits until its control listener is open. `password` is needed for kind
 * 'password' (hashed with `tor --hash-password`); `name` names the process in errors. A tor that does not
 * come up is stopped before the error is thrown.
 */
export async function standaloneTor(
  dir: string,
  kind: StandaloneTorAuth,
  o: { password?: string; name?: string } = {},
): Promise<StandaloneTor> {
  const port = await freePort();
  const dataDir = join(dir, kind);
  const torrc = join(dir, `${kind}.torrc`);
  const logFile = join(dataDir, 'notice.log');
  let auth = '';
  if (kind === 'password') {
    if (o.password === undefined) throw new Error('standaloneTor: kind password needs a password');
    const hashed = (await run('tor', ['--quiet', '--hash-password', o.password])).trim().split('\n').pop()!.trim();
    auth = `HashedControlPassword ${hashed}`;
  } else if (kind === 'cookie') {
    auth = 'CookieAuthentication 1';
  }
  await writeFile(
    torrc,
    [
      `DataDirectory ${dataDir}`,
      'DisableNetwork 1',
      'SocksPort 0',
      `ControlPort 127.0.0.1:${port}`,
      'GeoIPFile ""',
      'GeoIPv6File ""',
      'RunAsDaemon 0',
      'ShutdownWaitLength 0',
      `Log notice file ${logFile}`,
      `__OwningControllerProcess ${process.pid}`,
      auth,
      '',
    ].join('\n'),
  );
  const proc = new TorProcess(o.name ?? kind, torrc, logFile);
  const opened = async () => (await readText(logFile)).includes('Opened Control listener');
  try {
    await pollUntil(`tor (${kind}) control port`, opened, [proc], 20_000);
  } catch (err) {
    await proc.stop(); // a tor that did not come up is not left to the caller, who never got its handle
    throw err;
  }
  return { port, proc, dataDir, cookie: join(dataDir, 'control_auth_cookie') };
}
