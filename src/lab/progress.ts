/**
 * Progress of long lab work (`lab matrix`, `lab stress`, the simulator, private Tor/I2P bring-up) on stderr:
 * a bar redrawn in place when the stream is a terminal, plain lines otherwise (a log file or CI gets no escape
 * codes and no carriage returns, one line per step).
 */

/** Where progress goes: `process.stderr`, or anything with `write` (and `isTTY`/`columns` like a tty stream). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): unknown;
}

/** What long work reports to; `Progress` implements it, and a caller without a terminal may pass its own. */
export interface ProgressSink {
  /** The number of steps, once known (the bar shows a count until then). */
  setTotal(total: number): void;
  /** One more step done; `note` says which (e.g. `eim×eim (drop) #3: ok 130 ms`). */
  advance(note?: string): void;
  /** What is going on now, without a step (e.g. `tor: first consensus`); only a terminal shows it. */
  status(note: string): void;
  /** A line that stays (a pair's summary). */
  log(line: string): void;
}

export interface ProgressOptions {
  /** Leads every bar and line (e.g. `lab matrix`). */
  label: string;
  total?: number;
  stream?: ProgressStream;
  /**
   * Least time between two redraws of the bar, or two step lines without a terminal (ms; default 100 on a
   * terminal, 0 otherwise): thousands of sessions must not flood the terminal. Log lines, the last step and
   * `finish` always show.
   */
  minIntervalMs?: number;
  /** The clock (ms); for tests. */
  now?: () => number;
}

/** `1m05s`, `42s`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export interface BarState {
  label: string;
  done: number;
  total?: number;
  elapsedMs: number;
  note?: string;
}

/** The bar's text (no escape codes), at most `columns - 1` characters so the terminal never wraps it. */
export function formatBar(s: BarState, columns = 80): string {
  const max = Math.max(20, columns - 1);
  let head: string;
  if (s.total !== undefined && s.total > 0) {
    const frac = Math.min(1, s.done / s.total);
    const width = Math.max(10, Math.min(30, Math.floor(max / 4)));
    const full = Math.round(frac * width);
    const left = (s.elapsedMs / Math.max(1, s.done)) * (s.total - s.done);
    const eta = s.done > 0 && s.done < s.total ? ` eta ${formatDuration(left)}` : '';
    head =
      `${s.label} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${s.done}/${s.total} ` +
      `${Math.floor(frac * 100)}% ${formatDuration(s.elapsedMs)}${eta}`;
  } else {
    head = `${s.label} ${s.done} done ${formatDuration(s.elapsedMs)}`;
  }
  const line = s.note ? `${head}  ${s.note}` : head;
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The plain line of one step (non-terminal output). */
export function formatStep(s: BarState): string {
  const count = s.total !== undefined ? `${s.done}/${s.total}` : `${s.done}`;
  return `${s.label} [${count}]${s.note ? ` ${s.note}` : ''}`;
}

/** Clears the current terminal line. */
const CLEAR = '\r\x1b[2K';

/** A progress bar on a terminal, plain lines elsewhere. */
export class Progress implements ProgressSink {
  private done = 0;
  private total: number | undefined;
  private note: string | undefined;
  private drawn = false;
  private lastShown = -Infinity;
  private readonly minInterval: number;
  private readonly started: number;
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  readonly tty: boolean;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.now = opts.now ?? (() => performance.now());
    this.started = this.now();
    this.total = opts.total;
    this.tty = this.stream.isTTY === true;
    this.minInterval = opts.minIntervalMs ?? (this.tty ? 100 : 0);
  }

  /** Whether a throttled update may show now (and if so, starts the next interval). */
  private due(force: boolean): boolean {
    const t = this.now();
    if (!force && t - this.lastShown < this.minInterval) return false;
    this.lastShown = t;
    return true;
  }

  private state(): BarState {
    return {
      label: this.opts.label,
      done: this.done,
      ...(this.total !== undefined ? { total: this.total } : {}),
      elapsedMs: this.now() - this.started,
      ...(this.note ? { note: this.note } : {}),
    };
  }

  private draw(force = true): void {
    if (!this.tty || !this.due(force)) return;
    // A pseudo-terminal without a size (script(1) under no terminal) reports 0 columns.
    this.stream.write(CLEAR + formatBar(this.state(), this.stream.columns || 80));
    this.drawn = true;
  }

  setTotal(total: number): void {
    this.total = total;
    this.draw(false);
  }

  advance(note?: string): void {
    this.done++;
    this.note = note;
    const last = this.total !== undefined && this.done >= this.total;
    if (this.tty) this.draw(last);
    else if (this.due(last)) this.stream.write(formatStep(this.state()) + '\n');
  }

  status(note: string): void {
    this.note = note;
    this.draw(false);
  }

  log(line: string): void {
    if (this.tty) {
      this.stream.write(CLEAR + line + '\n');
      this.draw();
    } else {
      this.stream.write(line + '\n');
    }
  }

  /** Ends the bar (a terminal keeps its last state on a line of its own). */
  finish(note?: string): void {
    this.note = note;
    if (this.tty) {
      this.draw();
      if (this.drawn) this.stream.write('\n');
    } else if (note) {
      this.stream.write(`${this.opts.label}: ${note}\n`);
    }
  }
}

/**
 * A sink that shows another's steps as status only: a sub-task (a rig's bring-up inside `lab matrix`) must not
 * change the count or total of the bar it is shown on.
 */
export function statusOnly(sink: ProgressSink): ProgressSink {
  return {
    setTotal: () => undefined,
    advance: (note) => {
      if (note) sink.status(note);
    },
    status: (note) => sink.status(note),
    log: (line) => sink.status(line),
  };
}
