import type { Linear } from '../model/types.js';

/** A weight matrix prepared once at load time (the wasm backend packs it into panels). */
export interface PreparedLinear {
  readonly outFeatures: number;
  readonly inFeatures: number;
}

/**
 * The numeric kernels of the forward pass. Two implementations: `reference` (plain TS,
 * the oracle) and `wasm` (AssemblyScript SIMD). Buffers passed to a backend must come
 * from that backend's `alloc`/`upload` (the wasm backend's live in its linear memory).
 * All matrices are row-major float32; shapes in brackets.
 */
export interface Kernels {
  readonly name: string;

  /** A zero-filled buffer of `length` floats that this backend's kernels can use. Call at set-up, never per layer. */
  alloc(length: number): Float32Array;
  /** A zero-filled float64 buffer (scores of the pruning kernels). Set-up only, as `alloc`. */
  allocFloat64(length: number): Float64Array;
  /** A zero-filled int32 buffer (token index lists). Set-up only, as `alloc`. */
  allocInt32(length: number): Int32Array;
  /** `alloc` + copy. */
  upload(data: Float32Array): Float32Array;
  /** Prepare (copy, pack) a linear layer's weight and bias once. */
  prepareLinear(lin: Linear): PreparedLinear;
  /**
   * Gives back a buffer from alloc/allocFloat64/allocInt32/upload (the whole buffer those returned,
   * not a part of it). Neither it nor any view of it may be used afterwards.
   */
  free(buffer: Float32Array | Float64Array | Int32Array): void;
  /** Gives back what prepareLinear took for `w`; `w` may not be used afterwards. */
  releaseLinear(w: PreparedLinear): void;
  /** Ends the backend's worker threads, if any; resolves when they have ended. The kernels may not be used afterwards. */
  dispose(): Promise<void>;

  /** out[m, o] = x[m, i] · Wᵀ + b */
  linear(x: Float32Array, m: number, w: PreparedLinear, out: Float32Array): void;
  /** acc[m, o] += x[m, i] · Wᵀ + b   (the residual add fused into the projection) */
  linearAdd(x: Float32Array, m: number, w: PreparedLinear, acc: Float32Array): void;
  /** out[m, o] = GELU(x[m, i] · Wᵀ + b)   (exact, erf-based GELU) */
  linearGelu(x: Float32Array, m: number, w: PreparedLinear, out: Float32Array): void;

  /** out[m, d] = LayerNorm(x[m, d]) · gamma + beta, population variance, `eps` inside the sqrt. */
  layerNorm(
    x: Float32Array, m: number, d: number,
    gamma: Float32Array, beta: Float32Array, eps: number, out: Float32Array,
  ): void;
  /** In place over `length` values: x ← x · Φ(x) with the exact normal CDF. */
  gelu(x: Float32Array, length: number): void;
  /** In place, row-wise softmax of x[rows, cols]. */
  softmax(x: Float32Array, rows: number, cols: number): void;

  /**
   * Multi-head self-attention core for n tokens.
   *   qkv:   [n, 2·H·qkDim + H·vDim]  (Q heads, then K heads, then V heads)
   *   probs: [H, n, n]  out: softmax(scale · Q_h K_hᵀ + logSizes) per head (row = query)
   *   out:   [n, H·vDim] out: P_h V_h, heads concatenated
   *   logSizes: [n] or null, added to every query's logit for key j (ToMe's proportional attention)
   */
  attention(
    qkv: Float32Array, n: number, heads: number, qkDim: number, vDim: number, scale: number,
    logSizes: Float32Array | null, probs: Float32Array, out: Float32Array,
  ): void;

  // ---- Token-pruning primitives (Zero-TPrune, src/prune/wpr.ts). Every backend returns results
  // BIT-IDENTICAL to the TypeScript functions named below (same float64 reductions in the same
  // order), so rankings and therefore pruning decisions never depend on the backend's kernels.

  /**
   * The attention graph of the tokens alive[0..c) (indices into P's n tokens), rows re-normalised:
   * out[q, k] = P[alive[q], alive[k]] / Σ_j P[alive[q], alive[j]] (a row without mass → 1/c).
   *   P: [n, n]  out: [c, c]            = `restrictGraph` of src/prune/wpr.ts
   */
  restrictGraph(P: Float32Array, n: number, alive: Int32Array, c: number, out: Float32Array): void;

  /**
   * Weighted Page Rank: s ← Pᵀ s in place, `iterations` times or until ‖Δs‖₁ < tolerance
   * (0: never stop early); returns the steps taken.
   *   P: [n, n] row-stochastic (row = query)  s: [n] in/out  next: [n] scratch
   *                                     = `weightedPageRank` of src/prune/wpr.ts
   */
  weightedPageRank(P: Float32Array, n: number, s: Float64Array, iterations: number, next: Float64Array, tolerance: number): number;

  /**
   * Best cosine match: with rows f_t = features[offset + t·stride … + dim) and the token list
   * order[0..m), B = order[0..bCount), A = order[bCount..m):
   *   best[a] = max_{b ∈ B} cos(f_a, f_b)   for every a ∈ A   (best indexed by token; others untouched)
   *   work: ≥ (m + 4)·dim float64 scratch   = `bestMatch` of src/prune/wpr.ts
   */
  maxCosine(
    features: Float32Array, offset: number, stride: number, dim: number,
    order: Int32Array, m: number, bCount: number, work: Float64Array, best: Float64Array,
  ): void;
}
