/**
 * `onionpunch doctor serve|proxy|relay [--conf FILE] [--key value]... [--json]`: checks the setup of one verb
 * with that verb's configuration (config.ts: the same file, environment and flags), one line per check with
 * what to fix; `--json` prints one object `{ok, role, checks: [{id, target?, status, message, fix?, code?, ms}]}`
 * (status ok, warn, fail or skip).
 * Exit code 0 when no check failed (warnings allowed), 1 when one did, 2 for a usage or configuration error.
 */
import { loadConfig, verbKeys, type DaemonConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { helpText } from '../run-common.js';

const ROLES = ['serve', 'proxy', 'relay'] as const;
type Role = (typeof ROLES)[number];

const CHECKS = [
  'tor-control   serve, overlay=tor: torcontrol reachable, authenticating as serve does (torpassword or',
  '              SAFECOOKIE), tor bootstrapped',
  "tor-socks     proxy, overlay=tor: proxy is tor's SOCKS5 port (tor-onion: the same for onion= when it differs)",
  'sam           overlay=i2p, or proxy with i2psam= set: the SAM bridge answers HELLO 3.1',
  'relay         each announce= (serve), peer= (proxy) or addnode= (relay): a P2P version handshake with sendaddrv2',
  'nat           serve, proxy: the EIM check through natcheck= (default: the relays); eim passes, edm fails',
  'zerortt       serve, zerortt=1: EIM verdict, a warm punch port whose observed mapping is what serve announces',
  '              (prediction and externalip= agree with it); with zerortt=0 a skip line',
  "bitcoind-p2p  serve, handoff=splice: the node's P2P port (bitcoind=) completes a version handshake",
  "handoff       serve, handoff=unix:PATH: the receiver's socket exists",
  'proxy-listen  proxy: listen= answers SOCKS5 (onionpunch proxy running; a warning when not)',
  "node-rpc      proxy (maxpunchpeers > 0 or an rpc* key set): the node's JSON-RPC answers getnetworkinfo with",
  '              rpcuser/rpcpassword or the cookie',
  'node-proxy    the same: the node sends ipv4 and ipv6 peers to listen= (bcoin does not report it: a warning)',
];

function usage(): string {
  return [
    'usage: onionpunch doctor serve|proxy|relay [--conf FILE] [--key value | --key=value]... [--json]',
    '',
    'Checks the setup of one daemon verb with its configuration (the same --conf file, ONIONPUNCH_<KEY>',
    'environment and flags as that verb) and says what to fix, one line per check. Nothing is changed anywhere.',
    'Exit code 0: no check failed (warnings allowed); 1: a check failed; 2: usage or configuration error.',
    '',
    'checks:',
    ...CHECKS.map((l) => `  ${l}`),
    '',
    '  --json           one JSON object on stdout: {ok, role, checks: [{id, target, status, message, fix, code, ms}]}',
    '  -h, --help       this help; `onionpunch doctor ROLE --help` lists the keys ROLE reads',
    '',
    'See docs/DAEMON.md ("Checking the setup").',
  ].join('\n');
}

export async function main(args: string[]): Promise<number> {
  const [role, ...rest] = args;
  if (role === undefined || role === '--help' || role === '-h') {
    (role === undefined ? process.stderr : process.stdout).write(usage() + '\n');
    return role === undefined ? 2 : 0;
  }
  if (!(ROLES as readonly string[]).includes(role)) {
    const shown = role.slice(0, 64);
    const what = role.startsWith('-') ? `unexpected option '${shown}' before the role` : `unknown role '${shown}'`;
    process.stderr.write(`onionpunch doctor: ${what} (onionpunch doctor serve|proxy|relay [options])\n`);
    return 2;
  }
  const r = role as Role;
  if (rest.includes('--help') || rest.includes('-h')) {
    const summary = `Checks the setup of \`onionpunch ${r}\` with its configuration (-h, --help: this help).`;
    process.stdout.write(helpText(`doctor ${r}`, summary, verbKeys(r)) + '\n');
    return 0;
  }
  let cfg: DaemonConfig & { sources: Record<string, string> };
  try {
    cfg = loadConfig({ args: rest, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`onionpunch doctor: ${err.code}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const { runDoctor, formatCheck } = await import('../doctor.js');
  const checks = await runDoctor(cfg, r);
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  const skipped = checks.filter((c) => c.status === 'skip').length;
  if (cfg.json) {
    process.stdout.write(JSON.stringify({ ok: failed === 0, role: r, checks }) + '\n');
  } else {
    const conf = cfg.conf !== undefined ? `, conf ${cfg.conf}` : '';
    process.stdout.write(`onionpunch doctor ${r} (network ${cfg.network}, overlay ${cfg.overlay}${conf})\n`);
    for (const c of checks) process.stdout.write(formatCheck(c) + '\n');
    const skips = skipped > 0 ? `, ${skipped} skipped` : '';
    process.stdout.write(`${checks.length} checks: ${failed} failed, ${warned} warnings${skips}\n`);
  }
  // The native engine's thread (NAT check) must not keep the process alive after the report.
  setTimeout(() => process.exit(failed === 0 ? 0 : 1), 200).unref();
  return failed === 0 ? 0 : 1;
}
