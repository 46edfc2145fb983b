/**
 * Measured success of birthday sprays against the bound P = 1 - e^(-N·M/S), in a real lab (root): for each
 * N × M, `--trials` sprays between a hard side (edm-pba or edm) and an easy side (eim), the probe range taken
 * from nat-check. Prints one JSON line per row and a Markdown table (docs/BENCHMARKS.md, "Birthday spray").
 *
 * Then `--sessions` (default 100) more sprays in a row (edm-pba, 64 × 32) with the side processes' fds, threads
 * and RSS before and after, and the routers' conntrack counts: before, after the sprays, and `--wait` seconds
 * later (default 0; SYN_SENT entries time out after nf_conntrack_tcp_timeout_syn_sent, 120 s).
 *
 *   node dist/bench/spray-lab.js [--trials 20] [--sessions 100] [--wait 0]
 */
import { Lab } from '../src/lab/topology/lab.js';
import { natCheck, randomPort, startNatcheckServers } from '../src/lab/topology/observe.js';
import { SpraySide, birthday, sprayTrial, type TrialSetup } from '../test/helpers/spray-lab.js';

const ROWS: Array<{ nat: 'pba' | 'edm'; n: number; m: number; spreadUs: number }> = [
  { nat: 'pba', n: 16, m: 16, spreadUs: 20_000 },
  { nat: 'pba', n: 32, m: 32, spreadUs: 20_000 },
  { nat: 'pba', n: 64, m: 64, spreadUs: 20_000 },
  { nat: 'pba', n: 128, m: 64, spreadUs: 20_000 },
  { nat: 'edm', n: 256, m: 128, spreadUs: 100_000 },
  { nat: 'edm', n: 256, m: 256, spreadUs: 100_000 },
  { nat: 'edm', n: 512, m: 256, spreadUs: 100_000 },
  { nat: 'edm', n: 1024, m: 256, spreadUs: 100_000 },
  { nat: 'edm', n: 2048, m: 128, spreadUs: 100_000 },
];

async function main(): Promise<void> {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const trials = arg('--trials', 20);
  const sessions = arg('--sessions', 100);
  const waitS = arg('--wait', 0);
  const lab = await Lab.up({
    sites: [
      { name: 'pba', nat: 'edm-pba' },
      { name: 'edm', nat: 'edm' },
      { name: 'easy', nat: 'eim' },
    ],
    publicHosts: 2,
  });
  const sides: SpraySide[] = [];
  try {
    const ncPort = randomPort();
    await startNatcheckServers(lab, lab.publicHosts.slice(0, 2), ncPort);
    const peers = lab.publicHosts.slice(0, 2).map((p) => `${p.ip}:${ncPort}`);
    const [hp, he, easy] = await Promise.all(['pba', 'edm', 'easy'].map((n) => SpraySide.start(lab, n)));
    sides.push(hp!, he!, easy!);
    const setups: Record<string, TrialSetup> = {};
    for (const [site, hard] of [
      ['pba', hp!],
      ['edm', he!],
    ] as const) {
      const nc = await natCheck(lab, site, peers);
      setups[site] = {
        hard,
        easy: easy!,
        hardLocalIp: lab.sites[site]!.host.ip,
        hardPublicIp: nc.publicAddress!,
        easyLocalIp: lab.sites.easy!.host.ip,
        easyPublicIp: lab.sites.easy!.publicIp,
        range: { low: nc.portSpread!.probeLow, high: nc.portSpread!.probeHigh },
      };
    }
    const conntrack = async () => {
      const out: Record<string, number> = {};
      for (const r of ['pba-router', 'edm-router', 'easy-router']) {
        const x = await lab.exec(r, ['cat', '/proc/sys/net/netfilter/nf_conntrack_count']);
        out[r] = Number(x.stdout.trim());
      }
      return out;
    };
    const ctBefore = await conntrack();
    const table: string[] = [
      '| hard NAT | probe range S | N (hard) | M (easy) | spread | bound P | connected | ' +
        'SYNs hard / easy (median) | connect after start median / p90 |',
      '|---|---|---|---|---|---|---|---|---|',
    ];
    for (const row of ROWS) {
      const s = setups[row.nat]!;
      const span = s.range.high - s.range.low + 1;
      let ok = 0;
      const t: number[] = [];
      const synsH: number[] = [];
      const synsE: number[] = [];
      for (let k = 0; k < trials; k++) {
        const r = await sprayTrial(s, row.n, row.m, { spreadUs: row.spreadUs });
        synsH.push(r.hard.syns);
        synsE.push(r.easy.syns);
        if (r.hard.ok && r.easy.ok) {
          ok++;
          t.push(r.hard.establishedMs!);
        }
      }
      const q = (xs: number[], p: number) =>
        [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
      const p = birthday(row.n, row.m, span);
      const out = {
        nat: row.nat,
        span,
        n: row.n,
        m: row.m,
        spreadUs: row.spreadUs,
        bound: p,
        ok,
        trials,
        synsHardMedian: q(synsH, 0.5),
        synsEasyMedian: q(synsE, 0.5),
        msMedian: q(t, 0.5),
        msP90: q(t, 0.9),
      };
      process.stdout.write(JSON.stringify(out) + '\n');
      const nat = row.nat === 'pba' ? 'edm-pba' : 'edm';
      const ms = t.length ? `${q(t, 0.5)!.toFixed(1)} / ${q(t, 0.9)!.toFixed(1)} ms` : '–';
      table.push(
        `| ${nat} | ${span} | ${row.n} | ${row.m} | ${row.spreadUs / 1000} ms | ${(100 * p).toFixed(1)}% | ` +
          `${ok}/${trials} (${((100 * ok) / trials).toFixed(0)}%) | ${q(synsH, 0.5)} / ${q(synsE, 0.5)} | ${ms} |`,
      );
    }
    process.stdout.write(table.join('\n') + '\n');
    const ctAfterRows = await conntrack();
    const before = await Promise.all(sides.map((x) => x.stats()));
    let ok = 0;
    for (let k = 0; k < sessions; k++) {
      const r = await sprayTrial(setups['pba']!, 64, 32, { spreadUs: 5000, deadlineMs: 600 });
      if (r.hard.ok && r.easy.ok) ok++;
    }
    await new Promise((r) => setTimeout(r, 500));
    const afterS = await Promise.all(sides.map((x) => x.stats()));
    const ctAfterSessions = await conntrack();
    if (waitS > 0) await new Promise((r) => setTimeout(r, waitS * 1000));
    const ctAfterWait = await conntrack();
    const ct = {
      before: ctBefore,
      afterRows: ctAfterRows,
      afterSessions: ctAfterSessions,
      afterWait: ctAfterWait,
      waitS,
    };
    const summary = { sessions, connected: ok, sides: ['pba', 'edm', 'easy'], before, after: afterS, conntrack: ct };
    process.stdout.write(JSON.stringify(summary) + '\n');
  } finally {
    for (const s of sides) s.close();
    await lab.down();
  }
}

void main();
