#!/usr/bin/env node
/**
 * `npm run fuzz`: runs every fuzz target (or `--target NAME`) in its own worker thread, one after the other,
 * for `--seconds N` each (default 60) or `--runs N` executions (whichever comes first when both are given).
 * A crash (an error that is not one of the target's typed errors), a broken invariant, a slow execution or a
 * hang (no heartbeat for `--hang-ms`, default 10 s: the worker is terminated) is a finding: its input goes to
 * `fuzz-findings/<target>/` and the exit code is 1. See docs/FUZZING.md.
 *
 * Flags: --seconds N, --runs N, --target NAME (repeatable), --seed N, --save-corpus DIR, --slow-ms N,
 * --hang-ms N, --stop-on-finding, --json (one JSON summary line on stdout), --findings DIR,
 * --targets-module PATH (extra targets; harness tests).
 */
import { Worker } from 'node:worker_threads';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import type { Finding, WorkerInput, WorkerReport } from './worker.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/test/fuzz -> the repository root. */
const root = resolve(here, '..', '..', '..');
const TARGET_NAMES = ['wire-stream', 'wire-messages', 'coord-codec', 'tor-reply', 'sam-reply', 'socks5', 'config'];

interface Flags {
  seconds: number;
  runs: number;
  targets: string[];
  seed: number;
  saveCorpus: string | undefined;
  slowMs: number;
  hangMs: number;
  json: boolean;
  targetsModule: string | undefined;
  findingsDir: string;
  stopOnFinding: boolean;
}

function parseFlags(argv: string[]): Flags {
  const f: Flags = {
    seconds: -1,
    runs: 0,
    targets: [],
    seed: Date.now() % 1_000_000,
    saveCorpus: undefined,
    slowMs: 1000,
    hangMs: 10_000,
    json: false,
    targetsModule: undefined,
    findingsDir: join(root, 'fuzz-findings'),
    stopOnFinding: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (): number => {
      const v = Number(val());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a number >= 0`);
      return v;
    };
    if (a === '--seconds') f.seconds = num();
    else if (a === '--runs') f.runs = num();
    else if (a === '--target') f.targets.push(val());
    else if (a === '--seed') f.seed = num();
    else if (a === '--save-corpus') f.saveCorpus = resolve(val());
    else if (a === '--slow-ms') f.slowMs = num();
    else if (a === '--hang-ms') f.hangMs = num();
    else if (a === '--json') f.json = true;
    else if (a === '--stop-on-finding') f.stopOnFinding = true;
    else if (a === '--targets-module') f.targetsModule = resolve(val());
    else if (a === '--findings') f.findingsDir = resolve(val());
    else throw new Error(`unknown flag ${a}`);
  }
  // Neither given: 60 s each. Only --runs: no time limit.
  if (f.seconds < 0) f.seconds = f.runs > 0 ? 0 : 60;
  return f;
}

function runOne(name: string, f: Flags): Promise<WorkerReport> {
  const shared = new SharedArrayBuffer(8 + 64 * 1024);
  const ctrl = new Int32Array(shared, 0, 2);
  const input: WorkerInput = {
    target: name,
    seconds: f.seconds,
    runs: f.runs,
    seed: f.seed,
    corpusDir: join(root, 'test', 'fuzz', 'corpus'),
    shared,
    slowMs: f.slowMs,
    stopOnFinding: f.stopOnFinding,
    ...(f.saveCorpus ? { saveCorpusDir: f.saveCorpus } : {}),
    ...(f.targetsModule ? { extraTargets: f.targetsModule } : {}),
  };
  const worker = new Worker(join(here, 'worker.js'), { workerData: input });
  const findings: Finding[] = [];
  const started = Date.now();
  return new Promise((res, rej) => {
    let beat = -1;
    let lastChange = Date.now();
    let settled = false;
    const finish = (r: WorkerReport | Error): void => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      if (r instanceof Error) rej(r);
      else res(r);
    };
    const watch = setInterval(() => {
      const b = Atomics.load(ctrl, 0);
      if (b !== beat) {
        beat = b;
        lastChange = Date.now();
        return;
      }
      if (Date.now() - lastChange < f.hangMs) return;
      // Stuck in one execution: the input is still in shared memory.
      const len = Atomics.load(ctrl, 1);
      const stuck = Buffer.from(new Uint8Array(shared, 8, len));
      const finding: Finding = {
        kind: 'hang',
        message: `hang: no progress for ${f.hangMs} ms`,
        stack: '',
        input: stuck.toString('base64'),
      };
      findings.push(finding);
      void worker.terminate();
      finish({
        target: name,
        executions: beat,
        seconds: (Date.now() - started) / 1000,
        seeds: 0,
        corpus: 0,
        features: 0,
        findings,
        batch: 0,
        maxExecMs: f.hangMs,
        heapMB: 0,
      });
    }, 500);
    worker.on(
      'message',
      (m: { type: string; report?: WorkerReport; finding?: Finding; message?: string; executions?: number }) => {
        if (m.type === 'finding') findings.push(m.finding!);
        else if (m.type === 'done') {
          void worker.terminate();
          finish(m.report!);
        } else if (m.type === 'error') finish(new Error(`${name}: ${m.message}`));
        else if (m.type === 'progress' && !f.json && process.stderr.isTTY)
          process.stderr.write(`\r  ${name}: ${m.executions} executions   `);
      },
    );
    worker.on('error', (e) => finish(e));
    worker.on('exit', (code) => finish(new Error(`${name}: worker exited (${code}) without a report`)));
  });
}

function saveFindings(dir: string, name: string, fs: Finding[]): string[] {
  const out: string[] = [];
  for (const x of fs) {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    const input = Buffer.from(x.input, 'base64');
    const p = join(d, `${x.kind}-${createHash('sha1').update(input).digest('hex').slice(0, 12)}`);
    writeFileSync(p, input);
    writeFileSync(`${p}.txt`, `${x.message}\n${x.stack}\n`);
    out.push(p);
  }
  return out;
}

async function main(): Promise<number> {
  const f = parseFlags(process.argv.slice(2));
  const names = f.targets.length > 0 ? f.targets : TARGET_NAMES;
  const reports: WorkerReport[] = [];
  if (!f.json) {
    const limit = [f.seconds > 0 ? `${f.seconds} s` : '', f.runs > 0 ? `${f.runs} executions` : '']
      .filter(Boolean)
      .join(' or ');
    console.log(`fuzz: ${names.length} target(s), ${limit} each, seed ${f.seed}`);
  }
  let bad = 0;
  for (const n of names) {
    const r = await runOne(n, f);
    reports.push(r);
    const rate = r.executions / r.seconds;
    const saved = saveFindings(f.findingsDir, n, r.findings);
    bad += r.findings.length;
    if (!f.json) {
      if (process.stderr.isTTY) process.stderr.write('\r');
      console.log(
        `${n.padEnd(14)} ${String(r.executions).padStart(10)} execs in ${r.seconds.toFixed(1)} s` +
          ` = ${Math.round(rate)}/s` +
          `  corpus ${r.seeds} -> ${r.corpus}  features ${r.features}  slowest ${r.maxExecMs.toFixed(1)} ms` +
          `  findings ${r.findings.length}`,
      );
      for (const [i, x] of r.findings.entries())
        console.log(`  FINDING ${x.kind}: ${x.message}\n    input: ${saved[i]}`);
    }
  }
  if (f.json) console.log(JSON.stringify({ seed: f.seed, reports }));
  return bad > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`fuzz: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
