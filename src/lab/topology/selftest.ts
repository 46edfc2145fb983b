/**
 * `onionpunch lab selftest`: builds one lab holding every behaviour (one site per behaviour) and measures
 * each from the inside. Result contract (JSON): `{ behaviours: { eim, "eim-shift", edm, "edm-pba", drop, rst, icmp,
 * cgnat, fw6, delay, loss }, lab: {...}, upMs, downMs, totalMs, ok }`, each behaviour `{ ok, ...observed }`.
 * The mappings are observed twice: by a plain TCP peer-address echo (`seen`) and by the real Bitcoin-protocol
 * NAT check (`natcheck`: `onionpunch natcheck-server` on both public hosts, `onionpunch nat-check` on the host).
 */
import { Lab } from './lab.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './lab.js';
import {
  inboundProbe,
  natCheck,
  randomPort,
  seenFrom,
  startEchoServers,
  startNatcheckServers,
  udpProbe,
  type NatCheckResult,
} from './observe.js';
import { PBA_BLOCK, type LabSpec } from './spec.js';
import { blockUpperBound } from '../../nat/eim-check.js';

export interface SelftestOptions {
  /** One-way delay configured on the delay site's access link (ms). Default 20. */
  delayMs?: number;
  /** Loss configured per direction on the loss site's access link (%). Default 10. */
  lossPct?: number;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export type Behaviour = { ok: boolean } & Record<string, unknown>;

export interface SelftestResult {
  ok: boolean;
  behaviours: Record<string, Behaviour>;
  lab: { name: string; sites: number; publicHosts: number };
  upMs: number;
  downMs: number;
  totalMs: number;
}

export const SELFTEST_BEHAVIOURS = [
  'eim',
  'eim-shift',
  'edm',
  'edm-pba',
  'drop',
  'rst',
  'icmp',
  'cgnat',
  'fw6',
  'delay',
  'loss',
] as const;

export function selftestSpec(delayMs: number, lossPct: number): LabSpec {
  return {
    sites: [
      { name: 'eim', nat: 'eim', inbound: 'drop' },
      { name: 'shift', nat: 'eim-shift', inbound: 'drop' },
      { name: 'edm', nat: 'edm', inbound: 'drop' },
      { name: 'pba', nat: 'edm-pba', inbound: 'drop' },
      { name: 'rst', nat: 'eim', inbound: 'rst' },
      { name: 'icmp', nat: 'eim', inbound: 'icmp' },
      { name: 'cgn', nat: 'eim', inbound: 'drop', cgnat: true },
      { name: 'fw6', nat: 'eim', inbound: 'drop', ipv6: 'fw6' },
      { name: 'dly', nat: 'eim', delayMs },
      { name: 'loss', nat: 'eim', lossPct },
    ],
    publicHosts: 2,
  };
}

const r2 = (x: number) => Math.round(x * 100) / 100;

export async function runSelftest(opts: SelftestOptions = {}): Promise<SelftestResult> {
  const t0 = performance.now();
  const rawLog = opts.log ?? (() => undefined);
  const log = (line: string) => rawLog(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${line}`);
  const delayMs = opts.delayMs ?? 20;
  const lossPct = opts.lossPct ?? 10;
  const lab = await Lab.up(selftestSpec(delayMs, lossPct));
  log(`lab ${lab.name} up in ${lab.upMs.toFixed(0)} ms (${lab.namespaces.length} namespaces)`);
  const b: Record<string, Behaviour> = {};
  let downMs = 0;
  try {
    const port = randomPort();
    const pubs = lab.publicHosts.slice(0, 2);
    await startEchoServers(
      lab,
      pubs.map((p) => p.key),
      port,
    );
    const pubIps = pubs.map((p) => p.ip);

    // --- mappings: one local port, two public hosts
    const mapping = async (site: string) => {
      const s = lab.sites[site]!;
      const lp = randomPort();
      const r = await seenFrom(lab, s.host.key, s.host.ip, lp, port, pubIps);
      return { s, lp, seen: r.seen, ports: r.seen.map((x) => x.port ?? null), ips: r.seen.map((x) => x.ip ?? null) };
    };
    const [eim, shift, edm, cgn, pba] = await Promise.all(['eim', 'shift', 'edm', 'cgn', 'pba'].map(mapping));
    const allIs = (xs: Array<string | null>, v: string) => xs.length === 2 && xs.every((x) => x === v);

    // the same mappings through the Bitcoin-protocol NAT check (version handshake, addr_recv)
    const nc: Record<string, NatCheckResult | { error: string }> = {};
    const haveNatcheck = existsSync(join(packageRoot(), 'dist', 'src', 'nat', 'natcheck-server.js'));
    if (haveNatcheck) {
      const ncPort = randomPort();
      try {
        await startNatcheckServers(lab, pubs, ncPort);
        const peers = pubs.map((p) => `${p.ip}:${ncPort}`);
        // A random-port NAT's chance match (one port for both connections) is the check's own business now:
        // it confirms a port-translating eim reading from a fresh local port (src/nat/eim-check.ts confirmPair).
        for (const site of ['eim', 'shift', 'edm', 'cgn', 'pba']) {
          nc[site] = await natCheck(lab, site, peers).catch((e: unknown) => ({ error: String(e) }));
        }
      } catch (e) {
        for (const site of ['eim', 'shift', 'edm', 'cgn', 'pba']) nc[site] = { error: String(e) };
      }
    }
    // without the natcheck module (older build) the echo observation alone decides
    const ncIs = (site: string, want: (r: NatCheckResult) => boolean) => {
      if (!haveNatcheck) return true;
      const r = nc[site];
      return r !== undefined && !('error' in r) && want(r);
    };
    const ncOf = (site: string) => (haveNatcheck ? nc[site] : { skipped: 'natcheck-server not built' });
    b['eim'] = {
      ok:
        allIs(eim!.ips, eim!.s.publicIp) &&
        eim!.ports[0] === eim!.lp &&
        eim!.ports[1] === eim!.lp &&
        ncIs('eim', (r) => r.mapping === 'eim' && r.portPreserving === true && r.publicAddress === eim!.s.publicIp),
      localPort: eim!.lp,
      publicIp: eim!.s.publicIp,
      seen: eim!.seen,
      natcheck: ncOf('eim'),
    };
    b['eim-shift'] = {
      ok:
        allIs(shift!.ips, shift!.s.publicIp) &&
        shift!.ports[0] !== null &&
        shift!.ports[0] === shift!.ports[1] &&
        shift!.ports[0] !== shift!.lp &&
        ncIs(
          'shift',
          (r) => r.mapping === 'eim' && r.portPreserving === false && r.publicAddress === shift!.s.publicIp,
        ),
      localPort: shift!.lp,
      publicIp: shift!.s.publicIp,
      seen: shift!.seen,
      natcheck: ncOf('shift'),
    };
    b['edm'] = {
      ok:
        allIs(edm!.ips, edm!.s.publicIp) &&
        edm!.ports[0] !== null &&
        edm!.ports[1] !== null &&
        edm!.ports[0] !== edm!.ports[1] &&
        ncIs('edm', (r) => r.mapping === 'edm' && r.publicIpStable === true && r.portSpread?.narrow === false),
      localPort: edm!.lp,
      publicIp: edm!.s.publicIp,
      seen: edm!.seen,
      natcheck: ncOf('edm'),
    };
    const inBlock = (p: number | null | undefined) =>
      typeof p === 'number' && p >= PBA_BLOCK.low && p <= PBA_BLOCK.high;
    b['edm-pba'] = {
      ok:
        allIs(pba!.ips, pba!.s.publicIp) &&
        pba!.ports.every(inBlock) &&
        pba!.ports[0] !== pba!.ports[1] &&
        ncIs(
          'pba',
          (r) =>
            r.mapping === 'edm' &&
            r.publicIpStable === true &&
            r.portSpread?.narrow === true &&
            r.portSpread.ports.every(inBlock) &&
            // At most as wide as the bound the block itself would give (about twice the block).
            r.portSpread.probeHigh - r.portSpread.probeLow <=
              blockUpperBound(PBA_BLOCK.high - PBA_BLOCK.low + 1, r.portSpread.ports.length),
        ),
      block: PBA_BLOCK,
      localPort: pba!.lp,
      publicIp: pba!.s.publicIp,
      seen: pba!.seen,
      natcheck: ncOf('pba'),
    };
    b['cgnat'] = {
      ok:
        allIs(cgn!.ips, cgn!.s.publicIp) &&
        cgn!.s.router.wanIp.startsWith('100.64.') &&
        ncIs(
          'cgn',
          (r) => r.publicAddress === cgn!.s.publicIp && r.observed.every((o) => o.address === cgn!.s.publicIp),
        ),
      homeWanIp: cgn!.s.router.wanIp,
      carrierWanIp: cgn!.s.publicIp,
      localPort: cgn!.lp,
      seen: cgn!.seen,
      natcheck: ncOf('cgn'),
    };
    log(
      `mappings: eim ${eim!.ports.join('/')} (local ${eim!.lp}), eim-shift ${shift!.ports.join('/')} (local ` +
        `${shift!.lp}), edm ${edm!.ports.join('/')}, edm-pba ${pba!.ports.join('/')}, cgnat seen ${cgn!.ips.join('/')}`,
    );
    if (haveNatcheck) {
      const show = (k: string) => {
        const r = nc[k];
        if (r === undefined) return '?';
        if ('error' in r) return `error ${r.error}`;
        const p = r.portSpread;
        const sp = p ? ` spread ${p.min}..${p.max} (${p.narrow ? 'narrow' : 'wide'})` : '';
        return (
          `${r.mapping}${r.portPreserving === false ? ' (port-translating)' : ''} ` +
          `${r.observed.map((o) => `${o.address}:${o.port}`).join(' ')}${sp}`
        );
      };
      log(
        `nat-check (Bitcoin version handshake): eim ${show('eim')}; eim-shift ${show('shift')}; edm ${show('edm')}; ` +
          `edm-pba ${show('pba')}; cgnat ${show('cgn')}`,
      );
    }

    // --- unsolicited inbound SYN to the router's WAN address, from pub1
    const inbound = async (site: string) => {
      const s = lab.sites[site]!;
      return inboundProbe(lab, pubs[0]!.key, s.router.wanIp, randomPort());
    };
    const [drop, rst, icmp] = await Promise.all(['eim', 'rst', 'icmp'].map(inbound));
    b['drop'] = { ok: drop!.result === 'timeout' && !drop!.rst && drop!.icmp === null, ...drop! };
    b['rst'] = { ok: rst!.result === 'refused' && rst!.rst && rst!.icmp === null, ...rst! };
    b['icmp'] = { ok: icmp!.icmp !== null && icmp!.icmp.type === 3 && icmp!.icmp.code === 3 && !icmp!.rst, ...icmp! };
    log(`inbound: drop ${drop!.result}, rst ${rst!.result} rst=${rst!.rst}, icmp ${JSON.stringify(icmp!.icmp)}`);

    // --- fw6: routed IPv6 (no NAT) out, stateful firewall in
    const f = lab.sites['fw6']!;
    const out6 = await seenFrom(
      lab,
      f.host.key,
      f.host.ip6!,
      randomPort(),
      port,
      pubs.map((p) => p.ip6),
    );
    const in6 = await inboundProbe(lab, pubs[0]!.key, f.host.ip6!, randomPort());
    b['fw6'] = {
      ok:
        out6.seen.length === 2 &&
        out6.seen.every((x) => x.ip === f.host.ip6 && x.port === out6.localPort) &&
        in6.result === 'timeout',
      hostIp6: f.host.ip6,
      outbound: out6.seen,
      unsolicitedInbound: in6.result,
    };
    log(`fw6: outbound seen ${out6.seen.map((x) => `[${x.ip}]:${x.port}`).join(' ')}, inbound ${in6.result}`);

    // --- delay: UDP RTT against a baseline from an undelayed site, same target
    const base = await udpProbe(lab, 'eim', pubIps[0]!, port, 100, 5, 500);
    const dly = await udpProbe(lab, 'dly', pubIps[0]!, port, 200, 5, 4 * delayMs + 500);
    const expected = 2 * delayMs;
    const measured = (dly.rttMs.median ?? NaN) - (base.rttMs.median ?? NaN);
    b['delay'] = {
      ok: Math.abs(measured - expected) <= 2 && dly.received > 0,
      configuredOneWayMs: delayMs,
      expectedRttMs: expected,
      baselineRttMs: base.rttMs,
      rttMs: dly.rttMs,
      addedRttMs: r2(measured),
      errorMs: r2(measured - expected),
    };
    log(
      `delay: configured ${delayMs} ms one way, RTT median ${dly.rttMs.median} ms (baseline ${base.rttMs.median} ms)`,
    );

    // --- loss: round-trip loss of many UDP probes, converted to a per-direction rate
    const lp = await udpProbe(lab, 'loss', pubIps[0]!, port, 2000, 1, 500);
    const rt = (lp.sent - lp.received) / lp.sent;
    const oneWay = 100 * (1 - Math.sqrt(1 - rt));
    b['loss'] = {
      ok: Math.abs(oneWay - lossPct) <= 2.5,
      configuredPctPerDirection: lossPct,
      probes: lp.sent,
      received: lp.received,
      roundTripLossPct: r2(100 * rt),
      measuredPctPerDirection: r2(oneWay),
    };
    log(
      `loss: configured ${lossPct}% per direction, measured ${oneWay.toFixed(2)}% ` +
        `(${lp.sent - lp.received}/${lp.sent} round trips lost)`,
    );
  } finally {
    const td = performance.now();
    await lab.down();
    downMs = performance.now() - td;
  }
  const ok = SELFTEST_BEHAVIOURS.every((k) => b[k]?.ok === true);
  return {
    ok,
    behaviours: b,
    lab: { name: lab.name, sites: lab.plan.sites.length, publicHosts: lab.publicHosts.length },
    upMs: Math.round(lab.upMs),
    downMs: Math.round(downMs),
    totalMs: Math.round(performance.now() - t0),
  };
}
