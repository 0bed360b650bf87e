import { qkvLayout } from '../model/types.js';
import type { Tensor } from './types.js';

/**
 * Multi-head self-attention with an additive key bias, forward and input gradients, in plain
 * loops (the reference backend; float64 arithmetic whatever the storage). Per head h, with
 * Q_h, K_h [n, qk] and V_h [n, v] read from the fused qkv rows:
 *
 *   S_h = scale·Q_h K_hᵀ + 1·bᵀ        [n, n]   logits (row = query); b [n] is added per key
 *   P_h = softmax(S_h) row-wise        [n, n]
 *   O_h = P_h V_h                      [n, v]   written at columns h·v … of out [n, H·v]
 *
 * The key bias is how a token with weight w counts as w copies of itself (b = log w): ToMe's
 * proportional attention (w = size), and a soft token mask (w = mask; w → 0 removes the key).
 *
 * Input gradients, given dO_h (and any gradient dP_h⁰ reaching P_h by another path):
 *
 *   dP_h = dP_h⁰ + dO_h V_hᵀ
 *   dS_h = P_h ⊙ (dP_h − rowsum(P_h ⊙ dP_h))       softmax: ∂P_j/∂S_k = P_j(δ_jk − P_k)
 *   dQ_h = scale·dS_h K_h,   dK_h = scale·dS_hᵀ Q_h,   dV_h = P_hᵀ dO_h
 *   db   = Σ_h Σ_q dS_h[q, ·]
 */

/** Where head h's queries, keys and values sit in a row of qkv (model/types.ts: qkvLayout). */
function headLayout(heads: number, qkDim: number, vDim: number, h: number): { stride: number; query: number; key: number; value: number } {
  const layout = qkvLayout({ heads, qkDim, vDim });
  return { stride: layout.stride, query: layout.queryOffset(h), key: layout.keyOffset(h), value: layout.valueOffset(h) };
}

/** probs [H, n, n] and out [n, H·v] from qkv [n, 2H·qk + H·v] (see the file comment). */
export function attentionForward(
  qkv: Tensor,
  n: number,
  heads: number,
  qkDim: number,
  vDim: number,
  scale: number,
  keyBias: Tensor | null,
  probs: Tensor,
  out: Tensor,
): void {
  const outStride = heads * vDim;
  for (let h = 0; h < heads; h++) {
    const { stride, query, key, value } = headLayout(heads, qkDim, vDim, h);
    const p = h * n * n; // this head's [n, n] block of probs
    for (let q = 0; q < n; q++) {
      const row = p + q * n;
      let max = -Infinity;
      for (let k = 0; k < n; k++) {
        let dot = 0;
        for (let c = 0; c < qkDim; c++) dot += qkv[q * stride + query + c] * qkv[k * stride + key + c];
        const logit = scale * dot + (keyBias ? keyBias[k] : 0);
        probs[row + k] = logit;
        max = Math.max(max, logit);
      }
      let sum = 0;
      for (let k = 0; k < n; k++) sum += probs[row + k] = Math.exp(probs[row + k] - max);
      for (let k = 0; k < n; k++) probs[row + k] /= sum;
    }
    for (let q = 0; q < n; q++) {
      for (let c = 0; c < vDim; c++) {
        let sum = 0;
        for (let k = 0; k < n; k++) sum += probs[p + q * n + k] * qkv[k * stride + value + c];
        out[q * outStride + h * vDim + c] = sum;
      }
    }
  }
}

/** In place over one row of length `cols` at `offset`: dP ← P ⊙ (dP − Σ P⊙dP), the softmax's input gradient. */
export function softmaxBackwardRow(probs: Tensor, dProbs: Tensor, offset: number, cols: number): void {
  let dot = 0;
  for (let j = 0; j < cols; j++) dot += probs[offset + j] * dProbs[offset + j];
  for (let j = 0; j < cols; j++) dProbs[offset + j] = probs[offset + j] * (dProbs[offset + j] - dot);
}

/** dqkv (overwritten), dKeyBias (accumulated) from dOut and dProbs (clobbered); see the file comment. */
export function attentionBackward(
  qkv: Tensor,
  n: number,
  heads: number,
  qkDim: number,
  vDim: number,
  scale: number,
  probs: Tensor,
  dOut: Tensor,
  dProbs: Tensor,
  dqkv: Tensor,
  dKeyBias: Tensor | null,
): void {
  const outStride = heads * vDim;
  for (let h = 0; h < heads; h++) {
    const { stride, query, key, value } = headLayout(heads, qkDim, vDim, h);
    const p = h * n * n;
    // dP_h += dO_h V_hᵀ, then dS_h in place
    for (let q = 0; q < n; q++) {
      for (let k = 0; k < n; k++) {
        let dot = 0;
        for (let c = 0; c < vDim; c++) dot += dOut[q * outStride + h * vDim + c] * qkv[k * stride + value + c];
        dProbs[p + q * n + k] += dot;
      }
      softmaxBackwardRow(probs, dProbs, p + q * n, n);
    }
    if (dKeyBias) {
      for (let q = 0; q < n; q++) for (let k = 0; k < n; k++) dKeyBias[k] += dProbs[p + q * n + k];
    }
    // dQ_h = scale·dS_h K_h
    for (let q = 0; q < n; q++) {
      for (let c = 0; c < qkDim; c++) {
        let sum = 0;
        for (let k = 0; k < n; k++) sum += dProbs[p + q * n + k] * qkv[k * stride + key + c];
        dqkv[q * stride + query + c] = scale * sum;
      }
    }
    // dK_h = scale·dS_hᵀ Q_h,  dV_h = P_hᵀ dO_h
    for (let k = 0; k < n; k++) {
      for (let c = 0; c < qkDim; c++) {
        let sum = 0;
        for (let q = 0; q < n; q++) sum += dProbs[p + q * n + k] * qkv[q * stride + query + c];
        dqkv[k * stride + key + c] = scale * sum;
      }
      for (let c = 0; c < vDim; c++) {
        let sum = 0;
        for (let q = 0; q < n; q++) sum += probs[p + q * n + k] * dOut[q * outStride + h * vDim + c];
        dqkv[k * stride + value + c] = sum;
      }
    }
  }
}
