/**
 * SVG charts of simulation results, drawn by vega-lite + vega headless (no DOM: `renderer: 'none'`, `toSVG()`).
 * Both packages are optional dependencies loaded only here, so the library and the other verbs never need them.
 */
import { SimError } from './errors.js';
import type { RelaySimResult } from './relay-sim.js';

interface VegaModule {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, opts: { renderer: string }) => { toSVG(): Promise<string>; finalize(): void };
}
interface VegaLiteModule {
  compile(spec: unknown): { spec: unknown };
}

async function load(): Promise<{ vega: VegaModule; vl: VegaLiteModule }> {
  try {
    const vega = (await import('vega' as string)) as VegaModule;
    const vl = (await import('vega-lite' as string)) as VegaLiteModule;
    return { vega, vl };
  } catch (err) {
    const how = 'devDependencies: `npm ci` in a checkout, or `npm install vega vega-lite`';
    throw new SimError('SIM_NO_CHARTS', `drawing charts needs vega and vega-lite (${how})`, {
      cause: err,
    });
  }
}

/** Renders a vega-lite spec to SVG text. */
export async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  const { vega, vl } = await load();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One line per run: share of aware NATed nodes holding a fresh entry, against simulated minutes. */
export function coverageSpec(
  runs: readonly RelaySimResult[],
  label: (r: RelaySimResult) => string,
  title: string,
): Record<string, unknown> {
  const values = runs.flatMap((r) =>
    r.coverage.series.map((p) => ({ minute: p.tS / 60, coverage: p.coverage, run: label(r) })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 560,
    height: 300,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'minute', type: 'quantitative', title: 'simulated minutes' },
      y: {
        field: 'coverage',
        type: 'quantitative',
        title: 'share of aware NATed nodes holding a fresh entry',
        scale: { domain: [0, 1] },
      },
      color: { field: 'run', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 1, labelLimit: 560 } },
    },
  };
}
