import type { Tensor } from './types.js';

/**
 * LTP's threshold pruning of one block (docs/algorithms.md §4), relaxed into soft token masks that
 * equal the hard pruning whenever the masks are exactly 0 or 1.
 *
 * Hard rule: a token alive at block l is pruned right after that block's attention iff its
 * importance s(i) = (1/(H·n)) Σ_h Σ_q P_h[q, i] (n tokens alive, the queries and keys of P)
 * is below θ_l; prefix tokens never are; once pruned a token never returns.
 *
 * Soft version. Every token keeps running; M_i ∈ (0, 1] is how much of it is still there, the
 * product of the per-block masks m so far, kept as log M (additive, and exact for tiny masks):
 *
 *   attention of block l:  key bias log M_i^(l−1)         (a key of mass M counts M times: M = 0 removes it)
 *   weights of queries:    w_q = M_q^(l−1),  W = Σ_q w_q   (W = n when masks are 0/1)
 *   importance:            c_i = Σ_h Σ_q w_q·P_h[q, i],   s_i = c_i/(H·W)
 *   score in θ's unit:     'absolute': s_i;  'mean' (multiples of the mean score 1/W): W·s_i = c_i/H
 *   mask:                  m_i = σ(z_i),  z_i = (score_i − θ_l)/T     (prefix tokens: m = 1)
 *   log M_i^(l) = log M_i^(l−1) + log σ(z_i)
 *
 * A pruned token's own hidden state never matters: later it is only a key (removed by its bias)
 * and a query (weight 0), and the logits read the prefix tokens only. So with masks at 0/1 the
 * soft forward is the hard one, and as T → 0 the masks approach σ's step.
 *
 * Input gradients, given ∂L/∂log M^(l) (written dOut):
 *
 *   ∂/∂log M^(l−1) = dOut (through the product) + w_q·∂L/∂w_q (through the weights)
 *   dz_i = dOut_i·σ(−z_i)            (d log σ(z)/dz = σ(−z))
 *   ∂L/∂θ_l = −Σ_i dz_i/T,  ∂L/∂score_i = dz_i/T
 *   'mean':     ∂L/∂c_i = ∂L/∂score_i / H
 *   'absolute': ∂L/∂c_i = ∂L/∂score_i/(H·W),  ∂L/∂W = −Σ_i ∂L/∂score_i·score_i/W
 *   ∂L/∂P_h[q, i] = w_q·∂L/∂c_i,   ∂L/∂w_q = Σ_h Σ_i P_h[q, i]·∂L/∂c_i + ∂L/∂W
 */

export type ScoreUnit = 'absolute' | 'mean';

/** One block's soft threshold: θ in `unit`, temperature T > 0. */
export interface SoftThreshold {
  theta: number;
  temperature: number;
  unit: ScoreUnit;
}

/** What the forward keeps for the backward (all [n] but W). */
export interface TokenMaskRecord {
  weights: Float64Array; // w_q = M_q^(l−1)
  totalWeight: number; // W
  scores: Float64Array; // score_i in θ's unit
  z: Float64Array; // (score_i − θ)/T, 0 for prefix tokens
}

/** log σ(z) = −log(1 + e^(−z)), without overflow for either sign. */
export function logSigmoid(z: number): number {
  return z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z));
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Allocates a record for n tokens. */
export function tokenMaskRecord(n: number): TokenMaskRecord {
  return { weights: new Float64Array(n), totalWeight: 0, scores: new Float64Array(n), z: new Float64Array(n) };
}

/**
 * logMaskOut [n] = logMaskIn [n] + log σ((score − θ)/T) for non-prefix tokens, from this block's
 * probs [H, n, n] computed with key bias logMaskIn. Fills `record`.
 */
export function softMaskForward(
  probs: Tensor,
  heads: number,
  n: number,
  prefix: number,
  logMaskIn: Float64Array,
  threshold: SoftThreshold,
  record: TokenMaskRecord,
  logMaskOut: Float64Array,
): void {
  const { weights, scores, z } = record;
  let total = 0;
  for (let q = 0; q < n; q++) total += weights[q] = Math.exp(logMaskIn[q]);
  record.totalWeight = total;
  scores.fill(0);
  for (let h = 0; h < heads; h++) {
    for (let q = 0; q < n; q++) {
      const w = weights[q];
      const row = (h * n + q) * n;
      for (let i = 0; i < n; i++) scores[i] += w * probs[row + i];
    }
  }
  const toUnit = threshold.unit === 'mean' ? 1 / heads : 1 / (heads * total);
  for (let i = 0; i < n; i++) {
    scores[i] *= toUnit;
    if (i < prefix) {
      z[i] = 0;
      logMaskOut[i] = logMaskIn[i];
    } else {
      z[i] = (scores[i] - threshold.theta) / threshold.temperature;
      logMaskOut[i] = logMaskIn[i] + logSigmoid(z[i]);
    }
  }
}

/**
 * The input gradients of softMaskForward: dLogMaskIn [n] += ∂L/∂logMaskIn, dProbs [H, n, n] =
 * the gradient reaching P through the importance (overwritten); returns ∂L/∂θ.
 */
export function softMaskBackward(
  probs: Tensor,
  heads: number,
  n: number,
  prefix: number,
  threshold: SoftThreshold,
  record: TokenMaskRecord,
  dLogMaskOut: Float64Array,
  dLogMaskIn: Float64Array,
  dProbs: Tensor,
): number {
  const { weights, totalWeight, scores, z } = record;
  const T = threshold.temperature;
  const dColumn = new Float64Array(n); // ∂L/∂c_i
  let dTheta = 0;
  let dTotal = 0; // ∂L/∂W
  for (let i = prefix; i < n; i++) {
    const dScore = (dLogMaskOut[i] * sigmoid(-z[i])) / T;
    dTheta -= dScore;
    if (threshold.unit === 'mean') {
      dColumn[i] = dScore / heads;
    } else {
      dColumn[i] = dScore / (heads * totalWeight);
      dTotal -= (dScore * scores[i]) / totalWeight;
    }
  }
  for (let q = 0; q < n; q++) {
    let dWeight = dTotal; // ∂L/∂w_q
    for (let h = 0; h < heads; h++) {
      const row = (h * n + q) * n;
      for (let i = 0; i < n; i++) {
        dWeight += probs[row + i] * dColumn[i];
        dProbs[row + i] = weights[q] * dColumn[i];
      }
    }
    dLogMaskIn[q] += dLogMaskOut[q] + dWeight * weights[q];
  }
  return dTheta;
}
