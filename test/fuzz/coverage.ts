/**
 * Coverage feedback from V8's own block coverage (the inspector's Profiler domain, in-process): the same
 * counters `node --experimental-test-coverage` and c8 read. Precise coverage is started before the code under
 * test is loaded, so every function of it is compiled with block counters. `take()` returns the counters
 * since the last take and resets them, which is how a batch of inputs is measured.
 *
 * A "feature" is a function or a block of a script under dist/src/ that ran. V8 reports a block range only
 * where its count differs from the enclosing range, so a block is known covered either from a range with a
 * count > 0, or because a range once reported with count 0 is no longer reported as 0 while its function
 * ran. That second rule can report a block as new once more than needed (a harmless extra corpus entry).
 */
import { Session } from 'node:inspector';

interface Range {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface FunctionCoverage {
  functionName: string;
  ranges: Range[];
  isBlockCoverage: boolean;
}
interface ScriptCoverage {
  scriptId: string;
  url: string;
  functions: FunctionCoverage[];
}

/** The raw result of one take, filtered to the scripts under test. */
export type CoverageSample = ScriptCoverage[];

export class CoverageTracker {
  private readonly session = new Session();
  private readonly covered = new Set<string>();
  /** Zero-count ranges seen per function key (to notice them disappear). */
  private readonly zeros = new Map<string, Map<string, Range>>();

  constructor(private readonly filter: (url: string) => boolean) {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  /** Features covered so far. */
  get size(): number {
    return this.covered.size;
  }

  /** Counters since the last take (and resets them). */
  take(): CoverageSample {
    const r = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    return r.result.filter((s) => this.filter(s.url));
  }

  /** How many features of `sample` are new; with `commit` they are recorded as covered. */
  novelty(sample: CoverageSample, commit: boolean): number {
    let n = 0;
    const add = (k: string): void => {
      if (this.covered.has(k)) return;
      n++;
      if (commit) this.covered.add(k);
    };
    for (const sc of sample) {
      for (const fn of sc.functions) {
        const f = fn.ranges[0];
        if (!f) continue;
        const fkey = `${sc.url}:${f.startOffset}`;
        if (f.count === 0) continue;
        add(fkey);
        const zerosNow = new Set<string>();
        const zeroRanges: Range[] = [];
        for (let i = 1; i < fn.ranges.length; i++) {
          const r = fn.ranges[i]!;
          const k = `${fkey}:${r.startOffset}:${r.endOffset}`;
          if (r.count > 0) add(k);
          else {
            zerosNow.add(k);
            zeroRanges.push(r);
          }
        }
        let known = this.zeros.get(fkey);
        // A block once reported as not run and now absent ran, unless it lies inside a range that did not run
        // (V8 drops ranges nested in a zero-count range).
        if (known) {
          for (const [k, r] of known) {
            if (zerosNow.has(k)) continue;
            if (zeroRanges.some((z) => z.startOffset <= r.startOffset && r.endOffset <= z.endOffset)) continue;
            add(k);
          }
        }
        if (commit) {
          if (!known) this.zeros.set(fkey, (known = new Map()));
          for (const r of zeroRanges) known.set(`${fkey}:${r.startOffset}:${r.endOffset}`, r);
        }
      }
    }
    return n;
  }

  close(): void {
    try {
      this.post('Profiler.stopPreciseCoverage');
    } catch {
      // Already stopped.
    }
    this.session.disconnect();
  }

  private post(method: string, params?: object): unknown {
    // The in-thread inspector session answers synchronously: the callback has run when post() returns.
    let out: unknown;
    let err: Error | null = null;
    this.session.post(method, params ?? {}, (e, r) => {
      err = e;
      out = r;
    });
    if (err) throw err;
    return out;
  }
}
