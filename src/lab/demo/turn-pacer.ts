/**
 * Runs queued starts one per event-loop turn, so the I/O of the sessions already running is served between starts.
 *
 * A `lab stress` B worker stands in for a few hundred B nodes in one process. Its commands arrive in bursts (the
 * first K at once), and starting every session of a burst in one turn kept that process's loop busy for 0.5 s
 * (250 starts, each a socket, a connect and a write through the lab's namespaces): the replies of A to the sessions
 * started first waited behind the starts of the rest, so those sessions fired hundreds of ms late and A fell back
 * (docs/BENCHMARKS.md, session 14). Real B nodes are separate processes; one start per turn, with the poll phase
 * between, is the nearest a shared loop comes to that. The burst still reaches A at once: each start is ~2 ms.
 */
export class TurnPacer {
  private readonly queue: Array<() => void> = [];
  private scheduled = false;

  /** Starts waiting for their turn. */
  get pending(): number {
    return this.queue.length;
  }

  /** Queues `start` behind the others; it runs in a later turn (setImmediate), never synchronously. */
  push(start: () => void): void {
    this.queue.push(start);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    const start = this.queue.shift();
    // Re-armed before the start runs: a start that throws does not strand the rest of the queue.
    if (this.queue.length > 0) setImmediate(this.turn);
    else this.scheduled = false;
    start?.();
  };
}
