import { OnionpunchError } from '../errors.js';

/**
 * Errors of the NAT lab. Codes: `LAB_NOT_ROOT` (namespaces need root), `LAB_BAD_SPEC` (invalid lab spec),
 * `LAB_COMMAND_FAILED` (an `ip`/`nft`/helper command failed), `LAB_UNKNOWN_NODE` (no such site/host name),
 * `LAB_DOWN` (the lab was already taken down), `LAB_NO_DELAYLINE` (the delay-line helper is not built),
 * `LAB_TIMEOUT` (a lab step did not finish in time), `LAB_NOT_FOUND` (no lab state with that name),
 * `LAB_REPORT_LIBRARY` (a charting library the HTML report inlines is not installed), and as `lab stress`
 * session outcomes `LAB_WORKER_EXITED` (the B worker died with the session in flight) and
 * `LAB_SESSION_NO_OUTCOME` (B reported nothing within its deadlines).
 */
export class LabError extends OnionpunchError {}

/**
 * A lab Bitcoin node (src/lab/nodes/: the bcoin worker, or bitcoind through core.ts) failed. Codes:
 * `LAB_NODE_FAILED` (the worker sent a `fatal` line, an RPC to the node failed, or the node did not start),
 * `LAB_NODE_EXITED` (the node's process exited while it was awaited), `LAB_TIMEOUT` (a height was not reached
 * in time). `workerCode` is the code the worker's `fatal` line carried (e.g. `EADDRINUSE`), when it sent one.
 */
export class LabNodeError extends LabError {
  readonly workerCode: string | undefined;
  constructor(
    code: 'LAB_NODE_FAILED' | 'LAB_NODE_EXITED' | 'LAB_TIMEOUT',
    message: string,
    options?: { workerCode?: string; cause?: unknown },
  ) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.workerCode = options?.workerCode;
  }
}

/**
 * A prerequisite of the lab tooling is missing (src/lab/prereqs.ts). Codes: `LAB_PREREQ_MISSING` (a binary is
 * not installed and was not installed for us: `--no-install`, not Debian/Ubuntu, no apt-get),
 * `LAB_PREREQ_INSTALL_FAILED` (apt-get failed, or the binary is still missing after it). `packages` names
 * what to install.
 */
export class PrereqError extends LabError {
  readonly packages: readonly string[];
  constructor(code: 'LAB_PREREQ_MISSING' | 'LAB_PREREQ_INSTALL_FAILED', message: string, packages: readonly string[]) {
    super(code, message);
    this.packages = packages;
  }
}
