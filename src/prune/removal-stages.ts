import { wrapReductionHooks, type BlockState, type ForwardHooks, type TokenReduction } from '../model/hooks.js';

/** One removal stage of a method in a run (visualize draws each). */
export interface RemovalStage {
  after: number; // 1-indexed block the stage follows (hook 'attention': that block's attention)
  hook: 'attention' | 'block'; // beforeProjection or afterAttention (inside the block, before its MLP), or afterBlock
  stage: string | null; // the method's name for the stage (Zero-TPrune: 'S', 'I'); null: a whole reduction
  removed: Int32Array; // token ids (0 = CLS, prefix + p = patch p; negative: a fused token) gone from the run there
}

/**
 * `inner` reporting every reduction it returns as one stage, told apart by token ids: an id alive
 * before the hook and gone after it was removed there. ToMe's merged-away tokens are reported
 * the same way (their destination keeps its own id).
 */
export function reductionStages(inner: ForwardHooks, onStage: (stage: RemovalStage) => void): ForwardHooks {
  return wrapReductionHooks(inner, (hook, name) => (state: BlockState): TokenReduction | void => {
    const before = Array.from(state.tokenIds); // the runner rewrites tokenIds when it applies the reduction
    const r = hook(state);
    if (!r) return r;
    const after = new Set(r.kind === 'keep' ? Array.from(r.indices, (i) => before[i]) : Array.from(r.tokenIds.subarray(0, r.n)));
    const point = name === 'afterBlock' ? 'block' : 'attention';
    onStage({ after: state.block + 1, hook: point, stage: null, removed: Int32Array.from(before.filter((id) => !after.has(id))) });
    return r;
  });
}
