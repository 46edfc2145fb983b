/**
 * TypeScript mirrors of the C++ enums the addon hands over as numbers (native/engine.h, native/sock.h). The
 * index of a name is the C++ value. test/native/enums.test.ts compares every table with the one the addon
 * exports (`enums`), so a value added on one side only fails the suite instead of mislabelling outcomes.
 */

/** `onionpunch::Status`: how a plan ended. */
export const ENGINE_STATUS = [
  'established',
  'timeout',
  'aborted',
  'refused',
  'unreachable',
  'bind-error',
  'socket-error',
  'stopped',
  'loop-failed',
] as const;
export type EngineStatusName = (typeof ENGINE_STATUS)[number];

/** `onionpunch::EventKind`: one timeline row's kind. */
export const EVENT_KIND = [
  'syn',
  'prime',
  'rst',
  'icmp',
  'error',
  'timeout',
  'established',
  'abort',
  'stall',
  'nudge',
  'ack-probe',
] as const;

/** `onionpunch::Syscall`: the call behind a failure ('' = none). Node's `syscall` spelling. */
export const SYSCALL = [
  '',
  'socket',
  'setsockopt',
  'bind',
  'connect',
  'getsockname',
  'getpeername',
  'epoll_ctl',
  'epoll_create1',
  'timerfd_create',
  'eventfd',
  'epoll_wait',
  'sendmsg',
  'splice',
  'pipe2',
  'shutdown',
  'fcntl',
  'write',
  'dup',
] as const;
export type SyscallName = (typeof SYSCALL)[number];

/** `onionpunch::Profile`: the SYN profile of a plan. */
export const PROFILE = ['plain', 'prime'] as const;

/** `onionpunch::PortMode`: where a plan's attempts leave from (one shared port, or one port each). */
export const PORT_MODE = ['shared', 'distinct'] as const;
export type PortModeName = (typeof PORT_MODE)[number];

/** `onionpunch::SpliceEnd`: how a kernel bridge (native/splice.h) ended. */
export const SPLICE_END = ['done', 'idle', 'error', 'closed', 'stopped'] as const;
export type SpliceEndName = (typeof SPLICE_END)[number];

/** `onionpunch::NudgeMode`: which handshaking attempts a peer's stall report re-sends (`Engine::nudge`). */
export const NUDGE_MODE = ['any', 'recv-only', 'sent-only'] as const;
export type NudgeModeName = (typeof NUDGE_MODE)[number];

/** Every mirrored table by the name the addon's `enums` export uses. */
export const NATIVE_ENUMS = {
  status: ENGINE_STATUS,
  eventKind: EVENT_KIND,
  syscall: SYSCALL,
  profile: PROFILE,
  portMode: PORT_MODE,
  spliceEnd: SPLICE_END,
  nudgeMode: NUDGE_MODE,
} as const;

/** The name of a C++ enum value, or `fallback` for a value outside the table. */
export function enumName<T extends readonly string[]>(table: T, value: number, fallback: T[number]): T[number] {
  return Number.isInteger(value) && value >= 0 && value < table.length ? table[value]! : fallback;
}
