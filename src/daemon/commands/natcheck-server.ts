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
import { NETWORKS, isNetworkName, parseEndpoint, formatEndpoint, type NetworkName } from '../../wire/index.js';
import { asciiJson, escapeText } from '../log.js';

const USAGE = `usage: onionpunch natcheck-server --listen HOST:PORT [--network ${NETWORKS.join('|')}]
       [--json] [--verbose] [--max-connections N (default ${NATCHECK_MAX_CONNECTIONS})] [--per-netgroup N (default ${NATCHECK_PER_NETGROUP})]
       [--timeout MS (default ${NATCHECK_HANDSHAKE_MS})]`;

export async function main(args: string[]): Promise<number> {
  let listen: string | undefined;
  let network: NetworkName = 'main';
  let json = false;
  let verbose = false;
  let maxConnections = NATCHECK_MAX_CONNECTIONS;
  let perNetgroup = NATCHECK_PER_NETGROUP;
  let timeout = NATCHECK_HANDSHAKE_MS;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const num = (name: string) => {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v <= 0) throw new UsageError(`${name} needs a positive integer`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      return 0;
    } else if (a === '--listen') listen = args[++i];
    else if (a === '--network') {
      const n = args[++i];
      if (n === undefined || !isNetworkName(n)) throw new UsageError(`--network needs one of ${NETWORKS.join(', ')}`);
      network = n;
    } else if (a === '--json') json = true;
    else if (a === '--verbose') verbose = true;
    else if (a === '--max-connections') maxConnections = num('--max-connections');
    else if (a === '--per-netgroup') perNetgroup = num('--per-netgroup');
    else if (a === '--timeout') timeout = num('--timeout');
    else throw new UsageError(`unknown argument '${a}'\n${USAGE}`);
  }
  if (!listen) throw new UsageError(USAGE);
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
    const out = { code: e instanceof OnionpunchError ? e.code : 'NATCHECK_LISTEN', message: `cannot listen on ${listen}: ${e.code ?? ''} ${e.message}`.trim() };
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
