/**
 * `onionpunch handshake HOST:PORT [--network NET] [--json] [--timeout MS]`: connect to a Bitcoin node,
 * complete the version handshake, print the peer's version and the commands it sent before verack.
 */
import { UsageError, OnionpunchError } from '../../errors.js';
import { connectPeer } from '../../peer/index.js';
import { asciiJson, escapeText } from '../log.js';
import {
  DEFAULT_PORT,
  NETWORKS,
  isNetworkName,
  parseEndpoint,
  serviceNames,
  toJSONValue,
  type NetworkName,
} from '../../wire/index.js';

const USAGE = `usage: onionpunch handshake HOST:PORT [--network ${NETWORKS.join('|')}] [--json] [--timeout MS]`;

export async function main(args: string[]): Promise<number> {
  let target: string | undefined;
  let network: NetworkName = 'main';
  let json = false;
  let timeout = 10_000;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      return 0;
    } else if (a === '--json') json = true;
    else if (a === '--network') {
      const n = args[++i];
      if (n === undefined || !isNetworkName(n)) throw new UsageError(`--network needs one of ${NETWORKS.join(', ')}`);
      network = n;
    } else if (a === '--timeout') {
      const t = Number(args[++i]);
      if (!Number.isInteger(t) || t <= 0) throw new UsageError('--timeout needs a positive number of milliseconds');
      timeout = t;
    } else if (a.startsWith('--')) throw new UsageError(`unknown option '${a}'\n${USAGE}`);
    else if (target === undefined) target = a;
    else throw new UsageError(`unexpected argument '${a}'\n${USAGE}`);
  }
  if (target === undefined) throw new UsageError(USAGE);
  let ep;
  try {
    ep = parseEndpoint(target, DEFAULT_PORT[network]);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (ep.kind === 'torv3' || ep.kind === 'i2p') throw new UsageError('handshake dials clearnet TCP only; .onion / .i2p need the overlay');

  try {
    const { peer, version: v, receivedBeforeVerack, elapsedMs } = await connectPeer({
      host: ep.host,
      port: ep.port,
      network,
      handshakeTimeoutMs: timeout,
    });
    peer.close();
    const out = {
      peer: { host: ep.host, port: ep.port },
      network,
      version: v.version,
      services: toJSONValue(v.services),
      serviceNames: serviceNames(v.services),
      userAgent: v.userAgent,
      startHeight: v.startHeight,
      relay: v.relay ?? true,
      relayPresent: v.relay !== undefined,
      timestamp: toJSONValue(v.timestamp),
      nonce: toJSONValue(v.nonce),
      addrRecv: { address: v.addrRecv.address, port: v.addrRecv.port },
      addrFrom: { address: v.addrFrom.address, port: v.addrFrom.port },
      receivedBeforeVerack,
      elapsedMs,
    };
    if (json) process.stdout.write(asciiJson(out) + '\n');
    else {
      process.stdout.write(
        [
          `peer          ${target} (${network})`,
          `version       ${out.version}`,
          `services      ${v.services} [${out.serviceNames.join(', ')}]`,
          `user agent    ${escapeText(out.userAgent)}`,
          `start height  ${out.startHeight}`,
          `relay         ${out.relay}${out.relayPresent ? '' : ' (absent)'}`,
          `addr_recv     ${out.addrRecv.address} port ${out.addrRecv.port} (how the peer sees us)`,
          `before verack ${receivedBeforeVerack.join(', ')}`,
          `handshake     ${elapsedMs} ms`,
        ].join('\n') + '\n',
      );
    }
    return 0;
  } catch (err) {
    const e = err instanceof OnionpunchError ? err.toJSON() : { code: 'INTERNAL', message: String(err) };
    if (json) process.stdout.write(asciiJson({ peer: { host: ep.host, port: ep.port }, network, error: e }) + '\n');
    process.stderr.write(`onionpunch handshake: ${target}: ${e.code}: ${escapeText(e.message)}\n`);
    return 1;
  }
}
