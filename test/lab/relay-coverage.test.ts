/**
 * Issue 13 item 3: the same small topology run both ways gives the same coverage curve.
 *
 * Lab: 12 NATed sites (eim, unsolicited inbound dropped) and 2 public hosts in network namespaces. The public hosts
 * run real `onionpunch relay` processes, each with `addnode` to the other; every site runs a real `onionpunch proxy`
 * (its collector pulls its relays) linked to one relay (sites a and b: both), and 4 sites also run the daemon's
 * Announcer (test/helpers/relay-announcer.ts: serve's announcing half without its Tor onion). Announcements travel
 * over clearnet P2P through the lab's NATs; no Tor is needed for relay coverage. Periods are scaled down so the run
 * is short: getaddrinterval 5 s, getaddrspacing 2 s, announceinterval 10 s.
 *
 * Simulator: runRelaySim with the same topology (`topology` option), the same periods, the announcers' measured
 * start offsets, no trickle (the daemons send at once) and sub-ms links, over 20 seeds.
 *
 * Measured: per (proxy, announcer) pair the time from the announcer's first `announcement-sent` to the proxy's
 * `announcement-learned`. The proxies start staggered, and each one's pull phase (and each relay's) is read from the
 * relays' `getaddr-answered` records and given to the simulator, which then draws only what the lab does not show
 * (the relays' secrets, hence their fan-out choices). Asserted: every pair is covered in both, the two CDFs differ by
 * at most 0.2 anywhere on 0..12 s and by at most 1 s in area (the mean absolute difference of delays, Wasserstein-1),
 * and a simulator with twice the pull period differs by more than 0.2 and is the farther one in area (the comparison
 * can fail). Not the medians: the curve climbs in steps, one per pull, so the 24th of 48 delays sits on either side
 * of a flat stretch and two runs whose curves differ by 0.04 there have medians 1.3 s apart. Set
 * OP_RELAY_LAB_OUT=FILE to keep both curves (docs/SIMULATION.md).
 * ~40 s.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Lab } from '../../src/lab/topology/lab.js';
import { onionpunchArgv } from '../../src/lab/topology/observe.js';
import { runRelaySim, type SimTopology } from '../../src/sim/index.js';
import { needsRoot } from '../helpers/root.js';

const SITES = 'abcdefghijkl'.split('');
const ANNOUNCERS = 4;
const PORT = 18444;
const GETADDR_S = 5;
const SPACING_S = 2;
const ANNOUNCE_S = 10;
const WINDOW_S = 20;
/**
 * Largest CDF difference allowed (measured: 0.05 to 0.1; the lab run is one sample of 48 pairs, timers jitter
 * under load).
 */
const TOLERANCE = 0.2;
/** Largest area between the curves on 0..12 s, in seconds (measured: 0.08 to 0.54). */
const AREA_TOLERANCE_S = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Rec {
  t: string;
  event: string;
  [k: string]: unknown;
}

/** Collects the JSON log records a child writes on `stream`. */
function records(child: ChildProcess, stream: 'stdout' | 'stderr', into: Rec[]): void {
  let buf = '';
  child[stream]!.setEncoding('utf8');
  child[stream]!.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        into.push(JSON.parse(line) as Rec);
      } catch {
        /* not a record */
      }
    }
  });
}

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** CDF of `delays` (ms; null = never) at `t` ms. */
const cdf = (delays: (number | null)[], t: number): number =>
  delays.filter((d) => d !== null && d <= t).length / delays.length;
const median = (delays: (number | null)[]): number => {
  const s = delays.map((d) => d ?? Infinity).sort((x, y) => x - y);
  return s[Math.floor((s.length - 1) / 2)]!;
};

describe('relay coverage: lab daemons and the simulator agree', needsRoot('network namespaces and nftables'), () => {
  test('12 sites, 2 relays: the same coverage curve within 0.2', { timeout: 115_000 }, async (t) => {
    const lab = await Lab.up({ sites: SITES.map((name) => ({ name, nat: 'eim' as const, inbound: 'drop' as const })) });
    t.after(() => lab.down());
    const relayIp = lab.publicHosts.map((h) => h.ip);
    // Which relays each site links to: even sites relay 0, odd relay 1, sites a and b both.
    const relaysOf = (i: number): number[] => (i < 2 ? [0, 1] : [i % 2]);

    const relayLogs: Rec[][] = [[], []];
    for (const j of [0, 1]) {
      const child = lab.spawn(
        lab.publicHosts[j]!.key,
        onionpunchArgv(
          'relay',
          '--network',
          'regtest',
          '--bind',
          relayIp[j]!,
          '--port',
          String(PORT),
          '--addnode',
          `${relayIp[1 - j]!}:${PORT}`,
          '--getaddrinterval',
          String(GETADDR_S),
          '--getaddrspacing',
          String(SPACING_S),
          '--announceinterval',
          String(ANNOUNCE_S),
          '--log',
          'json',
        ),
      );
      child.stdout!.resume();
      records(child, 'stderr', relayLogs[j]!);
    }
    await until('both relays ready', () => relayLogs.every((l) => l.some((r) => r.event === 'ready')), 20_000);

    const proxyLogs: Rec[][] = SITES.map(() => []);
    for (const [i, name] of SITES.entries()) {
      // Staggered starts spread the proxies' pull phases over the period, as the simulator's seeded ones.
      await sleep(Math.floor(Math.random() * ((GETADDR_S * 1000) / SITES.length) * 2));
      const peers = relaysOf(i).flatMap((r) => ['--peer', `${relayIp[r]!}:${PORT}`]);
      const child = lab.spawn(
        lab.sites[name]!.host.key,
        onionpunchArgv(
          'proxy',
          '--network',
          'regtest',
          ...peers,
          '--getaddrinterval',
          String(GETADDR_S),
          '--listen',
          '127.0.0.1:0',
          '--log',
          'json',
        ),
      );
      child.stdout!.resume();
      records(child, 'stderr', proxyLogs[i]!);
    }
    await until(
      'every proxy linked to its relays',
      () => proxyLogs.every((l, i) => l.filter((r) => r.event === 'peer-connected').length >= relaysOf(i).length),
      30_000,
    );

    const annLogs: Rec[][] = [];
    for (let i = 0; i < ANNOUNCERS; i++) {
      const site = lab.sites[SITES[i]!]!;
      const peers = relaysOf(i).flatMap((r) => ['--peer', `${relayIp[r]!}:${PORT}`]);
      const script = join(fileURLToPath(new URL('../helpers/relay-announcer.js', import.meta.url)));
      const child = lab.spawn(site.host.key, [
        process.execPath,
        script,
        ...peers,
        '--clearnet',
        `${site.publicIp}:${PORT}`,
        '--interval',
        String(ANNOUNCE_S),
      ]);
      child.stderr!.resume();
      annLogs.push([]);
      records(child, 'stdout', annLogs[i]!);
    }
    await until(
      'every announcer sent',
      () => annLogs.every((l) => l.some((r) => r.event === 'announcement-sent')),
      20_000,
    );
    await sleep(WINDOW_S * 1000);

    // ---- the lab's pair delays ----
    const coordOf = annLogs.map((l) => String(l.find((r) => r.ready)?.coordination ?? ''));
    const firstSent = annLogs.map((l) => Date.parse(l.find((r) => r.event === 'announcement-sent')!.t));
    const labDelays: (number | null)[] = [];
    for (const logs of proxyLogs) {
      for (let k = 0; k < ANNOUNCERS; k++) {
        const got = logs.find((r) => r.event === 'announcement-learned' && r.coordination === `${coordOf[k]}:${PORT}`);
        labDelays.push(got ? Math.max(0, Date.parse(got.t) - firstSent[k]!) : null);
      }
    }
    labDelays.sort((x, y) => (x ?? Infinity) - (y ?? Infinity));

    // ---- the simulator on the same topology, with the lab's measured phases ----
    const t0 = Math.min(...firstSent);
    // Pull phases from the relays' getaddr-answered records: an asker's address is its site's public IP (or the
    // other relay's). The phase is the offset of its pulls within the period, from t0.
    const phase = (ip: string): number | undefined => {
      const ts = relayLogs
        .flat()
        .filter((r) => r.event === 'getaddr-answered' && String(r.peer).startsWith(`in:${ip}:`))
        .map((r) => Date.parse(r.t));
      if (ts.length === 0) return undefined;
      const p = GETADDR_S * 1000;
      return ((((ts[ts.length - 1]! - t0) % p) + p) % p) / 1000;
    };
    const topology: SimTopology = {
      relays: 2,
      relayLinks: [[0, 1]],
      relayPullStartS: relayIp.map((ip) => phase(ip) ?? 0),
      nodes: [
        ...SITES.map((name, i) => ({
          relays: relaysOf(i),
          observe: true,
          pullStartS: phase(lab.sites[name]!.publicIp),
        })),
        ...firstSent.map((ts, i) => ({ relays: relaysOf(i), announce: true, startS: (ts - t0) / 1000 })),
      ],
    };
    const simulate = (getaddrS: number, topo: SimTopology = topology): (number | null)[] => {
      const out: (number | null)[] = [];
      for (let seed = 1; seed <= 20; seed++) {
        const r = runRelaySim({
          nodes: 0,
          reachable: 0,
          adoption: 1,
          relays: 2,
          relaysPerNode: 2,
          announcers: ANNOUNCERS,
          durationS: (Math.max(...firstSent) - t0) / 1000 + WINDOW_S,
          seed: String(seed),
          topology: topo,
          announceIntervalS: ANNOUNCE_S,
          getaddrS,
          getaddrSpacingS: SPACING_S,
          trickleS: 0,
          latencyMedianMs: 0.5,
          sampleS: 1,
        });
        out.push(...r.coverage.pairDelaysMs!);
      }
      return out.sort((x, y) => (x ?? Infinity) - (y ?? Infinity));
    };
    const simDelays = simulate(GETADDR_S);
    const grid = Array.from({ length: 49 }, (_, i) => i * 250);
    const diffTo = (d: (number | null)[]): number =>
      Math.max(...grid.map((ms) => Math.abs(cdf(labDelays, ms) - cdf(d, ms))));
    // Area between the curves by the trapezoid rule on the same grid, in seconds.
    const areaTo = (d: (number | null)[]): number =>
      grid.slice(1).reduce((sum, ms, i) => {
        const a = Math.abs(cdf(labDelays, grid[i]!) - cdf(d, grid[i]!));
        const b = Math.abs(cdf(labDelays, ms) - cdf(d, ms));
        return sum + ((a + b) / 2) * ((ms - grid[i]!) / 1000);
      }, 0);
    const curve = grid.map((ms) => ({ tS: ms / 1000, lab: cdf(labDelays, ms), sim: cdf(simDelays, ms) }));
    const maxDiff = diffTo(simDelays);
    const areaS = areaTo(simDelays);
    // The comparison has power: a simulator with twice the daemons' pull period (phases then its own) is told apart.
    const unphased = { ...topology, nodes: topology.nodes.map(({ pullStartS: _p, ...n }) => n) };
    const wrongDelays = simulate(2 * GETADDR_S, unphased);
    const wrongDiff = diffTo(wrongDelays);
    const wrongAreaS = areaTo(wrongDelays);
    const result = {
      pairs: labDelays.length,
      maxDiff,
      areaS,
      wrongDiff,
      wrongAreaS,
      labMedianMs: median(labDelays),
      simMedianMs: median(simDelays),
      labNever: labDelays.filter((d) => d === null).length,
      simNever: simDelays.filter((d) => d === null).length,
      relayStats: relayLogs.map((l) => l.filter((r) => r.event === 'getaddr-answered').length),
      curve,
      labDelays,
    };
    t.diagnostic(
      `lab vs sim: max CDF difference ${maxDiff.toFixed(3)} (pull period 2x: ${wrongDiff.toFixed(3)}), ` +
        `area ${areaS.toFixed(2)} s (2x: ${wrongAreaS.toFixed(2)} s), median ${result.labMedianMs} ms vs ` +
        `${result.simMedianMs} ms, ${result.pairs} pairs`,
    );
    if (process.env.OP_RELAY_LAB_OUT) writeFileSync(process.env.OP_RELAY_LAB_OUT, JSON.stringify(result) + '\n');

    assert.equal(result.labNever, 0, `every pair covered in the lab: ${JSON.stringify(labDelays)}`);
    assert.equal(result.simNever, 0, 'every pair covered in the simulator');
    assert.ok(maxDiff <= TOLERANCE, `CDFs within ${TOLERANCE}: ${JSON.stringify(curve)}`);
    assert.ok(areaS <= AREA_TOLERANCE_S, `area between the curves ${areaS.toFixed(2)} s <= ${AREA_TOLERANCE_S} s`);
    assert.ok(wrongDiff > TOLERANCE, `a 2x pull period differs by more than ${TOLERANCE} (${wrongDiff})`);
    // In area the wrong simulator is only required to be the farther one (measured 1.28-2.13 s: too close to the
    // tolerance to demand more than it of every run); the sup-norm check above is the one with a margin.
    assert.ok(wrongAreaS > areaS, `a 2x pull period is farther in area (${wrongAreaS.toFixed(2)} s)`);
  });
});
