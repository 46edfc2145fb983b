/** Shared start-up of the long-running verbs: --help, configuration, logger, the --json ready line. */
import { CONFIG_KEYS, keyDefaultText, loadConfig, type DaemonConfig } from './config.js';
import { ConfigError } from './errors.js';
import { Logger } from './log.js';

export function helpText(verb: string, summary: string, keys: string[]): string {
  const lines = [
    `usage: onionpunch ${verb} [--conf FILE] [--key value | --key=value]...`,
    '',
    summary,
    '',
    'options (also ONIONPUNCH_<KEY> and key=value in --conf; flags > env > file > defaults):',
  ];
  for (const k of keys) {
    const spec = CONFIG_KEYS[k as keyof DaemonConfig];
    const d = keyDefaultText(spec).replace(/`/g, '');
    lines.push(`  --${k.padEnd(17)} ${spec.doc}${d === '—' ? '' : ` (default ${d})`}`);
  }
  lines.push('', 'See docs/DAEMON.md.');
  return lines.join('\n');
}

/** Runs a daemon verb; configuration errors print and give exit code 2. */
export async function runDaemonVerb(
  args: string[],
  verb: string,
  summary: string,
  keys: string[],
  run: (cfg: DaemonConfig, log: Logger, hooks: { ready: (info: Record<string, unknown>) => void }) => Promise<number>,
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(helpText(verb, summary, keys) + '\n');
    return 0;
  }
  let cfg: DaemonConfig;
  try {
    cfg = loadConfig({ args, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`onionpunch ${verb}: ${err.code}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = new Logger({ format: cfg.log, level: cfg.loglevel, base: { component: verb } });
  return run(cfg, log, {
    ready: (info) => {
      if (cfg.json) process.stdout.write(JSON.stringify(info) + '\n');
    },
  });
}
