import type { PreparedLinear } from '../kernels/types.js';
import { allocBlockActivations, multiHeadAttention, type Block, type BlockActivations } from '../model/block.js';
import { initialTokens } from '../model/gmacs.js';
import type { BlockWeights, Linear, ViTConfig, ViTModel } from '../model/types.js';
import { blockConfig } from '../model/types.js';
import type { ViTRunner } from '../model/vit.js';
import {
  fitLogitScale,
  fitQkBasis,
  fitQueryMap,
  fitValueBases,
  refitProjection,
  RefitStatistics,
  type LogitScaleFit,
  type LogitScaleProblem,
} from './channels-fit.js';
import { centreColumns } from './channels-linalg.js';
import type { ChannelSelection } from './channels-select.js';
import { shrinkConfig, shrinkProj, shrinkQkv } from './channels-shrink.js';

/**
 * Build the pruned blocks one after another on the calibration images (docs/algorithms.md §5.3,
 * steps 5–6). Block b is fitted on the inputs it will really see: the calibration tokens after
 * the already pruned blocks 0…b−1. On those inputs (LN1 applied) the original block gives the
 * attention P_h and Y = proj(attn_out); the pruned block is made to reproduce them:
 *
 *   q/k basis     q′ = A_h·q, k′ = B_h·k, the best rank-qk′ factorisation of the logits q·k̃ over
 *                 all query/key pairs (fitQkBasis) instead of selected channels (default);
 *   query refit   without the basis: q′ = A_h·q, A_h the least-squares prediction of the keys from
 *                 the kept keys (fitQueryMap): the logits are reproduced as well as the kept keys allow;
 *   value basis   v′ = B_h·v, the r directions of the head outputs from which proj best rebuilds the
 *                 whole attention output, heads fitted jointly (fitValueBases, reduced-rank
 *                 regression) instead of the selected v channels;
 *   (a) logit scale  α_h minimises Σ KL(P_h ‖ softmax(α_h·q′k′ᵀ/√d))   (d = original width),
 *                 folded into the Q rows as γ_h = α_h·√(qk′/d) since the runtime divides by √qk′;
 *   (b) proj refit   W′_proj, b′ = ridge fit of Y on the pruned head outputs Z′ (with all the above).
 *
 * Every map is linear in the block input, so it folds into the kept qkv rows: the pruned model is
 * an ordinary ViT with smaller per-head widths. A model that loses no channel is returned as it is.
 *
 * The original blocks run as the runner prepared them (model/block.ts); a pruned block shares
 * their norms and MLP and adds only its own, smaller qkv and proj.
 */

export interface CompensationOptions {
  queryRefit: boolean;
  qkBasis: boolean; // q′ = A·q, k′ = B·k, the best rank-qk′ logits (fitQkBasis) instead of selected channels; overrides queryRefit
  valueBasis: boolean; // false: the selected v channels
  logitScale: boolean; // (a)
  refit: boolean; // (b); its reconstruction errors are measured either way
  ridge: number; // λ of the fits, relative to the mean diagonal of their Gram matrices
  logitScaleImages: number; // (a) uses the first this-many calibration images
  onBlock?: (done: number, total: number) => void;
}

export interface BlockCompensation {
  block: number;
  logitScale: number[] | null; // [H] fitted α_h (null: not fitted)
  attentionKlBefore: number[] | null; // [H] mean KL(P_h ‖ pruned attention) per query at α = 1
  attentionKlAfter: number[] | null; // [H] at the fitted α
  reconstructionBefore: number | null; // ‖Y − proj₀(Z′)‖² / ‖Y‖², proj₀ = kept (or basis-matched) columns of the original proj
  reconstructionAfter: number | null; // with the proj that was kept (the refit, unless it is off)
}

/** Buffers of the backend, sized once: a block's activations (every token; the original widths hold the pruned ones) and y. */
interface Workspace extends BlockActivations {
  y: Float32Array; // [n, D] original attention-branch output
}

/**
 * embeddings: per calibration image, the residual stream entering block 0 [tokens, D] (ViTRunner.embed); not modified.
 * runner: the model prepared on the backend the fits compute on.
 */
export function compensateBlocks(
  model: ViTModel,
  runner: ViTRunner,
  embeddings: readonly Float32Array[],
  selection: ChannelSelection,
  opts: CompensationOptions,
): { blocks: BlockWeights[]; reports: BlockCompensation[] } {
  const cfg = model.config;
  const { dim: D, heads: H } = cfg;
  if (cfg.blockWidths) throw new RangeError('channel pruning needs a model with the same widths in every block');
  if (runner.config !== cfg) throw new RangeError('compensateBlocks: expected a runner of the model being pruned, found one of another config');
  const pruned = shrinkConfig(cfg, selection.widths); // per-block widths: blockConfig(pruned, b)
  if (pruned.qkDim === cfg.qkDim && pruned.vDim === cfg.vDim && !pruned.blockWidths) {
    const unchanged = (block: number): BlockCompensation => ({
      block,
      logitScale: null,
      attentionKlBefore: null,
      attentionKlAfter: null,
      reconstructionBefore: null,
      reconstructionAfter: null,
    });
    return { blocks: model.weights.blocks, reports: model.weights.blocks.map((_, b) => unchanged(b)) };
  }
  const k = runner.kernels;
  const n = initialTokens(cfg);
  const ws: Workspace = { ...allocBlockActivations(k, cfg, n), y: k.alloc(n * D) };

  // Block inputs of the pruned model, per image [n, D]: the embeddings, then each pruned block's output.
  const xs = embeddings.map((x) => x.slice());

  const blocks: BlockWeights[] = [];
  const reports: BlockCompensation[] = [];
  model.weights.blocks.forEach((blk, b) => {
    const original = runner.blocks[b];
    const widths = blockConfig(pruned, b);
    const qkPruned = widths.qkDim < cfg.qkDim;
    const vPruned = widths.vDim < cfg.vDim;
    const needsMoments = (qkPruned && (opts.qkBasis || opts.queryRefit)) || (vPruned && opts.valueBasis);
    const moments = needsMoments ? blockMoments(cfg, original, xs, ws) : null;
    let queryMaps: Float64Array[] | null = null;
    let keyMaps: Float64Array[] | null = null;
    if (qkPruned && opts.qkBasis) {
      const bases = moments!.queryGram.map((g, h) => fitQkBasis(g, moments!.centredKeyGram[h], cfg.qkDim, widths.qkDim, opts.ridge));
      queryMaps = bases.map((f) => f.query);
      keyMaps = bases.map((f) => f.key);
    } else if (qkPruned && opts.queryRefit) {
      queryMaps = moments!.centredKeyGram.map((g, h) => fitQueryMap(g, cfg.qkDim, selection.qk[b][h], opts.ridge));
    }
    const logitScaleInputs = xs.slice(0, opts.logitScaleImages);
    const logit = qkPruned && opts.logitScale ? fitLogitScales(cfg, original, logitScaleInputs, selection.qk[b], queryMaps, keyMaps, ws) : null;
    const alpha = logit?.map((f) => f.alpha) ?? new Array<number>(H).fill(1);
    const values = vPruned && opts.valueBasis ? valueBases(cfg, blk.proj, moments!, widths.vDim, opts.ridge) : null;

    const qScale = alpha.map((a) => a * Math.sqrt(widths.qkDim / cfg.qkDim));
    const qkv = shrinkQkv(cfg, blk.qkv, selection.qk[b], selection.v[b], qScale, queryMaps, values?.maps ?? null, keyMaps);
    const proj0 = values?.proj ?? shrinkProj(cfg, blk.proj, selection.v[b]);
    const preparedQkv = k.prepareLinear(qkv);
    const refit = fitProjection(widths, original, preparedQkv, proj0, xs, opts.ridge, ws);
    const proj: Linear = opts.refit ? { ...proj0, weight: refit.weight, bias: refit.bias } : proj0;
    advance(original.withAttention(widths, preparedQkv, k.prepareLinear(proj)), xs, ws);
    const weights: BlockWeights = { ...blk, qkv, proj };
    blocks.push(weights);
    reports.push({
      block: b,
      logitScale: logit ? alpha : null,
      attentionKlBefore: logit?.map((f) => f.klBefore) ?? null,
      attentionKlAfter: logit?.map((f) => f.klAfter) ?? null,
      reconstructionBefore: refit.errorBefore,
      reconstructionAfter: opts.refit ? refit.errorAfter : refit.errorBefore,
    });
    opts.onBlock?.(b + 1, cfg.depth);
  });
  return { blocks, reports };
}

/** ws.normed = LN1(x); ws.qkv, ws.probs, ws.attnOut = the original block's q/k/v, attention and head outputs. */
function originalAttention(original: Block, x: Float32Array, ws: Workspace): void {
  ws.x.set(x);
  original.selfAttention(ws, initialTokens(original.config), null);
}

/** Second moments of the original block on the block inputs, per head. */
interface BlockMoments {
  centredKeyGram: Float64Array[]; // [H][qk, qk] Σ_images Σ_tokens (k − k̄)(k − k̄)ᵀ, k̄ = the image's mean key
  queryGram: Float64Array[]; // [H][qk, qk] Σ_images Σ_tokens q·qᵀ
  outputCovariance: Float64Array; // [H·v, H·v] covariance of the head outputs z = [P_h·V_h]_h over all tokens
}

function blockMoments(cfg: ViTConfig, original: Block, xs: Float32Array[], ws: Workspace): BlockMoments {
  const n = initialTokens(cfg);
  const { heads: H, qkDim: d, vDim: dv } = cfg;
  const stride = 2 * H * d + H * dv;
  const Z = H * dv;
  const keyGrams = Array.from({ length: H }, () => new Float64Array(d * d));
  const queryGrams = Array.from({ length: H }, () => new Float64Array(d * d));
  const outputGram = new Float64Array(Z * Z);
  const outputSum = new Float64Array(Z);
  const key = new Float64Array(n * d);
  for (const x of xs) {
    originalAttention(original, x, ws);
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < n; t++) for (let c = 0; c < d; c++) key[t * d + c] = ws.qkv[t * stride + H * d + h * d + c];
      centreColumns(key, n, d);
      addUpperGram(keyGrams[h], key, 0, d, n, d);
      addUpperGram(queryGrams[h], ws.qkv, h * d, stride, n, d);
    }
    addUpperGram(outputGram, ws.attnOut, 0, Z, n, Z);
    for (let t = 0; t < n; t++) for (let c = 0; c < Z; c++) outputSum[c] += ws.attnOut[t * Z + c];
  }
  const rows = xs.length * n;
  const mean = outputSum.map((s) => s / rows);
  for (let c = 0; c < Z; c++) for (let c2 = c; c2 < Z; c2++) outputGram[c * Z + c2] = outputGram[c * Z + c2] / rows - mean[c] * mean[c2];
  return {
    centredKeyGram: keyGrams.map((g) => symmetrise(g, d)),
    queryGram: queryGrams.map((g) => symmetrise(g, d)),
    outputCovariance: symmetrise(outputGram, Z),
  };
}

/** gram[c, c'] += Σ_t x[t·stride + offset + c]·x[t·stride + offset + c'] for c ≤ c' (upper triangle). */
function addUpperGram(gram: Float64Array, x: ArrayLike<number>, offset: number, stride: number, n: number, d: number): void {
  for (let t = 0; t < n; t++) {
    const row = t * stride + offset;
    for (let c = 0; c < d; c++) {
      const xc = x[row + c];
      for (let c2 = c; c2 < d; c2++) gram[c * d + c2] += xc * x[row + c2];
    }
  }
}

function symmetrise(g: Float64Array, d: number): Float64Array {
  for (let c = 0; c < d; c++) for (let c2 = 0; c2 < c; c2++) g[c * d + c2] = g[c2 * d + c];
  return g;
}

/** The value bases of the heads (fitValueBases) and proj₀ [D, H·r], the proj columns that match them. */
function valueBases(cfg: ViTConfig, proj: Linear, moments: BlockMoments, r: number, ridge: number): { maps: Float64Array[]; proj: Linear } {
  const { heads: H, dim: D } = cfg;
  const fit = fitValueBases(moments.outputCovariance, proj.weight, D, H, cfg.vDim, r, ridge);
  const weight = new Float32Array(D * H * r);
  fit.forEach(({ proj: c }, h) => {
    for (let o = 0; o < D; o++) for (let i = 0; i < r; i++) weight[o * H * r + h * r + i] = c[o * r + i];
  });
  // The bias stays; the refit moves the mean of the dropped directions into it.
  return { maps: fit.map((f) => f.basis), proj: { weight, bias: Float32Array.from(proj.bias), outFeatures: D, inFeatures: H * r } };
}

/** (a) for every head of one block, with q′ = queryMaps[h]·q and k′ = keyMaps[h]·k (null: the kept channels as they are). */
function fitLogitScales(
  cfg: ViTConfig,
  original: Block,
  xs: Float32Array[],
  kept: Int32Array[],
  queryMaps: Float64Array[] | null,
  keyMaps: Float64Array[] | null,
  ws: Workspace,
): LogitScaleFit[] {
  const n = initialTokens(cfg);
  const { heads: H, qkDim: d } = cfg;
  const stride = 2 * H * d + H * cfg.vDim;
  const scale = 1 / Math.sqrt(d);
  const problems: LogitScaleProblem[] = Array.from({ length: H }, () => ({ logits: [], rowLength: [], targetDot: 0, targetNegEntropy: 0, rows: 0 }));
  const m = kept[0].length;
  const q = new Float64Array(n * m); // q′ of every token
  const key = new Float64Array(n * m); // k′ of every token
  // out[t, r] = (map ? map[r, :]·x_t : x_t[channels[r]]), x_t = the d values at qkv[t·stride + first]
  const reduce = (out: Float64Array, first: number, map: Float64Array | null, channels: Int32Array) => {
    for (let t = 0; t < n; t++) {
      const row = t * stride + first;
      for (let r = 0; r < m; r++) {
        if (!map) {
          out[t * m + r] = ws.qkv[row + channels[r]];
          continue;
        }
        let sum = 0;
        for (let c = 0; c < d; c++) sum += map[r * d + c] * ws.qkv[row + c];
        out[t * m + r] = sum;
      }
    }
  };
  for (const x of xs) {
    originalAttention(original, x, ws);
    for (let h = 0; h < H; h++) {
      reduce(q, h * d, queryMaps?.[h] ?? null, kept[h]);
      reduce(key, H * d + h * d, keyMaps?.[h] ?? null, kept[h]);
      const problem = problems[h];
      const s = new Float32Array(n * n); // [n, n] pruned logits q′k′ᵀ/√d
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let dot = 0;
          for (let r = 0; r < m; r++) dot += q[i * m + r] * key[j * m + r];
          const logit = (s[i * n + j] = dot * scale);
          const p = ws.probs[h * n * n + i * n + j];
          problem.targetDot += p * logit;
          if (p > 0) problem.targetNegEntropy += p * Math.log(p);
        }
      }
      problem.logits.push(s);
      problem.rowLength.push(n);
      problem.rows += n;
    }
  }
  return problems.map(fitLogitScale);
}

/**
 * (b) for one block: accumulate [Z′, 1]ᵀ[Z′, 1] and [Z′, 1]ᵀY over every calibration image and
 * solve. Y = the original attention branch; Z′ = the heads of the pruned qkv `prunedQkv` (every
 * map folded in, widths of `pruned`) on the same LN1 output; proj0: the projection to start from.
 */
function fitProjection(
  pruned: ViTConfig,
  original: Block,
  prunedQkv: PreparedLinear,
  proj0: Linear,
  xs: Float32Array[],
  ridge: number,
  ws: Workspace,
): ReturnType<typeof refitProjection> {
  const k = original.kernels;
  const n = initialTokens(pruned);
  const stats = new RefitStatistics(proj0.inFeatures, pruned.dim);
  for (const x of xs) {
    originalAttention(original, x, ws);
    k.linear(ws.attnOut, n, original.weights.proj, ws.y);
    multiHeadAttention(k, pruned, prunedQkv, ws, n, null);
    stats.add(ws.attnOut, ws.y, n);
  }
  return refitProjection(stats, proj0.weight, proj0.bias, ridge);
}

/** Run one pruned block on every image's tokens in place: x ← block(x). */
function advance(block: Block, xs: Float32Array[], ws: Workspace): void {
  const n = initialTokens(block.config);
  for (const x of xs) {
    ws.x.set(x);
    block.attention(ws, n, null);
    block.mlp(ws, n);
    x.set(ws.x.subarray(0, n * block.config.dim));
  }
}
