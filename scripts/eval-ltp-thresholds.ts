/**
 * Learned LTP thresholds (thresholds.json from `vitprune learn-ltp`) on a split of labelled images,
 * against the dense model, the calibrated thresholds they started from (stored in the file), LTP's
 * ramp calibrated to the same budget on the same calibration images (what `compare` runs as 'ltp';
 * calibrated again from the file's calibration record: folder, split, count), and top-k
 * at the GMACs the learned thresholds execute on these images (its keep rate solved by the
 * registry's budget solver):
 *
 *   npx tsx scripts/eval-ltp-thresholds.ts --model DIR --images DIR [--split odd] [--labels CSV] [--json] FILE...
 *
 * Per file and method: agreement with the dense top-1, mean KL(dense ‖ pruned), top-1, GMACs
 * (mean executed, × dense). Dense and the LTP variants run interleaved on each image (decoded
 * once); top-k runs in a second pass, as its keep rate depends on the first pass's GMACs.
 * Single thread; ms/image is the forward pass only, on whatever else the machine is doing.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadModelSpec } from '../src/cli/common.js';
import { labelImages, listImages, selectSplit, spreadSample, type Split } from '../src/eval/dataset.js';
import { agreementWithDense, evaluateVariants, type EvalResult, type Variant } from '../src/eval/evaluate.js';
import { createKernels } from '../src/kernels/index.js';
import { ViTRunner } from '../src/model/vit.js';
import { loadImageTensor } from '../src/image/file.js';
import { denseGmacs } from '../src/model/gmacs.js';
import type { ForwardHooks } from '../src/model/hooks.js';
import { topk } from '../src/prune/evit.js';
import { ltp, ltpHooks, type LtpThresholds } from '../src/prune/ltp.js';
import { parseLtpThresholds, type LtpThresholdsFile } from '../src/prune/ltp-thresholds.js';
import { calibrationRun } from '../src/prune/method.js';

const { values, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    images: { type: 'string' },
    split: { type: 'string', default: 'odd' },
    labels: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
if (!values.model || !values.images || files.length === 0) {
  console.error('usage: npx tsx scripts/eval-ltp-thresholds.ts --model DIR --images DIR [--split odd] [--labels CSV] [--json] thresholds.json...');
  process.exit(1);
}
const model = await loadModelSpec(values.model, { quiet: true });
const cfg = model.config;
const runner = new ViTRunner(model, await createKernels('wasm'));
const images = labelImages(selectSplit(listImages(values.images), values.split as Split), cfg.labels, values.labels);
const dense = denseGmacs(cfg);

/** The thresholds a file's learning started from: its "initial" record (method and θ). */
function initialThresholds(file: LtpThresholdsFile, source: string): { method: string; thresholds: LtpThresholds } {
  const { method, theta } = (file.initial ?? {}) as { method?: unknown; theta?: unknown };
  if (!Array.isArray(theta) || !theta.every((t) => typeof t === 'number')) throw new Error(`${source}: expected "initial": { "theta": [...] }`);
  return { method: String(method), thresholds: { theta, unit: file.unit } };
}

/** LTP's ramp at the file's budget, calibrated on the file's calibration images (folder, split, count), as compare plans 'ltp'. */
async function rampHooks(file: LtpThresholdsFile): Promise<ForwardHooks> {
  const { folder, split, images: count } = file.calibration as { folder: string; split: Split | null; images: number };
  const all = selectSplit(listImages(folder), split ?? undefined);
  const inputs = spreadSample(all, count).map((f) => loadImageTensor(f, cfg.preprocess));
  return (await ltp.plan(cfg, { budget: file.budget }, { calibration: calibrationRun(runner, inputs) })).hooks(0);
}

const learned = files.map((file) => ({ file, thresholds: parseLtpThresholds(readFileSync(file, 'utf8'), file, cfg) }));
const LTP_ROWS = 3; // learned, its start, the ramp
const ltpRows: { name: string; hooks: ForwardHooks }[][] = [];
for (const { file, thresholds } of learned) {
  const start = initialThresholds(thresholds, file);
  ltpRows.push([
    { name: 'ltp-learned', hooks: ltpHooks(thresholds) },
    { name: `ltp-calibrated (${start.method}: the start)`, hooks: ltpHooks(start.thresholds) },
    { name: "ltp-calibrated (ramp: compare's ltp)", hooks: await rampHooks(thresholds) },
  ]);
}
const firstPass: Variant[] = [
  { name: 'dense' },
  ...ltpRows.flatMap((rows, i) => rows.map(({ name, hooks }) => ({ name: `${name} ${files[i]}`, hooks: () => hooks }))),
];
const [denseResult, ...ltpResults] = await evaluateVariants(runner, images, firstPass, { progress: true });
const ltpResult = (file: number, row: number) => ltpResults[LTP_ROWS * file + row];
const topkPlans = await Promise.all(learned.map((_, i) => topk.plan(cfg, { budget: ltpResult(i, 0).gmacs / dense })));
const keepRates = topkPlans.map((plan) => (plan.settings as { keepRate: number }).keepRate);
const topkResults = await evaluateVariants(
  runner,
  images,
  topkPlans.map((plan, i) => ({ name: `topk ρ=${keepRates[i]}`, hooks: (image: number) => plan.hooks(image) })),
  { progress: true },
);

const row = (method: string, r: EvalResult, extra: Record<string, unknown> = {}) => {
  const { agreement, kl } = agreementWithDense(denseResult, r);
  return { method, agreement, kl, top1: r.top1, gmacs: r.gmacs, fraction: r.gmacs / dense, msPerImage: r.msPerImage, ...extra };
};
const report = {
  model: values.model,
  split: values.split,
  images: images.length,
  dense: { top1: denseResult.top1, gmacs: denseResult.gmacs, msPerImage: denseResult.msPerImage },
  files: learned.map(({ file, thresholds }, i) => ({
    file,
    budget: thresholds.budget,
    rows: [...ltpRows[i].map(({ name }, j) => row(name, ltpResult(i, j))), row('topk', topkResults[i], { keepRate: keepRates[i] })],
  })),
};
if (values.json) {
  console.log(JSON.stringify(report, null, 2));
} else {
  console.log(`${values.model}: ${images.length} images (${values.split}), dense top-1 ${(100 * denseResult.top1).toFixed(1)} %, ${dense.toFixed(4)} GMACs\n`);
  console.log('| file | budget | method | GMACs (× dense) | agreement | KL | top-1 % |');
  console.log('|---|---|---|---|---|---|---|');
  for (const f of report.files) {
    for (const r of f.rows) {
      console.log(
        `| ${f.file} | ${f.budget} | ${r.method} | ${r.gmacs.toFixed(4)} (${r.fraction.toFixed(3)}) | ${r.agreement.toFixed(3)} | ${r.kl.toFixed(4)} | ${(100 * r.top1).toFixed(1)} |`,
      );
    }
  }
}
