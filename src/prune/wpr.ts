/**
 * Weighted Page Rank on attention graphs and its head aggregation (docs/algorithms.md §1.3–§1.4):
 * the scoring core of Zero-TPrune. Pure functions over typed-array views; every buffer is
 * passed in, so a caller allocates once per model and nothing is allocated per call.
 *
 * The attention map P_h [n, n] of head h (row = query, column = key, rows sum to 1) is the
 * weighted adjacency matrix of a graph in which query q votes for key k with weight P_h[q, k].
 * A token is important if important tokens attend to it (Algorithm 1 of the paper, no 1/n):
 *
 *   s⁰     = CLS-boost: prefix tokens √n × a patch token, Σ s⁰ = 1   |  uniform: 1/n
 *   s^{t+1} = P_hᵀ s^t,   s^{t+1}[k] = Σ_q P_h[q, k] · s^t[q]          (Σ s is preserved)
 *
 * Heads are filtered by the variance of their scores (VHF) and combined by a root-mean-square
 * over the heads that pass (EIR). `bestMatch` is the S-stage's similarity core (§1.6).
 *
 * `restrictGraph`, `weightedPageRank` and `bestMatch` are also the oracles of the backends'
 * kernels of the same names (Kernels.restrictGraph, .weightedPageRank, .maxCosine), which must
 * return bit-identical results: keep their float64 reductions in the order written here.
 */

/** 'cls-boost' = Zero-TPrune; 'uniform' = the Zero-TPrune-uni ablation. */
export type WprInit = 'cls-boost' | 'uniform';

/** 'rms' = EIR (Emphasizing Informative Region); 'mean' = plain head mean (ablation). */
export type HeadAggregation = 'rms' | 'mean';

/**
 * s[0..n) ← the WPR starting signal. CLS-boost gives each of the `prefix` tokens (CLS, and
 * DIST in distilled DeiT) √n times the value c of a patch token, c = 1 / (prefix·√n + n − prefix).
 * n = 197, prefix = 1: s_CLS ≈ 0.0668, s_patch ≈ 0.00476.
 */
export function initialScores(init: WprInit, n: number, prefix: number, s: Float64Array): void {
  if (init === 'uniform') {
    s.fill(1 / n, 0, n);
    return;
  }
  const boost = Math.sqrt(n);
  const c = 1 / (prefix * boost + (n - prefix));
  s.fill(boost * c, 0, prefix);
  s.fill(c, prefix, n);
}

/**
 * P restricted to the tokens alive[0..c) (positions into n), every row re-normalised to sum 1
 * (a row with no mass left becomes uniform): the attention graph of the survivors (§1.7).
 *   P: [n, n]  →  out: [c, c], row = query
 */
export function restrictGraph(P: Float32Array, n: number, alive: Int32Array, c: number, out: Float32Array): void {
  for (let q = 0; q < c; q++) {
    const row = alive[q] * n;
    let sum = 0;
    for (let k = 0; k < c; k++) sum += P[row + alive[k]];
    for (let k = 0; k < c; k++) out[q * c + k] = sum > 0 ? P[row + alive[k]] / sum : 1 / c;
  }
}

/**
 * Power iteration s ← Pᵀ s, in place on s[0..n), for `iterations` steps or until
 * ‖s^{t+1} − s^t‖₁ < tolerance (tolerance 0: never stop early). Returns the steps taken.
 *   P:    [n, n] row-stochastic, row = query
 *   s:    [n]    in: start signal, out: scores
 *   next: [n]    scratch
 */
export function weightedPageRank(P: Float32Array, n: number, s: Float64Array, iterations: number, next: Float64Array, tolerance = 0): number {
  const last = n - 1;
  for (let t = 0; t < iterations; t++) {
    // next[k] = Σ_q P[q, k] · s[q], four query rows per sweep so that next[k] is loaded and
    // stored once per four products (≈ 3× faster in V8 than one row at a time).
    next.fill(0, 0, n);
    for (let q = 0; q < n; q += 4) {
      const r0 = q * n;
      const r1 = Math.min(q + 1, last) * n;
      const r2 = Math.min(q + 2, last) * n;
      const r3 = Math.min(q + 3, last) * n;
      const v0 = s[q];
      const v1 = q + 1 < n ? s[q + 1] : 0; // a short last group repeats row n − 1 with weight 0
      const v2 = q + 2 < n ? s[q + 2] : 0;
      const v3 = q + 3 < n ? s[q + 3] : 0;
      for (let k = 0; k < n; k++) next[k] += P[r0 + k] * v0 + P[r1 + k] * v1 + P[r2 + k] * v2 + P[r3 + k] * v3;
    }
    let change = 0;
    for (let k = 0; k < n; k++) {
      change += Math.abs(next[k] - s[k]);
      s[k] = next[k];
    }
    if (change < tolerance) return t + 1;
  }
  return iterations;
}

/**
 * Population variance of the scores s[start..end) rescaled to mean 1:
 * z_i = s_i · m / Σ_j s_j (m = end − start), var = Σ (z_i − 1)² / m. 0 when m = 0 or Σ s = 0.
 * This is the scale on which VHF's window [0.01, 0.7] is read (docs/algorithms.md §1.4 [I]).
 */
export function meanOneVariance(s: Float64Array, start: number, end: number): number {
  const m = end - start;
  let sum = 0;
  for (let i = start; i < end; i++) sum += s[i];
  if (m === 0 || sum === 0) return 0;
  const scale = m / sum;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = s[i] * scale - 1;
    v += d * d;
  }
  return v / m;
}

/**
 * VHF: valid[h] ← 1 if the mean-1 variance of head h's scores over the patch tokens
 * [start, end) lies in [window[0], window[1]], else 0. If no head passes, every head is marked
 * valid. Returns the number of heads that passed the window (0 = fell back to all heads).
 *   scores: [heads, stride] per-head WPR scores (first `end` entries of each row used)
 *   valid:  [heads] out
 */
export function varianceHeadFilter(
  scores: Float64Array,
  heads: number,
  stride: number,
  start: number,
  end: number,
  window: readonly [number, number],
  valid: Uint8Array,
): number {
  let passed = 0;
  for (let h = 0; h < heads; h++) {
    const v = meanOneVariance(scores, h * stride + start, h * stride + end);
    valid[h] = v >= window[0] && v <= window[1] ? 1 : 0;
    passed += valid[h];
  }
  if (passed === 0) valid.fill(1, 0, heads);
  return passed;
}

/**
 * out[i] = sqrt(Σ_{h valid} s_h(i)² / #valid)   ('rms', EIR)
 *        = Σ_{h valid} s_h(i) / #valid          ('mean')
 * over tokens i < n.   scores: [heads, stride];  valid: [heads], at least one set;  out: [n]
 */
export function aggregateHeads(
  scores: Float64Array,
  heads: number,
  stride: number,
  n: number,
  valid: Uint8Array,
  mode: HeadAggregation,
  out: Float64Array,
): void {
  out.fill(0, 0, n);
  let count = 0;
  for (let h = 0; h < heads; h++) {
    if (!valid[h]) continue;
    count++;
    const row = h * stride;
    if (mode === 'rms') for (let i = 0; i < n; i++) out[i] += scores[row + i] * scores[row + i];
    else for (let i = 0; i < n; i++) out[i] += scores[row + i];
  }
  for (let i = 0; i < n; i++) out[i] = mode === 'rms' ? Math.sqrt(out[i] / count) : out[i] / count;
}

/** Rows of a feature matrix: row i = data[offset + i·stride … + dim). */
export interface FeatureRows {
  data: Float32Array;
  offset: number;
  stride: number;
  dim: number;
}

/**
 * best[a] = max_{b ∈ B} cos(f_a, f_b) for every a ∈ A, with B = order[0..bCount),
 * A = order[bCount..m).
 *   unit: [m, dim] scratch ← feature row of order[j] scaled to unit length (a zero row stays 0),
 *         stored in the scratch's precision (the features' storage: float32, float64 on reference64)
 *   best: [n] by position
 */
export function bestMatch(f: FeatureRows, order: Int32Array, m: number, bCount: number, unit: Float32Array | Float64Array, best: Float64Array): void {
  const { data, offset, stride, dim } = f;
  if (m * dim > unit.length) throw new RangeError(`S-stage: ${m} features of width ${dim} exceed the scratch (${unit.length} values)`);
  for (let j = 0; j < m; j++) {
    const src = offset + order[j] * stride;
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += data[src + d] * data[src + d];
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let d = 0; d < dim; d++) unit[j * dim + d] = data[src + d] * inv;
  }
  // 2×2 blocks of (a, b) pairs share their loads (≈ 3× faster in V8); an odd last row pairs with itself.
  for (let i = bCount; i < m; i += 2) {
    const i1 = Math.min(i + 1, m - 1);
    const a0 = i * dim;
    const a1 = i1 * dim;
    let max0 = -Infinity;
    let max1 = -Infinity;
    for (let j = 0; j < bCount; j += 2) {
      const b0 = j * dim;
      const b1 = Math.min(j + 1, bCount - 1) * dim;
      let d00 = 0,
        d01 = 0,
        d10 = 0,
        d11 = 0;
      for (let d = 0; d < dim; d++) {
        const x0 = unit[a0 + d],
          x1 = unit[a1 + d],
          y0 = unit[b0 + d],
          y1 = unit[b1 + d];
        d00 += x0 * y0;
        d01 += x0 * y1;
        d10 += x1 * y0;
        d11 += x1 * y1;
      }
      max0 = Math.max(max0, d00, d01);
      max1 = Math.max(max1, d10, d11);
    }
    best[order[i]] = max0;
    best[order[i1]] = max1;
  }
}
