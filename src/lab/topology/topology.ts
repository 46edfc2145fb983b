/**
 * Turns an address plan into the concrete configuration of each namespace: veth pairs (one `ip -batch` run in
 * the root namespace, which only creates them directly inside the lab's namespaces, never in the root one),
 * then per namespace a sysctl script, an `ip -batch` script and an nftables ruleset. Pure (unit-testable).
 */
import { lossRuleset, routerRuleset } from './nft.js';
import type { LabPlan, SitePlan } from './spec.js';

/** Everything to apply inside one namespace. */
export interface NsConfig {
  ns: string;
  /** `sysctl -w` style key=value pairs (applied first). */
  sysctls: Array<[string, string]>;
  /** Lines for `ip -n NS -batch -`; lines starting with "-6 " run in a second `ip -6` batch. */
  ipBatch: string[];
  /** nftables ruleset for `nft -f -` (empty: none). */
  nft: string;
}

/** One delay line: a process in `ns` forwarding between TUN `tunA` (site side) and `tunB` (internet side). */
export interface DelayLineConfig {
  site: string;
  ns: string;
  tunA: string;
  tunB: string;
  delayMs: number;
  jitterMs: number;
}

export interface Topology {
  /** Lines for the root namespace's `ip -batch -` creating every veth pair inside the lab namespaces. */
  veths: string[];
  configs: NsConfig[];
  delayLines: DelayLineConfig[];
}

const ROUTER_SYSCTLS: Array<[string, string]> = [
  ['net.ipv4.ip_forward', '1'],
  ['net.ipv6.conf.all.forwarding', '1'],
  ['net.ipv4.conf.all.rp_filter', '0'],
  ['net.ipv4.conf.default.rp_filter', '0'],
  ['net.ipv6.conf.all.accept_dad', '0'],
  ['net.ipv6.conf.default.accept_dad', '0'],
];
const HOST_SYSCTLS: Array<[string, string]> = [
  ['net.ipv6.conf.all.accept_dad', '0'],
  ['net.ipv6.conf.default.accept_dad', '0'],
  // hosts take no router advertisements: routes are static
  ['net.ipv6.conf.default.accept_ra', '0'],
];

function veth(nsA: string, ifA: string, nsB: string, ifB: string): string {
  return `link add name ${ifA} netns ${nsA} type veth peer name ${ifB} netns ${nsB}`;
}

/** The namespace facing the core for a site: the carrier router for cgnat sites, else the home router. */
function edgeNs(s: SitePlan): string {
  return s.carrier ? s.carrier.ns : s.router.ns;
}

/** A small stable seed per site for the eim-shift port hash. */
function seedOf(s: SitePlan): number {
  let h = 0x2545;
  for (const c of s.name) h = (h * 31 + c.charCodeAt(0)) & 0xffff;
  return (h << 8) | s.index;
}

export function buildTopology(plan: LabPlan): Topology {
  const [c1, c2] = plan.cores;
  const veths: string[] = [veth(c1.ns, 'core', c2.ns, 'core')];
  const configs: NsConfig[] = [];
  const delayLines: DelayLineConfig[] = [];
  const coreOf = (n: 1 | 2) => (n === 1 ? c1 : c2);

  // --- core routers
  for (const core of plan.cores) {
    const n: 1 | 2 = core.key === 'core1' ? 1 : 2;
    const other = coreOf(n === 1 ? 2 : 1);
    const b: string[] = [
      'link set lo up',
      'link set core up',
      `addr add ${core.ip}/24 dev core`,
      `addr add ${core.ip6}/64 dev core nodad`,
    ];
    for (const s of plan.sites) {
      const v6Prefixes: Array<[string, string]> = []; // [prefix, via] routed behind this site's edge
      if (s.lanPrefix6) {
        if (s.carrier) {
          v6Prefixes.push([`fd00:64:${s.index + 1}::/64`, s.link.siteIp6]);
        }
        v6Prefixes.push([s.lanPrefix6, s.link.siteIp6]);
      }
      if (s.core !== n) {
        b.push(`route add ${s.link.prefix} via ${other.ip}`, `route add ${s.link.prefix6} via ${other.ip6}`);
        for (const [p] of v6Prefixes) b.push(`route add ${p} via ${other.ip6}`);
        continue;
      }
      const ifc = s.link.coreIf;
      b.push(
        `link set ${ifc} up`,
        `addr add ${s.link.coreIp}/24 dev ${ifc}`,
        `addr add ${s.link.coreIp6}/64 dev ${ifc} nodad`,
      );
      if (s.delayMs > 0 || s.jitterMs > 0) {
        // Delay line on this access link: everything from the site goes into tunA, everything to the site
        // into tunB; the delay line moves packets between them after the configured delay.
        const tunA = `d-${s.name}0`;
        const tunB = `d-${s.name}1`;
        const tOut = 100 + s.index * 3;
        const tIn = tOut + 1;
        const tTo = tOut + 2;
        const pref = 1000 + s.index * 3;
        b.push(
          `tuntap add dev ${tunA} mode tun`,
          `tuntap add dev ${tunB} mode tun`,
          `link set ${tunA} up`,
          `link set ${tunB} up`,
          // from the site: into the delay line
          `route add default dev ${tunA} table ${tOut}`,
          `route add ::/0 dev ${tunA} table ${tOut}`,
          `rule add iif ${ifc} lookup ${tOut} pref ${pref}`,
          `-6 rule add iif ${ifc} lookup ${tOut} pref ${pref}`,
          // out of the delay line towards the site: onto the access link
          `route add ${s.link.prefix} dev ${ifc} table ${tIn}`,
          `route add ${s.link.prefix6} dev ${ifc} table ${tIn}`,
          `rule add iif ${tunA} lookup ${tIn} pref ${pref + 1}`,
          `-6 rule add iif ${tunA} lookup ${tIn} pref ${pref + 1}`,
          // to the site (from anywhere else): into the delay line
          `route add ${s.link.prefix} dev ${tunB} table ${tTo}`,
          `route add ${s.link.prefix6} dev ${tunB} table ${tTo}`,
          `rule add to ${s.link.prefix} lookup ${tTo} pref ${pref + 2}`,
          `-6 rule add to ${s.link.prefix6} lookup ${tTo} pref ${pref + 2}`,
        );
        for (const [p, via] of v6Prefixes) {
          b.push(
            `route add ${p} via ${via} dev ${ifc} table ${tIn}`,
            `route add ${p} dev ${tunB} table ${tTo}`,
            `-6 rule add to ${p} lookup ${tTo} pref ${pref + 2}`,
          );
        }
        delayLines.push({ site: s.name, ns: core.ns, tunA, tunB, delayMs: s.delayMs, jitterMs: s.jitterMs });
      }
      for (const [p, via] of v6Prefixes) b.push(`route add ${p} via ${via}`);
    }
    for (const p of plan.publicHosts) {
      if (p.core !== n) {
        b.push(`route add ${p.link.prefix} via ${other.ip}`, `route add ${p.link.prefix6} via ${other.ip6}`);
        continue;
      }
      b.push(
        `link set ${p.link.coreIf} up`,
        `addr add ${p.link.coreIp}/24 dev ${p.link.coreIf}`,
        `addr add ${p.link.coreIp6}/64 dev ${p.link.coreIf} nodad`,
      );
    }
    configs.push({ ns: core.ns, sysctls: ROUTER_SYSCTLS, ipBatch: b, nft: '' });
  }

  // --- sites
  for (const s of plan.sites) {
    const core = coreOf(s.core);
    veths.push(veth(core.ns, s.link.coreIf, edgeNs(s), 'wan'));
    if (s.carrier) veths.push(veth(s.carrier.ns, 'lan', s.router.ns, 'wan'));
    s.hosts.forEach((h, k) => veths.push(veth(s.router.ns, `lan${k + 1}`, h.ns, 'eth0')));

    const loss = s.lossPct > 0 ? lossRuleset('wan', s.lossPct) : '';
    if (s.carrier) {
      const c = s.carrier;
      const b = [
        'link set lo up',
        'link set lan up',
        'link set wan up',
        `addr add ${c.lanIp}/24 dev lan`,
        `addr add ${c.wanIp}/24 dev wan`,
        `route add default via ${s.link.coreIp}`,
      ];
      if (s.lanPrefix6) {
        b.push(
          `addr add ${c.lanIp6}/64 dev lan nodad`,
          `addr add ${c.wanIp6}/64 dev wan nodad`,
          `route add ::/0 via ${s.link.coreIp6}`,
          `route add ${s.lanPrefix6} via ${s.router.wanIp6}`,
        );
      }
      // The carrier is a port-preserving NAT that drops unsolicited inbound (it never runs services itself).
      const fw = routerRuleset({ nat: 'eim', inbound: 'drop', wanIp: c.wanIp, seed: seedOf(s) });
      configs.push({ ns: c.ns, sysctls: ROUTER_SYSCTLS, ipBatch: b, nft: fw + loss });
    }
    const r = s.router;
    const b = ['link set lo up', 'link add lan type bridge', 'link set lan up', `addr add ${r.lanIp}/24 dev lan`];
    s.hosts.forEach((_h, k) => b.push(`link set lan${k + 1} master lan`, `link set lan${k + 1} up`));
    b.push('link set wan up', `addr add ${r.wanIp}/24 dev wan`);
    b.push(`route add default via ${s.carrier ? s.carrier.lanIp : s.link.coreIp}`);
    if (s.lanPrefix6) {
      b.push(
        `addr add ${r.lanIp6}/64 dev lan nodad`,
        `addr add ${r.wanIp6}/64 dev wan nodad`,
        `route add ::/0 via ${s.carrier ? s.carrier.lanIp6 : s.link.coreIp6}`,
      );
    }
    const fw = routerRuleset({ nat: s.nat, inbound: s.inbound, wanIp: r.wanIp, seed: seedOf(s) });
    configs.push({ ns: r.ns, sysctls: ROUTER_SYSCTLS, ipBatch: b, nft: fw + (s.carrier ? '' : loss) });
    for (const h of s.hosts) {
      const hb = [
        'link set lo up',
        'link set eth0 up',
        `addr add ${h.ip}/24 dev eth0`,
        `route add default via ${h.gateway}`,
      ];
      if (h.ip6) hb.push(`addr add ${h.ip6}/64 dev eth0 nodad`, `route add ::/0 via ${h.gateway6}`);
      configs.push({ ns: h.ns, sysctls: HOST_SYSCTLS, ipBatch: hb, nft: '' });
    }
  }

  // --- public hosts
  for (const p of plan.publicHosts) {
    veths.push(veth(coreOf(p.core).ns, p.link.coreIf, p.ns, 'eth0'));
    configs.push({
      ns: p.ns,
      sysctls: HOST_SYSCTLS,
      ipBatch: [
        'link set lo up',
        'link set eth0 up',
        `addr add ${p.ip}/24 dev eth0`,
        `addr add ${p.ip6}/64 dev eth0 nodad`,
        `route add default via ${p.gateway}`,
        `route add ::/0 via ${p.gateway6}`,
      ],
      nft: '',
    });
  }
  return { veths, configs, delayLines };
}
