/**
 * `onionpunch natcheck-server --listen HOST:PORT [--network NET] [--json] [--verbose]`: runs the
 * NAT-check service until SIGINT/SIGTERM. With --json, prints one line `{"listening":{address,port}}`
 * once it listens (and, with --verbose, one `{"result":...}` line per client). Client-supplied text (the user
 * agent) is escaped in both forms: it must not forge lines or drive the terminal.
 */
import { UsageError, OnionpunchError } from '../../errors.js';
import {
  startNatcheckServer,
  NATCHECK_HANDSHAKE_MS,
  NATCHECK_MAX_CONNECTIONS,
  NATCHECK_PER_NETGROUP,
} from '../../nat/natcheck-server.js';
import { NETWORKS, parseEndpoint, formatEndpoint, type NetworkName } from '../../wire/index.js';
import { flag, integer, oneOf, parseCommand, text, value } from '../args.js';
import { asciiJson, escapeText } from '../log.js';

const SERVER = {
  name: 'natcheck-server',
  summary:
    'Runs the NAT-check service until SIGINT/SIGTERM: answers the Bitcoin version handshake with the\n' +
    "client's address and port in addr_recv.",
  options: {
    listen: value('HOST:PORT', 'address to listen on (IP; port 0 picks one)', text),
    network: value('NET', `${NETWORKS.join('|')} (default main)`, oneOf<NetworkName>(NETWORKS), 'main'),
    'max-connections': value(
      'N',
      `connections at once, all clients (default ${NATCHECK_MAX_CONNECTIONS})`,
      integer(1, 1_000_000),
      NATCHECK_MAX_CONNECTIONS,
    ),
    'per-netgroup': value(
      'N',
      `connections at once per netgroup (/16 IPv4, /32 IPv6; default ${NATCHECK_PER_NETGROUP})`,
      integer(1, 1_000_000),
      NATCHECK_PER_NETGROUP,
    ),
    timeout: value(
      'MS',
      `handshake timeout (default ${NATCHECK_HANDSHAKE_MS})`,
      integer(1, 3_600_000),
      NATCHECK_HANDSHAKE_MS,
    ),
    json: flag('print {"listening":{address,port}} once listening (and results with --verbose) as JSON lines'),
    verbose: flag('one line per client'),
  },
};

export async function main(args: string[]): Promise<number> {
  const p = parseCommand(SERVER, args);
  if (p === null) return 0;
  const {
    listen,
    network,
    'max-connections': maxConnections,
    'per-netgroup': perNetgroup,
    timeout,
    json,
    verbose,
  } = p.values;
  if (listen === undefined) {
    throw new UsageError('--listen HOST:PORT is required (see onionpunch natcheck-server --help)');
  }
  let ep;
  try {
    ep = parseEndpoint(listen);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (ep.kind !== 'ipv4' && ep.kind !== 'ipv6') throw new UsageError(`--listen needs an IP address, got '${ep.host}'`);

  // Under `ip netns exec ... | reader`, the reader may go away first: a broken stdout must not kill the server.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  let srv;
  try {
    srv = await startNatcheckServer({
      host: ep.host,
      port: ep.port,
      network,
      maxConnections,
      perNetgroupLimit: perNetgroup,
      handshakeTimeoutMs: timeout,
      onResult: verbose
        ? (r) => {
            if (json) process.stdout.write(asciiJson({ result: r }) + '\n');
            else {
              const what = r.ok ? `ok ${escapeText(r.userAgent ?? '')}` : escapeText(r.error ?? '');
              process.stderr.write(`${formatEndpoint(r.client.address, r.client.port)} ${what}\n`);
            }
          }
        : undefined,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const out = {
      code: e instanceof OnionpunchError ? e.code : 'NATCHECK_LISTEN',
      message: `cannot listen on ${listen}: ${e.code ?? ''} ${e.message}`.trim(),
    };
    if (json) process.stdout.write(asciiJson({ error: out }) + '\n');
    process.stderr.write(`onionpunch natcheck-server: ${escapeText(out.message)}\n`);
    return 1;
  }
  if (json) process.stdout.write(JSON.stringify({ listening: { address: srv.address, port: srv.port } }) + '\n');
  else process.stderr.write(`natcheck-server listening on ${formatEndpoint(srv.address, srv.port)} (${network})\n`);

  const signal = await new Promise<string>((resolve) => {
    const onSig = (s: string) => resolve(s);
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
  });
  await srv.close();
  if (!json) process.stderr.write(`natcheck-server: ${signal}, closed\n`);
  return 0;
}
