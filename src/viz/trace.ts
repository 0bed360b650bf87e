import { modelCrop, toNormalizedTensor } from '../image/preprocess.js';
import { loadImage } from '../image/file.js';
import type { RgbImage } from '../image/rgb-image.js';
import type { PreprocessConfig } from '../model/types.js';
import { numPatches, prefixTokens } from '../model/types.js';
import type { BlockState, ForwardHooks, TokenReduction, ViTRunner } from '../model/vit.js';
import type { Ablation, PruningPlan } from '../prune/methods.js';
import type { PruneSchedule } from '../prune/schedule.js';
import { ZERO_TPRUNE_ABLATIONS, zeroTPruneHooks } from '../prune/zero-tprune.js';

/**
 * Which patches a pruning method removes, and where, on one image (Node only): the forward pass runs with
 * the plan's hooks, and every token reduction is recorded in patch indices (token id − prefix:
 * patch p is row ⌊p / side⌋, column p mod side of the patch grid).
 *
 * Zero-TPrune reports its two stages per pruning layer (S: similarity, I: importance) through
 * its `onLayer` callback. Any other method is traced through the token ids: a patch whose id is
 * alive before a hook and gone after it was removed there. ToMe's merged-away tokens are
 * recorded the same way (their destination keeps its own id), EViT's fused token (a negative
 * id) is no patch and is ignored.
 */

export interface TokenStage {
  after: number; // 1-indexed block the reduction followed (hook 'attention': that block's attention)
  hook: 'attention' | 'block'; // afterAttention (inside the block, before its MLP) or afterBlock
  stage: 'S' | 'I' | null; // Zero-TPrune stage; null for other methods
  dropped: number[]; // patch indices removed here, ascending
}

export interface TokenTrace {
  logits: Float32Array; // [numClasses]
  gmacs: number; // executed
  stages: TokenStage[]; // in execution order
  kept: number[]; // patch indices alive at the end, ascending
}

/** The cropped RGB image the model sees (timm's eval transform without the normalisation). */
export function modelInputCrop(file: string, cfg: PreprocessConfig): RgbImage /* [S, S, 3] */ {
  return modelCrop(loadImage(file), cfg);
}

/** The model input for a crop from `modelInputCrop` (equal to `preprocess` of the decoded image). */
export function cropTensor(crop: RgbImage, cfg: PreprocessConfig): Float32Array /* [3, S, S] */ {
  return toNormalizedTensor(crop, cfg.mean, cfg.std);
}

/** Run `plan` (null: dense) on `input` and record every reduction of the patch tokens. */
export function traceTokens(runner: ViTRunner, input: Float32Array, plan: PruningPlan | null): TokenTrace {
  const cfg = runner.config;
  const prefix = prefixTokens(cfg);
  const stages: TokenStage[] = [];

  let hooks: ForwardHooks = {};
  if (plan?.method === 'zero-tprune') {
    const { steps, ablation } = plan.schedule as PruneSchedule & { ablation: Ablation };
    hooks = zeroTPruneHooks({ steps }, {
      ...ZERO_TPRUNE_ABLATIONS[ablation],
      onLayer(record) {
        stages.push({ after: record.after, hook: 'block', stage: 'S', dropped: patchIndices(record.droppedS, prefix) });
        stages.push({ after: record.after, hook: 'block', stage: 'I', dropped: patchIndices(record.droppedI, prefix) });
      },
    });
  } else if (plan) {
    hooks = recordReductions(plan.hooks(0), prefix, (stage) => stages.push(stage));
  }
  const { logits, gmacs } = runner.forward(input, hooks);

  const alive = new Uint8Array(numPatches(cfg)).fill(1);
  for (const s of stages) for (const p of s.dropped) alive[p] = 0;
  const kept = Array.from(alive.keys()).filter((p) => alive[p]);
  return { logits, gmacs, stages, kept };
}

/** The patch indices (id − prefix) among token ids, ascending; prefix tokens and EViT's fused token (negative id) are none. */
function patchIndices(ids: ArrayLike<number>, prefix: number): number[] {
  return Array.from(ids, (id) => id - prefix).filter((p) => p >= 0).sort((a, b) => a - b);
}

/** Wrap `inner` so that every reduction it returns is reported (in patch indices) before it is applied. */
function recordReductions(inner: ForwardHooks, prefix: number, onStage: (stage: TokenStage) => void): ForwardHooks {
  const wrap = (hook: ((state: BlockState) => TokenReduction | void) | undefined, point: TokenStage['hook']) => {
    if (!hook) return undefined;
    return (state: BlockState): TokenReduction | void => {
      const before = Array.from(state.tokenIds); // the runner rewrites tokenIds when it applies the reduction
      const r = hook(state);
      if (!r) return r;
      const after = new Set(r.kind === 'keep' ? Array.from(r.indices, (i) => before[i]) : Array.from(r.tokenIds.subarray(0, r.n)));
      const dropped = patchIndices(before.filter((id) => !after.has(id)), prefix);
      onStage({ after: state.block + 1, hook: point, stage: null, dropped });
      return r;
    };
  };
  return { afterAttention: wrap(inner.afterAttention?.bind(inner), 'attention'), afterBlock: wrap(inner.afterBlock?.bind(inner), 'block') };
}
