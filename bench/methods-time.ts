/**
 * Wall time of every registered method against dense at given budgets (issue 14: pruned / dense
 * time ≤ GMACs ratio + 0.05). For each method and budget, the dense and the pruned forward pass
 * alternate on the same images for `--runs` rounds after warm-up; the ratio is the median of the
 * per-round ratios (so a shared machine's slow moments hit both sides), beside the GMACs ratio.
 *
 *   npx tsx bench/methods-time.ts [--model DIR|random:deit_small_patch16_224] [--budgets 0.87,0.65]
 *       [--methods tome,mctf,...] [--runs N] [--images DIR] [--threads N] [--json FILE]
 *
 * Images: with --images, the first ones of that folder (preprocessed); else random inputs.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadModelSpec } from '../src/cli/common.js';
import { listImages } from '../src/eval/dataset.js';
import { median } from '../src/eval/metrics.js';
import { loadImageTensor } from '../src/image/file.js';
import { createKernels } from '../src/kernels/index.js';
import { denseGmacs } from '../src/model/gmacs.js';
import { seededRandom } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { planPruning, TOKEN_METHODS } from '../src/prune/registry.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../shared/data/deit-tiny' },
    images: { type: 'string' },
    budgets: { type: 'string', default: '0.87,0.65' },
    methods: {
      type: 'string',
      default: TOKEN_METHODS.filter((m) => m.counts === 'fixed')
        .map((m) => m.name)
        .join(','),
    },
    runs: { type: 'string', default: '15' },
    threads: { type: 'string', default: '1' },
    json: { type: 'string' },
  },
});

const model = await loadModelSpec(values.model!, { quiet: true });
const cfg = model.config;
const runner = new ViTRunner(model, await createKernels('wasm', { threads: Number(values.threads) }));
const runs = Number(values.runs);
const size = cfg.inChannels * cfg.imageSize * cfg.imageSize;
const rand = seededRandom(1);
const inputs = values.images
  ? listImages(values.images)
      .slice(0, 4)
      .map((f) => loadImageTensor(f, cfg.preprocess))
  : Array.from({ length: 4 }, () => Float32Array.from({ length: size }, () => rand() * 4 - 2));
const dense = denseGmacs(cfg);
const time = (run: () => void) => {
  const start = performance.now();
  run();
  return performance.now() - start;
};

const rows: { method: string; budget: number; gmacsRatio: number; timeRatio: number; denseMs: number; prunedMs: number; pass: boolean }[] = [];
for (const budget of values.budgets!.split(',').map(Number)) {
  for (const method of values.methods!.split(',')) {
    const plan = await planPruning(cfg, { method, budget });
    const hooks = plan.hooks(0);
    for (const x of inputs) runner.forward(x), runner.forward(x, hooks); // warm-up
    const denseMs: number[] = [];
    const prunedMs: number[] = [];
    let gmacs = 0;
    for (let r = 0; r < runs; r++) {
      const x = inputs[r % inputs.length];
      denseMs.push(time(() => runner.forward(x)));
      prunedMs.push(time(() => (gmacs = runner.forward(x, hooks).gmacs)));
    }
    const timeRatio = median(prunedMs.map((p, i) => p / denseMs[i]));
    const row = {
      method,
      budget,
      gmacsRatio: gmacs / dense,
      timeRatio,
      denseMs: median(denseMs),
      prunedMs: median(prunedMs),
      pass: timeRatio <= gmacs / dense + 0.05,
    };
    rows.push(row);
    console.log(
      `${method.padEnd(12)} ${budget}  GMACs ×${row.gmacsRatio.toFixed(3)}  time ×${timeRatio.toFixed(3)}  (${row.prunedMs.toFixed(1)} / ${row.denseMs.toFixed(1)} ms)  ${row.pass ? 'ok' : 'SLOWER than GMACs + 0.05'}`,
    );
  }
}
if (values.json) writeFileSync(values.json, JSON.stringify({ model: values.model, threads: Number(values.threads), runs, rows }, null, 2) + '\n');
