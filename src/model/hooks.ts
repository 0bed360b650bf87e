import type { FloatArray, Kernels } from '../kernels/types.js';
import type { BlockWeights, ViTConfig } from './types.js';

/**
 * How code outside the model takes part in a forward pass (ViTRunner.forward): a pruning method
 * reduces the token set at three points of every block, and an observer sees every intermediate
 * tensor. The model is never patched.
 *
 *   x = embed(image)                                   observe(−1, 'embed')
 *   for each block b:
 *     o = MHSA(LN1(x))                                 observe(b, 'ln1', 'qkv', 'attn.probs', 'attn.out')
 *         → beforeProjection(state)  may replace the tokens: x and o together (MCTF's one-step-ahead)
 *     x = x + proj(o)                                  observe(b, 'x.attn')
 *         → afterAttention(state)  may reduce tokens
 *     x = x + fc2(GELU(fc1(LN2(x))))                   observe(b, 'ln2', 'mlp.hidden', 'x.mlp')
 *         → afterBlock(state)      may reduce tokens
 *   logits = head(LN(x)[prefix])                       observe(depth, 'final.norm', 'logits')
 */

/** What a block has computed, handed to hooks. Views into the runner's buffers: valid during the call only. */
export interface BlockState<A extends FloatArray = Float32Array> {
  readonly config: ViTConfig; // the model's, with this block's per-head widths (blockConfig)
  readonly model: ViTConfig; // the model's own: the same object for every block and image (caches key on it; widths are the largest)
  readonly block: number; // 0-indexed block
  readonly n: number; // tokens alive (prefix tokens first)
  readonly x: A; // [n, D] residual stream (rows beyond n are stale)
  readonly probs: A; // [H, n_att, n_att] attention probabilities (row = query) of this block
  readonly attentionTokens: number; // n_att: tokens that entered this block's attention
  readonly qkv: A; // [n_att, 2H·qk + H·v] Q, K, V of this block's attention
  readonly attnOut: A; // [n, H·v] the heads' output, concatenated, before the projection (rows stale after a later reduction)
  readonly sizes: Float32Array | null; // [n] tokens represented by each token (merging methods), null = all 1
  readonly tokenIds: Int32Array; // [n] original position of each token (0 = CLS, prefix + p = patch p)
  readonly kernels: Kernels<A>; // the backend the buffers above belong to (hooks may run its kernels on them)
  readonly weights?: BlockWeights; // this block's weights as loaded (host arrays), for methods that recompute part of it (MCTF); the runner always gives them
}

/**
 * A change of the token set returned by a hook:
 *  - keep: the rows to keep, in the order they should appear (prefix tokens must stay first);
 *  - replace: a whole new token matrix (merging methods); at beforeProjection with the new
 *    tokens' attention output `attnOut` [n, H·v] too (required there, refused elsewhere).
 */
export type TokenReduction<A extends FloatArray = Float32Array> =
  | { kind: 'keep'; indices: ArrayLike<number> }
  | { kind: 'replace'; n: number; x: A; sizes: Float32Array | null; tokenIds: Int32Array; attnOut?: A };

/** The ids of the tokens at `positions` (a loop: TypedArray.map and Array.from call a closure per element). */
export function idsAt(tokenIds: Int32Array, positions: ArrayLike<number>): Int32Array {
  const ids = new Int32Array(positions.length);
  for (let i = 0; i < positions.length; i++) ids[i] = tokenIds[positions[i]];
  return ids;
}

/** The ids of the tokens alive after reduction `r` of a block whose tokens had `tokenIds`, in their new order. */
export function idsAfter<A extends FloatArray>(tokenIds: Int32Array, r: TokenReduction<A>): Int32Array {
  return r.kind === 'keep' ? idsAt(tokenIds, r.indices) : r.tokenIds.subarray(0, r.n);
}

/**
 * The tensors `observe` is shown, with their shapes (n = tokens alive at that point, H heads,
 * qk and v the block's per-head widths, D the width):
 *   'embed'       [n, D]             tokens entering block 0 (block −1)
 *   'ln1'         [n, D]             LN1(x)
 *   'qkv'         [n, 2H·qk + H·v]   Q heads, K heads, V heads (QkvLayout)
 *   'attn.probs'  [H, n, n]          attention probabilities, row = query
 *   'attn.out'    [n, H·v]           attention output, heads concatenated, before the projection
 *   'x.attn'      [n, D]             residual stream after the attention branch (after beforeProjection, before afterAttention)
 *   'ln2'         [n, D]             LN2(x)
 *   'mlp.hidden'  [n, mlpDim]        GELU(fc1(LN2(x)))
 *   'x.mlp'       [n, D]             residual stream after the MLP branch (before afterBlock)
 *   'final.norm'  [prefix, D]        the final LayerNorm of the prefix tokens (block = depth)
 *   'logits'      [classes]          the model's output (block = depth)
 */
export type TraceTensorName = 'embed' | 'ln1' | 'qkv' | 'attn.probs' | 'attn.out' | 'x.attn' | 'ln2' | 'mlp.hidden' | 'x.mlp' | 'final.norm' | 'logits';

export interface ForwardHooks<A extends FloatArray = Float32Array> {
  /** Between the heads and the output projection: state.x is the block's input, state.attnOut the heads' output; only 'replace' (with attnOut). */
  beforeProjection?(state: BlockState<A>): TokenReduction<A> | void;
  afterAttention?(state: BlockState<A>): TokenReduction<A> | void;
  afterBlock?(state: BlockState<A>): TokenReduction<A> | void;
  /**
   * Called only when present (no cost otherwise) with every tensor listed at TraceTensorName, in
   * the order computed: a view of the runner's buffer, valid during the call only (copy what you keep).
   */
  observe?(block: number, name: TraceTensorName, data: A, shape: readonly number[]): void;
}

/** The hooks that may reduce tokens, in the order a block calls them. */
export const REDUCTION_HOOKS = ['beforeProjection', 'afterAttention', 'afterBlock'] as const;
export type ReductionHook = (typeof REDUCTION_HOOKS)[number];
export type Reducer<A extends FloatArray = Float32Array> = (state: BlockState<A>) => TokenReduction<A> | void;

/** The reduction hooks `hooks` has, each (bound to `hooks`) replaced by wrap(hook, its name); nothing else (no observe). */
export function wrapReductionHooks<A extends FloatArray>(
  hooks: ForwardHooks<A>,
  wrap: (hook: Reducer<A>, name: ReductionHook) => Reducer<A>,
): Pick<ForwardHooks<A>, ReductionHook> {
  const wrapped: Pick<ForwardHooks<A>, ReductionHook> = {};
  for (const name of REDUCTION_HOOKS) {
    const hook = hooks[name];
    if (hook) wrapped[name] = wrap(hook.bind(hooks), name);
  }
  return wrapped;
}
