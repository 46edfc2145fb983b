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
  parseEndpoint,
  serviceNames,
  toJSONValue,
  type NetworkName,
} from '../../wire/index.js';
import { flag, integer, oneOf, parseCommand, value } from '../args.js';

const HANDSHAKE = {
  name: 'handshake',
  summary:
    "Connects to a Bitcoin node, completes the version handshake, prints the peer's version and the\n" +
    "commands it sent before verack. HOST:PORT is clearnet (IPv6 as [ADDR]:PORT; the port defaults to the network's).",
  operands: 'HOST:PORT',
  minOperands: 1,
  maxOperands: 1,
  options: {
    network: value('NET', `${NETWORKS.join('|')} (default main)`, oneOf<NetworkName>(NETWORKS), 'main'),
    timeout: value('MS', 'handshake timeout (default 10000)', integer(1, 3_600_000), 10_000),
    json: flag('one JSON object on stdout'),
  },
};

export async function main(args: string[]): Promise<number> {
  const p = parseCommand(HANDSHAKE, args);
  if (p === null) return 0;
  const { network, timeout, json } = p.values;
  const target = p.operands[0]!;
  let ep;
  try {
    ep = parseEndpoint(target, DEFAULT_PORT[network]);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (ep.kind === 'torv3' || ep.kind === 'i2p')
    throw new UsageError('handshake dials clearnet TCP only; .onion / .i2p need the overlay');

  try {
    const {
      peer,
      version: v,
      receivedBeforeVerack,
      elapsedMs,
    } = await connectPeer({
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
