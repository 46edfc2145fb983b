/**
 * Lab and namespace tests need root. As root (CI) they must run; elsewhere they skip with the reason.
 */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Options for node:test's `test()`/`describe()` that skip with a reason when not root. */
export function needsRoot(what: string): { skip: string | false } {
  return { skip: isRoot ? false : `needs root (${what}); run as root to include it` };
}
