/**
 * The `onionpunch` command. Each verb lives in its own module under `commands/`, loaded only when used,
 * so a verb's heavy imports (the native addon, the lab) never slow down the others.
 */
import { OnionpunchError, UsageError } from '../errors.js';

/** A verb implementation: gets the arguments after the verb, returns the process exit code. */
export type CommandMain = (args: string[]) => Promise<number>;

interface VerbSpec {
  module: string;
  summary: string;
}

const VERBS: Record<string, VerbSpec> = {
  demo: { module: './commands/demo.js', summary: 'two-site NAT lab + private Tor, punch, handshake, timeline' },
  handshake: { module: './commands/handshake.js', summary: 'connect to a Bitcoin node, print its version' },
  decode: { module: './commands/decode.js', summary: 'decode framed P2P messages from hex (arg or stdin)' },
  lab: { module: './commands/lab.js', summary: 'NAT lab: up, down, status, exec, selftest, matrix' },
  overlay: { module: './commands/overlay.js', summary: 'Tor/I2P coordination transports: selftest' },
  'nat-check': { module: './commands/nat-check.js', summary: 'classify the NAT (EIM check) against two peers' },
  'natcheck-server': { module: './commands/natcheck-server.js', summary: 'run the NAT-check service' },
  serve: { module: './commands/serve.js', summary: 'A side: coordination endpoint, announce, accept punches' },
  proxy: { module: './commands/proxy.js', summary: 'B side: SOCKS5 proxy for bitcoind that punches' },
  sim: { module: './commands/sim.js', summary: 'simulate announcement relay at network scale (real relay code)' },
};

function usage(): string {
  const lines = ['usage: onionpunch <command> [options]', '', 'commands:'];
  for (const [name, spec] of Object.entries(VERBS)) lines.push(`  ${name.padEnd(16)} ${spec.summary}`);
  lines.push('', 'Run `onionpunch <command> --help` for the options of one command.');
  return lines.join('\n');
}

/** Entry point used by bin/onionpunch.js. Never throws: errors become a message and exit code. */
export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage() + '\n');
    return verb === undefined ? 2 : 0;
  }
  const spec = VERBS[verb];
  if (spec === undefined) {
    process.stderr.write(`onionpunch: unknown command '${verb}'\n\n${usage()}\n`);
    return 2;
  }
  let mod: { main?: CommandMain };
  try {
    mod = (await import(spec.module)) as { main?: CommandMain };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(err).includes(spec.module.slice(2))) {
      process.stderr.write(`onionpunch: command '${verb}' is not available in this build\n`);
      return 2;
    }
    throw err;
  }
  if (typeof mod.main !== 'function') throw new Error(`command module for '${verb}' has no main()`);
  try {
    return await mod.main(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`onionpunch ${verb}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof OnionpunchError) {
      process.stderr.write(`onionpunch ${verb}: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
