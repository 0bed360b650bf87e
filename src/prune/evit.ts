import type { ViTConfig } from '../model/types.js';
import { prefixTokens } from '../model/types.js';
import type { BlockState, ForwardHooks, TokenReduction } from '../model/hooks.js';
import type { BlockTokens } from '../model/gmacs.js';
import { initialTokens, modelGmacs } from '../model/gmacs.js';
import { ScheduleError } from '../errors.js';
import type { BudgetKnob } from './budget.js';
import { recordDecision } from './decisions.js';
import { defineMethod } from './method.js';
import { rankedRange } from './rank.js';

/**
 * EViT token reorganisation (Liang et al., ICLR 2022; docs/algorithms.md §6.1) and its no-fusion
 * variant, top-k attention-to-CLS pruning, applied off the shelf (EViT itself is trained with
 * the reorganisation; this is not). Inside the listed blocks, between the attention residual
 * add and the MLP:
 *
 *   a_j = (1/H) Σ_h P_h[0, j]        attentiveness: the CLS query row of P [H, n, n], heads averaged
 *   k   = ⌈ρ·(n − prefix)⌉           n counts every token alive, a fused token included
 *   keep the prefix tokens and the k non-prefix tokens with the largest a_j, in their order
 *   EViT:  append x_fused = Σ_{j dropped} a_j·x_j   (a sum: the authors' code does not divide
 *          by Σ a_j); later blocks treat it as a normal token, with token id FUSED_TOKEN_ID
 *   top-k: the other tokens are simply dropped
 *
 * Nothing happens when k keeps every token. Ties in a_j keep the lower position. ⌈·⌉ allows
 * 1e-9 of rounding, so 0.7·140 = 98.00000000000001 keeps 98 (the authors' Python would keep 99).
 */

/** Blocks 4, 7, 10 (1-indexed), EViT's `drop_loc`; 0-indexed like `BlockState.block`. */
export const EVIT_BLOCKS: readonly number[] = [3, 6, 9];

/** The token id of a fused token (it stands for no single original patch). */
export const FUSED_TOKEN_ID = -1;

export interface EvitOptions {
  keepRate: number; // ρ in [0, 1]
  fuse: boolean; // true: EViT (fused token appended); false: top-k (dropped)
  blocks?: readonly number[]; // 0-indexed blocks that reduce; default EVIT_BLOCKS
}

/** a_j = (1/H) Σ_h P_h[0, j] for every j < n.  probs [H, n, n] (row = query) → [n]. */
export function clsAttentiveness(probs: Float32Array, heads: number, n: number): Float64Array {
  const a = new Float64Array(n);
  for (let h = 0; h < heads; h++) {
    const row = h * n * n; // query 0 of head h
    for (let j = 0; j < n; j++) a[j] += probs[row + j];
  }
  for (let j = 0; j < n; j++) a[j] /= heads;
  return a;
}

/** k = ⌈ρ·(n − prefix)⌉: non-prefix tokens kept out of n. */
export function evitKeepCount(keepRate: number, n: number, prefix: number): number {
  return Math.min(n - prefix, Math.ceil(keepRate * (n - prefix) - 1e-9));
}

/** Positions of the prefix tokens and of the k non-prefix tokens with the largest a, ascending. */
export function attentiveTokens(a: Float64Array, n: number, prefix: number, k: number): Int32Array {
  const kept = new Int32Array(prefix + k);
  for (let p = 0; p < prefix; p++) kept[p] = p;
  kept.set(rankedRange(a, prefix, n).subarray(0, k), prefix);
  kept.subarray(prefix).sort(); // numeric, ascending
  return kept;
}

/** x_fused = Σ_{j ∈ dropped} a_j·x_j.  x [n, D], a [n] → [D]. */
export function fuseTokens(x: Float32Array, D: number, a: Float64Array, dropped: ArrayLike<number>): Float32Array {
  const sum = new Float64Array(D);
  for (let i = 0; i < dropped.length; i++) {
    const j = dropped[i];
    for (let d = 0; d < D; d++) sum[d] += a[j] * x[j * D + d];
  }
  return Float32Array.from(sum);
}

/** One EViT / top-k step on a block's state at the afterAttention hook (where every token alive entered the attention). */
export function evitReduce(state: BlockState, keepRate: number, fuse: boolean): TokenReduction | void {
  const { config: cfg, n } = state;
  if (n !== state.attentionTokens) {
    throw new RangeError(`EViT reduces right after the attention: expected the ${state.attentionTokens} tokens that entered it, found ${n}`);
  }
  const prefix = prefixTokens(cfg);
  const k = evitKeepCount(keepRate, n, prefix);
  if (k === n - prefix) return;
  const a = clsAttentiveness(state.probs, cfg.heads, n);
  recordDecision('attentiveness', a, [n]);
  const kept = attentiveTokens(a, n, prefix, k);
  if (!fuse) return { kind: 'keep', indices: kept };

  const D = cfg.dim;
  const isKept = new Uint8Array(n);
  for (const p of kept) isKept[p] = 1;
  const dropped = Array.from({ length: n }, (_, p) => p).filter((p) => !isKept[p]);
  const x = new Float32Array((kept.length + 1) * D); // [kept + fused, D]
  kept.forEach((p, row) => x.set(state.x.subarray(p * D, (p + 1) * D), row * D));
  const fused = fuseTokens(state.x, D, a, dropped);
  recordDecision('fused', fused, [D]);
  x.set(fused, kept.length * D);
  const tokenIds = Int32Array.from([...Array.from(kept, (p) => state.tokenIds[p]), FUSED_TOKEN_ID]);
  return { kind: 'replace', n: kept.length + 1, x, sizes: null, tokenIds };
}

/** Forward hooks for EViT (fuse) or top-k (no fuse). Stateless per image: one object serves a whole run. */
export function evitHooks(options: EvitOptions): ForwardHooks {
  const { keepRate, fuse } = options;
  if (!(keepRate >= 0 && keepRate <= 1)) throw new ScheduleError(`EViT keep rate: expected ρ in [0, 1], found ${keepRate}`);
  const blocks = new Set(options.blocks ?? EVIT_BLOCKS);
  return {
    afterAttention(state) {
      if (blocks.has(state.block)) return evitReduce(state, keepRate, fuse);
    },
  };
}

/** Token counts per block without running the model: a listed block runs its MLP on prefix + k (+ 1 fused). */
export function evitTokens(cfg: ViTConfig, options: EvitOptions): BlockTokens[] {
  const prefix = prefixTokens(cfg);
  const blocks = new Set(options.blocks ?? EVIT_BLOCKS);
  let n = initialTokens(cfg);
  return Array.from({ length: cfg.depth }, (_, b) => {
    const attention = n;
    if (blocks.has(b)) {
      const k = evitKeepCount(options.keepRate, n, prefix);
      if (k < n - prefix) n = prefix + k + (options.fuse ? 1 : 0);
    }
    return { attention, mlp: n };
  });
}

const KEEP_RATE_STEPS = 10_000;

/**
 * The keep rate as a budget knob (budget.ts): ρ on the grid 0, 0.0001, …, 1 (finer than the token
 * counts move on DeiT; an exact ρ could land in the 1e-9-wide windows the rounding tolerance of ⌈·⌉
 * creates). Among the grid's keep rates with the same GMACs, the one with the fewest decimals, then
 * the smallest, is reported (DeiT-S at 3.029 GMACs gives 0.7).
 */
export function keepRateKnob(cfg: ViTConfig, fuse: boolean, blocks?: readonly number[]): BudgetKnob<number> {
  const gmacs = (keepRate: number) => modelGmacs(cfg, evitTokens(cfg, { keepRate, fuse, blocks }));
  return {
    dense: KEEP_RATE_STEPS,
    sparse: 0,
    integer: true,
    settings: (step) => step / KEEP_RATE_STEPS,
    gmacs,
    canonical(step, cost) {
      const same = (i: number) => i >= 0 && i <= KEEP_RATE_STEPS && gmacs(i / KEEP_RATE_STEPS) === cost;
      let first = step;
      let last = step;
      while (same(first - 1)) first--;
      while (same(last + 1)) last++;
      for (let unit = KEEP_RATE_STEPS; unit >= 1; unit /= 10) {
        const candidate = Math.ceil(first / unit) * unit; // the smallest with at most log10(STEPS / unit) decimals
        if (candidate <= last) return candidate;
      }
      return step;
    },
    describe: (keepRate) => `keep rate ${keepRate}`,
  };
}

/** EViT (fuse) or top-k as a registered method (method.ts). */
function evitMethod(fuse: boolean) {
  return defineMethod<number>({
    name: fuse ? 'evit' : 'topk',
    summary: fuse
      ? 'EViT: at blocks 4, 7, 10 keep the patches the CLS token attends to most, fuse the others into one token'
      : 'top-k: at blocks 4, 7, 10 keep the patches the CLS token attends to most, drop the others',
    removal: fuse ? 'fused' : 'dropped',
    counts: 'fixed',
    keepRatio: (_, keepRate) => keepRate,
    knobs: (cfg) => [keepRateKnob(cfg, fuse)],
    tokens: (cfg, keepRate) => evitTokens(cfg, { keepRate, fuse }),
    hooks(keepRate) {
      const hooks = evitHooks({ keepRate, fuse });
      return () => hooks;
    },
    describe: (keepRate) => ({ keepRate }),
  });
}

export const evit = evitMethod(true);
export const topk = evitMethod(false);
