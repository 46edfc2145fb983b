/**
 * The control-reply parser, keyword parsing, SAFECOOKIE hashes and the SOCKS reply mapping (pure, fast).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { ReplyParser, parseKeywords, quoteString, type TorReply } from '../../src/overlay/tor/reply.js';
import { safeCookieHashes, parseHsDesc } from '../../src/overlay/tor/control.js';
import { TorControlError, TorSocksError } from '../../src/overlay/tor/errors.js';
import { socksReplyByte, isolationCredentials } from '../../src/overlay/tor/socks.js';

const PROTOCOLINFO =
  '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/lib/tor/control_auth_cookie"\r\n' +
  '250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n';

test('parses a multi-line reply, a data block with dot-unescaping and an async event', () => {
  const p = new ReplyParser();
  const stream =
    PROTOCOLINFO +
    '650 HS_DESC UPLOADED abc UNKNOWN $AAAA\r\n' +
    '250+config-text=\r\nSocksPort 0\r\n..hidden dot\r\n.\r\n250 OK\r\n';
  const replies = p.push(Buffer.from(stream));
  assert.equal(replies.length, 3);
  assert.equal(replies[0]!.lines.length, 4);
  assert.equal(
    replies[0]!.lines[1]!.text,
    'AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/lib/tor/control_auth_cookie"',
  );
  assert.equal(replies[1]!.status, 650);
  assert.equal(replies[2]!.lines[0]!.data, 'SocksPort 0\n.hidden dot');
});

test('the same bytes give the same replies however they are split', () => {
  const stream = Buffer.from(PROTOCOLINFO + '250+x=\r\na\r\n..b\r\n.\r\n250 OK\r\n552 Unknown\r\n');
  const whole = new ReplyParser().push(stream);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 12 }), (cuts) => {
      const p = new ReplyParser();
      const pts = [0, ...cuts.sort((a, b) => a - b), stream.length];
      const got: TorReply[] = [];
      for (let i = 1; i < pts.length; i++) got.push(...p.push(stream.subarray(pts[i - 1], pts[i])));
      assert.deepEqual(got, whole);
    }),
  );
});

test('rejects malformed lines, mixed status codes and oversized lines with TOR_PROTOCOL', () => {
  for (const bad of [
    'hello\r\n',
    '25 OK\r\n',
    '250-a\r\n251 b\r\n',
    '250*x\r\n',
    '000 PROTOCOLINFO 1\r\n',
    '199 x\r\n',
    '700 x\r\n',
  ]) {
    assert.throws(
      () => new ReplyParser().push(Buffer.from(bad)),
      (e: unknown) => e instanceof TorControlError && e.code === 'TOR_PROTOCOL',
    );
  }
  const p = new ReplyParser({ maxLineBytes: 100 });
  assert.throws(() => p.push(Buffer.alloc(200, 0x41)), /longer than 100/);
  // Poisoned: later input throws too.
  assert.throws(() => p.push(Buffer.from('250 OK\r\n')), /longer than 100/);
  const q = new ReplyParser({ maxReplyBytes: 1000 });
  assert.throws(() => q.push(Buffer.from('250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n'.repeat(50))), /larger than 1000/);
});

test('random bytes never make the parser throw anything but TorControlError', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), (chunks) => {
      const p = new ReplyParser({ maxLineBytes: 256, maxReplyBytes: 2048 });
      try {
        for (const c of chunks) p.push(Buffer.from(c));
      } catch (e) {
        assert.ok(e instanceof TorControlError, String(e));
        assert.equal(e.code, 'TOR_PROTOCOL');
      }
    }),
    { numRuns: 500 },
  );
});

test('keywords: quoted strings with escapes, bare words, flags', () => {
  assert.deepEqual(parseKeywords('METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/a b/\\"c\\"\\\\d\\n"'), [
    ['METHODS', 'COOKIE,SAFECOOKIE'],
    ['COOKIEFILE', '/a b/"c"\\d\n'],
  ]);
  assert.deepEqual(parseKeywords('Tor="0.4.9.11" FLAG'), [
    ['Tor', '0.4.9.11'],
    ['FLAG', undefined],
  ]);
  assert.throws(() => parseKeywords('X="unterminated'), TorControlError);
  fc.assert(
    fc.property(fc.string(), (s) => {
      assert.deepEqual(parseKeywords('K=' + quoteString(s)), [['K', s]]);
    }),
  );
});

test('SAFECOOKIE hashes follow control-spec 3.24 (HMAC-SHA256 over cookie|client nonce|server nonce)', () => {
  const cookie = Buffer.alloc(32, 1);
  const cn = Buffer.alloc(32, 2);
  const sn = Buffer.alloc(32, 3);
  const { server, client } = safeCookieHashes(cookie, cn, sn);
  const msg = Buffer.concat([cookie, cn, sn]);
  assert.deepEqual(
    server,
    createHmac('sha256', 'Tor safe cookie authentication server-to-controller hash').update(msg).digest(),
  );
  assert.deepEqual(
    client,
    createHmac('sha256', 'Tor safe cookie authentication controller-to-server hash').update(msg).digest(),
  );
  assert.notDeepEqual(server, client);
});

test('HS_DESC events are parsed', () => {
  assert.deepEqual(parseHsDesc('HS_DESC UPLOADED abcd UNKNOWN $FFFF'), {
    action: 'UPLOADED',
    address: 'abcd',
    hsDir: '$FFFF',
  });
  assert.deepEqual(parseHsDesc('HS_DESC FAILED abcd NO_AUTH $FFFF xyz REASON=NOT_FOUND'), {
    action: 'FAILED',
    address: 'abcd',
    hsDir: '$FFFF',
    reason: 'NOT_FOUND',
  });
  assert.equal(parseHsDesc('HS_DESC X'), null);
});

test('SOCKS replies: extended onion-service errors map to typed codes', () => {
  assert.equal(socksReplyByte(Buffer.from([5, 0, 5, 0xf0, 0, 1])), 0xf0);
  assert.equal(socksReplyByte(Buffer.from([5, 2, 1, 0, 5, 0xf2, 0, 1])), 0xf2);
  assert.equal(socksReplyByte(Buffer.from([5, 2, 1, 1])), undefined);
  assert.equal(socksReplyByte(Buffer.from([4, 0])), undefined);
  const names: Record<number, string> = {
    0xf0: 'TOR_SOCKS_HS_DESC_NOT_FOUND',
    0xf1: 'TOR_SOCKS_HS_DESC_INVALID',
    0xf2: 'TOR_SOCKS_HS_INTRO_FAILED',
    0xf3: 'TOR_SOCKS_HS_REND_FAILED',
    0xf4: 'TOR_SOCKS_HS_MISSING_CLIENT_AUTH',
    0xf5: 'TOR_SOCKS_HS_BAD_CLIENT_AUTH',
    0xf6: 'TOR_SOCKS_HS_BAD_ADDRESS',
    0xf7: 'TOR_SOCKS_HS_INTRO_TIMEDOUT',
  };
  for (const [rep, code] of Object.entries(names)) {
    const e = TorSocksError.fromReply(Number(rep), 'x.onion:1');
    assert.equal(e.code, code);
    assert.equal(e.reply, Number(rep));
  }
  assert.equal(TorSocksError.fromReply(0x42, 'x').code, 'TOR_SOCKS_REPLY_42');
  assert.match(TorSocksError.fromReply(0xf0, 'x').message, /descriptor not found/);
});

test('isolation credentials differ per key and are stable', () => {
  assert.deepEqual(isolationCredentials('a'), isolationCredentials('a'));
  assert.notDeepEqual(isolationCredentials('a'), isolationCredentials('b'));
  assert.ok(isolationCredentials('x'.repeat(10000)).userId.length < 255);
});
