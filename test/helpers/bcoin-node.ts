/**
 * A bcoin 1.0.2 regtest node on loopback for unit tests (src/lab/nodes/bcoin.ts runs it in a child process),
 * with free P2P and RPC ports and a NodeRpc client already pointed at it. One helper for every test that needs
 * a real node, so that they start it the same way.
 */
import { NodeRpc } from '../../src/daemon/node-rpc.js';
import { BcoinProcess, bcoinAvailable } from '../../src/lab/nodes/bcoin.js';
import { freePort } from '../../src/lab/tor/private-tor-process.js';

/** node:test's `skip` for tests that need bcoin: false when it is installed, else the reason. */
export const bcoinSkip: string | false = bcoinAvailable() ? false : 'bcoin is not installed (npm ci)';

/** A running loopback node: the process handle plus its ports and an RPC client. */
export type LoopbackBcoin = BcoinProcess & { rpc: NodeRpc; p2pPort: number; rpcPort: number; apiKey: string };

/**
 * Starts bcoin on 127.0.0.1 (P2P and RPC on fresh ports) and waits for it to be ready; `mine` blocks are mined
 * first. `apiKey` is the RPC password (default `key-<name>`). The caller stops it (`await node.stop()`).
 */
export async function startBcoin(name: string, o: { mine?: number; apiKey?: string } = {}): Promise<LoopbackBcoin> {
  const [port, rpcPort] = [await freePort(), await freePort()];
  const apiKey = o.apiKey ?? `key-${name}`;
  const p = await BcoinProcess.start(name, {
    host: '127.0.0.1',
    port,
    rpcHost: '127.0.0.1',
    rpcPort,
    apiKey,
    mine: o.mine ?? 0,
  });
  return Object.assign(p, {
    rpc: new NodeRpc({ host: '127.0.0.1', port: rpcPort, auth: { user: 'lab', password: apiKey } }),
    p2pPort: port,
    rpcPort,
    apiKey,
  });
}
