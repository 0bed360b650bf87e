/**
 * The exact tail (src/prune/exact-tail.ts, docs/methods.md): after the last block's attention
 * only the prefix tokens reach the logits (the MLP is per token; the final norm and the head read
 * the prefix rows), so dropping every patch token there, before the last MLP, leaves the logits
 * bit-identical and saves that MLP on the patches. Checks both on the first `--images N` dev
 * images of each model and prints the GMACs ratio.
 *
 *   npx tsx bench/last-block-exact.ts [--models ../shared/data/deit-tiny,../shared/data/vit-tiny] [--images 50]
 */
import { parseArgs } from 'node:util';
import { loadModelSpec } from '../src/cli/common.js';
import { listImages } from '../src/eval/dataset.js';
import { loadImageTensor } from '../src/image/file.js';
import { createKernels } from '../src/kernels/index.js';
import { denseGmacs } from '../src/model/gmacs.js';
import { ViTRunner } from '../src/model/vit.js';
import { exactTailHooks } from '../src/prune/exact-tail.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '../shared/data/deit-tiny,../shared/data/vit-tiny' },
    images: { type: 'string', default: '50' },
    folder: { type: 'string', default: '../shared/data/imagenet-sample/images' },
  },
});
const kernels = await createKernels('wasm', { threads: 1 });
for (const spec of values.models!.split(',')) {
  const model = await loadModelSpec(spec, { quiet: true });
  const cfg = model.config;
  const runner = new ViTRunner(model, kernels);
  const lastBlockPrefixOnly = exactTailHooks({}, cfg.depth);
  const files = listImages(values.folder!).slice(0, Number(values.images));
  let identical = 0;
  let gmacs = 0;
  for (const file of files) {
    const input = loadImageTensor(file, cfg.preprocess);
    const dense = runner.forward(input).logits;
    const reduced = runner.forward(input, lastBlockPrefixOnly);
    gmacs = reduced.gmacs;
    if (dense.every((v, i) => Object.is(v, reduced.logits[i]))) identical++;
  }
  console.log(`${spec}: ${identical}/${files.length} images with bit-identical logits; GMACs ×${(gmacs / denseGmacs(cfg)).toFixed(4)}`);
  runner.dispose();
}
