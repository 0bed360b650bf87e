/** The float buffers a backend computes in: float32 (the engine), float64 (an oracle's). */
export type FloatArray = Float32Array | Float64Array;

/** Rows [start, end) of a buffer, as a view of the same type. */
export function view<A extends FloatArray>(buffer: A, start: number, end: number): A {
  return buffer.subarray(start, end) as A;
}

/** A linear layer's weights, as models store them and backends take them. */
export interface Linear {
  weight: Float32Array; // [out, in]  (PyTorch layout: y = x·Wᵀ + b)
  bias: Float32Array; // [out]
  outFeatures: number;
  inFeatures: number;
}

/** A weight matrix prepared once at load time (the wasm backend packs it into panels). */
export interface PreparedLinear {
  readonly outFeatures: number;
  readonly inFeatures: number;
}

/**
 * The numeric kernels of the forward pass. Two implementations: `reference` (plain TS,
 * the oracle) and `wasm` (AssemblyScript SIMD). Buffers passed to a backend must come
 * from that backend's `alloc`/`upload` (the wasm backend's live in its linear memory).
 * All matrices are row-major; shapes in brackets. `A` is the backend's buffer type (float32
 * unless a backend computes in float64). Kernels of a pruning method are not here: they sit in
 * the method's own interface beside it (e.g. prune/zero-tprune-kernels.ts).
 */
export interface Kernels<A extends FloatArray = Float32Array> {
  readonly name: string;

  /** A zero-filled buffer of `length` floats that this backend's kernels can use. Call at set-up, never per layer. */
  alloc(length: number): A;
  /** `alloc` + copy. */
  upload(data: Float32Array): A;
  /** Prepare (copy, pack) a linear layer's weight and bias once. */
  prepareLinear(lin: Linear): PreparedLinear;
  /**
   * Gives back a buffer from alloc/upload: the whole buffer those returned (or a float64/int32 view
   * laid over the whole of one, as ZeroTPruneKernels allocates), not a part of it. Neither it nor
   * any view of it may be used afterwards.
   */
  free(buffer: Float32Array | Float64Array | Int32Array): void;
  /** Gives back what prepareLinear took for `w`; `w` may not be used afterwards. */
  releaseLinear(w: PreparedLinear): void;
  /** Ends the backend's worker threads, if any; resolves when they have ended. The kernels may not be used afterwards. */
  dispose(): Promise<void>;

  /** out[m, o] = x[m, i] · Wᵀ + b */
  linear(x: A, m: number, w: PreparedLinear, out: A): void;
  /** acc[m, o] += x[m, i] · Wᵀ + b   (the residual add fused into the projection) */
  linearAdd(x: A, m: number, w: PreparedLinear, acc: A): void;
  /** out[m, o] = GELU(x[m, i] · Wᵀ + b)   (exact, erf-based GELU) */
  linearGelu(x: A, m: number, w: PreparedLinear, out: A): void;

  /**
   * The patch embedding's im2col: out[p, (c, y, x)] = image[c, py·P + y, px·P + x] for the
   * patches p = py·(S/P) + px in row-major order.  image [C, S, S] → out [(S/P)², C·P·P]
   */
  im2col(image: A, channels: number, size: number, patch: number, out: A): void;
  /** out[m, d] = LayerNorm(x[m, d]) · gamma + beta, population variance, `eps` inside the sqrt. */
  layerNorm(x: A, m: number, d: number, gamma: A, beta: A, eps: number, out: A): void;
  /** In place over `length` values: x ← x · Φ(x) with the exact normal CDF. */
  gelu(x: A, length: number): void;
  /** In place, row-wise softmax of x[rows, cols]. */
  softmax(x: A, rows: number, cols: number): void;

  /**
   * Multi-head self-attention core for n tokens.
   *   qkv:   [n, 2·H·qkDim + H·vDim]  (Q heads, then K heads, then V heads)
   *   probs: [H, n, n]  out: softmax(scale · Q_h K_hᵀ + logSizes) per head (row = query)
   *   out:   [n, H·vDim] out: P_h V_h, heads concatenated
   *   logSizes: [n] or null, added to every query's logit for key j (ToMe's proportional attention)
   */
  attention(qkv: A, n: number, heads: number, qkDim: number, vDim: number, scale: number, logSizes: A | null, probs: A, out: A): void;
}
