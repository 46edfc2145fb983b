/**
 * A lab site's announcer for test/lab/relay-coverage.test.ts: the daemon's own {@link Announcer} (serve's
 * announcing half: P2P links with sendaddrv2 to the configured relays, an addrv2 with our announcement every
 * interval, and the relay rules between its links) without serve's Tor onion, which the relay coverage does not
 * need: the coordination endpoint announced is a syntactically valid v3 onion nobody dials.
 *
 * usage: node relay-announcer.js --peer HOST:PORT [--peer ...] --clearnet IP:PORT --interval S [--maxrelays K]
 * Writes the Announcer's JSON log lines (`announcement-sent` ...) to stdout; stops on SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Announcer } from '../../src/daemon/announce.js';
import { Logger } from '../../src/daemon/log.js';
import { AnnouncementRelay, makeAnnouncement } from '../../src/relay/index.js';
import { formatOnion } from '../../src/wire/index.js';

const { values: v } = parseArgs({
  options: {
    peer: { type: 'string', multiple: true },
    clearnet: { type: 'string' },
    interval: { type: 'string' },
    maxrelays: { type: 'string' },
  },
});
const hostPort = (s: string) => {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
};
const clear = hostPort(v.clearnet!);
const onion = formatOnion(randomBytes(32));
const log = new Logger({ format: 'json', level: 'info', write: (l) => process.stdout.write(l + '\n') });
const a = new Announcer({
  peers: (v.peer ?? []).map(hostPort),
  network: 'regtest',
  intervalMs: Number(v.interval) * 1000,
  maxLinks: v.maxrelays ? Number(v.maxrelays) : undefined,
  log,
  relay: new AnnouncementRelay(),
  announcement: () =>
    makeAnnouncement({
      coordination: onion,
      coordinationPort: 18444,
      clearnet: { address: clear.host, port: clear.port },
    }),
});
process.stdout.write(JSON.stringify({ ready: true, coordination: onion }) + '\n');
process.on('SIGTERM', () => {
  a.stop();
  process.exit(0);
});
void a.start();
