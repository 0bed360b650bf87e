import type { BlockTokens } from '../model/gmacs.js';
import { idsAfter, type BlockState, type ForwardHooks, type TokenReduction } from '../model/hooks.js';
import type { ViTConfig } from '../model/types.js';
import { blockConfig, prefixTokens } from '../model/types.js';

/**
 * The exact tail: after the last block's attention only the prefix tokens (CLS, and DIST when
 * distilled) reach the logits. The MLP works token by token, and the final norm and the head read
 * the prefix rows. So the patch tokens can go there, before the last MLP, and the logits stay
 * bit-identical: on DeiT-Tiny that is 0.954 × dense GMACs for nothing (bench/last-block-exact.ts).
 * `auto` adds it to the method it runs (auto.ts); any other reduction composes with it.
 */

/** MACs the exact tail saves on a run with executed `tokens`: the last MLP on every token but the prefix. */
export function exactTailSaving(cfg: ViTConfig, tokens: readonly BlockTokens[]): number {
  const last = cfg.depth - 1;
  const c = blockConfig(cfg, last);
  return Math.max(0, tokens[last].mlp - prefixTokens(cfg)) * 2 * c.dim * c.mlpDim;
}

/** `tokens` with the exact tail: the last block's MLP on the prefix tokens only. */
export function withExactTail(cfg: ViTConfig, tokens: readonly BlockTokens[]): BlockTokens[] {
  const last = cfg.depth - 1;
  return tokens.map((t, b) => (b === last ? { ...t, mlp: Math.min(t.mlp, prefixTokens(cfg)) } : { ...t }));
}

/**
 * `inner` followed by the exact tail: at the last block's afterAttention, whatever `inner`
 * returns there is cut to the prefix tokens (or, when it returns nothing, only those are kept);
 * `onTail` is told the ids the tail removed. Every other hook is `inner`'s. `depth`: the model's blocks.
 */
export function exactTailHooks(inner: ForwardHooks, depth: number, onTail?: (removed: Int32Array, state: BlockState) => void): ForwardHooks {
  return {
    beforeProjection: inner.beforeProjection?.bind(inner),
    afterBlock: inner.afterBlock?.bind(inner),
    observe: inner.observe?.bind(inner),
    afterAttention(state: BlockState): TokenReduction | void {
      const r = inner.afterAttention?.call(inner, state);
      if (state.block !== depth - 1) return r;
      const prefix = prefixTokens(state.model);
      const alive = r ? idsAfter(state.tokenIds, r) : state.tokenIds;
      onTail?.(alive.slice(prefix), state);
      if (!r) return { kind: 'keep', indices: Array.from({ length: prefix }, (_, i) => i) };
      if (r.kind === 'keep') return { kind: 'keep', indices: Array.from(r.indices).slice(0, prefix) };
      return { ...r, n: Math.min(r.n, prefix) };
    },
  };
}
