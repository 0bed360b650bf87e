import { VitpruneError } from '../errors.js';
import type { FloatArray, Kernels, PreparedLinear } from '../kernels/types.js';
import { view } from '../kernels/types.js';
import { allocBlockActivations, Block, prepareNorm, type BlockActivations, type BlockObserver, type PreparedNorm } from './block.js';
import type { BlockTokens } from './gmacs.js';
import { modelGmacs } from './gmacs.js';
import type { BlockState, ForwardHooks, TokenReduction } from './hooks.js';
import type { BlockWeights, ViTConfig, ViTModel } from './types.js';
import { blockConfig, numPatches, prefixTokens } from './types.js';

/**
 * The ViT / DeiT forward pass (timm `VisionTransformer`), written once over the `Kernels`
 * interface so the reference and the wasm backends run the same code:
 *
 *   x  = [CLS, (DIST), patches·W_pe + b_pe] + pos_embed               // [n, D]
 *   for each block (block.ts):
 *     o = MHSA(LN1(x))                    → hook beforeProjection (may replace x and o together)
 *     x = x + proj(o)                     → hook afterAttention   (may reduce tokens)
 *     x = x + fc2(GELU(fc1(LN2(x))))      → hook afterBlock       (may reduce tokens)
 *   logits = head(LN(x)[CLS])    (distilled: mean of head(CLS) and head_dist(DIST))
 *
 * The token count n may change at any hook; every later kernel runs on the first n rows.
 * Hooks and the tensors `observe` sees: hooks.ts.
 */

export interface ForwardResult<A extends FloatArray = Float32Array> {
  logits: A; // [numClasses]
  tokens: BlockTokens[]; // executed token counts per block
  gmacs: number; // computed from the executed token counts
}

/** Runs one model on one backend. Weights are prepared and every buffer allocated once, here. */
export class ViTRunner<A extends FloatArray = Float32Array> {
  readonly config: ViTConfig;
  readonly kernels: Kernels<A>;
  readonly maxTokens: number;
  readonly blocks: readonly Block<A>[];
  private readonly blockWeights: readonly BlockWeights[]; // as loaded, handed to hooks (BlockState.weights)

  private readonly patchEmbed: PreparedLinear;
  private readonly prefix: Float32Array; // [prefix, D] CLS (and DIST) token
  private readonly posEmbed: Float32Array; // [maxTokens, D]
  private readonly norm: PreparedNorm<A>;
  private readonly head: PreparedLinear;
  private readonly headDist: PreparedLinear | null;

  // Activations, sized for maxTokens; under pruning only the first n rows are used.
  private readonly image: A; // [C, S, S] the input image, in the backend's memory
  private readonly patches: A; // [patches, C·P·P] im2col of the input image
  private readonly activations: BlockActivations<A>; // x [maxTokens, D] is the residual stream
  private readonly logSizes: A; // [maxTokens]
  private readonly logits: A; // [numClasses]
  private readonly logitsDist: A; // [numClasses]
  private sizes: Float32Array; // [maxTokens]
  private tokenIds: Int32Array; // [maxTokens]
  private disposed = false;

  constructor(model: ViTModel, kernels: Kernels<A>) {
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
    this.blocks = w.blocks.map((b, i) => Block.prepare(k, blockConfig(cfg, i), b));
    this.blockWeights = w.blocks;
    this.norm = prepareNorm(k, w.norm);
    this.head = k.prepareLinear(w.head);
    this.headDist = w.headDist ? k.prepareLinear(w.headDist) : null;

    const T = this.maxTokens;
    this.image = k.alloc(cfg.inChannels * cfg.imageSize * cfg.imageSize);
    this.patches = k.alloc(numPatches(cfg) * cfg.inChannels * cfg.patchSize * cfg.patchSize);
    this.activations = allocBlockActivations(k, cfg, T);
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
  embed(input: Float32Array): A {
    this.checkLive('embed');
    const cfg = this.config;
    const D = cfg.dim;
    const expected = cfg.inChannels * cfg.imageSize * cfg.imageSize;
    if (input.length !== expected) {
      throw new RangeError(`input has ${input.length} values, expected ${expected} ([${cfg.inChannels}, ${cfg.imageSize}, ${cfg.imageSize}])`);
    }
    // Patch embedding: a stride-P convolution = im2col + linear.
    this.image.set(input);
    this.kernels.im2col(this.image, cfg.inChannels, cfg.imageSize, cfg.patchSize, this.patches);
    const prefixCount = prefixTokens(cfg);
    const x = this.activations.x;
    this.kernels.linear(this.patches, numPatches(cfg), this.patchEmbed, view(x, prefixCount * D, x.length));
    x.set(this.prefix, 0);
    const posEmbed = this.posEmbed;
    for (let i = 0; i < this.maxTokens * D; i++) x[i] += posEmbed[i];
    return view(x, 0, this.maxTokens * D);
  }

  /** Classify one preprocessed image `input` [C, S, S]. */
  forward(input: Float32Array, hooks: ForwardHooks<A> = {}): ForwardResult<A> {
    this.checkLive('forward');
    const cfg = this.config;
    const k = this.kernels;
    const D = cfg.dim;
    const a = this.activations;
    const embedded = this.embed(input);
    hooks.observe?.(-1, 'embed', embedded, [this.maxTokens, D]);
    let n = this.maxTokens;
    let hasSizes = false;
    this.sizes.fill(1);
    for (let i = 0; i < n; i++) this.tokenIds[i] = i;

    const tokens: BlockTokens[] = [];
    for (let b = 0; b < cfg.depth; b++) {
      const block = this.blocks[b];
      const nAttention = n;
      const observe: BlockObserver<A> | undefined = hooks.observe && ((name, data, shape) => hooks.observe!(b, name, data, shape));

      if (hasSizes) for (let i = 0; i < n; i++) this.logSizes[i] = Math.log(this.sizes[i]);
      block.selfAttention(a, n, hasSizes ? this.logSizes : null, observe);
      if (hooks.beforeProjection) {
        const r = hooks.beforeProjection(this.state(block.config, b, n, nAttention, hasSizes));
        if (r) ({ n, hasSizes } = this.apply(r, n, hasSizes, block.config));
      }
      const nProjection = n;
      block.project(a, n, observe);
      if (hooks.afterAttention) {
        const r = hooks.afterAttention(this.state(block.config, b, n, nAttention, hasSizes));
        if (r) ({ n, hasSizes } = this.apply(r, n, hasSizes));
      }

      block.mlp(a, n, observe);
      tokens.push(nProjection === nAttention ? { attention: nAttention, mlp: n } : { attention: nAttention, projection: nProjection, mlp: n });
      if (hooks.afterBlock) {
        const r = hooks.afterBlock(this.state(block.config, b, n, nAttention, hasSizes));
        if (r) ({ n, hasSizes } = this.apply(r, n, hasSizes));
      }
    }

    // logits = head(LN(x)[CLS]); the final norm is only needed on the prefix rows.
    const prefixCount = prefixTokens(cfg);
    k.layerNorm(a.x, prefixCount, D, this.norm.gamma, this.norm.beta, cfg.eps, a.normed);
    hooks.observe?.(cfg.depth, 'final.norm', view(a.normed, 0, prefixCount * D), [prefixCount, D]);
    k.linear(a.normed, 1, this.head, this.logits);
    const logits = this.logits.slice() as A;
    if (this.headDist) {
      k.linear(view(a.normed, D, a.normed.length), 1, this.headDist, this.logitsDist);
      for (let i = 0; i < logits.length; i++) logits[i] = (logits[i] + this.logitsDist[i]) / 2;
    }
    hooks.observe?.(cfg.depth, 'logits', logits, [cfg.numClasses]);
    return { logits, tokens, gmacs: modelGmacs(cfg, tokens) };
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
    const buffers: A[] = [this.norm.gamma, this.norm.beta];
    for (const { weights: w } of this.blocks) {
      linears.push(w.qkv, w.proj, w.fc1, w.fc2);
      buffers.push(w.norm1.gamma, w.norm1.beta, w.norm2.gamma, w.norm2.beta);
    }
    const a = this.activations;
    buffers.push(this.image, this.patches, a.x, a.normed, a.qkv, a.probs, a.attnOut, a.hidden, this.logSizes, this.logits, this.logitsDist);
    for (const w of linears) k.releaseLinear(w);
    for (const b of buffers) k.free(b);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private checkLive(caller: string): void {
    if (this.disposed) throw new VitpruneError(`${caller}: expected a live runner, this one was disposed (create a new one to run the model)`);
  }

  private state(config: ViTConfig, block: number, n: number, attentionTokens: number, hasSizes: boolean): BlockState<A> {
    const D = config.dim;
    const a = this.activations;
    return {
      config,
      model: this.config,
      block,
      n,
      x: view(a.x, 0, n * D),
      probs: view(a.probs, 0, config.heads * attentionTokens * attentionTokens),
      attentionTokens,
      qkv: view(a.qkv, 0, attentionTokens * (2 * config.heads * config.qkDim + config.heads * config.vDim)),
      attnOut: view(a.attnOut, 0, n * config.heads * config.vDim),
      sizes: hasSizes ? this.sizes.subarray(0, n) : null,
      tokenIds: this.tokenIds.subarray(0, n),
      kernels: this.kernels,
      weights: this.blockWeights[block],
    };
  }

  /**
   * Apply a hook's reduction to the residual stream, sizes and token ids; `projecting` (the
   * block's config) at beforeProjection, where a reduction replaces the attention output too.
   */
  private apply(r: TokenReduction<A>, n: number, hasSizes: boolean, projecting?: ViTConfig): { n: number; hasSizes: boolean } {
    const D = this.config.dim;
    const x = this.activations.x;
    const prefixCount = prefixTokens(this.config);
    if (projecting && !(r.kind === 'replace' && r.attnOut))
      throw new RangeError(
        `a reduction before the projection must replace the tokens and their attention output (attnOut), found ${r.kind === 'keep' ? "'keep'" : 'no attnOut'}`,
      );
    if (!projecting && r.kind === 'replace' && r.attnOut)
      throw new RangeError('a reduction after the projection cannot replace the attention output (attnOut): return it from beforeProjection');
    if (r.kind === 'keep') {
      const idx = r.indices;
      if (idx.length > n) throw new RangeError(`reduction keeps ${idx.length} tokens but only ${n} are alive`);
      for (let p = 0; p < prefixCount; p++) {
        if (idx[p] !== p) throw new RangeError(`reduction must keep prefix token ${p} at position ${p}, found ${idx[p]}`);
      }
      // Gather rows. In place is safe for ascending indices (row i comes from row idx[i] ≥ i);
      // any other order gathers from a copy.
      const ascending = isAscending(idx);
      const srcX = ascending ? x : x.slice(0, n * D);
      const srcSizes = ascending ? this.sizes : this.sizes.slice(0, n);
      const srcIds = ascending ? this.tokenIds : this.tokenIds.slice(0, n);
      for (let i = 0; i < idx.length; i++) {
        const j = idx[i];
        if (!(j >= 0 && j < n)) throw new RangeError(`reduction index ${j} is outside 0..${n - 1}`);
        if (ascending && i !== j) x.copyWithin(i * D, j * D, (j + 1) * D);
        if (!ascending) x.set(srcX.subarray(j * D, (j + 1) * D), i * D);
        this.sizes[i] = srcSizes[j];
        this.tokenIds[i] = srcIds[j];
      }
      return { n: idx.length, hasSizes };
    }
    if (r.n > this.maxTokens) throw new RangeError(`reduction produces ${r.n} tokens, more than the ${this.maxTokens} the model was sized for`);
    x.set(r.x.subarray(0, r.n * D), 0);
    if (projecting && r.attnOut) {
      const width = projecting.heads * projecting.vDim;
      this.activations.attnOut.set(r.attnOut.subarray(0, r.n * width), 0);
    }
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
