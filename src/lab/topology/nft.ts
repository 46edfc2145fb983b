/**
 * nftables rulesets of the lab's routers, one function per role. Pure string builders (unit-testable).
 *
 * Why each rule is there is documented in docs/LAB.md ("Behaviours").
 */
import { PBA_BLOCK, type InboundPolicy, type NatKind } from './spec.js';

/** The NAT statement for one mapping behaviour, applied to packets leaving the WAN interface. */
export function natStatements(kind: NatKind, wanIp: string, seed: number): string[] {
  switch (kind) {
    case 'eim':
      // Port-preserving masquerade: nf_nat keeps the source port whenever the resulting tuple is unique, so
      // one local port maps to one public port for every destination (endpoint-independent in practice).
      return ['oifname "wan" masquerade'];
    case 'eim-shift':
      // Endpoint-independent but port-translating: the public port is a hash of (LAN address, LAN port) only,
      // so every destination sees the same public port, and it differs from the local one. Plain
      // `snat to IP:range` is NOT EIM on this kernel (nf_nat picks a random port in the range per connection).
      // nft hands the hash to NAT in host byte order, so the port seen is the byte-swapped value of
      // 20000..49999: spread over 78..65535 (never 0), still a pure function of (LAN address, LAN port).
      return [
        `oifname "wan" meta l4proto { tcp, udp } snat to ${wanIp} : jhash ip saddr . th sport mod 30000 seed ` +
          `0x${seed.toString(16)} offset 20000`,
        'oifname "wan" masquerade',
      ];
    case 'edm':
      // A random public port per connection (endpoint-dependent mapping, "symmetric NAT").
      return ['oifname "wan" masquerade fully-random'];
    case 'edm-pba': {
      // Port block allocation (carrier NAT): a random port per connection, always inside one block. nft only
      // takes a port range with a transport-protocol match; everything else (ICMP) masquerades as edm does.
      const block = `${PBA_BLOCK.low}-${PBA_BLOCK.high}`;
      return [
        `oifname "wan" meta l4proto tcp masquerade to :${block} fully-random`,
        `oifname "wan" meta l4proto udp masquerade to :${block} fully-random`,
        'oifname "wan" masquerade fully-random',
      ];
    }
  }
}

/** The verdict for a new unsolicited inbound packet under one policy, in the forward chain. */
function forwardVerdict(policy: InboundPolicy): string[] {
  switch (policy) {
    case 'drop':
      return ['iifname "wan" ct state new drop'];
    case 'rst':
      return ['iifname "wan" ct state new meta l4proto tcp reject with tcp reset', 'iifname "wan" ct state new reject'];
    case 'icmp':
      return ['iifname "wan" ct state new reject with icmpx type port-unreachable'];
  }
}

/** The verdict for a new unsolicited inbound packet addressed to the router itself (input chain). */
function inputVerdict(policy: InboundPolicy): string[] {
  switch (policy) {
    case 'drop':
      // Without this rule the router's own TCP stack would answer with a RST.
      return ['iifname "wan" ct state new drop'];
    case 'rst':
      // No rule on purpose: the router's own stack answers the SYN with a RST and the conntrack entry the SYN
      // created stays (state CLOSE, ~10 s), exactly like a stock Linux router. That entry is what makes a
      // later outbound SYN to the same peer get a different public port (see LAB-FACTS.md).
      return [];
    case 'icmp':
      return ['iifname "wan" ct state new reject with icmpx type port-unreachable'];
  }
}

/** A home (or carrier) router: NAT on `wan`, stateful firewall on `wan` for IPv4 and IPv6. */
export function routerRuleset(opts: { nat: NatKind; inbound: InboundPolicy; wanIp: string; seed: number }): string {
  const nat = natStatements(opts.nat, opts.wanIp, opts.seed);
  return [
    'table ip lab_nat {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...nat.map((r) => `    ${r}`),
    '  }',
    '}',
    'table inet lab_fw {',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    '    ct state established,related accept',
    '    iifname != "wan" accept',
    // ping of the router and IPv6 neighbour discovery must keep working
    '    meta l4proto { icmp, ipv6-icmp } accept',
    ...inputVerdict(opts.inbound).map((r) => `    ${r}`),
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    '    ct state established,related accept',
    ...forwardVerdict(opts.inbound).map((r) => `    ${r}`),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The nft tables {@link lossRuleset} creates (to delete them again: `nft delete table FAMILY NAME`). */
export const LOSS_TABLES = [
  ['inet', 'lab_loss'],
  ['netdev', 'lab_loss_egress'],
] as const;

/**
 * Random loss on one interface, each direction independently, where a link loses packets: incoming ones before
 * conntrack/NAT sees them (prerouting, priority -300), outgoing ones after the router's NAT has committed its
 * state (the netdev egress hook, after every IP hook and so after conntrack's confirm). An egress drop in
 * postrouting would come before the confirm and so undo the NAT mapping a lost first SYN creates — something no
 * router does to a packet its link loses (it made a punch's retried SYN meet no mapping: docs/LAB.md).
 */
export function lossRuleset(ifname: string, lossPct: number): string {
  const n = Math.round(lossPct * 100); // out of 10000
  return [
    'table inet lab_loss {',
    '  chain ingress_loss {',
    '    type filter hook prerouting priority -300; policy accept;',
    `    iifname "${ifname}" numgen random mod 10000 < ${n} drop`,
    '  }',
    '}',
    'table netdev lab_loss_egress {',
    '  chain egress_loss {',
    `    type filter hook egress device "${ifname}" priority 0; policy accept;`,
    // IP only, as the inet hooks see: ARP lost at the link layer would add neighbour-resolution stalls on top.
    `    meta protocol { ip, ip6 } numgen random mod 10000 < ${n} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}
