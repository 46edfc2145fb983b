/**
 * Network namespaces for the engine tests and benchmark (root only). No namespace gets a route out; names
 * carry a per-instance prefix so parallel runs never clash; `destroy()` removes everything (safe twice).
 */
import { execFileSync } from 'node:child_process';

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });
}

export function uniquePrefix(): string {
  return `op${process.pid % 10000}${Math.floor(Math.random() * 1296).toString(36)}`;
}

export interface NsPair {
  a: string;
  b: string;
  addrA: string;
  addrB: string;
  destroy(): void;
}

/**
 * Two namespaces joined by a veth pair, 10.201.0.1/24 (a) and 10.201.0.2/24 (b), nothing else, no route out.
 * `dropNewSynIn` per side: an nft input rule that silently drops unsolicited inbound SYNs (a stateful
 * firewall / NAT that drops instead of answering with a RST).
 */
export function makeNsPair(opts: { dropNewSynInA?: boolean; dropNewSynInB?: boolean } = {}): NsPair {
  const p = uniquePrefix();
  const a = `${p}-a`;
  const b = `${p}-b`;
  const pair: NsPair = {
    a,
    b,
    addrA: '10.201.0.1',
    addrB: '10.201.0.2',
    destroy() {
      for (const ns of [a, b]) {
        try {
          sh('ip', ['netns', 'del', ns]);
        } catch {
          /* already gone */
        }
      }
    },
  };
  try {
    sh('ip', ['netns', 'add', a]);
    sh('ip', ['netns', 'add', b]);
    sh('ip', ['link', 'add', `${p}a0`, 'netns', a, 'type', 'veth', 'peer', 'name', `${p}b0`, 'netns', b]);
    sh('ip', ['-n', a, 'addr', 'add', '10.201.0.1/24', 'dev', `${p}a0`]);
    sh('ip', ['-n', b, 'addr', 'add', '10.201.0.2/24', 'dev', `${p}b0`]);
    for (const [ns, dev] of [
      [a, `${p}a0`],
      [b, `${p}b0`],
    ] as const) {
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    if (opts.dropNewSynInA) dropNewSynIn(a);
    if (opts.dropNewSynInB) dropNewSynIn(b);
  } catch (err) {
    pair.destroy();
    throw err;
  }
  return pair;
}

/** nft: drop inbound TCP SYNs that start a new connection (conntrack state new). */
export function dropNewSynIn(ns: string): void {
  sh(
    'ip',
    ['netns', 'exec', ns, 'nft', '-f', '-'],
    'table inet opdrop {\n chain input {\n  type filter hook input priority 0; policy accept;\n' +
      '  tcp flags & (syn | ack) == syn ct state new drop\n }\n}\n',
  );
}

/** nft: drop every inbound TCP SYN (a black hole for connects, even those answering our own SYNs). */
export function dropAllSynIn(ns: string): void {
  sh(
    'ip',
    ['netns', 'exec', ns, 'nft', '-f', '-'],
    'table inet opdrop {\n chain input {\n  type filter hook input priority 0; policy accept;\n' +
      '  tcp flags & (syn | ack) == syn drop\n }\n}\n',
  );
}

/** Runs a command inside a namespace. */
export function nsExec(ns: string, cmd: string, args: string[], input?: string): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

export interface NsRouted extends NsPair {
  router: string;
}

/**
 * Two namespaces a (10.202.1.2) and b (10.202.2.2) on two links through a forwarding router namespace
 * (10.202.1.1 / 10.202.2.1): one hop in between, so a TTL-1 SYN dies at the router with an ICMP time
 * exceeded. Only the two /24 routes, nothing out. Optional nft drop of unsolicited inbound SYNs per side.
 * `family: 6`: the same with fd00:202:1::/64 and fd00:202:2::/64 (hop limit, ICMPv6).
 */
export function makeRoutedPair(
  opts: { dropNewSynInA?: boolean; dropNewSynInB?: boolean; family?: 4 | 6 } = {},
): NsRouted {
  const p = uniquePrefix();
  const a = `${p}-a`;
  const b = `${p}-b`;
  const router = `${p}-r`;
  const v6 = opts.family === 6;
  const pair: NsRouted = {
    a,
    b,
    router,
    addrA: v6 ? 'fd00:202:1::2' : '10.202.1.2',
    addrB: v6 ? 'fd00:202:2::2' : '10.202.2.2',
    destroy() {
      for (const ns of [a, b, router]) {
        try {
          sh('ip', ['netns', 'del', ns]);
        } catch {
          /* already gone */
        }
      }
    },
  };
  try {
    for (const ns of [a, b, router]) {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    sh('ip', ['link', 'add', `${p}a0`, 'netns', a, 'type', 'veth', 'peer', 'name', `${p}ra`, 'netns', router]);
    sh('ip', ['link', 'add', `${p}b0`, 'netns', b, 'type', 'veth', 'peer', 'name', `${p}rb`, 'netns', router]);
    const addr: [string, string, string][] = v6
      ? [
          [a, `${p}a0`, 'fd00:202:1::2/64'],
          [router, `${p}ra`, 'fd00:202:1::1/64'],
          [b, `${p}b0`, 'fd00:202:2::2/64'],
          [router, `${p}rb`, 'fd00:202:2::1/64'],
        ]
      : [
          [a, `${p}a0`, '10.202.1.2/24'],
          [router, `${p}ra`, '10.202.1.1/24'],
          [b, `${p}b0`, '10.202.2.2/24'],
          [router, `${p}rb`, '10.202.2.1/24'],
        ];
    for (const [ns, dev, cidr] of addr) {
      // nodad: usable at once, no duplicate address detection wait.
      sh('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', dev, ...(v6 ? ['nodad'] : [])]);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    if (v6) {
      sh('ip', ['-n', a, '-6', 'route', 'add', 'fd00:202:2::/64', 'via', 'fd00:202:1::1']);
      sh('ip', ['-n', b, '-6', 'route', 'add', 'fd00:202:1::/64', 'via', 'fd00:202:2::1']);
      nsExec(router, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
      // The prime's ICMPv6 time exceeded must not be eaten by the router's rate limits: the per-peer one (1 per
      // second) and, with an empty ratemask, the host-wide credit that other namespaces' ICMP also draws on.
      nsExec(router, 'sysctl', ['-q', '-w', 'net.ipv6.icmp.ratelimit=0']);
      nsExec(router, 'sysctl', ['-q', '-w', 'net.ipv6.icmp.ratemask=']);
    } else {
      sh('ip', ['-n', a, 'route', 'add', '10.202.2.0/24', 'via', '10.202.1.1']);
      sh('ip', ['-n', b, 'route', 'add', '10.202.1.0/24', 'via', '10.202.2.1']);
      nsExec(router, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
      // The same for the prime's ICMP time exceeded (seen missing under load): no type is rate limited.
      nsExec(router, 'sysctl', ['-q', '-w', 'net.ipv4.icmp_ratemask=0']);
    }
    if (opts.dropNewSynInA) dropNewSynIn(a);
    if (opts.dropNewSynInB) dropNewSynIn(b);
  } catch (err) {
    pair.destroy();
    throw err;
  }
  return pair;
}
