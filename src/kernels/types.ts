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
  /** `alloc` + copy. */
  upload(data: Float32Array): Float32Array;
  /** Prepare (copy, pack) a linear layer's weight and bias once. */
  prepareLinear(lin: Linear): PreparedLinear;

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
}
