/**
 * Where Zero-TPrune's per-head score variances fall against VHF's window on real images: the
 * check docs/algorithms.md §1.4 asks for, since the variance scale of [0.01, 0.7] is our choice
 * (population variance of the patch scores rescaled to mean 1). Runs the keep-ratio preset
 * (after blocks 3/6/9) over a folder of images and reports, per pruning layer and stage (I′ =
 * the one-step pre-ranking on all tokens, I = full WPR on the S-stage's survivors), the share of
 * heads below, inside and above the window, the median variance, and how often no head was
 * inside (VHF then uses every head).
 *   npx tsx bench/vhf-heads.ts [--model DIR] [--images DIR] [--keep RHO] [--limit N] [--backend B]
 */
import { parseArgs } from 'node:util';
import { listImages } from '../src/eval/dataset.js';
import { median } from '../src/eval/metrics.js';
import { loadImageTensor } from '../src/image/file.js';
import { createKernels, type Backend } from '../src/kernels/index.js';
import { loadModelFolder } from '../src/model/folder.js';
import { prefixTokens } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import type { BlockState, ForwardHooks } from '../src/model/hooks.js';
import { keepRatioSchedule } from '../src/prune/schedule.js';
import { meanOneVariance } from '../src/prune/wpr.js';
import { defaultWprIterations, resolveZeroTPruneOptions, tokenImportance, zeroTPruneLayer, ZeroTPruneScratch } from '../src/prune/zero-tprune.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../shared/data/deit-tiny' },
    images: { type: 'string', default: '../shared/data/imagenet-sample/images' },
    keep: { type: 'string', default: '0.735' },
    limit: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
  },
});
const model = loadModelFolder(values.model!);
const cfg = model.config;
const runner = new ViTRunner(model, await createKernels(values.backend as Backend));
const schedule = keepRatioSchedule(cfg, Number(values.keep));
const files = listImages(values.images!).slice(0, values.limit === undefined ? undefined : Number(values.limit));
const options = resolveZeroTPruneOptions();
const [low, high] = options.vhfWindow;

/** Per "after/stage": every head's variance, and per layer whether some head was inside the window. */
const variances = new Map<string, number[]>();
const someInside = new Map<string, boolean[]>();

/** Variances of the per-head WPR scores tokenImportance left in `scratch`, over the patch tokens of the first c. */
function recordStage(key: string, scratch: ZeroTPruneScratch, c: number): void {
  const prefix = prefixTokens(cfg);
  const v = Array.from({ length: cfg.heads }, (_, h) => meanOneVariance(scratch.scores, h * scratch.maxTokens + prefix, h * scratch.maxTokens + c));
  variances.set(key, [...(variances.get(key) ?? []), ...v]);
  someInside.set(key, [...(someInside.get(key) ?? []), v.some((x) => x >= low && x <= high)]);
}

const steps = new Map(schedule.steps.map((s) => [s.after, s]));
let scratch: ZeroTPruneScratch | null = null;
const hooks: ForwardHooks = {
  afterBlock(state: BlockState) {
    const step = steps.get(state.block + 1);
    if (!step) return;
    scratch ??= ZeroTPruneScratch.forModel(cfg, state.kernels);
    const layer = zeroTPruneLayer(state, step.rS, step.rI, options, scratch);
    const keep = Int32Array.from(layer.keep); // the layer's arrays are views into the scratch
    const survivors = Int32Array.from([...layer.keep, ...layer.droppedI]).sort(); // alive after the S-stage
    // Recompute the two stages' per-head scores as the layer did, to read their variances. The
    // token lists go in the scratch's own buffers (the wasm kernels read them from its memory).
    const { alive } = scratch;
    for (let i = 0; i < state.n; i++) alive[i] = i;
    tokenImportance(state.probs, cfg.heads, state.n, alive, state.n, prefixTokens(cfg), 1, options, scratch);
    recordStage(`${step.after}/I'`, scratch, state.n);
    alive.set(survivors);
    const iterations = defaultWprIterations(state.block, cfg.depth);
    tokenImportance(state.probs, cfg.heads, state.n, alive, survivors.length, prefixTokens(cfg), iterations, options, scratch);
    recordStage(`${step.after}/I`, scratch, survivors.length);
    return { kind: 'keep', indices: keep };
  },
};
for (const file of files) runner.forward(loadImageTensor(file, cfg.preprocess), hooks);

const share = (xs: boolean[]) => (xs.filter(Boolean).length / xs.length).toFixed(3);
process.stdout.write(
  `${values.model}: keep ${values.keep} ${JSON.stringify(schedule.steps)}, ${files.length} images, ${cfg.heads} heads, window [${low}, ${high}]\n`,
);
process.stdout.write('after  stage  below   inside  above   median variance  layers with no head inside\n');
for (const step of schedule.steps) {
  for (const stage of ["I'", 'I']) {
    const v = variances.get(`${step.after}/${stage}`);
    if (!v) continue;
    const cells = [share(v.map((x) => x < low)), share(v.map((x) => x >= low && x <= high)), share(v.map((x) => x > high))];
    const none = share(someInside.get(`${step.after}/${stage}`)!.map((x) => !x));
    process.stdout.write(
      `${String(step.after).padStart(5)}  ${stage.padEnd(5)}  ${cells.join('   ')}   ${median(v).toFixed(4).padStart(15)}  ${none.padStart(26)}\n`,
    );
  }
}
