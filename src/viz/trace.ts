import { toNormalizedTensor } from '../image/preprocess.js';
import type { RgbImage } from '../image/rgb-image.js';
import type { PreprocessConfig } from '../model/types.js';
import { numPatches, prefixTokens } from '../model/types.js';
import type { ForwardHooks } from '../model/hooks.js';
import type { ViTRunner } from '../model/vit.js';
import type { PruningPlan } from '../prune/method.js';

/**
 * Which patches a pruning method removes, and where, on one image: the forward pass runs with
 * the plan's hooks, and every token reduction is recorded in patch indices (token id − prefix:
 * patch p is row ⌊p / side⌋, column p mod side of the patch grid).
 *
 * The plan reports its removal stages (PruningPlan.stagedHooks): Zero-TPrune its two per pruning
 * layer (S: similarity, I: importance), any other method each reduction, told apart by token ids.
 * EViT's fused token (a negative id) is no patch and is ignored.
 */

export interface TokenStage {
  after: number; // 1-indexed block the reduction followed (hook 'attention': that block's attention)
  hook: 'attention' | 'block'; // afterAttention (inside the block, before its MLP) or afterBlock
  stage: string | null; // the method's stage (Zero-TPrune: 'S', 'I'); null: a whole reduction
  dropped: number[]; // patch indices removed here, ascending
}

export interface TokenTrace {
  logits: Float32Array; // [numClasses]
  gmacs: number; // executed
  stages: TokenStage[]; // in execution order
  kept: number[]; // patch indices alive at the end, ascending
}

/** The model input for a crop from `modelCrop` (equal to `preprocess` of the decoded image). */
export function cropTensor(crop: RgbImage, cfg: PreprocessConfig): Float32Array /* [3, S, S] */ {
  return toNormalizedTensor(crop, cfg.mean, cfg.std);
}

/** Run `plan` (null: dense) on `input` and record every reduction of the patch tokens. */
export function traceTokens(runner: ViTRunner, input: Float32Array, plan: PruningPlan | null): TokenTrace {
  const cfg = runner.config;
  const prefix = prefixTokens(cfg);
  const stages: TokenStage[] = [];

  const hooks: ForwardHooks = plan
    ? plan.stagedHooks(0, ({ after, hook, stage, removed }) => stages.push({ after, hook, stage, dropped: patchIndices(removed, prefix) }))
    : {};
  const { logits, gmacs } = runner.forward(input, hooks);

  const alive = new Uint8Array(numPatches(cfg)).fill(1);
  for (const s of stages) for (const p of s.dropped) alive[p] = 0;
  const kept = Array.from(alive.keys()).filter((p) => alive[p]);
  return { logits, gmacs, stages, kept };
}

/** The patch indices (id − prefix) among token ids, ascending; prefix tokens and EViT's fused token (negative id) are none. */
function patchIndices(ids: ArrayLike<number>, prefix: number): number[] {
  return Array.from(ids, (id) => id - prefix)
    .filter((p) => p >= 0)
    .sort((a, b) => a - b);
}
