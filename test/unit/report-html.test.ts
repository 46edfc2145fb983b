/**
 * The HTML report (src/lab/report/): built from a committed `lab matrix --json` line of a real run
 * (test/fixtures/matrix-run.json) and from a real `lab matrix --zrtt --json` run
 * (bench/results/punch-matrix-zrtt-pairs.json: every pair's zero-round-trip attempts too), opened in headless
 * Chromium (Debian's /usr/bin/chromium through playwright-core), which must render every chart with no console
 * error and show one series per pair (and per pair's zero-RTT attempts), outcome, event kind and process the data
 * has. Zero-RTT fallbacks (none in that run) are counted from attempts summarized by the real summarizeZeroRtt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { matrixReportData, zeroRttGroupName, type MatrixRun } from '../../src/lab/report/matrix.js';
import { renderReport, writeReport } from '../../src/lab/report/html.js';
import { FAST_PATH, MEASURED_AFTER_ZRTT, eventKind, reportCharts } from '../../src/lab/report/specs.js';
import { summarizePair, summarizeZeroRtt } from '../../src/lab/matrix/matrix.js';
import type { AttemptResult } from '../../src/lab/demo/rig.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'matrix-run.json');
const CHROMIUM = '/usr/bin/chromium';
const ZRTT_RUN = join(ROOT, 'bench', 'results', 'punch-matrix-zrtt-pairs.json');
const run = JSON.parse(readFileSync(FIXTURE, 'utf8')) as MatrixRun;
const data = matrixReportData(run, '2026-12-01T00:00:00.000Z');
const zrun = JSON.parse(readFileSync(ZRTT_RUN, 'utf8')) as MatrixRun;
const zdata = matrixReportData(zrun, '2026-12-02T00:00:00.000Z');

/** The CDF's expected lines: one per pair that connected, one per pair whose zero-RTT attempts connected. */
const cdfSeries = (r: MatrixRun): string[] => [
  ...r.pairs.filter((p) => p.ok > 0).map((p) => p.pair),
  ...r.pairs.filter((p) => (p.zeroRtt?.ok ?? 0) > 0).map((p) => zeroRttGroupName(p.pair)),
];

test('report data from a matrix run: groups, sampled timelines, resources', () => {
  assert.equal(data.groups.length, run.pairs.length, 'no --zrtt: one group per pair');
  for (const [i, g] of data.groups.entries()) {
    const p = run.pairs[i]!;
    assert.equal(g.timeToConnectMs.length, p.ok, `${p.pair}: one time per connected attempt`);
    assert.equal(g.attempts, p.runs);
    assert.equal(g.fastPath, undefined);
  }
  assert.ok(data.timelines.length >= run.pairs.length, 'at least one sampled session per pair');
  for (const t of data.timelines) {
    assert.equal(Math.min(...t.events.map((e) => e.tMs)), 0, 'times are relative to the session start');
    assert.ok(
      t.events.some((e) => e.who === 'B'),
      `${t.group} ${t.label}: B's events`,
    );
  }
  // Both sides on one axis: a connected session has A's and B's SYNs.
  const ok = data.timelines.find((t) => t.label.startsWith('fastest'))!;
  assert.deepEqual([...new Set(ok.events.filter((e) => eventKind(e) === 'SYN').map((e) => e.who))].sort(), ['A', 'B']);
  assert.ok(data.resources.length > 0 && data.resources.every((r) => r.rssMb > 0 && r.fds > 0 && r.threads > 0));
});

test('report data from a --zrtt run: each pair is followed by its zero-RTT group, with its own CDF line', () => {
  assert.ok(zrun.pairs.length > 1 && zrun.pairs.every((p) => p.zeroRtt), 'the saved run has zero-RTT data');
  assert.deepEqual(
    zdata.groups.map((g) => g.name),
    zrun.pairs.flatMap((p) => [p.pair, zeroRttGroupName(p.pair)]),
  );
  for (const p of zrun.pairs) {
    const z = p.zeroRtt!;
    const g = zdata.groups.find((x) => x.name === `${p.pair} (zero-RTT)`)!;
    // The measure summarizeZeroRtt takes: B's request reaching A → A's established, over the connected attempts.
    assert.equal(g.timeToConnectMs.length, z.ok);
    assert.deepEqual(
      g.timeToConnectMs,
      z.attempts.filter((a) => a.ok).map((a) => a.timeToConnectMs),
    );
    assert.equal(g.medianMs, z.medianMs);
    assert.equal(g.boundMs, z.boundMs, 'bound: 1 × direct RTT + 20 ms');
    assert.equal(g.fastPath, z.fastPath);
    assert.ok(g.medianMs! < zdata.groups.find((x) => x.name === p.pair)!.boundMs!);
    assert.equal(zdata.timelines.filter((t) => t.group === g.name).length, z.timelines.length);
  }
  const [cdf, success] = reportCharts(zdata);
  assert.deepEqual([...cdf!.series].sort(), cdfSeries(zrun).sort());
  assert.ok(success!.series.includes(FAST_PATH));
  const html = renderReport(zdata);
  assert.match(html, /<td>eim×eim \(rst\) \(zero-RTT\)<\/td><td>5\/5 \(5 fast path\)<\/td><td>166\.2<\/td>/);
  assert.match(html, /each followed by a zero-round-trip attempt/);
});

test('zero-RTT fallbacks: counted in the outcome chart and the table (attempts through summarizeZeroRtt)', () => {
  // Three zero-RTT attempts as the rig reports them: one on the fast path, one that fell back and connected on
  // the measured-RTT flow, one that fell back and failed.
  const ev = (at: number, event: string) => ({ at, who: 'B', event });
  const attempts: AttemptResult[] = [
    { ok: true, timeToConnectMs: 52, zeroRtt: true, zeroRttUsed: true, events: [ev(0, 'punch'), ev(60, 'done')] },
    {
      ok: true,
      timeToConnectMs: 131,
      zeroRtt: true,
      zeroRttUsed: false,
      zeroRttFallback: 'PUNCH_CONNECT_TIMEOUT',
      events: [ev(0, 'punch'), ev(3000, 'zero-rtt-fallback'), ev(3140, 'done')],
    },
    {
      ok: false,
      error: { code: 'PUNCH_CONNECT_TIMEOUT', message: 'no SYN-ACK', side: 'B' },
      zeroRtt: true,
      zeroRttUsed: false,
      zeroRttFallback: 'PUNCH_REFUSED',
      events: [ev(0, 'punch'), ev(3000, 'zero-rtt-fallback')],
    },
  ];
  const measured = summarizePair({ name: 'eim×eim (drop)' }, [attempts[1]!]);
  const r: MatrixRun = { runs: 3, pairs: [{ ...measured, zeroRtt: summarizeZeroRtt(attempts) }] };
  const d = matrixReportData(r, '2026-12-02T00:00:00.000Z');
  const z = d.groups[1]!;
  assert.equal(z.name, 'eim×eim (drop) (zero-RTT)');
  assert.deepEqual(z.fallbacks, { PUNCH_CONNECT_TIMEOUT: 1, PUNCH_REFUSED: 1 });
  const success = reportCharts(d)[1]!;
  const rows = (success.spec['data'] as { values: Array<{ group: string; series: string; n: number }> }).values;
  assert.deepEqual(
    rows.filter((x) => x.group === z.name).map((x) => `${x.series}=${x.n}`),
    [`${FAST_PATH}=1`, `${MEASURED_AFTER_ZRTT}=1`, 'PUNCH_CONNECT_TIMEOUT (B)=1'],
  );
  assert.deepEqual(reportCharts(d)[0]!.series, ['eim×eim (drop)', 'eim×eim (drop) (zero-RTT)']);
  const html = renderReport(d);
  assert.match(html, /<td>2\/3 \(1 fast path\)<\/td>/);
  assert.match(html, /fell back: PUNCH_CONNECT_TIMEOUT ×1<br>fell back: PUNCH_REFUSED ×1/);
  assert.ok(
    d.timelines.some((t) => t.group === z.name && t.label.startsWith('fallback')),
    'the fallback sampled',
  );
});

test('the page escapes its data and inlines the libraries (no network fetch)', () => {
  const evil = {
    ...data,
    title: '</script><script>alert(1)</script>',
    groups: data.groups.map((g, i) => (i ? g : { ...g, name: '</script>' })),
  };
  const html = renderReport(evil);
  const opened = html.match(/<script/g)!.length;
  assert.equal(opened, html.match(/<\/script>/g)!.length, 'every <script> is closed by its own tag');
  assert.ok(!html.includes('<script>alert(1)'));
  assert.ok(!/<script[^>]+src=|<link[^>]+href=/.test(html), 'nothing loaded from elsewhere');
  for (const lib of ['vega', 'vega-lite', 'vega-embed']) assert.ok(html.includes(`data-lib="${lib}"`));
});

interface PageState {
  done: boolean;
  errors: string[];
  charts: Record<string, { series: number; legend: number; empty: boolean }>;
}

test(
  'the report renders in headless Chromium with the expected series and no console errors',
  {
    skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`,
    timeout: 120_000,
  },
  async () => {
    const { chromium } = await import('playwright-core');
    const dir = mkdtempSync(join(tmpdir(), 'onionpunch-report-'));
    const file = join(dir, 'report.html');
    writeReport(file, data);
    assert.ok(statSync(file).size < 1_500_000, 'the file stays small enough to commit');
    // A new empty profile (playwright passes it as --user-data-dir); --no-sandbox because CI runs as root.
    const browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1100, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) requests.push(r.url());
      });
      /** Opens a report of `d` (from run `r`) and checks every chart drew the series its data has. */
      const rendersAll = async (html: string, d: typeof data, r: MatrixRun, shot?: string): Promise<void> => {
        await page.goto(`file://${html}`);
        const ready = 'window.__report && window.__report.done === true';
        await page.waitForFunction(ready, undefined, { timeout: 60_000 });
        const state = (await page.evaluate('window.__report')) as PageState;
        if (shot) await page.screenshot({ path: shot, fullPage: true });
        assert.deepEqual(problems, [], 'no console errors or warnings');
        assert.deepEqual(state.errors, []);
        assert.deepEqual(requests, [], 'the page fetched nothing');
        assert.equal(await page.evaluate('document.body.dataset.state'), 'rendered');
        for (const c of reportCharts(d)) {
          const s = state.charts[c.id]!;
          assert.ok(c.series.length > 0, `${c.id}: the fixture has data for it`);
          assert.equal(s.series, c.series.length, `${c.id}: series in the view's data`);
          assert.equal(s.legend, c.series.length, `${c.id}: legend entries (colour and shape share one legend)`);
          assert.equal(await page.locator(`#chart-${c.id} svg.marks`).count(), 1, `${c.id}: one chart`);
        }
        // The CDF has one line per pair that connected, and one per pair whose zero-RTT attempts connected.
        assert.equal(state.charts.cdf!.series, cdfSeries(r).length);
      };
      await rendersAll(file, data, run, process.env.REPORT_SCREENSHOT);
      // The outcome chart names the edm pairs' failure.
      assert.ok(reportCharts(data)[1]!.series.includes('PUNCH_NAT_UNSUITABLE (A)'));

      // A --zrtt run: every pair's zero-RTT line in the CDF (dashed), its bar in the outcome chart.
      const zfile = join(dir, 'zrtt.html');
      writeReport(zfile, zdata);
      await rendersAll(zfile, zdata, zrun, process.env.REPORT_SCREENSHOT_ZRTT);
      const zCdf = (await page.evaluate('window.__report')) as PageState;
      assert.equal(zCdf.charts.cdf!.series, 2 * zrun.pairs.length, 'four pairs and their four zero-RTT lines');
      const dashed = await page.locator('#chart-cdf .mark-line path[stroke-dasharray="5,3"]').count();
      assert.equal(dashed, zrun.pairs.length, 'one dashed line per zero-RTT group');
      assert.ok(reportCharts(zdata)[1]!.series.includes(FAST_PATH));

      // A summary-only file (bench/results/punch-matrix.json: no attempts, timelines or resources) still renders:
      // the outcome chart and the table, and each chart without data says so instead of drawing an empty plot.
      const summary = join(ROOT, 'bench', 'results', 'punch-matrix.json');
      const pairs = JSON.parse(readFileSync(summary, 'utf8')) as MatrixRun['pairs'];
      const old = join(dir, 'old.html');
      writeReport(old, matrixReportData({ runs: pairs[0]!.runs, pairs }));
      await page.goto(`file://${old}`);
      await page.waitForFunction('window.__report && window.__report.done === true', undefined, { timeout: 60_000 });
      const s2 = (await page.evaluate('window.__report')) as PageState;
      assert.deepEqual(problems, []);
      assert.deepEqual(s2.errors, []);
      const empty = Object.entries(s2.charts)
        .filter(([, c]) => c.empty)
        .map(([id]) => id);
      assert.deepEqual(empty, ['cdf', 'timeline', 'resources']);
      assert.equal(s2.charts.success!.legend, 3, 'connected and the two edm failures');
      assert.match(await page.locator('#chart-resources').innerText(), /no resource samples/);
    } finally {
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
