import type { Kernels, PreparedLinear } from '../kernels/types.js';
import type { ViTConfig, ViTModel } from '../model/types.js';
import { blockConfig, prefixTokens } from '../model/types.js';
import type { ForwardHooks, TokenReduction } from '../model/vit.js';
import { closestToBudget } from './budget-search.js';
import type { BlockTokens } from './flops.js';
import { blockMacs, initialTokens, stemAndHeadMacs } from './flops.js';
import { attentionReceived, mctfMatching, mctfScores, type MctfTemperatures } from './mctf-matching.js';
import { ScheduleError } from './schedule.js';
import type { TomeMatching } from './tome.js';

/**
 * MCTF, multi-criteria token fusion with one-step-ahead attention (Lee, Choi, Kim, CVPR 2024;
 * mlvlab/MCTF), used off the shelf. In each fusing block l, r_l tokens fuse into others chosen
 * by mctf-matching.ts (similarity × informativeness × size, bidirectional), and the fused
 * tokens are pooled with weights w_k = ā_k · s_k (attention received × size):
 *
 *   x'_g = Σ_{k→g} w_k x_k / Σ_{k→g} w_k,      s'_g = Σ_{k→g} s_k
 *
 * One-step-ahead (the paper's default, `one_step_ahead = 1` of the reference): the fusion runs
 * at the start of block l, on the block's input x, with the attention P [H, t, t] that block l
 * computes on x (proportional attention included). The block then attends with P fused too,
 * columns summed and rows pooled with the same weights,
 *
 *   P'_h[g', g] = Σ_{q→g'} w_q Σ_{k→g} P_h[q, k] / Σ_{q→g'} w_q          (rows still sum to 1)
 *
 *   x ← x' + proj(P' · V(LN1(x')))          then the MLP on the t − r fused tokens.
 *
 * In this engine the forward pass has already run block l's attention on x when the
 * `afterAttention` hook sees P; the hook discards that output and recomputes the attention
 * sublayer on the fused tokens from the block's own weights (so `mctfHooks` needs the model),
 * taking x from a copy kept at the previous block's `afterBlock`. Wall time therefore pays
 * for both until the fusion runs in a kernel of its own; GMACs count the method (mctfGmacs).
 *
 * Without one-step-ahead (`oneStepAhead: false`, "fusion after the block"), block l runs
 * unchanged and its output is fused with the attention block l computed: the next block sees
 * t − r tokens. Merged tokens keep the token id of the token they landed in; sizes go back to
 * the forward pass, which adds log s to the attention logits from then on (proportional
 * attention, `prop_attn` of the reference).
 *
 * r per block: the paper runs a constant r in blocks 2…12 (1-indexed; activate_layer 1…11).
 * A fractional r spreads over the fusing blocks by rounding the running total:
 * r_i = round(r·(i + 1)) − round(r·i) for the i-th fusing block (12.6 over 11 blocks: seven of
 * 13 and four of 12). Per block r is capped, as in the reference, at ⌊(t − prefix)/2⌋ and so
 * that at least 10 tokens remain.
 */

export interface MctfSettings extends MctfTemperatures {
  r: number; // tokens fused per fusing block (fractional: spread as above)
  layers: readonly number[] | null; // 0-indexed fusing blocks; null = every block but the first (the paper's)
  bidirectional: boolean; // true: ⌊r/2⌋ A → B, then the rest B → A
  oneStepAhead: boolean; // true: fuse at the start of the block; false: after the block
}

/** The paper's settings (DeiT-T/S scripts: r 16 in blocks 2…12, τ 1 / 20 / 40, bidirectional, one-step-ahead). */
export const MCTF_DEFAULTS: Readonly<MctfSettings> = {
  r: 16,
  layers: null,
  tauSim: 1,
  tauInfo: 20,
  tauSize: 40,
  bidirectional: true,
  oneStepAhead: true,
};

/** Fill in defaults and check the settings against a model of `depth` blocks. */
export function resolveMctfSettings(depth: number, settings: Partial<MctfSettings> = {}): MctfSettings & { layers: readonly number[] } {
  const s = { ...MCTF_DEFAULTS };
  for (const [key, value] of Object.entries(settings)) if (value !== undefined) Object.assign(s, { [key]: value });
  if (!(Number.isFinite(s.r) && s.r >= 0)) throw new ScheduleError(`MCTF: expected r ≥ 0, found ${s.r}`);
  for (const tau of ['tauSim', 'tauInfo', 'tauSize'] as const) {
    if (!(Number.isFinite(s[tau]) && s[tau] >= 0)) throw new ScheduleError(`MCTF: expected ${tau} ≥ 0 (0 switches the criterion off), found ${s[tau]}`);
  }
  const layers = s.layers ?? Array.from({ length: depth - 1 }, (_, i) => i + 1);
  layers.forEach((l, i) => {
    if (!(Number.isInteger(l) && l >= 0 && l < depth)) throw new ScheduleError(`MCTF: expected 0-indexed blocks in 0…${depth - 1}, found ${l}`);
    if (i > 0 && l <= layers[i - 1]) throw new ScheduleError(`MCTF: expected fusing blocks in increasing order, found ${layers.join(', ')}`);
  });
  if (s.oneStepAhead && layers[0] === 0) {
    throw new ScheduleError('MCTF: one-step-ahead fusion in block 1 needs its input (the embedding), which forward hooks do not see; fuse from block 2 on (the paper does) or set oneStepAhead: false');
  }
  return { ...s, layers };
}

/** r of each of `depth` blocks: the fractional r spread over the fusing blocks by rounding the running total (before the per-block cap). */
export function mctfRates(depth: number, settings: Partial<MctfSettings> = {}): number[] {
  const s = resolveMctfSettings(depth, settings);
  const rates = new Array<number>(depth).fill(0);
  s.layers.forEach((l, i) => (rates[l] = Math.round(s.r * (i + 1)) - Math.round(s.r * i)));
  return rates;
}

/** The r a block really fuses: min(r, ⌊(t − prefix)/2⌋, t − 10), at least 0. */
export function mctfCappedR(r: number, t: number, prefix: number): number {
  return Math.max(0, Math.min(r, Math.floor((t - prefix) / 2), t - 10));
}

/** The output row of every input position: a survivor's own row, a source's destination's row.  → [t] */
export function outputRows(m: TomeMatching, t: number): Int32Array {
  const rows = new Int32Array(t).fill(-1);
  m.order.forEach((p, row) => (rows[p] = row));
  m.sources.forEach((a, i) => (rows[a] = rows[m.destinations[i]]));
  return rows;
}

/**
 * Weighted pooling into `rows` groups: out[g] = Σ_{k→g} w_k x_k / Σ_{k→g} w_k and the summed sizes.
 *   x [t, D], weights [t], sizes [t] or null (all 1), rowOf [t]  →  out [rows, D] (written), sizes [rows]
 */
export function poolTokens(
  x: Float32Array, D: number, weights: ArrayLike<number>, sizes: ArrayLike<number> | null, rowOf: Int32Array, rows: number, out: Float32Array,
): Float32Array {
  const sum = new Float64Array(rows * D);
  const total = new Float64Array(rows);
  const summedSizes = new Float32Array(rows);
  for (let k = 0; k < rowOf.length; k++) {
    const g = rowOf[k];
    const w = weights[k];
    for (let d = 0; d < D; d++) sum[g * D + d] += w * x[k * D + d];
    total[g] += w;
    summedSizes[g] += sizes ? sizes[k] : 1;
  }
  for (let g = 0; g < rows; g++) {
    for (let d = 0; d < D; d++) out[g * D + d] = sum[g * D + d] / total[g];
  }
  return summedSizes;
}

/**
 * One-step-ahead attention: P'_h[g', g] = Σ_{q→g'} w_q Σ_{k→g} P_h[q, k] / Σ_{q→g'} w_q.
 *   probs [H, t, t], rowOf [t], weights [t]  →  [H, rows, rows]
 */
export function fusedAttention(probs: Float32Array, heads: number, t: number, weights: ArrayLike<number>, rowOf: Int32Array, rows: number): Float64Array {
  const out = new Float64Array(heads * rows * rows);
  const total = new Float64Array(rows);
  for (let q = 0; q < t; q++) total[rowOf[q]] += weights[q];
  for (let h = 0; h < heads; h++) {
    for (let q = 0; q < t; q++) {
      const w = weights[q];
      const src = (h * t + q) * t;
      const dst = (h * rows + rowOf[q]) * rows;
      for (let k = 0; k < t; k++) out[dst + rowOf[k]] += w * probs[src + k];
    }
    for (let g = 0; g < rows; g++) {
      const dst = (h * rows + g) * rows;
      for (let j = 0; j < rows; j++) out[dst + j] /= total[g];
    }
  }
  return out;
}

/** What one MCTF fusion produced (for the tokens of one block). */
export interface MctfFusion {
  matching: TomeMatching; // sources → destinations (final), survivors in output order
  rowOf: Int32Array; // [t] output row of every input token
  weights: Float64Array; // [t] pooling weights ā_k · s_k
  x: Float32Array; // [t − r, D] pooled tokens
  sizes: Float32Array; // [t − r]
  tokenIds: Int32Array; // [t − r] token id of the token each row landed in
}

/**
 * Fuse r tokens of x [t, D] (the metric, and what is pooled), with the attention P [H, t, t]
 * those tokens received and their sizes (null = all 1). `out` receives the pooled rows.
 */
export function mctfFuse(
  cfg: ViTConfig, x: Float32Array, t: number, probs: Float32Array, sizes: Float32Array | null, tokenIds: Int32Array,
  r: number, settings: MctfTemperatures & { bidirectional: boolean }, out: Float32Array = new Float32Array((t - r) * cfg.dim),
): MctfFusion {
  const D = cfg.dim;
  const attention = attentionReceived(probs, cfg.heads, t);
  const W = mctfScores(x, t, D, attention, sizes, settings);
  const matching = mctfMatching(W, t, r, prefixTokens(cfg), settings.bidirectional);
  const rows = matching.order.length;
  const rowOf = outputRows(matching, t);
  const weights = Float64Array.from(attention, (a, k) => a * (sizes ? sizes[k] : 1));
  const pooledSizes = poolTokens(x, D, weights, sizes, rowOf, rows, out);
  return { matching, rowOf, weights, x: out.subarray(0, rows * D), sizes: pooledSizes, tokenIds: matching.order.map((p) => tokenIds[p]) };
}

interface PreparedAttentionTail {
  gamma: Float32Array; // [D] LN1
  beta: Float32Array; // [D]
  values: PreparedLinear; // the V rows of the block's qkv: [H·v, D]
  proj: PreparedLinear; // [D, H·v]
}

/**
 * The attention sublayer of a block on fused tokens with a given attention (P'), on one
 * backend: x ← x + proj(P' · V(LN1(x))). Buffers and prepared weights are made once per block.
 */
class FusedAttentionSublayer {
  readonly x: Float32Array; // [T, D] fused tokens in, the sublayer's output out
  private readonly normed: Float32Array; // [T, D]
  private readonly values: Float32Array; // [T, H·v]
  private readonly attended: Float32Array; // [T, H·v]
  private readonly blocks = new Map<number, PreparedAttentionTail>();

  constructor(private readonly model: ViTModel, private readonly kernels: Kernels) {
    const cfg = model.config;
    const T = initialTokens(cfg);
    this.x = kernels.alloc(T * cfg.dim);
    this.normed = kernels.alloc(T * cfg.dim);
    this.values = kernels.alloc(T * cfg.heads * cfg.vDim);
    this.attended = kernels.alloc(T * cfg.heads * cfg.vDim);
  }

  private prepared(block: number, cfg: ViTConfig): PreparedAttentionTail {
    let p = this.blocks.get(block);
    if (!p) {
      const w = this.model.weights.blocks[block];
      const D = cfg.dim;
      const valueRows = cfg.heads * cfg.vDim;
      const first = 2 * cfg.heads * cfg.qkDim; // V rows follow Q and K
      p = {
        gamma: this.kernels.upload(w.norm1.weight),
        beta: this.kernels.upload(w.norm1.bias),
        values: this.kernels.prepareLinear({
          weight: w.qkv.weight.subarray(first * D, (first + valueRows) * D),
          bias: w.qkv.bias.subarray(first, first + valueRows),
          outFeatures: valueRows,
          inFeatures: D,
        }),
        proj: this.kernels.prepareLinear(w.proj),
      };
      this.blocks.set(block, p);
    }
    return p;
  }

  /** this.x[0..rows) ← x + proj(P' · V(LN1(x))) for the fused tokens already in this.x.  attention: [H, rows, rows] */
  run(block: number, cfg: ViTConfig, rows: number, attention: Float64Array): Float32Array {
    const k = this.kernels;
    const p = this.prepared(block, cfg);
    const { heads: H, vDim: v, dim: D } = cfg;
    const width = H * v;
    k.layerNorm(this.x, rows, D, p.gamma, p.beta, cfg.eps, this.normed);
    k.linear(this.normed, rows, p.values, this.values);
    const out = this.attended;
    out.fill(0, 0, rows * width);
    for (let h = 0; h < H; h++) {
      for (let q = 0; q < rows; q++) {
        const pRow = (h * rows + q) * rows;
        const o = q * width + h * v;
        for (let j = 0; j < rows; j++) {
          const a = attention[pRow + j];
          const src = j * width + h * v;
          for (let c = 0; c < v; c++) out[o + c] += a * this.values[src + c];
        }
      }
    }
    k.linearAdd(out, rows, p.proj, this.x);
    return this.x.subarray(0, rows * D);
  }
}

/**
 * Forward hooks fusing tokens by MCTF in the blocks of `settings`. One object serves a whole run
 * (images one after another, one runner at a time): with one-step-ahead it keeps a copy of each
 * block's output as the next block's input.
 */
export function mctfHooks(model: ViTModel, settings: Partial<MctfSettings> = {}): ForwardHooks {
  const cfg = model.config;
  const s = resolveMctfSettings(cfg.depth, settings);
  const rates = mctfRates(cfg.depth, s);
  const prefix = prefixTokens(cfg);
  if (!s.oneStepAhead) {
    return {
      afterBlock(state) {
        const r = mctfCappedR(rates[state.block], state.n, prefix);
        if (r === 0) return;
        if (state.attentionTokens !== state.n) throw new RangeError(`MCTF after block ${state.block + 1}: expected the attention of the ${state.n} tokens alive, found ${state.attentionTokens}`);
        const f = mctfFuse(state.config, state.x, state.n, state.probs, state.sizes, state.tokenIds, r, s);
        return { kind: 'replace', n: f.tokenIds.length, x: f.x, sizes: f.sizes, tokenIds: f.tokenIds };
      },
    };
  }
  const input = new Float32Array(initialTokens(cfg) * cfg.dim); // [t, D] the next block's input
  let inputTokens = 0;
  const sublayers = new Map<Kernels, FusedAttentionSublayer>();
  return {
    afterAttention(state): TokenReduction | void {
      const r = mctfCappedR(rates[state.block], state.n, prefix);
      if (r === 0) return;
      if (inputTokens !== state.n || state.attentionTokens !== state.n) {
        throw new RangeError(`MCTF in block ${state.block + 1}: expected the input of the ${state.n} tokens that entered the attention (kept at the previous block), found ${inputTokens}`);
      }
      let sublayer = sublayers.get(state.kernels);
      if (!sublayer) sublayers.set(state.kernels, (sublayer = new FusedAttentionSublayer(model, state.kernels)));
      const f = mctfFuse(state.config, input, state.n, state.probs, state.sizes, state.tokenIds, r, s, sublayer.x);
      const rows = f.tokenIds.length;
      const attention = fusedAttention(state.probs, state.config.heads, state.n, f.weights, f.rowOf, rows);
      const x = sublayer.run(state.block, state.config, rows, attention);
      return { kind: 'replace', n: rows, x, sizes: f.sizes, tokenIds: f.tokenIds };
    },
    afterBlock(state) {
      input.set(state.x.subarray(0, state.n * cfg.dim));
      inputTokens = state.n;
    },
  };
}

/**
 * Token counts of one block under MCTF: queries and keys of `attention` tokens (QKᵀ over them),
 * values, attention output and projection of `values` tokens (the fused ones under
 * one-step-ahead, else all), the MLP on `mlp` tokens.
 */
export interface MctfBlockTokens extends BlockTokens {
  values: number;
}

/** Token counts per block, without running the model. */
export function mctfTokens(cfg: ViTConfig, settings: Partial<MctfSettings> = {}): MctfBlockTokens[] {
  const s = resolveMctfSettings(cfg.depth, settings);
  const rates = mctfRates(cfg.depth, s);
  const prefix = prefixTokens(cfg);
  let t = initialTokens(cfg);
  return rates.map((rate) => {
    const fused = t - mctfCappedR(rate, t, prefix);
    const block = s.oneStepAhead ? { attention: t, values: fused, mlp: fused } : { attention: t, values: t, mlp: t };
    t = fused;
    return block;
  });
}

/** MACs of a block (flops.ts convention) whose Q, K and QKᵀ run on `attention` tokens and the rest on `values`. */
export function mctfBlockMacs(cfg: ViTConfig, t: MctfBlockTokens): number {
  const qk = cfg.heads * cfg.qkDim;
  return blockMacs(cfg, { attention: t.values, mlp: t.mlp }) + (t.attention - t.values) * cfg.dim * 2 * qk + (t.attention ** 2 - t.values ** 2) * qk;
}

/** GMACs of MCTF with `settings` (matching, pooling and attention fusion not counted, as for ToMe). */
export function mctfGmacs(cfg: ViTConfig, settings: Partial<MctfSettings> = {}): number {
  let macs = stemAndHeadMacs(cfg);
  mctfTokens(cfg, settings).forEach((t, b) => (macs += mctfBlockMacs(blockConfig(cfg, b), t)));
  return macs / 1e9;
}

export interface MctfSolution {
  r: number; // a multiple of 0.01
  gmacs: number;
  fraction: number; // gmacs / dense GMACs
}

/**
 * The r (on the grid 0, 0.01, 0.02, …) whose MCTF GMACs are closest to `fraction` × dense, the
 * other settings fixed; among equally close r the one with the fewest decimals, then the
 * smallest. Throws ScheduleError unless it is within a relative `tolerance` (default 1 %).
 */
export function solveMctfForBudget(
  cfg: ViTConfig, fraction: number, settings: Partial<Omit<MctfSettings, 'r'>> = {}, options: { tolerance?: number } = {},
): MctfSolution {
  const hundredths = 100 * Math.floor((initialTokens(cfg) - prefixTokens(cfg)) / 2); // beyond, every block is capped
  const grid = Array.from({ length: hundredths + 1 }, (_, i) => i);
  const byDecimals = [...grid.filter((i) => i % 100 === 0), ...grid.filter((i) => i % 100 !== 0 && i % 10 === 0), ...grid.filter((i) => i % 10 !== 0)];
  const best = closestToBudget(cfg, fraction, 'an MCTF r', byDecimals, (i) => mctfGmacs(cfg, { ...settings, r: i / 100 }), options);
  return { r: best.setting / 100, gmacs: best.gmacs, fraction: best.fraction };
}
