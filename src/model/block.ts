import type { FloatArray, Kernels, PreparedLinear } from '../kernels/types.js';
import { view } from '../kernels/types.js';
import type { TraceTensorName } from './hooks.js';
import type { BlockWeights, Norm, ViTConfig } from './types.js';

/**
 * One pre-norm transformer block (timm `Block`), its weights prepared once on a backend:
 *
 *   attention branch   x ← x + proj(MHSA(LN1(x)))
 *                      MHSA: per head h, softmax(q_h·k_hᵀ/√qk + log s)·v_h, heads concatenated
 *   MLP branch         x ← x + fc2(GELU(fc1(LN2(x))))
 *
 * Both branches work in place on the first n rows of a BlockActivations. Every caller runs a
 * block through these methods: the runner's forward pass, and channel pruning, which also runs
 * the attention branch up to its heads (selfAttention) and blocks whose attention weights it
 * replaced (withAttention).
 */

/** The buffers blocks compute in (llama2.c's RunState), sized once for `maxTokens` tokens and the model's largest widths. */
export interface BlockActivations<A extends FloatArray = Float32Array> {
  readonly x: A; // [T, D] residual stream
  readonly normed: A; // [T, D] LayerNorm output
  readonly qkv: A; // [T, 2H·qk + H·v] Q heads, K heads, V heads
  readonly probs: A; // [H, T, T] attention probabilities, row = query
  readonly attnOut: A; // [T, H·v] attention output, heads concatenated, before the projection
  readonly hidden: A; // [T, mlpDim] MLP hidden layer, after GELU
}

export function allocBlockActivations<A extends FloatArray>(kernels: Kernels<A>, cfg: ViTConfig, maxTokens: number): BlockActivations<A> {
  const T = maxTokens;
  const { dim: D, heads: H, qkDim, vDim } = cfg;
  return {
    x: kernels.alloc(T * D),
    normed: kernels.alloc(T * D),
    qkv: kernels.alloc(T * (2 * H * qkDim + H * vDim)),
    probs: kernels.alloc(H * T * T),
    attnOut: kernels.alloc(T * H * vDim),
    hidden: kernels.alloc(T * cfg.mlpDim),
  };
}

/** A LayerNorm's affine parameters on a backend. */
export interface PreparedNorm<A extends FloatArray = Float32Array> {
  readonly gamma: A; // [D]
  readonly beta: A; // [D]
}

export function prepareNorm<A extends FloatArray>(kernels: Kernels<A>, norm: Norm): PreparedNorm<A> {
  return { gamma: kernels.upload(norm.weight), beta: kernels.upload(norm.bias) };
}

/** A block's weights on a backend. */
export interface PreparedBlockWeights<A extends FloatArray = Float32Array> {
  readonly norm1: PreparedNorm<A>;
  readonly qkv: PreparedLinear; // [2H·qk + H·v, D]
  readonly proj: PreparedLinear; // [D, H·v]
  readonly norm2: PreparedNorm<A>;
  readonly fc1: PreparedLinear; // [mlpDim, D]
  readonly fc2: PreparedLinear; // [D, mlpDim]
}

/** Shows one of a block's intermediate tensors (ForwardHooks.observe with the block's index bound). */
export type BlockObserver<A extends FloatArray = Float32Array> = (name: TraceTensorName, data: A, shape: readonly number[]) => void;

export class Block<A extends FloatArray = Float32Array> {
  constructor(
    readonly kernels: Kernels<A>,
    readonly config: ViTConfig, // the model's config with this block's per-head widths (blockConfig)
    readonly weights: PreparedBlockWeights<A>,
  ) {}

  /** Prepare a block's weights on `kernels`; `config` carries the block's widths (blockConfig). */
  static prepare<A extends FloatArray>(kernels: Kernels<A>, config: ViTConfig, w: BlockWeights): Block<A> {
    return new Block(kernels, config, {
      norm1: prepareNorm(kernels, w.norm1),
      qkv: kernels.prepareLinear(w.qkv),
      proj: kernels.prepareLinear(w.proj),
      norm2: prepareNorm(kernels, w.norm2),
      fc1: kernels.prepareLinear(w.fc1),
      fc2: kernels.prepareLinear(w.fc2),
    });
  }

  /** The same block with other attention weights (and the widths `config` gives them): its norms and MLP are shared, not prepared again. */
  withAttention(config: ViTConfig, qkv: PreparedLinear, proj: PreparedLinear): Block<A> {
    return new Block(this.kernels, config, { ...this.weights, qkv, proj });
  }

  /** The attention branch up to its heads, x unchanged: normed = LN1(x), then multiHeadAttention. */
  selfAttention(a: BlockActivations<A>, n: number, logSizes: A | null, observe?: BlockObserver<A>): void {
    const { dim: D, eps } = this.config;
    this.kernels.layerNorm(a.x, n, D, this.weights.norm1.gamma, this.weights.norm1.beta, eps, a.normed);
    if (observe) observe('ln1', view(a.normed, 0, n * D), [n, D]);
    multiHeadAttention(this.kernels, this.config, this.weights.qkv, a, n, logSizes, observe);
  }

  /** x ← x + proj(MHSA(LN1(x))) on the first n rows; `logSizes` [n] (or null) weights the keys (ToMe's proportional attention). */
  attention(a: BlockActivations<A>, n: number, logSizes: A | null, observe?: BlockObserver<A>): void {
    this.selfAttention(a, n, logSizes, observe);
    this.project(a, n, observe);
  }

  /** The attention branch's residual add on the first n rows: x ← x + proj(attnOut). */
  project(a: BlockActivations<A>, n: number, observe?: BlockObserver<A>): void {
    this.kernels.linearAdd(a.attnOut, n, this.weights.proj, a.x);
    if (observe) observe('x.attn', view(a.x, 0, n * this.config.dim), [n, this.config.dim]);
  }

  /** x ← x + fc2(GELU(fc1(LN2(x)))) on the first n rows. */
  mlp(a: BlockActivations<A>, n: number, observe?: BlockObserver<A>): void {
    const { kernels: k, weights: w } = this;
    const { dim: D, eps, mlpDim } = this.config;
    k.layerNorm(a.x, n, D, w.norm2.gamma, w.norm2.beta, eps, a.normed);
    if (observe) observe('ln2', view(a.normed, 0, n * D), [n, D]);
    k.linearGelu(a.normed, n, w.fc1, a.hidden);
    if (observe) observe('mlp.hidden', view(a.hidden, 0, n * mlpDim), [n, mlpDim]);
    k.linearAdd(a.hidden, n, w.fc2, a.x);
    if (observe) observe('x.mlp', view(a.x, 0, n * D), [n, D]);
  }
}

/**
 * MHSA of the n tokens in `a.normed` with the fused projection `qkv` and the per-head widths of
 * `config`: a.qkv = normed·W_qkvᵀ + b, a.probs [H, n, n] and a.attnOut [n, H·v] (before the output projection).
 */
export function multiHeadAttention<A extends FloatArray>(
  kernels: Kernels<A>,
  config: ViTConfig,
  qkv: PreparedLinear,
  a: BlockActivations<A>,
  n: number,
  logSizes: A | null,
  observe?: BlockObserver<A>,
): void {
  const { heads: H, qkDim, vDim } = config;
  kernels.linear(a.normed, n, qkv, a.qkv);
  if (observe) observe('qkv', view(a.qkv, 0, n * qkv.outFeatures), [n, qkv.outFeatures]);
  kernels.attention(a.qkv, n, H, qkDim, vDim, 1 / Math.sqrt(qkDim), logSizes, a.probs, a.attnOut);
  if (observe) {
    observe('attn.probs', view(a.probs, 0, H * n * n), [H, n, n]);
    observe('attn.out', view(a.attnOut, 0, n * H * vDim), [n, H * vDim]);
  }
}
