/**
 * `onionpunch nat-check --peer HOST:PORT --peer HOST:PORT [--local-port N] [--local-address A] [--network NET]
 *  [--timeout MS] [--json]`: the EIM check. Two connections from one local port (SO_REUSEADDR/SO_REUSEPORT)
 * to two different peers; each reports our address in its version message (addr_recv). Same address and
 * port from both → `eim` (port-preserving when it equals the local port), different ports → `edm`.
 * edm: `--spread N` (default 8) more connections from fresh local ports measure the port spread.
 * JSON: {mapping, portPreserving, publicAddress, localPort, observed: [{peer, address, port}], publicIpStable,
 * portSpread?: {ports, min, max, observedRange, estimatedRange, narrow, probeLow, probeHigh},
 * spreadObserved?: [{peer, address, port, localPort}], reason?}.
 */
import { UsageError } from '../../errors.js';
import { flag, integer, list, number, parseCommand, text, value } from '../args.js';
import { parseEndpoint, type Endpoint } from '../../nat/types.js';

function peer(raw: string): Endpoint {
  const e = parseEndpoint(raw);
  if (!e) throw new UsageError(`expected HOST:PORT or [IPv6]:PORT, got '${raw.slice(0, 64)}'`);
  return e;
}

const NAT_CHECK = {
  name: 'nat-check',
  summary:
    "Classifies this host's NAT mapping (EIM check) by connecting from one local port to two peers\n" +
    '(NAT-check servers or Bitcoin nodes that fill addr_recv) and comparing what each reports.',
  options: {
    peer: list('HOST:PORT', 'a peer to ask (twice, different peers; IPv6 as [ADDR]:PORT)', peer),
    'local-port': value('N', 'local port to use (default: a free one)', integer(0, 65535), 0),
    'local-address': value('A', 'local address to bind (default: 0.0.0.0, or :: for IPv6 peers)', text),
    network: value('NET', 'main|testnet3|testnet4|signet|regtest (magic bytes; default main)', text, 'main'),
    timeout: value('MS', 'per-connection timeout (default 5000)', number(1, 600_000), 5000),
    spread: value(
      'N',
      'edm: N more connections from fresh local ports for the port spread (default 8)',
      integer(0, 64),
      8,
    ),
    json: flag('one JSON object on stdout'),
  },
};

export async function main(args: string[]): Promise<number> {
  const p = parseCommand(NAT_CHECK, args);
  if (p === null) return 0;
  const { peer: peers, 'local-port': localPort, 'local-address': localAddress, network, json } = p.values;
  const timeoutMs = p.values.timeout;
  if (peers.length < 2) throw new UsageError('give two --peer options (two different peers)');
  const { isNetworkName } = await import('../../wire/index.js');
  if (!isNetworkName(network)) throw new UsageError(`--network: unknown network '${network}'`);
  const { probeBind } = await import('../../native/engine.js');
  const { eimCheck } = await import('../../nat/eim-check.js');
  const { nativeObserver } = await import('../../nat/observe.js');
  const v6 = peers[0]!.address.includes(':');
  const local = probeBind({ address: localAddress ?? (v6 ? '::' : '0.0.0.0'), port: localPort });
  const spreadSamples = p.values.spread;
  const v = await eimCheck({ local, peers, observe: nativeObserver({ network }), timeoutMs, spreadSamples });
  const out = {
    mapping: v.mapping,
    portPreserving: v.portPreserving,
    ...(v.publicAddress !== undefined ? { publicAddress: v.publicAddress } : {}),
    localPort: v.localPort,
    observed: v.observed.map((o) => ({ peer: o.peer, address: o.address, port: o.port })),
    publicIpStable: v.publicIpStable,
    ...(v.portSpread ? { portSpread: v.portSpread } : {}),
    ...(v.spreadObserved ? { spreadObserved: v.spreadObserved } : {}),
    ...(v.reason ? { reason: v.reason } : {}),
  };
  if (json) process.stdout.write(JSON.stringify(out) + '\n');
  else {
    process.stdout.write(
      `mapping: ${v.mapping}` +
        `${v.mapping === 'eim' ? (v.portPreserving ? ' (port-preserving)' : ' (port-translating)') : ''}\n`,
    );
    process.stdout.write(`local port: ${v.localPort}\n`);
    for (const o of v.observed)
      process.stdout.write(
        `  ${o.peer} sees us as ${o.address.includes(':') ? `[${o.address}]` : o.address}:${o.port}\n`,
      );
    if (v.publicIpStable !== null) process.stdout.write(`public IP stable: ${v.publicIpStable ? 'yes' : 'no'}\n`);
    const sp = v.portSpread;
    if (sp) {
      process.stdout.write(
        `port spread: ${sp.min}..${sp.max} over ${sp.ports.length} samples, ` +
          `estimated range ${sp.estimatedRange} (${sp.narrow ? 'narrow: port block' : 'wide'}), ` +
          `probe ${sp.probeLow}..${sp.probeHigh}\n`,
      );
    }
    if (v.reason) process.stdout.write(`reason: ${v.reason}\n`);
  }
  return v.mapping === 'unknown' ? 1 : 0;
}
