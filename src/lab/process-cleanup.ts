/**
 * The lab's one last-resort cleanup at process end: what a lab, a private Tor network or a private I2P network
 * leaves running (namespaces, tor, i2pd, temp dirs) is removed when its owner exits without stopping it — a
 * failed test, an uncaught exception, `process.exit`, or SIGINT/SIGTERM/SIGHUP.
 *
 * One module so that every owner gets the same rules, whichever tooling it started first:
 * - on 'exit', each registered `sync` step runs (newest first: what started last, inside what started first);
 * - on a signal, each `async` step runs (with `sync` as its stand-in where there is none), bounded by
 *   `SIGNAL_CLEANUP_MS`; then the process exits with 128 + the signal's number, and 'exit' runs the sync steps
 *   for whatever the async ones left. A second signal while that runs exits at once (the sync steps still run).
 * Handlers are installed on the first registration only, so code that never starts lab tooling keeps Node's
 * default signal behaviour. A SIGKILLed owner gets none of this: the reapers (`lab down --all`, the private
 * networks' own stale-owner checks, tor's __OwningControllerProcess) cover that case.
 */

/** One owner's cleanup. `sync` must be safe to run more than once and after `async`. */
export interface CleanupStep {
  /** Short name, for the message printed when a step throws. */
  readonly name: string;
  /** Blocking cleanup for the 'exit' event, where nothing asynchronous runs any more. */
  readonly sync: () => void;
  /** The gentler cleanup a signal allows (SIGTERM first, awaited); optional. */
  readonly async?: () => Promise<void>;
}

/** How long a signal's asynchronous cleanup may take before the process exits anyway. */
export const SIGNAL_CLEANUP_MS = 15_000;

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

const steps = new Set<CleanupStep>();
let installed = false;
let exiting = false;

function report(step: CleanupStep, err: unknown): void {
  // Last-resort path: nothing above us can handle the failure, and exiting must not be stopped by it.
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`onionpunch: cleanup of ${step.name} at exit failed: ${msg}\n`);
}

function runSync(): void {
  for (const step of [...steps].reverse()) {
    try {
      step.sync();
    } catch (err) {
      report(step, err);
    }
  }
}

async function runAsync(): Promise<void> {
  const jobs = [...steps].reverse().map(async (step) => {
    try {
      if (step.async) await step.async();
      else step.sync();
    } catch (err) {
      report(step, err);
    }
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, SIGNAL_CLEANUP_MS);
    timer.unref();
  });
  await Promise.race([Promise.all(jobs), deadline]);
  clearTimeout(timer);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runSync);
  for (const [sig, n] of Object.entries(SIGNALS)) {
    process.on(sig, () => {
      const code = 128 + n;
      if (exiting) process.exit(code);
      exiting = true;
      void runAsync().finally(() => process.exit(code));
    });
  }
}

/**
 * Registers `step` to run at process end (see the module comment). Returns the function that unregisters it,
 * to call once the owner has stopped what it started.
 */
export function atProcessEnd(step: CleanupStep): () => void {
  install();
  steps.add(step);
  return () => {
    steps.delete(step);
  };
}
