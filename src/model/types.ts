import type { Linear } from '../kernels/types.js';

export type { Linear } from '../kernels/types.js';

/**
 * The model description shared by both paths (reference TS and wasm).
 * Shapes are written as comments; all tensors are row-major float32.
 */

/** Preprocessing facts carried next to the weights (timm `pretrained_cfg`). */
export interface PreprocessConfig {
  inputSize: number; // square crop side, e.g. 224
  interpolation: 'bicubic' | 'bilinear';
  cropPct: number; // resize shorter side to floor(inputSize / cropPct)
  mean: [number, number, number];
  std: [number, number, number];
}

export interface ViTConfig {
  architecture: string; // timm name, e.g. "deit_tiny_patch16_224", or transformers class name
  layout: 'timm' | 'transformers';
  imageSize: number; // 224
  patchSize: number; // 16
  inChannels: number; // 3
  dim: number; // D, embedding width
  depth: number; // number of blocks
  heads: number; // H
  qkDim: number; // per-head width of q and k (64 unless channel-pruned)
  vDim: number; // per-head width of v (64 unless channel-pruned)
  blockWidths?: BlockWidths[]; // per block, when channel pruning left blocks different widths (qkDim, vDim are then the largest)
  mlpDim: number; // hidden width of the MLP (4D)
  numClasses: number;
  eps: number; // LayerNorm epsilon
  distilled: boolean; // DeiT distilled: extra dist token and head_dist, logits = mean of both heads
  labels: string[]; // per class: short label (WordNet id for timm, id2label for transformers)
  descriptions: string[]; // per class: human-readable description ('' when unknown)
  preprocess: PreprocessConfig;
}

/** Per-head widths of one block. */
export interface BlockWidths {
  qkDim: number;
  vDim: number;
}

/** The config as block b sees it: qkDim and vDim are that block's widths. */
export function blockConfig(cfg: ViTConfig, b: number): ViTConfig {
  const w = cfg.blockWidths?.[b];
  return w ? { ...cfg, qkDim: w.qkDim, vDim: w.vDim } : cfg;
}

/** Number of prefix tokens (CLS, and the distillation token when distilled). */
export function prefixTokens(cfg: ViTConfig): number {
  return cfg.distilled ? 2 : 1;
}

/** Number of patches: (imageSize / patchSize)². */
export function numPatches(cfg: ViTConfig): number {
  const side = cfg.imageSize / cfg.patchSize;
  return side * side;
}

/** Where a block's fused projection puts each head: token i's row of qkv holds Q heads, K heads, V heads. */
export interface QkvLayout {
  stride: number; // floats per token row: 2H·qk + H·v
  queryOffset: (h: number) => number; // Q_h of token i: qkv[i·stride + queryOffset(h) … + qkDim]
  keyOffset: (h: number) => number; // K_h likewise
  valueOffset: (h: number) => number; // V_h: … + vDim
}

/** The qkv layout of a block of config `cfg` (blockConfig for per-block widths), or of any heads and head widths. */
export function qkvLayout(cfg: Pick<ViTConfig, 'heads' | 'qkDim' | 'vDim'>): QkvLayout {
  const H = cfg.heads;
  return {
    stride: 2 * H * cfg.qkDim + H * cfg.vDim,
    queryOffset: (h) => h * cfg.qkDim,
    keyOffset: (h) => H * cfg.qkDim + h * cfg.qkDim,
    valueOffset: (h) => 2 * H * cfg.qkDim + h * cfg.vDim,
  };
}

export interface Norm {
  weight: Float32Array; // [D]
  bias: Float32Array; // [D]
}

export interface BlockWeights {
  norm1: Norm;
  /** Fused projection: rows [0, H·qk) = Q, [H·qk, 2H·qk) = K, [2H·qk, 2H·qk + H·v) = V; head h owns rows h·w…h·w+w−1 of each part. */
  qkv: Linear; // [2H·qkDim + H·vDim, D]
  proj: Linear; // [D, H·vDim]
  norm2: Norm;
  fc1: Linear; // [mlpDim, D]
  fc2: Linear; // [D, mlpDim]
}

export interface ViTWeights {
  patchEmbed: Linear; // [D, C·P·P] over patches flattened in (channel, row, col) order
  clsToken: Float32Array; // [D]
  distToken: Float32Array | null; // [D] when distilled
  posEmbed: Float32Array; // [prefix + patches, D]
  blocks: BlockWeights[];
  norm: Norm; // final LayerNorm
  head: Linear; // [numClasses, D]
  headDist: Linear | null; // [numClasses, D] when distilled
}

export interface ViTModel {
  config: ViTConfig;
  weights: ViTWeights;
  /** Where it was loaded from (folder path), for messages. */
  source: string;
}
