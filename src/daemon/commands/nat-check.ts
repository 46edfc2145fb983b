/**
 * `onionpunch nat-check --peer HOST:PORT --peer HOST:PORT [--local-port N] [--local-address A] [--network NET]
 *  [--timeout MS] [--json]`: the EIM check. Two connections from one local port (SO_REUSEADDR/SO_REUSEPORT)
 * to two different peers; each reports our address in its version message (addr_recv). Same address and
 * port from both → `eim` (port-preserving when it equals the local port), different ports → `edm`.
 * JSON: {mapping, portPreserving, publicAddress, localPort, observed: [{peer, address, port}], reason?}.
 */
import { UsageError } from '../../errors.js';
import { parseEndpoint, type Endpoint } from '../../nat/types.js';

const HELP = `usage: onionpunch nat-check --peer HOST:PORT --peer HOST:PORT [options]

Classifies this host's NAT mapping (EIM check) by connecting from one local port to two peers
(NAT-check servers or Bitcoin nodes that fill addr_recv) and comparing what each reports.

options:
  --peer HOST:PORT     a peer to ask (twice, different peers; IPv6 as [ADDR]:PORT)
  --local-port N       local port to use (default: a free one)
  --local-address A    local address to bind (default: 0.0.0.0, or :: for IPv6 peers)
  --network NET        main|testnet3|testnet4|signet|regtest (magic bytes; default main)
  --timeout MS         per-connection timeout (default 5000)
  --json               one JSON object on stdout
`;

export async function main(args: string[]): Promise<number> {
  const peers: Endpoint[] = [];
  let localPort = 0;
  let localAddress: string | undefined;
  let network = 'main';
  let timeoutMs = 5000;
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const val = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return 0;
      case '--peer': {
        const v = val();
        const e = parseEndpoint(v);
        if (!e) throw new UsageError(`--peer: expected HOST:PORT or [IPv6]:PORT, got '${v}'`);
        peers.push(e);
        break;
      }
      case '--local-port': {
        const v = Number(val());
        if (!Number.isInteger(v) || v < 0 || v > 65535) throw new UsageError('--local-port: expected 0..65535');
        localPort = v;
        break;
      }
      case '--local-address':
        localAddress = val();
        break;
      case '--network':
        network = val();
        break;
      case '--timeout': {
        const v = Number(val());
        if (!Number.isFinite(v) || v <= 0) throw new UsageError('--timeout: expected milliseconds > 0');
        timeoutMs = v;
        break;
      }
      case '--json':
        json = true;
        break;
      default:
        throw new UsageError(`unknown option '${a}' (see --help)`);
    }
  }
  if (peers.length < 2) throw new UsageError('give two --peer options (two different peers)');
  const { isNetworkName } = await import('../../wire/index.js');
  if (!isNetworkName(network)) throw new UsageError(`--network: unknown network '${network}'`);
  const { probeBind } = await import('../../native/engine.js');
  const { eimCheck } = await import('../../nat/eim-check.js');
  const { nativeObserver } = await import('../../nat/observe.js');
  const v6 = peers[0]!.address.includes(':');
  const local = probeBind({ address: localAddress ?? (v6 ? '::' : '0.0.0.0'), port: localPort });
  const v = await eimCheck({ local, peers, observe: nativeObserver({ network }), timeoutMs });
  const out = {
    mapping: v.mapping,
    portPreserving: v.portPreserving,
    ...(v.publicAddress !== undefined ? { publicAddress: v.publicAddress } : {}),
    localPort: v.localPort,
    observed: v.observed.map((o) => ({ peer: o.peer, address: o.address, port: o.port })),
    ...(v.reason ? { reason: v.reason } : {}),
  };
  if (json) process.stdout.write(JSON.stringify(out) + '\n');
  else {
    process.stdout.write(`mapping: ${v.mapping}${v.mapping === 'eim' ? (v.portPreserving ? ' (port-preserving)' : ' (port-translating)') : ''}\n`);
    process.stdout.write(`local port: ${v.localPort}\n`);
    for (const o of v.observed) process.stdout.write(`  ${o.peer} sees us as ${o.address.includes(':') ? `[${o.address}]` : o.address}:${o.port}\n`);
    if (v.reason) process.stdout.write(`reason: ${v.reason}\n`);
  }
  return v.mapping === 'unknown' ? 1 : 0;
}
