import type { Linear } from '../model/types.js';

/**
 * Reverse-mode gradients of the ViT forward pass with frozen weights: gradients with respect to
 * activations (and, one level up in soft-vit.ts, to a few pruning parameters), never to weights.
 *
 * Activations and their gradients are float32 (the wasm backend, and the reference one for
 * parity tests) or float64 (the reference backend, for finite-difference checks). A backend
 * hands out its own buffers (`alloc`); shapes are in brackets, matrices row-major.
 */
export type Tensor = Float32Array | Float64Array;

/** A frozen linear layer prepared once for both directions: y = x·Wᵀ + b and dx = dy·W. */
export interface GradLinear {
  readonly outFeatures: number;
  readonly inFeatures: number;
}

/** A frozen LayerNorm's parameters in the backend's memory. */
export interface GradNorm {
  readonly gamma: Tensor; // [d]
  readonly beta: Tensor; // [d]
}

/**
 * The operations of the forward pass that a backward pass needs, each with its input gradient.
 * Backward operations take what the forward saved (its input, or its output where that is
 * cheaper) and either overwrite or accumulate into the gradient they produce, as documented:
 * accumulation is how residual branches and fan-out add up.
 */
export interface GradKernels {
  readonly name: string;
  readonly precision: 'float32' | 'float64';

  /** A zero-filled buffer of `length` values the kernels can use. Set-up only: never per layer. */
  alloc(length: number): Tensor;
  /** `alloc` + copy. */
  upload(data: ArrayLike<number>): Tensor;
  prepareLinear(lin: Linear): GradLinear;
  prepareNorm(norm: { weight: Float32Array; bias: Float32Array }): GradNorm;

  /** out[m, o] = x[m, i]·Wᵀ + b */
  linear(x: Tensor, m: number, w: GradLinear, out: Tensor): void;
  /** acc[m, o] += x[m, i]·Wᵀ + b */
  linearAdd(x: Tensor, m: number, w: GradLinear, acc: Tensor): void;
  /** dx[m, i] = dy[m, o]·W, or dx += dy·W when `accumulate` (∂(x·Wᵀ + b)/∂x; W frozen) */
  linearBackward(dy: Tensor, m: number, w: GradLinear, dx: Tensor, accumulate: boolean): void;

  /** out[m, d] = (x − μ)/√(σ² + eps)·γ + β per row (population variance) */
  layerNorm(x: Tensor, m: number, d: number, norm: GradNorm, eps: number, out: Tensor): void;
  /**
   * dx[m, d] += r·(g − mean(g) − x̂·mean(g⊙x̂)) per row, g = dy⊙γ, x̂ = (x − μ)·r, r = 1/√(σ² + eps):
   * the input gradient of layerNorm, from its input x.
   */
  layerNormBackward(x: Tensor, m: number, d: number, norm: GradNorm, eps: number, dy: Tensor, dx: Tensor): void;

  /** out[i] = GELU(x[i]) = x·Φ(x) for i < length (exact, erf-based) */
  gelu(x: Tensor, length: number, out: Tensor): void;
  /** dx[i] = dy[i]·GELU′(x[i]),  GELU′(x) = Φ(x) + x·φ(x), from the input x */
  geluBackward(x: Tensor, dy: Tensor, length: number, dx: Tensor): void;

  /**
   * Multi-head attention with an additive key bias (the log of a token's mask or size):
   *   qkv [n, 2H·qk + H·v]: Q heads, K heads, V heads
   *   probs [H, n, n] out: P_h = softmax(scale·Q_h K_hᵀ + 1·keyBiasᵀ) row-wise (row = query)
   *   out [n, H·v] out: P_h V_h, heads concatenated
   */
  attention(qkv: Tensor, n: number, heads: number, qkDim: number, vDim: number, scale: number, keyBias: Tensor | null, probs: Tensor, out: Tensor): void;
  /**
   * The input gradients of `attention`, from its qkv and probs:
   *   dProbs [H, n, n] in: gradient reaching P from elsewhere (0 if none); clobbered (scratch)
   *   dP_h = dProbs_h + dO_h V_hᵀ;  dS_h = P_h ⊙ (dP_h − rowsum(P_h ⊙ dP_h))  (softmax)
   *   dqkv [n, 2H·qk + H·v] out: dQ_h = scale·dS_h K_h,  dK_h = scale·dS_hᵀ Q_h,  dV_h = P_hᵀ dO_h
   *   dKeyBias [n] or null: += Σ_h Σ_q dS_h[q, ·]
   */
  attentionBackward(
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
  ): void;
}
