/**
 * The report as one self-contained HTML file: the data, the Vega-Lite specs, and vega, vega-lite and
 * vega-embed inlined from their npm dist builds, so the file opens offline and can be mailed or committed.
 *
 * The page records what it drew in `window.__report` (`{ done, errors, charts: { id: { series, legend } } }`)
 * so a headless browser can check it; `document.body.dataset.state` becomes `rendered` or `failed`.
 */
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReportData } from './model.js';
import { reportCharts } from './specs.js';
import { LabError } from '../errors.js';

/** The dist builds the page needs, in load order (vega-lite and vega-embed find `vega` as a global). */
const LIBRARIES = [
  ['vega', 'build/vega.min.js'],
  ['vega-lite', 'build/vega-lite.min.js'],
  ['vega-embed', 'build/vega-embed.min.js'],
] as const;

/**
 * A package's file by walking up to a `node_modules` that has it (the packages' `exports` maps hide their
 * dist builds from `require.resolve`).
 */
function packageFile(pkg: string, file: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const f = join(dir, 'node_modules', pkg, file);
    if (existsSync(f)) return f;
    const up = dirname(dir);
    if (up === dir) {
      const how =
        'devDependencies: `npm ci` in a checkout, or `npm install vega vega-lite vega-embed` beside the package';
      throw new LabError('LAB_REPORT_LIBRARY', `${pkg}/${file} not found in any node_modules (${how})`);
    }
    dir = up;
  }
}

/** JSON that is safe inside a <script> element. */
function scriptJson(x: unknown): string {
  return JSON.stringify(x)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function fmt(x: number | null, digits = 1): string {
  return x === null ? '–' : x.toFixed(digits);
}

function summaryTable(d: ReportData): string {
  const zrtt = d.groups.some((g) => g.fastPath !== undefined);
  const rows = d.groups.map((g) => {
    const ratio = g.medianMs !== null && g.boundMs ? g.medianMs / g.boundMs : null;
    const tail = g.medianMs && g.p90Ms !== null ? g.p90Ms / g.medianMs : null;
    const fails = [
      ...Object.entries(g.failures).map(([k, n]) => `${esc(k)} ×${n}`),
      ...Object.entries(g.fallbacks ?? {}).map(([k, n]) => `fell back: ${esc(k)} ×${n}`),
    ].join('<br>');
    const fast = g.fastPath !== undefined ? ` (${g.fastPath} fast path)` : '';
    const rule = g.boundRule !== undefined ? ` title="${esc(g.boundRule)}"` : '';
    return (
      `<tr><td>${esc(g.name)}</td><td>${g.connected}/${g.attempts}${fast}</td><td>${fmt(g.medianMs)}</td>` +
      `<td>${fmt(g.p90Ms)}</td><td${rule}>${fmt(g.boundMs)}</td>` +
      `<td${ratio !== null && ratio > 1 ? ' class="over"' : ''}>` +
      `${fmt(ratio, 2)}</td><td${tail !== null && tail > 2 ? ' class="over"' : ''}>${fmt(tail, 2)}</td>` +
      `<td class="why">${fails || '–'}</td></tr>`
    );
  });
  return (
    `<table><thead><tr><th>${esc(d.groupLabel ?? 'pair')}</th><th>connected</th>` +
    '<th>median ms</th><th>p90 ms</th>' +
    '<th title="1.5 × overlay RTT + 2 × direct RTT">bound ms</th><th>median ÷ bound</th><th>p90 ÷ median</th>' +
    `<th>failures</th></tr></thead><tbody>${rows.join('')}</tbody></table>` +
    (zrtt
      ? '<p class="note">Zero-RTT rows: the same measure (from B’s request reaching A to established), bound ' +
        '1 × direct RTT + 20 ms; “fast path” counts the attempts that connected without falling back to the ' +
        'measured-RTT flow, “fell back” why the others did.</p>'
      : '')
  );
}

/** The page's script: embeds every chart, then reports what it drew. */
const PAGE_SCRIPT = String.raw`
(function () {
  var state = { done: false, errors: [], charts: {} };
  window.__report = state;
  window.addEventListener('error', function (e) { state.errors.push(String(e.message)); });
  var charts = JSON.parse(document.getElementById('report-charts').textContent);
  var jobs = charts.map(function (c) {
    var el = document.getElementById('chart-' + c.id);
    if (c.series.length === 0) {
      el.textContent = c.empty || 'no data';
      el.className += ' empty';
      state.charts[c.id] = { series: 0, legend: 0, empty: true };
      return Promise.resolve();
    }
    var actions = { export: true, source: false, compiled: false, editor: false };
    return vegaEmbed(el, c.spec, { renderer: 'svg', actions: actions })
      .then(function (r) {
        var rows = r.view.data(c.id) || [];
        var seen = {};
        rows.forEach(function (x) { seen[x.series] = true; });
        var legend = el.querySelectorAll('.role-legend-label text').length;
        state.charts[c.id] = { series: Object.keys(seen).length, legend: legend, empty: false };
        if (!window.__views) window.__views = {};
        window.__views[c.id] = r.view;
      });
  });
  Promise.all(jobs).then(function () {
    state.done = true;
    document.body.dataset.state = 'rendered';
  }, function (err) {
    state.errors.push(String(err && err.message || err));
    state.done = true;
    document.body.dataset.state = 'failed';
  });
})();
`;

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 980px; color: #222; }
h1 { font-size: 22px; margin-bottom: 0; } .cond { color: #555; margin-top: 4px; }
h2 { font-size: 16px; margin-top: 32px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
td:first-child, th:first-child, td.why { text-align: left; } td.why { font-size: 11px; color: #555; max-width: 360px; }
td.over { background: #fde2e1; } .empty { color: #777; font-style: italic; }
.note { color: #555; font-size: 12px; max-width: 900px; }
`;

/** The whole HTML document for `d` (about 0.9 MB, nearly all of it the inlined libraries). */
export function renderReport(d: ReportData): string {
  const charts = reportCharts(d);
  const libs = LIBRARIES.map(([pkg, file]) => {
    // A dist build never contains "</script", but a later version must not be able to end our element early.
    const js = readFileSync(packageFile(pkg, file), 'utf8').replace(/<\/script/gi, '<\\/script');
    return `<script data-lib="${pkg}">${js}</script>`;
  }).join('\n');
  const sections = charts.map((c) => `<h2>${esc(c.title)}</h2>\n<div id="chart-${c.id}" class="chart"></div>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.title)}</title>
<meta name="generator" content="onionpunch report">
<style>${STYLE}</style>
${libs}
</head><body data-state="loading">
<h1>${esc(d.title)}</h1>
<p class="cond">${esc(d.conditions)} · ${esc(d.generatedAt)}</p>
${summaryTable(d)}
${sections.join('\n')}
<script type="application/json" id="report-charts">${scriptJson(charts)}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}

/** Writes the report to `file`. */
export function writeReport(file: string, d: ReportData): void {
  writeFileSync(file, renderReport(d));
}
