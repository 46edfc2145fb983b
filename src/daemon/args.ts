/**
 * The one command-line layer of every verb: `node:util` parseArgs underneath, a typed option table per
 * command, `--help` generated from that table, and every problem a UsageError naming the option (exit code 2).
 * The daemon verbs' flags (config.ts) go through the same scanner and keep their ConfigError codes.
 */
import { parseArgs } from 'node:util';
import { OnionpunchError, UsageError } from '../errors.js';

/** Converts one option value; throws an OnionpunchError (any subclass) when the value is bad. */
export type Parser<T> = (raw: string) => T;

/** One option of a command; build it with {@link flag}, {@link value} or {@link list}. */
export interface Option<T> {
  /** False for a flag (`--json`), true for an option with a value (`--delay 25ms`, `--delay=25ms`). */
  readonly takesValue: boolean;
  /** Shown after the name in --help, e.g. `MS`. */
  readonly metavar: string;
  readonly help: string;
  /** One-letter alias (`-j`). */
  readonly short?: string;
  /** Left out of --help (a family of options described by one line, e.g. --nat-c ... --nat-z). */
  readonly hidden?: boolean;
  /** Turns what was given (every value in order; for a flag, one empty string per use) into the value. */
  readonly finish: (given: readonly string[]) => T;
}

/** An option table: option name (without `--`) to option. */
export type Options = Record<string, Option<unknown>>;
/** The parsed values of an option table. */
export type Values<O extends Options> = { [K in keyof O]: O[K] extends Option<infer T> ? T : never };

/** A flag: true when given. */
export function flag(help: string, extra: { short?: string; hidden?: boolean } = {}): Option<boolean> {
  return { takesValue: false, metavar: '', help, ...extra, finish: (g) => g.length > 0 };
}

/** An option with one value (the last one wins when repeated); `undefined` or `dflt` when absent. */
export function value<T>(metavar: string, help: string, parse: Parser<T>): Option<T | undefined>;
export function value<T>(metavar: string, help: string, parse: Parser<T>, dflt: T): Option<T>;
export function value<T>(metavar: string, help: string, parse: Parser<T>, dflt?: T): Option<T | undefined> {
  return { takesValue: true, metavar, help, finish: (g) => (g.length === 0 ? dflt : parse(g[g.length - 1]!)) };
}

/** A repeatable option: every value, in order (empty when absent). */
export function list<T>(metavar: string, help: string, parse: Parser<T>): Option<T[]> {
  return { takesValue: true, metavar, help, finish: (g) => g.map(parse) };
}

/** A non-empty string. */
export const text: Parser<string> = (raw) => {
  if (raw === '') throw new UsageError('expected a value, got an empty string');
  return raw;
};

/**
 * A finite number in [min, max] (default: any; the command's own checks then name the range); `integer` also
 * requires a whole number.
 */
export function number(min = -Infinity, max = Infinity, integer = false): Parser<number> {
  const range = Number.isFinite(min) || Number.isFinite(max) ? ` in [${min}, ${max}]` : '';
  return (raw) => {
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new UsageError(`expected ${integer ? 'an integer' : 'a number'}${range}, got '${raw}'`);
    }
    return v;
  };
}

/** A whole number in [min, max] (default: any). */
export function integer(min = -Infinity, max = Infinity): Parser<number> {
  return number(min, max, true);
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(words: readonly T[]): Parser<T> {
  return (raw) => {
    if (!(words as readonly string[]).includes(raw)) {
      throw new UsageError(`expected one of ${words.join(', ')}, got '${raw.slice(0, 64)}'`);
    }
    return raw as T;
  };
}

/** Most arguments one command line may have (far above any real use; bounds the scanner's work). */
export const MAX_ARGS = 4096;

/** One token of a scanned command line. */
export type Token =
  | { kind: 'option'; name: string; rawName: string; value: string | undefined; inline: boolean; index: number }
  | { kind: 'operand'; value: string; index: number }
  | { kind: 'terminator'; index: number };

/**
 * Scans `argv` with parseArgs (non-strict, so every problem is reported here in our words, not Node's).
 * `takesValue` says which names consume a value; an unknown name is a flag-like token for the caller to refuse.
 * A value that looks like an option (`--delay --json`) is treated as missing: `--key=--x` passes such a value.
 */
export function scan(
  argv: readonly string[],
  takesValue: Record<string, boolean>,
  shorts: Record<string, string> = {},
): Token[] {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple: true }> = {};
  for (const [name, tv] of Object.entries(takesValue)) {
    options[name] = { type: tv ? 'string' : 'boolean', multiple: true };
  }
  for (const [s, name] of Object.entries(shorts)) if (options[name]) options[name].short = s;
  if (argv.length > MAX_ARGS) throw new UsageError(`more than ${MAX_ARGS} arguments`);
  const out: Token[] = [];
  let base = 0;
  rescan: for (;;) {
    const args = argv.slice(base);
    const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
    for (const t of tokens) {
      const index = t.index + base;
      if (t.kind === 'positional') out.push({ kind: 'operand', value: t.value, index });
      else if (t.kind === 'option-terminator') out.push({ kind: 'terminator', index });
      else {
        const inline = t.inlineValue === true;
        const { name, rawName } = t;
        if (t.value !== undefined && !inline && t.value.startsWith('--')) {
          // parseArgs took the next option as this one's value: the value is missing, the next option stands.
          out.push({ kind: 'option', name, rawName, value: undefined, inline: false, index });
          base = index + 1;
          continue rescan;
        }
        out.push({ kind: 'option', name, rawName, value: t.value, inline, index });
      }
    }
    return out;
  }
}

/** A command: its option table and what --help says. */
export interface Command<O extends Options> {
  /** As typed after the program, e.g. `lab up`; may be empty for a program without verbs. */
  name: string;
  /** The program (default `onionpunch`; a script outside the CLI names itself, e.g. the benchmark). */
  program?: string;
  summary: string;
  options: O;
  /** The operands in the usage line, e.g. `HOST:PORT`, `[HEX]...`. */
  operands?: string;
  /** How many operands are allowed (default none). */
  minOperands?: number;
  maxOperands?: number;
  /**
   * Stop parsing after this many operands: what follows (or follows `--`) is passed through untouched as
   * `rest` (`lab exec NODE -- CMD...`).
   */
  passThroughAfter?: number;
  /** More help after the option list. */
  notes?: string;
}

export interface Parsed<O extends Options> {
  values: Values<O>;
  operands: string[];
  /** Arguments passed through (commands with `passThroughAfter`). */
  rest: string[];
}

/** The --help text of a command. */
export function helpText<O extends Options>(cmd: Command<O>): string {
  const usage = `usage: ${commandLine(cmd)} [options]${cmd.operands ? ` ${cmd.operands}` : ''}`;
  const lines = [usage, '', cmd.summary, '', 'options:'];
  const rows: Array<[string, string]> = [];
  for (const [name, o] of Object.entries(cmd.options)) {
    if (o.hidden) continue;
    rows.push([`${o.short ? `-${o.short}, ` : ''}--${name}${o.takesValue ? ` ${o.metavar}` : ''}`, o.help]);
  }
  rows.push(['-h, --help', 'print this help and exit']);
  const w = Math.min(26, Math.max(...rows.map(([l]) => l.length)) + 2);
  for (const [l, h] of rows) lines.push(l.length + 2 > w ? `  ${l}\n  ${' '.repeat(w)}${h}` : `  ${l.padEnd(w)}${h}`);
  if (cmd.notes) lines.push('', cmd.notes);
  return lines.join('\n') + '\n';
}

function commandLine(cmd: { name: string; program?: string }): string {
  return [cmd.program ?? 'onionpunch', cmd.name].filter(Boolean).join(' ');
}

function bad(cmd: { name: string; program?: string }, what: string): UsageError {
  return new UsageError(`${what} (see ${commandLine(cmd)} --help)`);
}

/**
 * Parses a command's arguments. Returns null after printing the help to `out` when `--help`/`-h` is given;
 * throws UsageError for an unknown option, a missing or malformed value, or a wrong number of operands.
 */
export function parseCommand<O extends Options>(
  cmd: Command<O>,
  argv: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
): Parsed<O> | null {
  const takesValue: Record<string, boolean> = { help: false };
  const shorts: Record<string, string> = { h: 'help' };
  for (const [name, o] of Object.entries(cmd.options)) {
    takesValue[name] = o.takesValue;
    if (o.short) shorts[o.short] = name;
  }
  let head = argv;
  let rest: string[] = [];
  if (cmd.passThroughAfter !== undefined) {
    // Where the pass-through part starts: at `--`, or at the operand after the first `passThroughAfter`.
    let seen = 0;
    for (const t of scan(argv, takesValue, shorts)) {
      if (t.kind === 'terminator') {
        head = argv.slice(0, t.index);
        rest = argv.slice(t.index + 1);
        break;
      }
      if (t.kind === 'operand' && seen++ === cmd.passThroughAfter) {
        head = argv.slice(0, t.index);
        rest = argv.slice(t.index);
        break;
      }
    }
  }
  const tokens = scan(head, takesValue, shorts);
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help' && t.value === undefined)) {
    out.write(helpText(cmd));
    return null;
  }
  const given = new Map<string, string[]>();
  const operands: string[] = [];
  let terminated = false;
  for (const t of tokens) {
    if (t.kind === 'terminator') terminated = true;
    else if (t.kind === 'operand' || terminated) operands.push(t.kind === 'operand' ? t.value : t.rawName);
    else {
      const o = Object.prototype.hasOwnProperty.call(cmd.options, t.name) ? cmd.options[t.name] : undefined;
      const opt = t.rawName.slice(0, 64);
      if (o === undefined || t.name === 'help') throw bad(cmd, `unknown option '${opt}${t.inline ? '=…' : ''}'`);
      if (!o.takesValue && t.value !== undefined) throw bad(cmd, `${opt} takes no value`);
      if (o.takesValue && t.value === undefined) throw bad(cmd, `${opt} needs a value (${o.metavar})`);
      const arr = given.get(t.name) ?? [];
      arr.push(t.value ?? '');
      given.set(t.name, arr);
    }
  }
  const min = cmd.minOperands ?? 0;
  const max = cmd.maxOperands ?? 0;
  if (operands.length > max) throw bad(cmd, `unexpected argument '${operands[max]!.slice(0, 64)}'`);
  if (operands.length < min) throw bad(cmd, `missing ${cmd.operands ?? 'operand'}`);
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(cmd.options)) {
    try {
      values[name] = o.finish(given.get(name) ?? []);
    } catch (err) {
      if (err instanceof OnionpunchError) throw new UsageError(`--${name}: ${err.message}`);
      throw err;
    }
  }
  return { values: values as Values<O>, operands, rest };
}

/** A verb with sub-verbs (`lab up`, `overlay selftest`). */
export interface Group {
  name: string;
  summary: string;
  subs: Record<string, { summary: string; run: (args: string[]) => Promise<number> }>;
}

/** The --help text of a group. */
export function groupHelp(g: Group): string {
  const usage = `usage: onionpunch ${g.name} <${Object.keys(g.subs).join('|')}> [options]`;
  const lines = [usage, '', g.summary, '', 'commands:'];
  for (const [name, s] of Object.entries(g.subs)) lines.push(`  ${name.padEnd(10)} ${s.summary}`);
  lines.push('', `Run \`onionpunch ${g.name} <command> --help\` for the options of one command.`);
  return lines.join('\n') + '\n';
}

/** Runs the sub-verb named by `argv[0]`; no sub-verb prints the help and gives exit code 2. */
export async function dispatch(g: Group, argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    (sub === undefined ? process.stderr : process.stdout).write(groupHelp(g));
    return sub === undefined ? 2 : 0;
  }
  const s = Object.prototype.hasOwnProperty.call(g.subs, sub) ? g.subs[sub] : undefined;
  if (s === undefined) {
    throw new UsageError(`unknown ${g.name} command '${sub.slice(0, 64)}' (want ${Object.keys(g.subs).join(', ')})`);
  }
  return s.run(rest);
}
