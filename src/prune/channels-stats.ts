import type { ViTConfig } from '../model/types.js';
import type { BlockState } from '../model/hooks.js';
import { qkvLayout } from '../model/types.js';
import { centreColumns } from './channels-linalg.js';

/**
 * Calibration statistics of the attention channels of one block (docs/algorithms.md §5.3, steps 1,
 * 2 and 4), summed over the calibration images of the dense model. Head h, channel c:
 *
 *   attentionDifference[h, c] = Σ_images Σ_queries ‖P_h − P_h^(−c)‖₁
 *        P_h^(−c) = softmax of the logits without channel c's term: P^(−c)[i, j] ∝ P[i, j]·exp(−s·q_ic·k_jc)
 *   logitContribution[h, c]   = Σ_images mean_{i,j} |s·q_ic·k_jc|        (the cheap proxy of the above)
 *   queryGram[h, c, c']       = Σ_tokens q_c·q_c'
 *   keyGram[h, c, c']         = Σ_tokens k_c·k_c'                       (queryGram + keyGram: the Gram of a_c = [q_c; k_c])
 *   centredKeyGram[h, c, c']  = Σ_images Σ_tokens (k_c − k̄_c)(k_c' − k̄_c')   (k̄: mean over the image's tokens)
 *   headOutputGram[i, i']     = Σ_tokens z̃_i·z̃_i',  z̃ = [z, 1], z = [P_1·V_1, …, P_H·V_H]   (what proj sees, and its bias input)
 *
 * with s = 1/√qkDim the logit scale of the model.
 */
export interface AttentionChannelStats {
  attentionDifference: Float64Array | null; // [H, qk]; null when not measured (proxy scoring)
  logitContribution: Float64Array; // [H, qk]
  queryGram: Float64Array; // [H, qk, qk]
  keyGram: Float64Array; // [H, qk, qk]
  centredKeyGram: Float64Array; // [H, qk, qk]
  headOutputGram: Float64Array; // [H·v + 1, H·v + 1]
  images: number;
  queries: number; // Σ over images of the tokens (rows of P) seen
}

export function emptyChannelStats(cfg: ViTConfig, measureDifference: boolean): AttentionChannelStats {
  const { heads: H, qkDim: d, vDim: v } = cfg;
  return {
    attentionDifference: measureDifference ? new Float64Array(H * d) : null,
    logitContribution: new Float64Array(H * d),
    queryGram: new Float64Array(H * d * d),
    keyGram: new Float64Array(H * d * d),
    centredKeyGram: new Float64Array(H * d * d),
    headOutputGram: new Float64Array((H * v + 1) ** 2),
    images: 0,
    queries: 0,
  };
}

/**
 * Add one image's block (as handed to an `afterAttention` hook: probs [H, n, n] and qkv
 * [n, 2H·qk + H·v] of the tokens that entered attention) to the statistics.
 */
export function accumulateChannelStats(stats: AttentionChannelStats, state: BlockState): void {
  const cfg = state.config;
  const { heads: H, qkDim: d, vDim: dv } = cfg;
  const n = state.attentionTokens;
  const layout = qkvLayout(cfg);
  const scale = 1 / Math.sqrt(d);
  const q = new Float64Array(n * d); // [n, d] queries of head h
  const k = new Float64Array(n * d); // [n, d] keys of head h
  const kT = new Float64Array(d * n); // [d, n] keys of head h, transposed
  const v = new Float64Array(n * dv); // [n, dv] values of head h
  const z = new Float64Array(n * (H * dv + 1)); // [n, H·dv + 1] head outputs and a 1
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < n; t++) {
      const row = t * layout.stride;
      for (let c = 0; c < d; c++) {
        q[t * d + c] = state.qkv[row + layout.queryOffset(h) + c];
        k[t * d + c] = kT[c * n + t] = state.qkv[row + layout.keyOffset(h) + c];
      }
      for (let c = 0; c < dv; c++) v[t * dv + c] = state.qkv[row + layout.valueOffset(h) + c];
    }
    const P = state.probs.subarray(h * n * n, (h + 1) * n * n); // [n, n]
    addGram(stats.queryGram, h * d * d, q, n, d);
    addGram(stats.keyGram, h * d * d, k, n, d);
    centreColumns(k, n, d);
    addGram(stats.centredKeyGram, h * d * d, k, n, d);
    addLogitContribution(stats.logitContribution, h * d, q, kT, n, d, scale);
    headOutputs(z, h * dv, H * dv + 1, P, v, n, dv);
    if (stats.attentionDifference) addAttentionDifference(stats.attentionDifference, h * d, P, q, kT, n, d, scale);
  }
  for (let t = 0; t < n; t++) z[t * (H * dv + 1) + H * dv] = 1;
  addGram(stats.headOutputGram, 0, z, n, H * dv + 1);
  stats.images++;
  stats.queries += n;
}

/** gram[c, c'] += Σ_t x[t, c]·x[t, c'] for x [n, d] (full symmetric matrix). */
function addGram(gram: Float64Array, offset: number, x: Float64Array, n: number, d: number): void {
  const upper = new Float64Array(d * d);
  for (let t = 0; t < n; t++) {
    const row = t * d;
    for (let c = 0; c < d; c++) {
      const xc = x[row + c];
      if (xc === 0) continue;
      for (let c2 = c; c2 < d; c2++) upper[c * d + c2] += xc * x[row + c2];
    }
  }
  for (let c = 0; c < d; c++) {
    for (let c2 = c; c2 < d; c2++) {
      gram[offset + c * d + c2] += upper[c * d + c2];
      if (c2 !== c) gram[offset + c2 * d + c] += upper[c * d + c2];
    }
  }
}

/** out[c] += mean_{i,j} |s·q_ic·k_jc| = s·(Σ_i |q_ic|)(Σ_j |k_jc|)/n². */
function addLogitContribution(out: Float64Array, offset: number, q: Float64Array, kT: Float64Array, n: number, d: number, scale: number): void {
  for (let c = 0; c < d; c++) {
    let sq = 0;
    let sk = 0;
    for (let t = 0; t < n; t++) {
      sq += Math.abs(q[t * d + c]);
      sk += Math.abs(kT[c * n + t]);
    }
    out[offset + c] += (scale * sq * sk) / (n * n);
  }
}

/** z[i, offset + c] = Σ_j P[i, j]·V[j, c] (row stride `stride`). */
function headOutputs(z: Float64Array, offset: number, stride: number, P: Float32Array, v: Float64Array, n: number, dv: number): void {
  for (let i = 0; i < n; i++) {
    const out = i * stride + offset;
    for (let c = 0; c < dv; c++) z[out + c] = 0;
    for (let j = 0; j < n; j++) {
      const p = P[i * n + j];
      for (let c = 0; c < dv; c++) z[out + c] += p * v[j * dv + c];
    }
  }
}

/**
 * out[c] += Σ_i ‖P[i, :] − P^(−c)[i, :]‖₁ with P^(−c)[i, j] = P[i, j]·e^(−s·q_ic·k_jc) / Σ_j' (same):
 * removing channel c's term from the logits is a multiplicative change of each probability.
 * O(n²·d) exponentials per head.
 */
function addAttentionDifference(
  out: Float64Array,
  offset: number,
  P: Float32Array,
  q: Float64Array,
  kT: Float64Array,
  n: number,
  d: number,
  scale: number,
): void {
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = P.subarray(i * n, (i + 1) * n);
    for (let c = 0; c < d; c++) {
      const a = -scale * q[i * d + c];
      const k = kT.subarray(c * n, (c + 1) * n);
      // shift the exponent by its maximum: the normalised result is unchanged and cannot overflow
      let shift = -Infinity;
      for (let j = 0; j < n; j++) shift = Math.max(shift, a * k[j]);
      let sum = 0;
      for (let j = 0; j < n; j++) sum += e[j] = p[j] * Math.exp(a * k[j] - shift);
      let diff = 0;
      for (let j = 0; j < n; j++) diff += Math.abs(e[j] / sum - p[j]);
      out[offset + c] += diff;
    }
  }
}
