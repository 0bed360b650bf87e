import type { BlockWeights, ViTConfig, ViTModel } from '../model/types.js';
import { blockConfig, prefixTokens } from '../model/types.js';
import { initialTokens, type BlockTokens } from '../model/gmacs.js';
import { gateBackward, gateForward, type ChannelGates } from './channel-gates.js';
import { projCorrectionBackward, projCorrectionForward, zeroProjCorrection, type ProjCorrection } from './reweight-proj.js';
import { softMaskBackward, softMaskForward, tokenMaskRecord, type SoftThreshold, type TokenMaskRecord } from './token-masks.js';
import type { GradKernels, GradLinear, GradNorm, Tensor } from './types.js';

/**
 * The ViT forward pass with soft pruning parameters, and its reverse-mode gradient with frozen
 * weights: the same blocks as model/vit.ts, run on every token, with
 *   - LTP's soft token masks (token-masks.ts): after the attention of a pruning block, each
 *     token's mass M is multiplied by σ((score − θ)/T); later attentions see log M as a key bias;
 *   - channel gates on each block's queries and values (channel-gates.ts);
 *   - a learned correction of each block's output projection (reweight-proj.ts).
 * With masks at 0/1 and gates at 1 this is the hard-pruned forward of model/vit.ts exactly.
 *
 *   x₀ = the embedded tokens (ViTRunner.embed)                                  [n, D]
 *   for each block b:
 *     qkv = gate(LN1(x_b)·W_qkvᵀ + b_qkv)                                        [n, 2H·qk + H·v]
 *     x_mid = x_b + proj′(attention(qkv, key bias log M^(b)))                    [n, D]
 *     log M^(b+1) = log M^(b) + log σ((score_b − θ_b)/T)    (pruning blocks only)
 *     x_(b+1) = x_mid + fc2(GELU(fc1(LN2(x_mid))))                               [n, D]
 *   logits = head(LN(x_L)[CLS])     (distilled: mean of head(CLS) and head_dist(DIST))
 *
 * `backward` runs the blocks in reverse from ∂L/∂logits (and ∂L/∂ of the soft token counts,
 * for a GMACs penalty) and returns ∂L/∂θ, ∂L/∂gates and ∂L/∂x₀. The forward keeps, per block,
 * exactly what the backward reads (its input x_b, qkv, P, x_mid and fc1's output; the raw qkv
 * when gated, the head outputs when proj is corrected), in buffers allocated once; the backward
 * walks them from the last block down, each block's tape used once.
 */

/** Soft pruning parameters of one forward pass. Blocks with null (or absent arrays) are left unpruned and ungated. */
export interface SoftPruning {
  thresholds?: readonly (SoftThreshold | null)[]; // [depth]
  gates?: readonly (ChannelGates | null)[]; // [depth]
  proj?: readonly (ProjCorrection | null)[]; // [depth] corrections of the output projections
}

export interface SoftForwardResult {
  logits: Float64Array; // [numClasses]
  /** Soft token counts per block: Σ_i M_i entering its attention and its MLP (fractional; = BlockTokens when masks are 0/1). */
  tokens: BlockTokens[];
}

export interface SoftGradients {
  theta: Float64Array; // [depth] ∂L/∂θ_b (0 where a block does not prune)
  gates: (ChannelGates | null)[]; // [depth] ∂L/∂gates, null where a block has none
  proj: (ProjCorrection | null)[]; // [depth] ∂L/∂ the proj corrections, null where a block has none
  embedded: Tensor; // [n, D] ∂L/∂x₀ (a view of the model's buffer, valid until the next backward)
}

interface PreparedBlock {
  config: ViTConfig; // blockConfig of this block
  norm1: GradNorm;
  qkv: GradLinear;
  proj: GradLinear;
  norm2: GradNorm;
  fc1: GradLinear;
  fc2: GradLinear;
}

/** What block b's forward keeps for its backward. */
interface BlockTape {
  input: Tensor; // [n, D] x_b
  qkvRaw: Tensor | null; // [n, 2H·qk + H·v] before the gates (allocated when the block is first gated)
  qkv: Tensor; // [n, 2H·qk + H·v] as the attention saw it
  probs: Tensor; // [H, n, n]
  middle: Tensor; // [n, D] x_mid
  hidden: Tensor; // [n, mlp] fc1's output, before GELU
  heads: Float64Array | null; // [n, H·v] the head outputs, kept when proj is corrected (allocated at first use)
  mask: TokenMaskRecord; // the soft mask step (pruning blocks)
  keyBiased: boolean; // whether the attention had a key bias (a block before it pruned)
}

export class SoftMaskedViT {
  readonly config: ViTConfig;
  readonly tokens: number; // n: every token, prefix first

  private readonly blocks: PreparedBlock[];
  private readonly norm: GradNorm;
  private readonly head: GradLinear;
  private readonly headDist: GradLinear | null;
  private readonly tape: BlockTape[];
  private readonly output: Tensor; // [n, D] x_L
  private readonly logMasks: Float64Array[]; // [depth + 1][n] log M entering block b (index b), and after the last

  // Working buffers, shared by the blocks.
  private readonly normed: Tensor; // [n, D]
  private readonly attnOut: Tensor; // [n, H·v]
  private readonly activation: Tensor; // [n, mlp]
  private readonly keyBias: Tensor; // [n]
  private readonly logits: Tensor; // [numClasses]
  private readonly logitsDist: Tensor; // [numClasses]
  private readonly dx: Tensor; // [n, D]
  private readonly dNormed: Tensor; // [n, D]
  private readonly dAttnOut: Tensor; // [n, H·v]
  private readonly dHidden: Tensor; // [n, mlp]
  private readonly dQkv: Tensor; // [n, 2H·qk + H·v]
  private readonly dProbs: Tensor; // [H, n, n]
  private readonly dKeyBias: Tensor; // [n]
  private readonly dLogits: Tensor; // [numClasses]
  private pruning: SoftPruning | null = null; // of the last forward

  constructor(
    model: ViTModel,
    readonly kernels: GradKernels,
  ) {
    const { config: cfg, weights } = model;
    const k = kernels;
    this.config = cfg;
    this.tokens = initialTokens(cfg);
    const n = this.tokens;
    this.blocks = weights.blocks.map((block, b) => prepareBlock(k, block, blockConfig(cfg, b)));
    this.norm = k.prepareNorm(weights.norm);
    this.head = k.prepareLinear(weights.head);
    this.headDist = weights.headDist ? k.prepareLinear(weights.headDist) : null;

    const { dim: D, heads: H, mlpDim } = cfg;
    const qkvWidth = 2 * H * cfg.qkDim + H * cfg.vDim; // the largest block's
    this.tape = this.blocks.map(() => ({
      input: k.alloc(n * D),
      qkvRaw: null,
      qkv: k.alloc(n * qkvWidth),
      probs: k.alloc(H * n * n),
      middle: k.alloc(n * D),
      hidden: k.alloc(n * mlpDim),
      heads: null,
      mask: tokenMaskRecord(n),
      keyBiased: false,
    }));
    this.output = k.alloc(n * D);
    this.logMasks = Array.from({ length: cfg.depth + 1 }, () => new Float64Array(n));
    this.normed = k.alloc(n * D);
    this.attnOut = k.alloc(n * H * cfg.vDim);
    this.activation = k.alloc(n * mlpDim);
    this.keyBias = k.alloc(n);
    this.logits = k.alloc(cfg.numClasses);
    this.logitsDist = k.alloc(cfg.numClasses);
    this.dx = k.alloc(n * D);
    this.dNormed = k.alloc(n * D);
    this.dAttnOut = k.alloc(n * H * cfg.vDim);
    this.dHidden = k.alloc(n * mlpDim);
    this.dQkv = k.alloc(n * qkvWidth);
    this.dProbs = k.alloc(H * n * n);
    this.dKeyBias = k.alloc(n);
    this.dLogits = k.alloc(cfg.numClasses);
  }

  /** Runs the soft-pruned model on the embedded tokens x₀ [n, D] and records what the backward needs. */
  forward(embedded: ArrayLike<number>, pruning: SoftPruning = {}): SoftForwardResult {
    const cfg = this.config;
    const k = this.kernels;
    const n = this.tokens;
    const D = cfg.dim;
    if (embedded.length !== n * D) throw new RangeError(`soft forward: expected embedded tokens [${n}, ${D}] (${n * D} values), got ${embedded.length}`);
    checkPerBlock(pruning.thresholds, cfg.depth, 'thresholds');
    checkPerBlock(pruning.gates, cfg.depth, 'gates');
    checkPerBlock(pruning.proj, cfg.depth, 'proj corrections');
    this.pruning = pruning;
    const prefix = prefixTokens(cfg);
    this.logMasks[0].fill(0);
    let masked = false; // whether some block has pruned so far (log M ≠ 0 somewhere)
    this.tape[0].input.set(embedded);

    for (let b = 0; b < cfg.depth; b++) {
      const blk = this.blocks[b];
      const bc = blk.config;
      const tape = this.tape[b];
      const next = b + 1 < cfg.depth ? this.tape[b + 1].input : this.output;
      const gates = pruning.gates?.[b] ?? null;
      const threshold = pruning.thresholds?.[b] ?? null;

      // qkv = gate(LN1(x)·W_qkvᵀ + b)
      k.layerNorm(tape.input, n, D, blk.norm1, cfg.eps, this.normed);
      if (gates) {
        tape.qkvRaw ??= k.alloc(tape.qkv.length);
        k.linear(this.normed, n, blk.qkv, tape.qkvRaw);
        gateForward(tape.qkvRaw, n, cfg.heads, bc.qkDim, bc.vDim, gates, tape.qkv);
      } else {
        k.linear(this.normed, n, blk.qkv, tape.qkv);
      }

      // x_mid = x + proj(attention(qkv, key bias log M))
      tape.keyBiased = masked;
      if (masked) this.keyBias.set(this.logMasks[b]);
      k.attention(tape.qkv, n, cfg.heads, bc.qkDim, bc.vDim, 1 / Math.sqrt(bc.qkDim), masked ? this.keyBias : null, tape.probs, this.attnOut);
      tape.middle.set(tape.input);
      k.linearAdd(this.attnOut, n, blk.proj, tape.middle);
      const correction = pruning.proj?.[b] ?? null;
      if (correction) {
        const width = cfg.heads * bc.vDim;
        tape.heads ??= new Float64Array(n * cfg.heads * cfg.vDim);
        tape.heads.set(this.attnOut.subarray(0, n * width));
        projCorrectionForward(tape.heads, n, width, correction, tape.middle);
      }

      // LTP's soft mask
      if (threshold) {
        softMaskForward(tape.probs, cfg.heads, n, prefix, this.logMasks[b], threshold, tape.mask, this.logMasks[b + 1]);
        masked = true;
      } else {
        this.logMasks[b + 1].set(this.logMasks[b]);
      }

      // x_(b+1) = x_mid + fc2(GELU(fc1(LN2(x_mid))))
      k.layerNorm(tape.middle, n, D, blk.norm2, cfg.eps, this.normed);
      k.linear(this.normed, n, blk.fc1, tape.hidden);
      k.gelu(tape.hidden, n * cfg.mlpDim, this.activation);
      next.set(tape.middle);
      k.linearAdd(this.activation, n, blk.fc2, next);
    }

    // logits = head(LN(x_L)[CLS]); the final norm is only needed on the prefix rows.
    k.layerNorm(this.output, prefix, D, this.norm, cfg.eps, this.normed);
    k.linear(this.normed, 1, this.head, this.logits);
    const logits = Float64Array.from(this.logits);
    if (this.headDist) {
      k.linear(this.normed.subarray(D), 1, this.headDist, this.logitsDist);
      for (let i = 0; i < logits.length; i++) logits[i] = (logits[i] + this.logitsDist[i]) / 2;
    }
    const mass = (logMask: Float64Array) => logMask.reduce((s, v) => s + Math.exp(v), 0);
    const tokens = this.tape.map((_, b) => ({ attention: mass(this.logMasks[b]), mlp: mass(this.logMasks[b + 1]) }));
    return { logits, tokens };
  }

  /**
   * Gradients of a loss L of the last forward's results: dLogits = ∂L/∂logits [numClasses] and,
   * optionally, dTokens = ∂L/∂ the soft token counts of each block, and blockOutputLoss, a loss
   * term on each block's output x_(b+1) [n, D] that adds its gradient to dOutput [n, D].
   */
  backward(
    dLogits: ArrayLike<number>,
    dTokens?: readonly BlockTokens[],
    blockOutputLoss?: (block: number, output: Tensor, dOutput: Tensor) => void,
  ): SoftGradients {
    const cfg = this.config;
    const k = this.kernels;
    const n = this.tokens;
    const D = cfg.dim;
    const pruning = this.pruning;
    if (!pruning) throw new RangeError('soft backward: expected a forward pass first');
    if (dLogits.length !== cfg.numClasses) throw new RangeError(`soft backward: expected ${cfg.numClasses} logit gradients, got ${dLogits.length}`);
    checkPerBlock(dTokens, cfg.depth, 'token count gradients');
    const prefix = prefixTokens(cfg);

    // Head: logits = head(LN(x_L)[0]) (distilled: (head(·[0]) + head_dist(·[1]))/2)
    this.dLogits.set(dLogits);
    if (this.headDist) {
      for (let i = 0; i < cfg.numClasses; i++) this.dLogits[i] /= 2;
      k.linearBackward(this.dLogits, 1, this.headDist, this.dNormed.subarray(D), false);
    }
    k.linearBackward(this.dLogits, 1, this.head, this.dNormed, false);
    this.dx.fill(0);
    k.layerNormBackward(this.output, prefix, D, this.norm, cfg.eps, this.dNormed, this.dx);

    const theta = new Float64Array(cfg.depth);
    const gates: (ChannelGates | null)[] = [];
    const proj: (ProjCorrection | null)[] = [];
    let dLogMask = new Float64Array(n); // ∂L/∂log M^(b+1), from its later uses
    let dLogMaskIn = new Float64Array(n);
    for (let b = cfg.depth - 1; b >= 0; b--) {
      const blk = this.blocks[b];
      const bc = blk.config;
      const tape = this.tape[b];
      // dx holds ∂L/∂x_(b+1)
      blockOutputLoss?.(b, b + 1 < cfg.depth ? this.tape[b + 1].input : this.output, this.dx);

      // MLP branch: x_(b+1) = x_mid + fc2(GELU(fc1(LN2(x_mid))))
      k.linearBackward(this.dx, n, blk.fc2, this.dHidden, false);
      k.geluBackward(tape.hidden, this.dHidden, n * cfg.mlpDim, this.dHidden);
      k.linearBackward(this.dHidden, n, blk.fc1, this.dNormed, false);
      k.layerNormBackward(tape.middle, n, D, blk.norm2, cfg.eps, this.dNormed, this.dx);
      // dx holds ∂L/∂x_mid

      // Token counts read log M^(b+1) directly: Σ exp(log M) as block b's MLP and block b+1's attention count.
      const countWeight = (dTokens?.[b].mlp ?? 0) + (b + 1 < cfg.depth ? (dTokens?.[b + 1].attention ?? 0) : 0);
      addCountGradient(this.logMasks[b + 1], countWeight, dLogMask);

      // LTP's soft mask: ∂L/∂log M^(b+1) → ∂L/∂log M^(b), ∂L/∂θ_b, and ∂L/∂P through the scores
      dLogMaskIn.fill(0);
      const threshold = pruning.thresholds?.[b] ?? null;
      if (threshold) {
        theta[b] = softMaskBackward(tape.probs, cfg.heads, n, prefix, threshold, tape.mask, dLogMask, dLogMaskIn, this.dProbs);
      } else {
        for (let i = 0; i < n; i++) dLogMaskIn[i] = dLogMask[i];
        this.dProbs.fill(0);
      }

      // Attention branch: x_mid = x_b + proj(attention(qkv))
      k.linearBackward(this.dx, n, blk.proj, this.dAttnOut, false);
      const correction = pruning.proj?.[b] ?? null;
      proj[b] = null;
      if (correction) {
        const width = cfg.heads * bc.vDim;
        proj[b] = zeroProjCorrection(D, width, correction.rank);
        projCorrectionBackward(tape.heads!, n, width, correction, this.dx, this.dAttnOut, proj[b]!);
      }
      if (tape.keyBiased) this.dKeyBias.fill(0);
      k.attentionBackward(
        tape.qkv,
        n,
        cfg.heads,
        bc.qkDim,
        bc.vDim,
        1 / Math.sqrt(bc.qkDim),
        tape.probs,
        this.dAttnOut,
        this.dProbs,
        this.dQkv,
        tape.keyBiased ? this.dKeyBias : null,
      );
      if (tape.keyBiased) for (let i = 0; i < n; i++) dLogMaskIn[i] += this.dKeyBias[i];
      const blockGates = pruning.gates?.[b] ?? null;
      if (blockGates) {
        const dGates: ChannelGates = { qk: blockGates.qk && new Float64Array(blockGates.qk.length), v: blockGates.v && new Float64Array(blockGates.v.length) };
        gateBackward(tape.qkvRaw!, n, cfg.heads, bc.qkDim, bc.vDim, blockGates, this.dQkv, dGates);
        gates[b] = dGates;
      } else {
        gates[b] = null;
      }
      k.linearBackward(this.dQkv, n, blk.qkv, this.dNormed, false);
      k.layerNormBackward(tape.input, n, D, blk.norm1, cfg.eps, this.dNormed, this.dx);
      // dx holds ∂L/∂x_b
      [dLogMask, dLogMaskIn] = [dLogMaskIn, dLogMask];
    }
    return { theta, gates, proj, embedded: this.dx };
  }
}

function prepareBlock(k: GradKernels, w: BlockWeights, config: ViTConfig): PreparedBlock {
  const [qkv, proj, fc1, fc2] = [w.qkv, w.proj, w.fc1, w.fc2].map((lin) => k.prepareLinear(lin));
  return { config, norm1: k.prepareNorm(w.norm1), norm2: k.prepareNorm(w.norm2), qkv, proj, fc1, fc2 };
}

/** dLogMask[i] += weight·exp(logMask[i]): the gradient of weight·Σ_i M_i with respect to log M. */
function addCountGradient(logMask: Float64Array, weight: number, dLogMask: Float64Array): void {
  if (weight === 0) return;
  for (let i = 0; i < logMask.length; i++) dLogMask[i] += weight * Math.exp(logMask[i]);
}

function checkPerBlock(values: readonly unknown[] | undefined, depth: number, what: string): void {
  if (values !== undefined && values.length !== depth)
    throw new RangeError(`soft pruning: expected ${what} for each of the ${depth} blocks, got ${values.length}`);
}
