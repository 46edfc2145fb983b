/**
 * One fuzz target in a worker thread: starts V8 block coverage, then loads the code under test (so it is
 * compiled with counters), replays the seed corpus, and mutates corpus inputs in batches. After each batch
 * the coverage counters are read once; a batch that covered something new is bisected to the input(s) that
 * did, and those join the corpus. Before each execution the input is copied into shared memory and a
 * heartbeat bumped, so the main thread can name the input of a hang after it terminates this worker.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readdirSync, readFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { CoverageTracker } from './coverage.js';
import { Rng, mutate } from './mutate.js';

export interface WorkerInput {
  target: string;
  /** Stop after this many seconds (0 = no time limit). */
  seconds: number;
  /** Stop after this many executions (0 = no limit). */
  runs: number;
  seed: number;
  corpusDir: string;
  /** Where new corpus inputs are written (optional). */
  saveCorpusDir?: string;
  /** [heartbeat, input length] + input bytes. */
  shared: SharedArrayBuffer;
  /** An execution slower than this is a finding (a hang in the making). */
  slowMs: number;
  /** End at the first finding. */
  stopOnFinding?: boolean;
  /** Extra module with more targets (harness tests). */
  extraTargets?: string;
}

export interface Finding {
  kind: 'crash' | 'invariant' | 'slow' | 'hang';
  message: string;
  stack: string;
  input: string;
}

export interface WorkerReport {
  target: string;
  executions: number;
  seconds: number;
  seeds: number;
  corpus: number;
  features: number;
  findings: Finding[];
  batch: number;
  maxExecMs: number;
  heapMB: number;
}

const HEADER = 8;

async function main(): Promise<void> {
  const w = workerData as WorkerInput;
  const extraUrl = w.extraTargets ? pathToFileURL(w.extraTargets).href : undefined;
  const tracker = new CoverageTracker((url) => url.includes('/dist/src/') || url === extraUrl);
  // Loaded only now: the code under test must be compiled after coverage started.
  const mod = (await import('./targets.js')) as typeof import('./targets.js');
  let targets = mod.TARGETS;
  if (w.extraTargets)
    targets = [...targets, ...((await import(w.extraTargets)) as typeof import('./targets.js')).TARGETS];
  const t = targets.find((x) => x.name === w.target);
  if (!t) throw new Error(`unknown fuzz target ${w.target}`);
  const ctrl = new Int32Array(w.shared, 0, 2);
  const mem = new Uint8Array(w.shared, HEADER);
  const rng = new Rng(w.seed);
  const findings: Finding[] = [];
  const seen = new Set<string>();
  let executions = 0;
  let maxExecMs = 0;

  const exec = (input: Buffer): void => {
    const n = Math.min(input.length, mem.length);
    mem.set(input.subarray(0, n));
    Atomics.store(ctrl, 1, n);
    Atomics.add(ctrl, 0, 1);
    const t0 = performance.now();
    let bad: { kind: Finding['kind']; err: unknown } | undefined;
    try {
      t.run(input);
    } catch (err) {
      if (!mod.allowedError(t, err)) bad = { kind: err instanceof mod.InvariantViolation ? 'invariant' : 'crash', err };
    }
    const ms = performance.now() - t0;
    executions++;
    if (ms > maxExecMs) maxExecMs = ms;
    if (!bad && ms > w.slowMs) bad = { kind: 'slow', err: new Error(`one execution took ${ms.toFixed(0)} ms`) };
    if (bad) record(bad.kind, bad.err, input);
  };

  const record = (kind: Finding['kind'], err: unknown, input: Buffer): void => {
    const e = err instanceof Error ? err : new Error(String(err));
    const top = (e.stack ?? '').split('\n').slice(0, 3).join('|');
    const key = `${kind}:${e.constructor.name}:${top}`;
    if (seen.has(key) || findings.length >= 20) return;
    seen.add(key);
    findings.push({
      kind,
      message: `${e.constructor.name}: ${e.message}`,
      stack: e.stack ?? '',
      input: input.toString('base64'),
    });
    parentPort!.postMessage({ type: 'finding', finding: findings[findings.length - 1] });
  };

  // Seeds: each one alone, coverage committed.
  const corpus: Buffer[] = [];
  const dir = join(w.corpusDir, t.name);
  const files = existsSync(dir) ? readdirSync(dir).sort() : [];
  tracker.take();
  for (const f of files) {
    const b = readFileSync(join(dir, f)).subarray(0, t.maxLen);
    exec(b);
    tracker.novelty(tracker.take(), true);
    corpus.push(b);
  }
  if (corpus.length === 0) corpus.push(Buffer.alloc(0));
  const seeds = corpus.length;

  const save = (b: Buffer): void => {
    corpus.push(b);
    if (w.saveCorpusDir) {
      const d = join(w.saveCorpusDir, t.name);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, createHash('sha1').update(b).digest('hex').slice(0, 16)), b);
    }
  };
  const novelRun = (inputs: Buffer[]): ReturnType<CoverageTracker['take']> => {
    tracker.take();
    for (const x of inputs) exec(x);
    return tracker.take();
  };
  /** Finds and keeps the inputs of `batch` that cover something new. */
  const attribute = (batch: Buffer[]): void => {
    for (let round = 0; round < 8; round++) {
      let set = batch;
      while (set.length > 1) {
        const half = set.slice(0, set.length >> 1);
        set = tracker.novelty(novelRun(half), false) > 0 ? half : set.slice(set.length >> 1);
      }
      const one = novelRun(set);
      if (tracker.novelty(one, false) === 0) break;
      tracker.novelty(one, true);
      save(set[0]!);
      if (tracker.novelty(novelRun(batch), false) === 0) return;
    }
    // What is left is new only in combination (e.g. a cache filled by an earlier input): record it as covered.
    tracker.novelty(novelRun(batch), true);
  };

  const ctx = { rng, maxLen: t.maxLen, dict: t.dict ?? [], other: () => rng.pick(corpus) };
  const start = performance.now();
  let batchSize = 256;
  let lastReport = start;
  tracker.take();
  for (;;) {
    const elapsed = (performance.now() - start) / 1000;
    if (w.seconds > 0 && elapsed >= w.seconds) break;
    if (w.runs > 0 && executions >= w.runs) break;
    if (w.stopOnFinding && findings.length > 0) break;
    const n = w.runs > 0 ? Math.min(batchSize, Math.max(1, w.runs - executions)) : batchSize;
    const batch: Buffer[] = [];
    const b0 = performance.now();
    for (let i = 0; i < n; i++) {
      // Prefer recent corpus entries a little: they are the frontier.
      const parent = rng.chance(0.3)
        ? corpus[corpus.length - 1 - rng.below(Math.min(16, corpus.length))]!
        : rng.pick(corpus);
      let x = mutate(parent, ctx);
      if (t.fixup && rng.chance(0.5)) x = t.fixup(x);
      exec(x);
      batch.push(x);
    }
    const b1 = performance.now();
    const sample = tracker.take();
    const b2 = performance.now();
    if (tracker.novelty(sample, false) > 0) attribute(batch);
    // Keep the coverage read at about a tenth of the time spent executing.
    const runMs = b1 - b0;
    const takeMs = b2 - b1;
    if (runMs < takeMs * 10) batchSize = Math.min(50_000, batchSize * 2);
    else if (runMs > takeMs * 40 && batchSize > 64) batchSize = batchSize >> 1;
    if (b2 - lastReport > 1000) {
      lastReport = b2;
      parentPort!.postMessage({ type: 'progress', executions, corpus: corpus.length, features: tracker.size });
    }
  }
  const report: WorkerReport = {
    target: t.name,
    executions,
    seconds: (performance.now() - start) / 1000,
    seeds,
    corpus: corpus.length,
    features: tracker.size,
    findings,
    batch: batchSize,
    maxExecMs,
    heapMB: process.memoryUsage().heapUsed / 1048576,
  };
  t.close?.();
  tracker.close();
  parentPort!.postMessage({ type: 'done', report });
}

main().catch((err: unknown) => {
  parentPort!.postMessage({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
});
