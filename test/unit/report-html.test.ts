/**
 * The HTML report (src/lab/report/): built from a committed `lab matrix --json` line of a real run
 * (test/fixtures/matrix-run.json), opened in headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core), which must render every chart with no console error and show one series per pair, outcome,
 * event kind and process the data has.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { matrixReportData, type MatrixRun } from '../../src/lab/report/matrix.js';
import { renderReport, writeReport } from '../../src/lab/report/html.js';
import { eventKind, reportCharts } from '../../src/lab/report/specs.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'matrix-run.json');
const CHROMIUM = '/usr/bin/chromium';
const run = JSON.parse(readFileSync(FIXTURE, 'utf8')) as MatrixRun;
const data = matrixReportData(run, '2026-12-01T00:00:00.000Z');

test('report data from a matrix run: groups, sampled timelines, resources', () => {
  assert.equal(data.groups.length, run.pairs.length);
  for (const [i, g] of data.groups.entries()) {
    const p = run.pairs[i]!;
    assert.equal(g.timeToConnectMs.length, p.ok, `${p.pair}: one time per connected attempt`);
    assert.equal(g.attempts, p.runs);
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
      await page.goto(`file://${file}`);
      await page.waitForFunction('window.__report && window.__report.done === true', undefined, { timeout: 60_000 });
      const state = (await page.evaluate('window.__report')) as PageState;
      if (process.env.REPORT_SCREENSHOT) await page.screenshot({ path: process.env.REPORT_SCREENSHOT, fullPage: true });
      assert.deepEqual(problems, [], 'no console errors or warnings');
      assert.deepEqual(state.errors, []);
      assert.deepEqual(requests, [], 'the page fetched nothing');
      assert.equal(await page.evaluate('document.body.dataset.state'), 'rendered');
      for (const c of reportCharts(data)) {
        const s = state.charts[c.id]!;
        assert.ok(c.series.length > 0, `${c.id}: the fixture has data for it`);
        assert.equal(s.series, c.series.length, `${c.id}: series in the view's data`);
        assert.equal(s.legend, c.series.length, `${c.id}: legend entries (colour and shape share one legend)`);
        assert.equal(await page.locator(`#chart-${c.id} svg.marks`).count(), 1, `${c.id}: one chart`);
      }
      // The CDF has one line per pair that connected; the outcome chart names the edm pairs' failure.
      const connectedPairs = run.pairs.filter((p) => p.ok > 0).length;
      assert.equal(state.charts.cdf!.series, connectedPairs);
      assert.ok(reportCharts(data)[1]!.series.includes('PUNCH_NAT_UNSUITABLE (A)'));

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
