/**
 * The `onionpunch` command. Each verb lives in its own module under `commands/`, loaded only when used,
 * so a verb's heavy imports (the native addon, the lab) never slow down the others.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OnionpunchError, UsageError } from '../errors.js';
import { escapeText } from './log.js';

/** A verb implementation: gets the arguments after the verb, returns the process exit code. */
export type CommandMain = (args: string[]) => Promise<number>;

interface VerbSpec {
  module: string;
  summary: string;
}

const VERBS: Record<string, VerbSpec> = {
  demo: { module: './commands/demo.js', summary: 'two-site NAT lab + private Tor/I2P, punch, handshake, timeline' },
  handshake: { module: './commands/handshake.js', summary: 'connect to a Bitcoin node, print its version' },
  decode: { module: './commands/decode.js', summary: 'decode framed P2P messages from hex (arg or stdin)' },
  lab: { module: './commands/lab.js', summary: 'NAT lab: up, down, status, exec, selftest, matrix' },
  overlay: { module: './commands/overlay.js', summary: 'Tor/I2P coordination transports: selftest' },
  'nat-check': { module: './commands/nat-check.js', summary: 'classify the NAT (EIM check) against two peers' },
  'natcheck-server': { module: './commands/natcheck-server.js', summary: 'run the NAT-check service' },
  serve: { module: './commands/serve.js', summary: 'A side: coordination endpoint, announce, accept punches' },
  proxy: { module: './commands/proxy.js', summary: 'B side: SOCKS5 proxy for bitcoind that punches' },
  relay: { module: './commands/relay.js', summary: 'public relay of announcements and NAT-check service' },
  doctor: { module: './commands/doctor.js', summary: 'check a serve/proxy/relay setup: tor, SAM, relays, NAT, node' },
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
    (verb === undefined ? process.stderr : process.stdout).write(usage() + '\n');
    return verb === undefined ? 2 : 0;
  }
  const spec = Object.prototype.hasOwnProperty.call(VERBS, verb) ? VERBS[verb] : undefined;
  if (spec === undefined) {
    process.stderr.write(`onionpunch: unknown command '${verb}'\n\n${usage()}\n`);
    return 2;
  }
  // A verb's module may be left out of a build; decided by the file, not by an import error's words.
  if (!existsSync(fileURLToPath(new URL(spec.module, import.meta.url)))) {
    process.stderr.write(`onionpunch: command '${verb}' is not available in this build\n`);
    return 2;
  }
  const mod = (await import(spec.module)) as { main?: CommandMain };
  if (typeof mod.main !== 'function') throw new Error(`command module for '${verb}' has no main()`);
  try {
    return await mod.main(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`onionpunch ${verb}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof OnionpunchError) {
      // The message may quote a peer (an opreject reason, a user agent): escaped, it cannot drive the terminal.
      process.stderr.write(`onionpunch ${verb}: ${err.code}: ${escapeText(err.message)}\n`);
      return 1;
    }
    throw err;
  }
}
