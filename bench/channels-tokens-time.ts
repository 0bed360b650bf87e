/**
 * Wall time of channel pruning + token pruning against the original dense model at one total
 * GMACs budget (issue 17), beside token pruning alone at the same budget. Four forward passes
 * alternate on the same images for `--runs` rounds after warm-up: the original model dense, the
 * original with `--method` at `--total`, the channel-pruned model dense, and the channel-pruned
 * model with `--method` at the budget that makes its GMACs `--total` × the original's. Each ratio
 * is the median of the per-round ratios to the original dense pass (a shared machine's slow
 * moments hit both sides).
 *
 *   npx tsx bench/channels-tokens-time.ts --channels DIR [--model DIR] [--total 0.65] [--method auto]
 *       [--runs N] [--images DIR] [--threads N]
 *
 * Inputs: the first 4 images of --images (default: the shared dev images), preprocessed.
 */
import { parseArgs } from 'node:util';
import { loadModelSpec } from '../src/cli/common.js';
import { listImages } from '../src/eval/dataset.js';
import { median } from '../src/eval/metrics.js';
import { loadImageTensor } from '../src/image/file.js';
import { createKernels } from '../src/kernels/index.js';
import { denseGmacs } from '../src/model/gmacs.js';
import type { ForwardHooks } from '../src/model/hooks.js';
import { ViTRunner } from '../src/model/vit.js';
import { planPruning } from '../src/prune/registry.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../shared/data/deit-tiny' },
    channels: { type: 'string' },
    total: { type: 'string', default: '0.65' },
    method: { type: 'string', default: 'auto' },
    images: { type: 'string', default: '../shared/data/imagenet-sample/images' },
    runs: { type: 'string', default: '31' },
    threads: { type: 'string', default: '1' },
  },
});
if (!values.channels) throw new Error('expected --channels DIR, the channel-pruned model folder (vitprune prune-channels --out)');

const kernels = await createKernels('wasm', { threads: Number(values.threads) });
const original = new ViTRunner(await loadModelSpec(values.model!, { quiet: true }), kernels);
const channels = new ViTRunner(await loadModelSpec(values.channels, { quiet: true }), kernels);
const total = Number(values.total);
const originalGmacs = denseGmacs(original.config);
// --budget on the channel-pruned model is a fraction of its own dense GMACs.
const channelsBudget = (total * originalGmacs) / denseGmacs(channels.config);
const tokensAlone = await planPruning(original.config, { method: values.method!, budget: total });
const channelsTokens = await planPruning(channels.config, { method: values.method!, budget: channelsBudget });

if (JSON.stringify(channels.config.preprocess) !== JSON.stringify(original.config.preprocess)) {
  throw new Error(`--channels ${values.channels} preprocesses images differently from --model ${values.model}: they cannot be timed on the same inputs`);
}
const inputs = listImages(values.images!)
  .slice(0, 4)
  .map((file) => loadImageTensor(file, original.config.preprocess)); // 4 inputs, each [inChannels, imageSize, imageSize]

interface Timed {
  name: string;
  runner: ViTRunner;
  hooks?: () => ForwardHooks;
  ms: number[];
  gmacs: number;
}
const variants: Timed[] = [
  { name: 'original dense', runner: original, ms: [], gmacs: 0 },
  { name: `original + ${values.method} ${total}`, runner: original, hooks: () => tokensAlone.hooks(0), ms: [], gmacs: 0 },
  { name: 'channels dense', runner: channels, ms: [], gmacs: 0 },
  { name: `channels + ${values.method} ${channelsBudget.toFixed(4)}`, runner: channels, hooks: () => channelsTokens.hooks(0), ms: [], gmacs: 0 },
];
const run = (v: Timed, x: Float32Array) => {
  const start = performance.now();
  v.gmacs = v.runner.forward(x, v.hooks?.()).gmacs;
  return performance.now() - start;
};
for (const x of inputs) for (const v of variants) run(v, x); // warm-up
for (let r = 0; r < Number(values.runs); r++) {
  const x = inputs[r % inputs.length];
  for (const v of variants) v.ms.push(run(v, x));
}
const dense = variants[0];
for (const v of variants) {
  const timeRatio = median(v.ms.map((ms, i) => ms / dense.ms[i]));
  console.log(
    `${v.name.padEnd(28)} GMACs ${v.gmacs.toFixed(4)} (×${(v.gmacs / originalGmacs).toFixed(3)})  time ×${timeRatio.toFixed(3)}  median ${median(v.ms).toFixed(1)} ms`,
  );
}
