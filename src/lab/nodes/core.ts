/**
 * A thin adapter running Bitcoin Core as the lab node instead of bcoin, when the `BITCOIND` environment variable
 * names a `bitcoind` binary (never needed in CI; Core has no Debian package and is not installed here). The same
 * flow then runs Core on both sides: regtest, a temporary datadir, P2P and RPC on loopback inside the site's
 * namespace, B with `-proxy=` to onionpunch's proxy and nothing else. RPC calls from the parent go through a
 * short `node` process inside the namespace (the node's RPC listens on the namespace's loopback only).
 * Mining uses `generatetodescriptor` with an anyone-can-spend `raw(51)` output (no wallet needed).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeInfo, NodePeer, Spawner } from './bcoin.js';
import type { BcoinWorkerConfig } from './bcoin-worker.js';
import { LabNodeError } from '../errors.js';

/** Runs argv in the node's namespace and gives its output. */
export type Exec = (argv: string[]) => Promise<{ code: number | null; stdout: string; stderr: string }>;

/** The bitcoind binary named by `BITCOIND`, if any. */
export function bitcoindBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const b = env['BITCOIND'];
  return b !== undefined && b !== '' ? b : undefined;
}

const RPC_SCRIPT = `
const [host, port, pass, method, params] = process.argv.slice(1);
fetch('http://' + host + ':' + port + '/', { method: 'POST', signal: AbortSignal.timeout(20000),
  headers: {
    authorization: 'Basic ' + Buffer.from('lab:' + pass).toString('base64'),
    'content-type': 'application/json',
  },
  body: JSON.stringify({ jsonrpc: '1.0', id: 1, method, params: JSON.parse(params) }) })
  .then((r) => r.text())
  .then((t) => process.stdout.write(t), (e) => { process.stderr.write(String(e)); process.exit(1); });
`;

/** Bitcoin Core as a {@link import('./flow.js').LabNode}. */
export class CoreProcess {
  readonly tips: Array<{ height: number; hash: string; at: number }> = [];

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    private readonly cfg: BcoinWorkerConfig,
    private readonly exec: Exec,
    private readonly dir: string,
  ) {}

  static async start(name: string, cfg: BcoinWorkerConfig, o: { spawner: Spawner; exec: Exec }): Promise<CoreProcess> {
    const bin = bitcoindBinary();
    if (!bin) throw new LabNodeError('LAB_NODE_FAILED', 'BITCOIND is not set');
    const dir = mkdtempSync(join(tmpdir(), `onionpunch-core-${name}-`));
    const args = [
      bin,
      '-regtest',
      `-datadir=${dir}`,
      '-server=1',
      '-listen=1',
      `-bind=${cfg.host}:${cfg.port}`,
      `-rpcbind=${cfg.rpcHost}`,
      `-rpcallowip=${cfg.rpcHost}`,
      `-rpcport=${cfg.rpcPort}`,
      '-rpcuser=lab',
      `-rpcpassword=${cfg.apiKey}`,
      '-dnsseed=0',
      '-fixedseeds=0',
      '-discover=0',
      '-listenonion=0',
      '-upnp=0',
      '-natpmp=0',
      '-printtoconsole=0',
      // Core >= 30 also takes -proxy=HOST:PORT=ipv4 / =ipv6 (PR #32425); the plain form works in every version.
      ...(cfg.proxy ? [`-proxy=${cfg.proxy}`] : []),
    ];
    const child = o.spawner(args);
    const p = new CoreProcess(name, child, cfg, o.exec, dir);
    const t0 = Date.now();
    for (;;) {
      try {
        await p.call('getblockcount');
        return p;
      } catch (err) {
        if (child.exitCode !== null || Date.now() - t0 > 60_000) {
          p.kill();
          throw new LabNodeError('LAB_NODE_FAILED', `${name}: bitcoind did not start: ${(err as Error).message}`, {
            cause: err,
          });
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async call<T>(method: string, params: unknown[] = []): Promise<T> {
    const r = await this.exec([
      process.execPath,
      '-e',
      RPC_SCRIPT,
      this.cfg.rpcHost,
      String(this.cfg.rpcPort),
      this.cfg.apiKey,
      method,
      JSON.stringify(params),
    ]);
    if (r.code !== 0) throw new LabNodeError('LAB_NODE_FAILED', `${method}: ${r.stderr.trim().slice(0, 200)}`);
    const j = JSON.parse(r.stdout) as { result: T; error: { message?: string } | null };
    if (j.error) throw new LabNodeError('LAB_NODE_FAILED', `${method}: ${j.error.message ?? 'error'}`);
    return j.result;
  }

  async info(): Promise<NodeInfo> {
    const [height, hash, peers] = await Promise.all([
      this.call<number>('getblockcount'),
      this.call<string>('getbestblockhash'),
      this.call<NodePeer[]>('getpeerinfo'),
    ]);
    return {
      height,
      hash,
      peers: peers.map((x) => ({ addr: x.addr, inbound: x.inbound, version: x.version, subver: x.subver })),
    };
  }

  async mine(n: number): Promise<{ height: number; hash: string }> {
    const { descriptor } = await this.call<{ descriptor: string }>('getdescriptorinfo', ['raw(51)']);
    await this.call('generatetodescriptor', [n, descriptor]);
    const i = await this.info();
    return { height: i.height, hash: i.hash };
  }

  /** getblockcount. */
  height(): Promise<number> {
    return this.call<number>('getblockcount');
  }

  async waitForHeight(height: number, timeoutMs: number): Promise<{ height: number; hash: string; at: number }> {
    const t0 = Date.now();
    for (;;) {
      const h = await this.call<number>('getblockcount').catch(() => -1);
      if (h >= height) {
        const t = { height: h, hash: await this.call<string>('getbestblockhash'), at: Date.now() };
        this.tips.push(t);
        return t;
      }
      if (Date.now() - t0 > timeoutMs) {
        throw new LabNodeError('LAB_TIMEOUT', `${this.name}: height ${height} not reached in ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    await this.call('stop').catch(() => undefined);
    const t = setTimeout(() => this.kill(), 10_000);
    if (this.child.exitCode === null) await new Promise((r) => this.child.once('exit', r));
    clearTimeout(t);
    rmSync(this.dir, { recursive: true, force: true });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
