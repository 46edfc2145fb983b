/**
 * Lab specification (what the caller asks for) and the address plan derived from it (pure, no side effects).
 *
 * Address plan (all inside the lab; no namespace has a route out):
 * - simulated internet 198.18.0.0/15 and fd00:18::/32: core1<->core2 link 198.18.0.0/24 (core1 .1, core2 .2);
 *   site i's access link 198.18.(10+i).0/24 (core .1, site WAN .2); public host j's link 198.18.(100+j).0/24
 *   (core .1, host .2); IPv6 the same with fd00:18:<link id>::/64.
 * - home LANs 10.(i+1).0.0/24 (router .1, hosts .2, .3, ...); fw6 sites also route fd00:10:(i+1)::/64.
 * - carrier NAT (cgnat sites): home router WAN 100.64.(i+1).2/24, carrier router LAN 100.64.(i+1).1.
 * Sites with an even index attach to core1, odd ones to core2; public hosts alternate core1, core2, ... so a
 * path between two sites (or a site and pub2) crosses two core routers.
 */
import { LabError } from '../errors.js';

/**
 * How a router maps outbound connections: `edm` a random port in 1024..65535 per connection, `edm-pba` a
 * random port per connection inside one 1,024-port block ({@link PBA_BLOCK}, a port-block-allocation CGNAT).
 */
export type NatKind = 'eim' | 'eim-shift' | 'edm' | 'edm-pba';
/** What a router does with an unsolicited inbound SYN (or other new inbound packet) on its WAN. */
export type InboundPolicy = 'drop' | 'rst' | 'icmp';

export const NAT_KINDS: readonly NatKind[] = ['eim', 'eim-shift', 'edm', 'edm-pba'];
/** The port block of `edm-pba` routers (inclusive): 1,024 ports, as a carrier would give one subscriber. */
export const PBA_BLOCK = { low: 40000, high: 41023 } as const;
/** True for the endpoint-dependent mappings (`edm`, `edm-pba`): hole punching needs a spray there. */
export function isEdm(kind: NatKind): boolean {
  return kind === 'edm' || kind === 'edm-pba';
}
export const INBOUND_POLICIES: readonly InboundPolicy[] = ['drop', 'rst', 'icmp'];

/** One home site: a NAT router (optionally behind a carrier NAT) and hosts behind it. */
export interface SiteSpec {
  /** Short lower-case name, e.g. `a`; namespaces are `<prefix><name>`, `<prefix><name>-router`, ... */
  name: string;
  /** Mapping behaviour of the home router. Default `eim`. */
  nat?: NatKind;
  /** Unsolicited inbound policy of the home router (input and forward chains, IPv4 and IPv6). Default `drop`. */
  inbound?: InboundPolicy;
  /** Put a carrier-grade NAT (port-preserving masquerade, drops unsolicited inbound) between home and core. */
  cgnat?: boolean;
  /** `fw6`: the site also has routed IPv6 (no NAT) behind the router's stateful firewall. */
  ipv6?: 'fw6';
  /** Hosts behind the router (default 1). The first is namespace `<name>`, the others `<name>-h2`, ... */
  hosts?: number;
  /** Per-site overrides of the lab-wide link conditions on this site's access link. */
  delayMs?: number;
  jitterMs?: number;
  lossPct?: number;
}

/** A whole lab. */
export interface LabSpec {
  sites: SiteSpec[];
  /** One-way delay added in each direction of every site's access link (ms). Default 0. */
  delayMs?: number;
  /** Uniform jitter +/- this many ms around the delay. Default 0. */
  jitterMs?: number;
  /** Packet loss in percent, applied independently in each direction of every site's access link. Default 0. */
  lossPct?: number;
  /** Keep each direction FIFO under jitter (no reordering). Default true. */
  inOrder?: boolean;
  /** Public hosts for NAT-check services (default 2, at least 2 recommended). */
  publicHosts?: number;
  /** More public hosts for other components (Tor relays, I2P routers); appended after `publicHosts`. */
  extraPublicHosts?: number;
  /** Namespace prefix; default a fresh unique `opl<pid%10000><rand>-`. */
  prefix?: string;
}

export interface HostPlan {
  /** Short name inside the lab (`a`, `a-h2`, `pub1`). */
  key: string;
  /** Network namespace name (prefix + key). */
  ns: string;
  ip: string;
  ip6?: string;
  gateway: string;
  gateway6?: string;
}

export interface RouterPlan {
  key: string;
  ns: string;
  lanIp: string;
  wanIp: string;
  lanIp6?: string;
  wanIp6?: string;
}

export interface SitePlan {
  name: string;
  index: number;
  nat: NatKind;
  inbound: InboundPolicy;
  cgnat: boolean;
  ipv6: 'fw6' | null;
  /** Which core router the site's access link attaches to (1 or 2). */
  core: 1 | 2;
  hosts: HostPlan[];
  /** The first host (`hosts[0]`). */
  host: HostPlan;
  /** The home router. For cgnat sites its WAN is the carrier LAN (100.64/10). */
  router: RouterPlan;
  /** The carrier router (cgnat sites only). */
  carrier: RouterPlan | null;
  /** The IPv4 address public hosts see this site's connections come from. */
  publicIp: string;
  lanPrefix: string;
  lanPrefix6: string | null;
  /** Access link between the site (router or carrier) and its core router. */
  link: {
    id: number;
    prefix: string;
    prefix6: string;
    coreIp: string;
    coreIp6: string;
    siteIp: string;
    siteIp6: string;
    coreIf: string;
  };
  delayMs: number;
  jitterMs: number;
  lossPct: number;
}

export interface PublicHostPlan extends HostPlan {
  ip6: string;
  gateway6: string;
  /** 1-based number (`pub1` is 1). */
  number: number;
  core: 1 | 2;
  /** True for hosts added by `extraPublicHosts`. */
  extra: boolean;
  link: { id: number; prefix: string; prefix6: string; coreIp: string; coreIp6: string; coreIf: string };
}

export interface CorePlan {
  key: 'core1' | 'core2';
  ns: string;
  /** Address on the core1<->core2 link. */
  ip: string;
  ip6: string;
}

export interface LabPlan {
  prefix: string;
  inOrder: boolean;
  cores: [CorePlan, CorePlan];
  sites: SitePlan[];
  publicHosts: PublicHostPlan[];
}

const SITE_NAME = /^[a-z][a-z0-9]{0,7}$/;
const PREFIX = /^[a-z][a-z0-9]{1,12}-$/;

function num(v: unknown, what: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new LabError('LAB_BAD_SPEC', `${what} must be a number in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

/** A fresh namespace prefix: `opl` + pid mod 10000 + 3 random base-36 chars + `-`. */
export function freshPrefix(): string {
  const rand = Math.floor(Math.random() * 36 ** 3)
    .toString(36)
    .padStart(3, '0');
  return `opl${process.pid % 10000}${rand}-`;
}

/** Pattern every lab namespace name matches (used by the stale-lab reaper). */
export const LAB_NS_PATTERN = /^(opl[0-9]{1,4}[a-z0-9]{3}-)/;

/** Validates a spec and computes the address plan. Throws `LabError('LAB_BAD_SPEC')`. */
export function planLab(spec: LabSpec): LabPlan {
  if (spec === null || typeof spec !== 'object' || !Array.isArray(spec.sites)) {
    throw new LabError('LAB_BAD_SPEC', 'spec.sites must be an array');
  }
  if (spec.sites.length > 40) throw new LabError('LAB_BAD_SPEC', 'at most 40 sites');
  const prefix = spec.prefix ?? freshPrefix();
  if (!PREFIX.test(prefix)) throw new LabError('LAB_BAD_SPEC', `bad prefix '${prefix}' (want e.g. 'opl12abc-')`);
  const delay = num(spec.delayMs, 'delayMs', 0, 10000, 0);
  const jitter = num(spec.jitterMs, 'jitterMs', 0, 10000, 0);
  const loss = num(spec.lossPct, 'lossPct', 0, 100, 0);
  const nPub = num(spec.publicHosts, 'publicHosts', 0, 40, 2);
  const nExtra = num(spec.extraPublicHosts, 'extraPublicHosts', 0, 40, 0);
  if (!Number.isInteger(nPub) || !Number.isInteger(nExtra) || nPub + nExtra > 60) {
    throw new LabError('LAB_BAD_SPEC', 'publicHosts + extraPublicHosts must be integers, at most 60 in total');
  }
  const cores: [CorePlan, CorePlan] = [
    { key: 'core1', ns: `${prefix}core1`, ip: '198.18.0.1', ip6: 'fd00:18::1' },
    { key: 'core2', ns: `${prefix}core2`, ip: '198.18.0.2', ip6: 'fd00:18::2' },
  ];
  const seen = new Set<string>();
  const sites: SitePlan[] = spec.sites.map((s, i) => {
    if (s === null || typeof s !== 'object' || typeof s.name !== 'string' || !SITE_NAME.test(s.name)) {
      throw new LabError('LAB_BAD_SPEC', `site ${i}: name must match ${SITE_NAME} (e.g. 'a')`);
    }
    if (seen.has(s.name) || /^(core|pub)[0-9]+$/.test(s.name)) {
      throw new LabError('LAB_BAD_SPEC', `site name '${s.name}' is duplicate or reserved`);
    }
    seen.add(s.name);
    const nat = s.nat ?? 'eim';
    if (!NAT_KINDS.includes(nat))
      throw new LabError('LAB_BAD_SPEC', `site ${s.name}: nat must be one of ${NAT_KINDS.join(', ')}`);
    const inbound = s.inbound ?? 'drop';
    if (!INBOUND_POLICIES.includes(inbound)) {
      throw new LabError('LAB_BAD_SPEC', `site ${s.name}: inbound must be one of ${INBOUND_POLICIES.join(', ')}`);
    }
    if (s.ipv6 !== undefined && s.ipv6 !== 'fw6')
      throw new LabError('LAB_BAD_SPEC', `site ${s.name}: ipv6 must be 'fw6'`);
    const nHosts = num(s.hosts, `site ${s.name} hosts`, 1, 20, 1);
    if (!Number.isInteger(nHosts)) throw new LabError('LAB_BAD_SPEC', `site ${s.name}: hosts must be an integer`);
    const n = i + 1;
    const linkId = 10 + i;
    const fw6 = s.ipv6 === 'fw6';
    const lanPrefix6 = fw6 ? `fd00:10:${n}::/64` : null;
    const router: RouterPlan = {
      key: `${s.name}-router`,
      ns: `${prefix}${s.name}-router`,
      lanIp: `10.${n}.0.1`,
      wanIp: s.cgnat ? `100.64.${n}.2` : `198.18.${linkId}.2`,
    };
    if (fw6) {
      router.lanIp6 = `fd00:10:${n}::1`;
      if (!s.cgnat) router.wanIp6 = `fd00:18:${linkId}::2`;
    }
    const carrier: RouterPlan | null = s.cgnat
      ? {
          key: `${s.name}-carrier`,
          ns: `${prefix}${s.name}-carrier`,
          lanIp: `100.64.${n}.1`,
          wanIp: `198.18.${linkId}.2`,
        }
      : null;
    if (carrier && fw6) {
      // IPv6 needs no carrier NAT: the carrier routes it; the home router keeps the stateful firewall.
      carrier.lanIp6 = `fd00:64:${n}::1`;
      carrier.wanIp6 = `fd00:18:${linkId}::2`;
      router.wanIp6 = `fd00:64:${n}::2`;
    }
    const hosts: HostPlan[] = [];
    for (let h = 0; h < nHosts; h++) {
      const key = h === 0 ? s.name : `${s.name}-h${h + 1}`;
      const host: HostPlan = { key, ns: `${prefix}${key}`, ip: `10.${n}.0.${h + 2}`, gateway: router.lanIp };
      if (fw6) {
        host.ip6 = `fd00:10:${n}::${h + 2}`;
        host.gateway6 = router.lanIp6 as string;
      }
      hosts.push(host);
    }
    return {
      name: s.name,
      index: i,
      nat,
      inbound,
      cgnat: s.cgnat === true,
      ipv6: fw6 ? 'fw6' : null,
      core: (i % 2 === 0 ? 1 : 2) as 1 | 2,
      hosts,
      host: hosts[0] as HostPlan,
      router,
      carrier,
      publicIp: `198.18.${linkId}.2`,
      lanPrefix: `10.${n}.0.0/24`,
      lanPrefix6,
      link: {
        id: linkId,
        prefix: `198.18.${linkId}.0/24`,
        prefix6: `fd00:18:${linkId}::/64`,
        coreIp: `198.18.${linkId}.1`,
        coreIp6: `fd00:18:${linkId}::1`,
        siteIp: `198.18.${linkId}.2`,
        siteIp6: `fd00:18:${linkId}::2`,
        coreIf: `s-${s.name}`,
      },
      delayMs: num(s.delayMs, `site ${s.name} delayMs`, 0, 10000, delay),
      jitterMs: num(s.jitterMs, `site ${s.name} jitterMs`, 0, 10000, jitter),
      lossPct: num(s.lossPct, `site ${s.name} lossPct`, 0, 100, loss),
    };
  });
  const publicHosts: PublicHostPlan[] = [];
  for (let j = 1; j <= nPub + nExtra; j++) {
    const linkId = 100 + j;
    const core = (j % 2 === 1 ? 1 : 2) as 1 | 2;
    publicHosts.push({
      key: `pub${j}`,
      ns: `${prefix}pub${j}`,
      number: j,
      ip: `198.18.${linkId}.2`,
      ip6: `fd00:18:${linkId}::2`,
      gateway: `198.18.${linkId}.1`,
      gateway6: `fd00:18:${linkId}::1`,
      core,
      extra: j > nPub,
      link: {
        id: linkId,
        prefix: `198.18.${linkId}.0/24`,
        prefix6: `fd00:18:${linkId}::/64`,
        coreIp: `198.18.${linkId}.1`,
        coreIp6: `fd00:18:${linkId}::1`,
        coreIf: `p-pub${j}`,
      },
    });
  }
  return { prefix, inOrder: spec.inOrder !== false, cores, sites, publicHosts };
}

/** Every namespace of a plan, in creation order. */
export function planNamespaces(plan: LabPlan): string[] {
  const out = plan.cores.map((c) => c.ns);
  for (const s of plan.sites) {
    if (s.carrier) out.push(s.carrier.ns);
    out.push(s.router.ns);
    for (const h of s.hosts) out.push(h.ns);
  }
  for (const p of plan.publicHosts) out.push(p.ns);
  return out;
}

/**
 * The words of a site behaviour spec, as `lab up --nat-<site>`, `demo --nat-a/--nat-b` and `lab matrix` take
 * them: one mapping, one inbound policy, `cgnat`, `fw6`, comma-separated in any order (`eim,rst`, `cgnat`).
 */
export const SITE_BEHAVIOUR_WORDS: readonly string[] = [...NAT_KINDS, ...INBOUND_POLICIES, 'cgnat', 'fw6'];

/** What a behaviour spec sets on a site (only the words given; the rest keeps the site's defaults). */
export type SiteBehaviourSpec = Pick<SiteSpec, 'nat' | 'inbound' | 'cgnat' | 'ipv6'>;

/** Parses a site behaviour spec (`edm,rst,cgnat`). Throws `LabError('LAB_BAD_SPEC')` naming the bad word. */
export function parseSiteBehaviour(spec: string): SiteBehaviourSpec {
  const out: SiteBehaviourSpec = {};
  const words = spec
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const want = `want ${SITE_BEHAVIOUR_WORDS.join(', ')}`;
  if (words.length === 0) throw new LabError('LAB_BAD_SPEC', `empty site behaviour (${want})`);
  for (const w of words) {
    if ((NAT_KINDS as readonly string[]).includes(w)) {
      if (out.nat !== undefined && out.nat !== w) {
        throw new LabError('LAB_BAD_SPEC', `two mappings in '${spec.slice(0, 64)}'`);
      }
      out.nat = w as NatKind;
    } else if ((INBOUND_POLICIES as readonly string[]).includes(w)) {
      if (out.inbound !== undefined && out.inbound !== w) {
        throw new LabError('LAB_BAD_SPEC', `two inbound policies in '${spec.slice(0, 64)}'`);
      }
      out.inbound = w as InboundPolicy;
    } else if (w === 'cgnat') out.cgnat = true;
    else if (w === 'fw6') out.ipv6 = 'fw6';
    else throw new LabError('LAB_BAD_SPEC', `unknown site behaviour '${w.slice(0, 32)}' (${want})`);
  }
  return out;
}

/** The canonical spec of a site's behaviour, e.g. `eim,drop` or `edm,rst,cgnat,fw6` (what parseSiteBehaviour reads). */
export function formatSiteBehaviour(s: SiteBehaviourSpec): string {
  const extra = [...(s.cgnat ? ['cgnat'] : []), ...(s.ipv6 === 'fw6' ? ['fw6'] : [])];
  return [s.nat ?? 'eim', s.inbound ?? 'drop', ...extra].join(',');
}

/** Milliseconds per duration unit. */
const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/**
 * The one duration parser of the command line: `25ms`, `0.5s`, `30m`, `2h`, or a bare number in `unit` -> a
 * value in `unit` (milliseconds unless told: the lab's delays; `'s'` for the simulator's spans), at most `max`.
 * Throws `LabError('LAB_BAD_SPEC')`; the argument layer reports it as a usage error naming the option.
 */
export function parseDuration(v: string, max = 10000, unit: 'ms' | 's' = 'ms'): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new LabError('LAB_BAD_SPEC', `expected a duration like 25ms, 0.5s, 30m or 2h, got '${v.slice(0, 32)}'`);
  const n = (Number(m[1]) * DURATION_MS[(m[2] ?? unit) as keyof typeof DURATION_MS]) / DURATION_MS[unit];
  if (n > max) throw new LabError('LAB_BAD_SPEC', `${v} is more than ${max} ${unit}`);
  return n;
}

/** `1%`, `1`, `0.5%` -> percent, at most `max` (100). Throws `LabError('LAB_BAD_SPEC')`. */
export function parsePercent(v: string, max = 100): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)%?$/.exec(v.trim());
  if (!m) throw new LabError('LAB_BAD_SPEC', `expected a percentage like 1%, got '${v.slice(0, 32)}'`);
  const pct = Number(m[1]);
  if (pct > max) throw new LabError('LAB_BAD_SPEC', `${v} is more than ${max}%`);
  return pct;
}
