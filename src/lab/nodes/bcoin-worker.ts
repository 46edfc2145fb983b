/**
 * A real Bitcoin full node for the lab: bcoin 1.0.2 (npm, a devDependency; a node in JavaScript that we did not
 * write) on regtest with a memory database, as a child process (inside a lab namespace, or on loopback for unit
 * tests), driven over JSON lines (jsonl.ts). Its JSON-RPC server listens on `rpc` with basic auth (any user,
 * the password `apiKey`), as bitcoind's rpcuser/rpcpassword do; `proxy` makes every outbound P2P connection
 * go through that SOCKS5 proxy (bitcoind's -proxy).
 *
 * Messages: `ready` {p2p, rpc}; `tip` {height, hash} on every new tip; `peer-open`/`peer-close` {addr, inbound};
 * `info` {height, hash, peers} on `{"cmd":"info"}`; `mined` {height, hash} on `{"cmd":"mine","n":N}`;
 * `fatal` {code, message}. `{"cmd":"quit"}` closes the node and exits.
 */
import { createInterface } from 'node:readline';
import { emit } from '../demo/jsonl.js';

/** Configuration of a bcoin worker (its first argv, JSON). */
export interface BcoinWorkerConfig {
  /** P2P listen address (listening on; `port` 0 is not supported by bcoin: pick one). */
  host: string;
  port: number;
  /** JSON-RPC (bcoin's HTTP server) listen address. */
  rpcHost: string;
  rpcPort: number;
  /** The RPC password (bcoin's API key). */
  apiKey: string;
  /** SOCKS5 proxy `host:port` for outbound P2P connections. */
  proxy?: string;
  /** Blocks to mine at start, before `ready`. */
  mine?: number;
}

/** The small part of bcoin's API the worker uses (bcoin ships no types). */
interface BcoinPeer {
  hostname(): string;
  outbound: boolean;
}
interface BcoinNode {
  open(): Promise<void>;
  connect(): Promise<void>;
  startSync(): void;
  close(): Promise<void>;
  chain: {
    tip: { height: number; hash: string | Buffer };
    height: number;
    add(b: unknown): Promise<unknown>;
    on(ev: string, f: (...a: unknown[]) => void): void;
  };
  miner: { mineBlock(tip: unknown): Promise<unknown> };
  pool: {
    on(ev: string, f: (...a: unknown[]) => void): void;
    peers: { head(): (BcoinPeer & { next: unknown }) | null };
  };
  on(ev: string, f: (...a: unknown[]) => void): void;
}

function hashHex(h: string | Buffer): string {
  // bcoin 1.0.2 keeps hashes as hex strings of the internal byte order (later versions as Buffers); RPC and
  // bitcoind show them reversed.
  return Buffer.from(typeof h === 'string' ? Buffer.from(h, 'hex') : h)
    .reverse()
    .toString('hex');
}

function fail(err: unknown): never {
  const e = err as { code?: string; message?: string };
  emit('fatal', { code: e.code ?? 'LAB_NODE_FAILED', message: e.message ?? String(err) });
  process.exit(1);
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as BcoinWorkerConfig;
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  // By name through a variable: bcoin is a devDependency of the lab, not of the library.
  const name = 'bcoin';
  const bcoin = (await import(name)) as {
    default?: { FullNode: new (o: unknown) => BcoinNode };
    FullNode?: new (o: unknown) => BcoinNode;
  };
  const FullNode = bcoin.FullNode ?? bcoin.default!.FullNode;
  const node = new FullNode({
    network: 'regtest',
    memory: true,
    workers: false,
    logLevel: 'none',
    listen: true,
    host: cfg.host,
    port: cfg.port,
    'http-host': cfg.rpcHost,
    'http-port': cfg.rpcPort,
    apiKey: cfg.apiKey,
    ...(cfg.proxy ? { proxy: cfg.proxy } : {}),
  });
  node.on('error', () => undefined); // bcoin reports peer misbehaviour here; it is not fatal to the node
  await node.open();
  await node.connect();
  node.startSync();
  for (let i = 0; i < (cfg.mine ?? 0); i++) await node.chain.add(await node.miner.mineBlock(node.chain.tip));
  const tip = (): { height: number; hash: string } => ({
    height: node.chain.tip.height,
    hash: hashHex(node.chain.tip.hash),
  });
  node.chain.on('tip', () => emit('tip', tip()));
  node.pool.on('peer open', (p) =>
    emit('peer-open', { addr: (p as BcoinPeer).hostname(), inbound: !(p as BcoinPeer).outbound }),
  );
  node.pool.on('peer close', (p) =>
    emit('peer-close', { addr: (p as BcoinPeer).hostname(), inbound: !(p as BcoinPeer).outbound }),
  );
  emit('ready', { p2p: `${cfg.host}:${cfg.port}`, rpc: `${cfg.rpcHost}:${cfg.rpcPort}`, ...tip() });
  const auth = `Basic ${Buffer.from(`lab:${cfg.apiKey}`).toString('base64')}`;
  const rpcUrl = `http://${cfg.rpcHost.includes(':') ? `[${cfg.rpcHost}]` : cfg.rpcHost}:${cfg.rpcPort}/`;
  const rpc = async <T>(method: string, params: unknown[] = []): Promise<T> => {
    const r = await fetch(rpcUrl, {
      method: 'POST',
      headers: { authorization: auth },
      body: JSON.stringify({ method, params, id: 1 }),
      signal: AbortSignal.timeout(10_000),
    });
    const j = (await r.json()) as { result: T; error: { message?: string } | null };
    if (j.error) throw new Error(`${method}: ${j.error.message ?? 'error'}`);
    return j.result;
  };
  const rl = createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  const handle = async (c: { cmd?: string; n?: number }): Promise<void> => {
    if (c.cmd === 'quit') {
      await node.close().catch(() => undefined);
      process.exit(0);
    }
    if (c.cmd === 'mine') {
      for (let i = 0; i < Math.min(Math.max(Number(c.n) || 0, 0), 1000); i++) {
        await node.chain.add(await node.miner.mineBlock(node.chain.tip));
      }
      emit('mined', tip());
    }
    if (c.cmd === 'info') {
      // Through the node's own JSON-RPC server, as the proxy and an operator see it.
      const peers =
        await rpc<Array<{ addr: string; inbound: boolean; version: number; subver: string }>>('getpeerinfo');
      emit('info', {
        ...tip(),
        peers: peers.map((p) => ({ addr: p.addr, inbound: p.inbound, version: p.version, subver: p.subver })),
      });
    }
  };
  rl.on('line', (line) => {
    let c: { cmd?: string; n?: number };
    try {
      c = JSON.parse(line) as { cmd?: string; n?: number };
    } catch {
      return;
    }
    chain = chain.then(() => handle(c)).catch(fail);
  });
  rl.on('close', () => {
    void node
      .close()
      .catch(() => undefined)
      .finally(() => process.exit(0));
  });
}

main().catch(fail);
