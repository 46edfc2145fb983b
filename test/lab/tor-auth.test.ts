/**
 * Every control-port authentication method against real tor: one small standalone tor per auth config
 * (DisableNetwork 1: no network traffic at all, it only serves its control port on loopback).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TorControlClient } from '../../src/overlay/tor/control.js';
import { TorControlError } from '../../src/overlay/tor/errors.js';
import { standaloneTor, type StandaloneTor, type StandaloneTorAuth } from '../helpers/standalone-tor.js';

type Kind = StandaloneTorAuth;
const PASSWORD = 'correct horse "battery" \\ staple';

describe('tor control-port authentication (standalone tor per auth config)', { timeout: 60_000 }, () => {
  let dir = '';
  const tors: Partial<Record<Kind, StandaloneTor>> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'op-torauth-'));
    await Promise.all(
      (['null', 'password', 'cookie'] as Kind[]).map(async (kind) => {
        tors[kind] = await standaloneTor(dir, kind, { password: PASSWORD });
      }),
    );
  });

  after(async () => {
    await Promise.all(Object.values(tors).map((t) => t.proc.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('PROTOCOLINFO works before authentication and lists each config’s methods', async () => {
    const expect: Record<Kind, string[]> = {
      null: ['NULL'],
      password: ['HASHEDPASSWORD'],
      cookie: ['COOKIE', 'SAFECOOKIE'],
    };
    for (const kind of ['null', 'password', 'cookie'] as Kind[]) {
      const c = await TorControlClient.open({ port: tors[kind]!.port });
      try {
        const info = await c.protocolInfo();
        assert.equal(info.protocolVersion, 1);
        assert.deepEqual(info.methods, expect[kind]);
        assert.match(info.torVersion ?? '', /^0\.\d+\.\d+/);
        if (kind === 'cookie') assert.equal(info.cookieFile, join(tors.cookie!.dataDir, 'control_auth_cookie'));
        // Anything but PROTOCOLINFO/AUTHENTICATE/AUTHCHALLENGE is refused before authentication.
        await assert.rejects(
          c.getInfo(['version']),
          (e: unknown) => e instanceof TorControlError && e.code === 'TOR_REPLY_514',
        );
      } finally {
        c.close();
      }
    }
  });

  test('NULL authentication', async () => {
    const c = await TorControlClient.connect({ port: tors.null!.port, auth: { method: 'NULL' } });
    try {
      const v = await c.getInfo(['version']);
      assert.match(v['version']!, /^0\.\d+/);
    } finally {
      c.close();
    }
  });

  test('HASHEDPASSWORD: right password works; wrong: TOR_AUTH_FAILED; none: TOR_AUTH_PASSWORD_REQUIRED', async () => {
    const port = tors.password!.port;
    const c = await TorControlClient.connect({ port, auth: { password: PASSWORD } });
    assert.ok((await c.getInfo(['version']))['version']);
    c.close();
    await assert.rejects(
      TorControlClient.connect({ port, auth: { password: 'wrong' } }),
      (e: unknown) => e instanceof TorControlError && e.code === 'TOR_AUTH_FAILED',
    );
    await assert.rejects(
      TorControlClient.connect({ port, auth: {} }),
      (e: unknown) => e instanceof TorControlError && e.code === 'TOR_AUTH_PASSWORD_REQUIRED',
    );
  });

  test('plain COOKIE is never used, even with real tor offering it: TOR_AUTH_UNSAFE_METHOD', async () => {
    const port = tors.cookie!.port;
    // The method is gone from the type; a JavaScript caller may still pass it.
    const cookie = 'COOKIE' as unknown as 'SAFECOOKIE';
    await assert.rejects(
      TorControlClient.connect({ port, auth: { method: cookie } }),
      (e: unknown) => e instanceof TorControlError && e.code === 'TOR_AUTH_UNSAFE_METHOD',
    );
    await assert.rejects(
      TorControlClient.connect({ port, auth: { method: 'SAFECOOKIE', cookieFile: join(dir, 'missing') } }),
      (e: unknown) => e instanceof TorControlError && e.code === 'TOR_COOKIE_UNREADABLE',
    );
    const long = join(dir, 'long-cookie');
    await writeFile(long, randomBytes(33));
    await assert.rejects(
      TorControlClient.connect({ port, auth: { method: 'SAFECOOKIE', cookieFile: long } }),
      (e: unknown) => e instanceof TorControlError && e.code === 'TOR_COOKIE_BAD_SIZE',
    );
  });

  test('SAFECOOKIE: the HMAC exchange with the real tor succeeds (also what auto picks); a wrong cookie fails the server-hash check', async () => {
    const port = tors.cookie!.port;
    const c = await TorControlClient.connect({ port, auth: { method: 'SAFECOOKIE' } });
    assert.ok((await c.getInfo(['version']))['version']);
    c.close();
    const auto = await TorControlClient.connect({ port });
    assert.ok((await auto.getInfo(['version']))['version']);
    auto.close();
    const fake = join(dir, 'fake-cookie2');
    await writeFile(fake, randomBytes(32));
    await assert.rejects(
      TorControlClient.connect({ port, auth: { method: 'SAFECOOKIE', cookieFile: fake } }),
      (e: unknown) => e instanceof TorControlError && e.code === 'TOR_AUTH_SERVER_HASH',
    );
  });
});
