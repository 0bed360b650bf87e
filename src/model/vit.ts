import { VitpruneError } from '../errors.js';
import type { Kernels, PreparedLinear } from '../kernels/types.js';
import type { BlockTokens } from '../prune/flops.js';
import { modelGmacs } from '../prune/flops.js';
import type { ViTConfig, ViTModel } from './types.js';
import { blockConfig, numPatches, prefixTokens } from './types.js';

/**
 * The ViT / DeiT forward pass (timm `VisionTransformer`), written once over the `Kernels`
 * interface so the reference and the wasm backends run the same code:
 *
 *   x  = [CLS, (DIST), patches·W_pe + b_pe] + pos_embed               // [n, D]
 *   for each block:
 *     x = x + proj(MHSA(LN1(x)))          → hook afterAttention (may reduce tokens)
 *     x = x + fc2(GELU(fc1(LN2(x))))      → hook afterBlock     (may reduce tokens)
 *   logits = head(LN(x)[CLS])    (distilled: mean of head(CLS) and head_dist(DIST))
 *
 * The token count n may change at either hook; every later kernel runs on the first n rows.
 */

/** What a block has computed, handed to hooks. Views into the runner's buffers: valid during the call only. */
export interface BlockState {
  readonly config: ViTConfig; // the model's, with this block's per-head widths (blockConfig)
  readonly model: ViTConfig; // the model's own: the same object for every block and image (caches key on it; widths are the largest)
  readonly block: number; // 0-indexed block
  readonly n: number; // tokens alive (prefix tokens first)
  readonly x: Float32Array; // [n, D] residual stream (rows beyond n are stale)
  readonly probs: Float32Array; // [H, n_att, n_att] attention probabilities (row = query) of this block
  readonly attentionTokens: number; // n_att: tokens that entered this block's attention
  readonly qkv: Float32Array; // [n_att, 2H·qk + H·v] Q, K, V of this block's attention
  readonly sizes: Float32Array | null; // [n] tokens represented by each token (merging methods), null = all 1
  readonly tokenIds: Int32Array; // [n] original position of each token (0 = CLS, prefix + p = patch p)
  readonly kernels: Kernels; // the backend the buffers above belong to (hooks may run its kernels on them)
}

/**
 * A change of the token set returned by a hook:
 *  - keep: the rows to keep, in the order they should appear (prefix tokens must stay first);
 *  - replace: a whole new token matrix (merging methods).
 */
export type TokenReduction =
  | { kind: 'keep'; indices: ArrayLike<number> }
  | { kind: 'replace'; n: number; x: Float32Array; sizes: Float32Array | null; tokenIds: Int32Array };

/**
 * The intermediate tensors `observe` sees, in the order they are computed (n = tokens alive):
 *   block −1:      'embed' [n, D]
 *   every block b: 'ln1' [n, D], 'qkv' [n, 2H·qk + H·v], 'attn.probs' [H, n, n], 'attn.out' [n, H·v] (before proj),
 *                  'x.attn' [n, D] (residual after attention, before afterAttention), 'ln2' [n, D],
 *                  'mlp.hidden' [n, mlpDim] (after GELU), 'x.mlp' [n, D] (before afterBlock)
 *   block depth:   'final.norm' [prefix, D], 'logits' [classes]
 */
export type ObservedTensor =
  | 'embed' | 'ln1' | 'qkv' | 'attn.probs' | 'attn.out' | 'x.attn' | 'ln2' | 'mlp.hidden' | 'x.mlp' | 'final.norm' | 'logits';

export interface ForwardHooks {
  afterAttention?(state: BlockState): TokenReduction | void;
  afterBlock?(state: BlockState): TokenReduction | void;
  /** Sees each intermediate tensor as it is computed: a view into the runner's buffers, valid during the call only. */
  observe?(block: number, name: ObservedTensor, data: Float32Array, shape: readonly number[]): void;
}

export interface ForwardResult {
  logits: Float32Array; // [numClasses]
  tokens: BlockTokens[]; // executed token counts per block
  gmacs: number; // computed from the executed token counts
}

interface PreparedBlock {
  config: ViTConfig; // blockConfig of this block, built once
  norm1: { gamma: Float32Array; beta: Float32Array };
  qkv: PreparedLinear;
  proj: PreparedLinear;
  norm2: { gamma: Float32Array; beta: Float32Array };
  fc1: PreparedLinear;
  fc2: PreparedLinear;
}

/** Runs one model on one backend. Weights are prepared and every buffer allocated once, here. */
export class ViTRunner {
  readonly config: ViTConfig;
  readonly kernels: Kernels;
  readonly maxTokens: number;

  private readonly patchEmbed: PreparedLinear;
  private readonly prefix: Float32Array; // [prefix, D] CLS (and DIST) token
  private readonly posEmbed: Float32Array; // [maxTokens, D]
  private readonly blocks: PreparedBlock[];
  private readonly norm: { gamma: Float32Array; beta: Float32Array };
  private readonly head: PreparedLinear;
  private readonly headDist: PreparedLinear | null;

  // Activations, sized for maxTokens; under pruning only the first n rows are used.
  private readonly patches: Float32Array; // [patches, C·P·P] im2col of the input image
  private readonly x: Float32Array; // [maxTokens, D] residual stream
  private readonly normed: Float32Array; // [maxTokens, D] LayerNorm output
  private readonly qkv: Float32Array; // [maxTokens, 2H·qk + H·v]
  private readonly probs: Float32Array; // [H, maxTokens, maxTokens]
  private readonly attnOut: Float32Array; // [maxTokens, H·v]
  private readonly hidden: Float32Array; // [maxTokens, mlpDim]
  private readonly logSizes: Float32Array; // [maxTokens]
  private readonly logits: Float32Array; // [numClasses]
  private readonly logitsDist: Float32Array; // [numClasses]
  private sizes: Float32Array; // [maxTokens]
  private tokenIds: Int32Array; // [maxTokens]
  private disposed = false;

  constructor(model: ViTModel, kernels: Kernels) {
    const cfg = model.config;
    const w = model.weights;
    const k = kernels;
    this.config = cfg;
    this.kernels = k;
    const prefixCount = prefixTokens(cfg);
    this.maxTokens = prefixCount + numPatches(cfg);

    this.patchEmbed = k.prepareLinear(w.patchEmbed);
    const prefix = new Float32Array(prefixCount * cfg.dim);
    prefix.set(w.clsToken, 0);
    if (w.distToken) prefix.set(w.distToken, cfg.dim);
    this.prefix = prefix;
    this.posEmbed = w.posEmbed;
    const norm = (n: { weight: Float32Array; bias: Float32Array }) => ({ gamma: k.upload(n.weight), beta: k.upload(n.bias) });
    this.blocks = w.blocks.map((b, i) => ({
      config: blockConfig(cfg, i),
      norm1: norm(b.norm1),
      qkv: k.prepareLinear(b.qkv),
      proj: k.prepareLinear(b.proj),
      norm2: norm(b.norm2),
      fc1: k.prepareLinear(b.fc1),
      fc2: k.prepareLinear(b.fc2),
    }));
    this.norm = norm(w.norm);
    this.head = k.prepareLinear(w.head);
    this.headDist = w.headDist ? k.prepareLinear(w.headDist) : null;

    const T = this.maxTokens;
    const qkvWidth = 2 * cfg.heads * cfg.qkDim + cfg.heads * cfg.vDim;
    this.patches = k.alloc(numPatches(cfg) * cfg.inChannels * cfg.patchSize * cfg.patchSize);
    this.x = k.alloc(T * cfg.dim);
    this.normed = k.alloc(T * cfg.dim);
    this.qkv = k.alloc(T * qkvWidth);
    this.probs = k.alloc(cfg.heads * T * T);
    this.attnOut = k.alloc(T * cfg.heads * cfg.vDim);
    this.hidden = k.alloc(T * cfg.mlpDim);
    this.logSizes = k.alloc(T);
    this.logits = k.alloc(cfg.numClasses);
    this.logitsDist = k.alloc(cfg.numClasses);
    this.sizes = new Float32Array(T);
    this.tokenIds = new Int32Array(T);
  }

  /**
   * The residual stream entering block 0 for `input` [C, S, S]: [CLS, (DIST), patches·W_pe + b_pe] + pos_embed,
   * [tokens, D] (a view of the runner's buffer, overwritten by the next call).
   */
  embed(input: Float32Array): Float32Array {
    const cfg = this.config;
    const D = cfg.dim;
    const expected = cfg.inChannels * cfg.imageSize * cfg.imageSize;
    if (input.length !== expected) {
      throw new RangeError(`input has ${input.length} values, expected ${expected} ([${cfg.inChannels}, ${cfg.imageSize}, ${cfg.imageSize}])`);
    }
    // Patch embedding: a stride-P convolution = im2col + linear.
    this.im2col(input);
    const prefixCount = prefixTokens(cfg);
    this.kernels.linear(this.patches, numPatches(cfg), this.patchEmbed, this.x.subarray(prefixCount * D));
    this.x.set(this.prefix, 0);
    const x = this.x;
    const posEmbed = this.posEmbed;
    for (let i = 0; i < this.maxTokens * D; i++) x[i] += posEmbed[i];
    return x.subarray(0, this.maxTokens * D);
  }

  /**
   * Gives back the backend memory this runner took (prepared weights, activation buffers); the
   * runner cannot run afterwards. The backend itself stays open (its `dispose` ends its threads).
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const k = this.kernels;
    const linears = [this.patchEmbed, this.head, ...(this.headDist ? [this.headDist] : [])];
    const buffers = [this.norm.gamma, this.norm.beta];
    for (const b of this.blocks) {
      linears.push(b.qkv, b.proj, b.fc1, b.fc2);
      buffers.push(b.norm1.gamma, b.norm1.beta, b.norm2.gamma, b.norm2.beta);
    }
    buffers.push(this.patches, this.x, this.normed, this.qkv, this.probs, this.attnOut, this.hidden, this.logSizes, this.logits, this.logitsDist);
    for (const w of linears) k.releaseLinear(w);
    for (const b of buffers) k.free(b);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Classify one preprocessed image `input` [C, S, S]. */
  forward(input: Float32Array, hooks: ForwardHooks = {}): ForwardResult {
    if (this.disposed) throw new VitpruneError('forward: expected a live runner, this one was disposed');
    const cfg = this.config;
    const k = this.kernels;
    const D = cfg.dim;
    this.embed(input);
    let n = this.maxTokens;
    const observe = hooks.observe?.bind(hooks);
    observe?.(-1, 'embed', this.x.subarray(0, n * D), [n, D]);
    let hasSizes = false;
    this.sizes.fill(1);
    for (let i = 0; i < n; i++) this.tokenIds[i] = i;

    const tokens: BlockTokens[] = [];
    for (let b = 0; b < cfg.depth; b++) {
      const blk = this.blocks[b];
      const bc = blk.config; // this block's per-head widths
      const nAttention = n;

      // x = x + proj(MHSA(LN1(x)))
      k.layerNorm(this.x, n, D, blk.norm1.gamma, blk.norm1.beta, cfg.eps, this.normed);
      observe?.(b, 'ln1', this.normed.subarray(0, n * D), [n, D]);
      k.linear(this.normed, n, blk.qkv, this.qkv);
      if (hasSizes) for (let i = 0; i < n; i++) this.logSizes[i] = Math.log(this.sizes[i]);
      k.attention(this.qkv, n, cfg.heads, bc.qkDim, bc.vDim, 1 / Math.sqrt(bc.qkDim), hasSizes ? this.logSizes : null, this.probs, this.attnOut);
      if (observe) {
        const qkvWidth = 2 * cfg.heads * bc.qkDim + cfg.heads * bc.vDim;
        observe(b, 'qkv', this.qkv.subarray(0, n * qkvWidth), [n, qkvWidth]);
        observe(b, 'attn.probs', this.probs.subarray(0, cfg.heads * n * n), [cfg.heads, n, n]);
        observe(b, 'attn.out', this.attnOut.subarray(0, n * cfg.heads * bc.vDim), [n, cfg.heads * bc.vDim]);
      }
      k.linearAdd(this.attnOut, n, blk.proj, this.x);
      observe?.(b, 'x.attn', this.x.subarray(0, n * D), [n, D]);

      if (hooks.afterAttention) {
        const r = hooks.afterAttention(this.state(bc, b, n, nAttention, hasSizes));
        if (r) ({ n, hasSizes } = this.apply(r, n, hasSizes));
      }

      // x = x + fc2(GELU(fc1(LN2(x))))
      k.layerNorm(this.x, n, D, blk.norm2.gamma, blk.norm2.beta, cfg.eps, this.normed);
      observe?.(b, 'ln2', this.normed.subarray(0, n * D), [n, D]);
      k.linearGelu(this.normed, n, blk.fc1, this.hidden);
      observe?.(b, 'mlp.hidden', this.hidden.subarray(0, n * cfg.mlpDim), [n, cfg.mlpDim]);
      k.linearAdd(this.hidden, n, blk.fc2, this.x);
      observe?.(b, 'x.mlp', this.x.subarray(0, n * D), [n, D]);
      tokens.push({ attention: nAttention, mlp: n });

      if (hooks.afterBlock) {
        const r = hooks.afterBlock(this.state(bc, b, n, nAttention, hasSizes));
        if (r) ({ n, hasSizes } = this.apply(r, n, hasSizes));
      }
    }

    // logits = head(LN(x)[CLS]); the final norm is only needed on the prefix rows.
    const prefix = prefixTokens(cfg);
    k.layerNorm(this.x, prefix, D, this.norm.gamma, this.norm.beta, cfg.eps, this.normed);
    observe?.(cfg.depth, 'final.norm', this.normed.subarray(0, prefix * D), [prefix, D]);
    k.linear(this.normed, 1, this.head, this.logits);
    if (this.headDist) {
      k.linear(this.normed.subarray(D), 1, this.headDist, this.logitsDist);
      for (let i = 0; i < cfg.numClasses; i++) this.logits[i] = (this.logits[i] + this.logitsDist[i]) / 2;
    }
    observe?.(cfg.depth, 'logits', this.logits, [cfg.numClasses]);
    return { logits: Float32Array.from(this.logits), tokens, gmacs: modelGmacs(cfg, tokens) };
  }

  /** patches[p, (c, y, x)] = input[c, py·P + y, px·P + x], patches in row-major (py, px) order. */
  private im2col(input: Float32Array): void {
    const { inChannels: C, patchSize: P, imageSize: S } = this.config;
    const side = S / P;
    const patches = this.patches; // a local: V8 then keeps the view's base in a register (≈ 25 % faster)
    let o = 0;
    for (let py = 0; py < side; py++) {
      for (let px = 0; px < side; px++) {
        for (let c = 0; c < C; c++) {
          for (let y = 0; y < P; y++) {
            const row = c * S * S + (py * P + y) * S + px * P;
            for (let x = 0; x < P; x++) patches[o++] = input[row + x];
          }
        }
      }
    }
  }

  private state(config: ViTConfig, block: number, n: number, attentionTokens: number, hasSizes: boolean): BlockState {
    const D = config.dim;
    return {
      config,
      model: this.config,
      block,
      n,
      x: this.x.subarray(0, n * D),
      probs: this.probs.subarray(0, config.heads * attentionTokens * attentionTokens),
      attentionTokens,
      qkv: this.qkv.subarray(0, attentionTokens * (2 * config.heads * config.qkDim + config.heads * config.vDim)),
      sizes: hasSizes ? this.sizes.subarray(0, n) : null,
      tokenIds: this.tokenIds.subarray(0, n),
      kernels: this.kernels,
    };
  }

  /** Apply a hook's reduction to the residual stream, sizes and token ids. */
  private apply(r: TokenReduction, n: number, hasSizes: boolean): { n: number; hasSizes: boolean } {
    const D = this.config.dim;
    const prefixCount = prefixTokens(this.config);
    if (r.kind === 'keep') {
      const idx = r.indices;
      if (idx.length > n) throw new RangeError(`reduction keeps ${idx.length} tokens but only ${n} are alive`);
      for (let p = 0; p < prefixCount; p++) {
        if (idx[p] !== p) throw new RangeError(`reduction must keep prefix token ${p} at position ${p}, found ${idx[p]}`);
      }
      // Gather rows. In place is safe for ascending indices (row i comes from row idx[i] ≥ i);
      // any other order gathers from a copy.
      const ascending = isAscending(idx);
      const srcX = ascending ? this.x : this.x.slice(0, n * D);
      const srcSizes = ascending ? this.sizes : this.sizes.slice(0, n);
      const srcIds = ascending ? this.tokenIds : this.tokenIds.slice(0, n);
      for (let i = 0; i < idx.length; i++) {
        const j = idx[i];
        if (!(j >= 0 && j < n)) throw new RangeError(`reduction index ${j} is outside 0..${n - 1}`);
        if (ascending && i !== j) this.x.copyWithin(i * D, j * D, (j + 1) * D);
        if (!ascending) this.x.set(srcX.subarray(j * D, (j + 1) * D), i * D);
        this.sizes[i] = srcSizes[j];
        this.tokenIds[i] = srcIds[j];
      }
      return { n: idx.length, hasSizes };
    }
    if (r.n > this.maxTokens) throw new RangeError(`reduction produces ${r.n} tokens, more than the ${this.maxTokens} the model was sized for`);
    this.x.set(r.x.subarray(0, r.n * D), 0);
    this.tokenIds.set(r.tokenIds.subarray(0, r.n), 0);
    if (r.sizes) this.sizes.set(r.sizes.subarray(0, r.n), 0);
    else this.sizes.fill(1, 0, r.n);
    return { n: r.n, hasSizes: r.sizes !== null };
  }
}

function isAscending(idx: ArrayLike<number>): boolean {
  for (let i = 1; i < idx.length; i++) if (idx[i] <= idx[i - 1]) return false;
  return true;
}

/** The keys of head h for token i live at qkv[i·stride + keyOffset(h) … + qkDim]. */
export function qkvLayout(cfg: ViTConfig): { stride: number; queryOffset: (h: number) => number; keyOffset: (h: number) => number; valueOffset: (h: number) => number } {
  const H = cfg.heads;
  return {
    stride: 2 * H * cfg.qkDim + H * cfg.vDim,
    queryOffset: (h) => h * cfg.qkDim,
    keyOffset: (h) => H * cfg.qkDim + h * cfg.qkDim,
    valueOffset: (h) => 2 * H * cfg.qkDim + h * cfg.vDim,
  };
}
