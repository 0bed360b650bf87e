import type * as vegaLite from 'vega-lite';
import { importOptional } from '../util/optional.js';
import type { CompareReport } from './compare.js';

/**
 * The comparison plots: vega-lite specs rendered headless to SVG by vega, and to PNG by resvg
 * (with the system's fonts; without any, the PNG has no text but the marks are drawn).
 * vega, vega-lite and resvg are optional packages, loaded when a plot is rendered.
 */

type Point = { method: string; gmacsFraction: number; value: number; measure: string };

function points(report: CompareReport, measures: Record<string, (r: CompareReport['results'][number] | CompareReport['dense']) => number>): Point[] {
  const out: Point[] = [];
  for (const [measure, f] of Object.entries(measures)) {
    for (const r of report.results) out.push({ method: r.method, gmacsFraction: r.gmacs / report.dense.gmacs, value: f(r), measure });
    // Every method starts from the dense model at 1.0 × GMACs.
    for (const method of new Set(report.results.map((r) => r.method))) {
      out.push({ method, gmacsFraction: 1, value: f(report.dense), measure });
    }
  }
  return out;
}

function lineSpec(title: string, data: Point[], yTitle: string, zeroBased: boolean): vegaLite.TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: data },
    width: 360,
    height: 240,
    background: 'white',
    facet: { column: { field: 'measure', type: 'nominal', title: null } },
    spec: {
      width: 360,
      height: 240,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'gmacsFraction', type: 'quantitative', title: 'GMACs (× dense)', scale: { zero: false } },
        y: { field: 'value', type: 'quantitative', title: yTitle, scale: { zero: zeroBased } },
        color: { field: 'method', type: 'nominal' },
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as vegaLite.TopLevelSpec;
}

/** Agreement with dense and top-1 against GMACs; throughput (images/s, 1 thread) against GMACs. */
export function comparePlotSpecs(report: CompareReport): { accuracy: vegaLite.TopLevelSpec; throughput: vegaLite.TopLevelSpec } {
  const accuracy = points(report, {
    'agreement with dense top-1': (r) => ('agreement' in r ? r.agreement : 1),
    'top-1 accuracy': (r) => r.top1,
  });
  const throughput = points(report, { 'images/s (1 thread)': (r) => 1000 / r.msPerImage });
  return {
    accuracy: lineSpec(`${report.model}: accuracy vs GMACs (${report.images} images)`, accuracy, '', false),
    throughput: lineSpec(`${report.model}: throughput vs GMACs`, throughput, 'images/s', true),
  };
}

export async function renderSvg(spec: vegaLite.TopLevelSpec): Promise<string> {
  const vega = await importOptional<typeof import('vega')>('vega', 'writing plots');
  const { compile } = await importOptional<typeof import('vega-lite')>('vega-lite', 'writing plots');
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function svgToPng(svg: string): Promise<Uint8Array> {
  const { Resvg } = await importOptional<typeof import('@resvg/resvg-js')>('@resvg/resvg-js', 'writing plots as PNG');
  const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, fitTo: { mode: 'zoom', value: 2 } }).render().asPng();
  return new Uint8Array(png);
}
