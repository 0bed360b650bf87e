/**
 * Cross-check of the methods beyond ToMe (MCTF, PPT, PiToMe) against the dense model on a folder
 * of labelled images: agreement with the dense top-1, mean KL(dense ‖ method), top-1, GMACs as
 * a fraction of dense, and the forward time per image as a ratio to dense (median over images;
 * every method runs right after the dense pass on the same image, so the ratio is interleaved).
 *
 *   npx tsx bench/methods-check.ts [--model DIR] [--images DIR] [--limit N] [--backend B]
 *       [--only NAME,NAME] [--variant 'NAME={"method":"mctf","r":12.6,...}' ...] [--json FILE]
 *
 * Without --variant it runs the settings of the independent numpy implementation's table
 * (../shared/docs/oracle-results.md, "Beyond ToMe") and prints its figures beside ours, with
 * whether agreement is within ±0.02, KL within ±20 % and the GMACs ratio within ±0.001.
 * --only keeps the variants whose name starts with one of the given prefixes.
 * A variant is a JSON object: "method" (tome | mctf | ppt | pitome) and that method's settings
 * (tome: "r"; mctf: MctfSettings; ppt: PptSettings; pitome: PitomeSettings).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelSpec } from '../src/cli/common.js';
import { labelImages, listImages } from '../src/eval/dataset.js';
import { agreementWithDense, evaluateVariants, type Variant } from '../src/eval/evaluate.js';
import { median } from '../src/eval/metrics.js';
import { createKernels, type Backend } from '../src/kernels/index.js';
import type { ViTModel } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import type { ForwardHooks } from '../src/model/hooks.js';
import { denseGmacs, modelGmacs } from '../src/model/gmacs.js';
import { mctfGmacs, mctfHooks, type MctfSettings } from '../src/prune/mctf.js';
import { pitomeHooks, pitomeTokens, type PitomeSettings } from '../src/prune/pitome.js';
import { pptHooks, pptTokens, type PptDecision, type PptSettings } from '../src/prune/ppt.js';
import { tomeHooks, tomeTokens, type TomeSchedule } from '../src/prune/tome.js';

type VariantSpec =
  | ({ method: 'tome' } & { r: TomeSchedule })
  | ({ method: 'mctf' } & Partial<MctfSettings>)
  | ({ method: 'ppt' } & Partial<PptSettings>)
  | ({ method: 'pitome' } & Pick<PitomeSettings, 'r'> & Partial<PitomeSettings>);

/** The oracle's figures: agreement, KL, GMACs ratio (oracle-results.md, "Beyond ToMe"). */
interface OracleFigures {
  agreement: number;
  kl: number;
  fraction: number;
}

/** The settings of the oracle table, with its figures per model folder. */
const ORACLE_TABLE: { name: string; spec: VariantSpec; oracle: Record<string, OracleFigures> }[] = [
  {
    name: 'tome r=11',
    spec: { method: 'tome', r: 11 },
    oracle: { 'deit-tiny': { agreement: 0.916, kl: 0.056, fraction: 0.644 }, 'vit-tiny': { agreement: 0.938, kl: 0.076, fraction: 0.644 } },
  },
  {
    name: 'tome r=4',
    spec: { method: 'tome', r: 4 },
    oracle: { 'deit-tiny': { agreement: 0.966, kl: 0.011, fraction: 0.866 }, 'vit-tiny': { agreement: 0.97, kl: 0.013, fraction: 0.866 } },
  },
  {
    name: 'mctf r=12.6',
    spec: { method: 'mctf', r: 12.6 },
    oracle: { 'deit-tiny': { agreement: 0.954, kl: 0.028, fraction: 0.644 }, 'vit-tiny': { agreement: 0.958, kl: 0.033, fraction: 0.644 } },
  },
  {
    name: 'mctf r=4.55',
    spec: { method: 'mctf', r: 4.55 },
    oracle: { 'deit-tiny': { agreement: 0.976, kl: 0.005, fraction: 0.866 }, 'vit-tiny': { agreement: 0.984, kl: 0.005, fraction: 0.866 } },
  },
  {
    name: 'mctf-after-block r=14.5',
    spec: { method: 'mctf', r: 14.5, oneStepAhead: false },
    oracle: { 'deit-tiny': { agreement: 0.948, kl: 0.023, fraction: 0.646 } },
  },
  {
    name: 'mctf-after-block r=5',
    spec: { method: 'mctf', r: 5, oneStepAhead: false },
    oracle: { 'deit-tiny': { agreement: 0.972, kl: 0.003, fraction: 0.873 } },
  },
  {
    name: 'mctf-sim-only r=12.6',
    spec: { method: 'mctf', r: 12.6, tauInfo: 0, tauSize: 0 },
    oracle: { 'deit-tiny': { agreement: 0.93, kl: 0.044, fraction: 0.644 } },
  },
  {
    name: 'ppt r=48',
    spec: { method: 'ppt', r: 48 },
    oracle: { 'deit-tiny': { agreement: 0.924, kl: 0.035, fraction: 0.648 }, 'vit-tiny': { agreement: 0.946, kl: 0.052, fraction: 0.648 } },
  },
  {
    name: 'ppt r=17',
    spec: { method: 'ppt', r: 17 },
    oracle: { 'deit-tiny': { agreement: 0.992, kl: 0.003, fraction: 0.87 }, 'vit-tiny': { agreement: 0.986, kl: 0.005, fraction: 0.87 } },
  },
  { name: 'pitome r=11', spec: { method: 'pitome', r: 11 }, oracle: { 'deit-tiny': { agreement: 0.894, kl: 0.095, fraction: 0.644 } } },
  { name: 'pitome r=4', spec: { method: 'pitome', r: 4 }, oracle: { 'deit-tiny': { agreement: 0.958, kl: 0.019, fraction: 0.866 } } },
];

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../shared/data/deit-tiny' },
    images: { type: 'string', default: '../shared/data/imagenet-sample/images' },
    limit: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    only: { type: 'string' },
    variant: { type: 'string', multiple: true },
    json: { type: 'string' },
  },
});

interface Planned {
  name: string;
  hooks: ForwardHooks;
  gmacs: number;
  oracle?: OracleFigures;
  decisions: PptDecision[];
}

/** Hooks and the GMACs the method counts for one variant. */
function plan(model: ViTModel, name: string, spec: VariantSpec, oracle?: OracleFigures): Planned {
  const cfg = model.config;
  const decisions: PptDecision[] = [];
  switch (spec.method) {
    case 'tome':
      return { name, hooks: tomeHooks(spec.r), gmacs: modelGmacs(cfg, tomeTokens(cfg, spec.r)), oracle, decisions };
    case 'mctf': {
      const { method: _, ...settings } = spec;
      return { name, hooks: mctfHooks(settings), gmacs: mctfGmacs(cfg, settings), oracle, decisions };
    }
    case 'ppt': {
      const { method: _, ...settings } = spec;
      return { name, hooks: pptHooks(settings, { onLayer: (d) => decisions.push(d) }), gmacs: modelGmacs(cfg, pptTokens(cfg, settings)), oracle, decisions };
    }
    case 'pitome': {
      const { method: _, ...settings } = spec;
      return { name, hooks: pitomeHooks(settings), gmacs: modelGmacs(cfg, pitomeTokens(cfg, settings.r)), oracle, decisions };
    }
  }
}

function parseVariant(text: string): { name: string; spec: VariantSpec } {
  const eq = text.indexOf('=');
  if (eq < 1) throw new Error(`--variant expects NAME=JSON, found '${text}'`);
  const spec = JSON.parse(text.slice(eq + 1)) as VariantSpec;
  if (!['tome', 'mctf', 'ppt', 'pitome'].includes(spec.method))
    throw new Error(`--variant ${text.slice(0, eq)}: expected "method" tome | mctf | ppt | pitome, found ${JSON.stringify(spec.method)}`);
  return { name: text.slice(0, eq), spec };
}

const model = await loadModelSpec(values.model!, { quiet: true });
const cfg = model.config;
const modelName = path.basename(path.resolve(values.model!));
const runner = new ViTRunner(model, await createKernels(values.backend as Backend));
const limit = values.limit !== undefined ? Number(values.limit) : undefined;
const images = labelImages(listImages(values.images!).slice(0, limit), cfg.labels);

const prefixes = values.only?.split(',');
const chosen = values.variant?.length
  ? values.variant.map(parseVariant).map((v) => plan(model, v.name, v.spec))
  : ORACLE_TABLE.filter((v) => v.oracle[modelName]).map((v) => plan(model, v.name, v.spec, v.oracle[modelName]));
const planned = chosen.filter((p) => !prefixes || prefixes.some((prefix) => p.name.startsWith(prefix)));

const variants: Variant[] = [{ name: 'dense' }, ...planned.map((p) => ({ name: p.name, hooks: () => p.hooks }))];
const [dense, ...results] = await evaluateVariants(runner, images, variants);
const dGmacs = denseGmacs(cfg);
const denseMs = dense.images.map((r) => r.ms);

const rows = planned.map((p, i) => {
  const r = results[i];
  const a = agreementWithDense(dense, r);
  const timeRatio = median(r.images.map((im, j) => im.ms / denseMs[j]));
  const fraction = p.gmacs / dGmacs;
  const o = p.oracle;
  const within = o
    ? { agreement: Math.abs(a.agreement - o.agreement) <= 0.02, kl: Math.abs(a.kl / o.kl - 1) <= 0.2, gmacs: Math.abs(fraction - o.fraction) <= 0.001 }
    : null;
  const pruneShare = p.decisions.length ? p.decisions.filter((d) => d.pruned).length / p.decisions.length : null;
  return {
    name: p.name,
    fraction,
    executedFraction: r.gmacs / dGmacs,
    top1: r.top1,
    agreement: a.agreement,
    kl: a.kl,
    timeRatio,
    pruneShare,
    oracle: o ?? null,
    within,
  };
});

const f3 = (x: number) => x.toFixed(3);
console.log(
  `\n${modelName}, ${images.length} images, backend ${runner.kernels.name}; dense top-1 ${f3(dense.top1)}, ${dGmacs.toFixed(4)} GMACs, ${median(denseMs).toFixed(2)} ms/image (median)\n`,
);
console.log('| variant | GMACs (× dense) | top-1 | agreement | KL | time (× dense) | oracle agreement / KL / GMACs | within |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const executed = Math.abs(r.executedFraction - r.fraction) > 1e-9 ? ` (forward runs ${f3(r.executedFraction)})` : '';
  const share = r.pruneShare !== null ? ` [pruned in ${(100 * r.pruneShare).toFixed(0)} % of decisions]` : '';
  const oracle = r.oracle ? `${f3(r.oracle.agreement)} / ${f3(r.oracle.kl)} / ${f3(r.oracle.fraction)}` : '—';
  const within = r.within
    ? Object.entries(r.within)
        .filter(([, ok]) => !ok)
        .map(([k]) => `${k} outside`)
        .join(', ') || 'yes'
    : '—';
  console.log(
    `| ${r.name}${share} | ${f3(r.fraction)}${executed} | ${f3(r.top1)} | ${f3(r.agreement)} | ${r.kl.toFixed(4)} | ${r.timeRatio.toFixed(2)} | ${oracle} | ${within} |`,
  );
}
if (values.json)
  writeFileSync(
    values.json,
    JSON.stringify({ model: modelName, images: images.length, backend: runner.kernels.name, dense: { top1: dense.top1, gmacs: dGmacs }, rows }, null, 2) + '\n',
  );
