import type { Linear, Norm, PreprocessConfig, ViTConfig, ViTModel, ViTWeights } from './types.js';
import { blockConfig, numPatches, prefixTokens } from './types.js';

/** The dimensions that define a ViT; everything else gets ImageNet defaults. */
export interface ViTDims {
  dim: number;
  depth: number;
  heads: number;
  imageSize?: number; // 224
  patchSize?: number; // 16
  inChannels?: number; // 3
  qkDim?: number; // dim / heads
  vDim?: number; // dim / heads
  mlpDim?: number; // 4 · dim
  numClasses?: number; // 1000
  distilled?: boolean;
}

export const IMAGENET_PREPROCESS: PreprocessConfig = {
  inputSize: 224,
  interpolation: 'bicubic',
  cropPct: 0.875,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

/** A complete config from dimensions (labels are class indices). */
export function configFromDims(d: ViTDims, architecture = 'synthetic'): ViTConfig {
  const numClasses = d.numClasses ?? 1000;
  const imageSize = d.imageSize ?? 224;
  return {
    architecture,
    layout: 'timm',
    imageSize,
    patchSize: d.patchSize ?? 16,
    inChannels: d.inChannels ?? 3,
    dim: d.dim,
    depth: d.depth,
    heads: d.heads,
    qkDim: d.qkDim ?? d.dim / d.heads,
    vDim: d.vDim ?? d.dim / d.heads,
    mlpDim: d.mlpDim ?? 4 * d.dim,
    numClasses,
    eps: 1e-6,
    distilled: d.distilled ?? false,
    labels: Array.from({ length: numClasses }, (_, i) => String(i)),
    descriptions: Array.from({ length: numClasses }, () => ''),
    preprocess: { ...IMAGENET_PREPROCESS, inputSize: imageSize },
  };
}

/** Deterministic uniform random numbers in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random weights of the right shapes, scaled like a trained ViT's (linear weights
 * ~ U(±1/√in), LayerNorm gammas near 1) so activations stay O(1) through the depth.
 */
export function randomModel(cfg: ViTConfig, seed = 1): ViTModel {
  const rand = seededRandom(seed);
  const uniform = (length: number, scale: number) => Float32Array.from({ length }, () => (rand() * 2 - 1) * scale);
  const linear = (outFeatures: number, inFeatures: number): Linear => ({
    weight: uniform(outFeatures * inFeatures, 1 / Math.sqrt(inFeatures)),
    bias: uniform(outFeatures, 0.1),
    outFeatures,
    inFeatures,
  });
  const norm = (): Norm => ({
    weight: Float32Array.from({ length: cfg.dim }, () => 1 + (rand() * 2 - 1) * 0.2),
    bias: uniform(cfg.dim, 0.1),
  });
  const { dim: D, heads: H } = cfg;
  const weights: ViTWeights = {
    patchEmbed: linear(D, cfg.inChannels * cfg.patchSize * cfg.patchSize),
    clsToken: uniform(D, 1),
    distToken: cfg.distilled ? uniform(D, 1) : null,
    posEmbed: uniform((prefixTokens(cfg) + numPatches(cfg)) * D, 0.5),
    blocks: Array.from({ length: cfg.depth }, (_, b) => {
      const { qkDim, vDim } = blockConfig(cfg, b);
      return {
        norm1: norm(),
        qkv: linear(2 * H * qkDim + H * vDim, D),
        proj: linear(D, H * vDim),
        norm2: norm(),
        fc1: linear(cfg.mlpDim, D),
        fc2: linear(D, cfg.mlpDim),
      };
    }),
    norm: norm(),
    head: linear(cfg.numClasses, D),
    headDist: cfg.distilled ? linear(cfg.numClasses, D) : null,
  };
  return { config: cfg, weights, source: `random(seed ${seed})` };
}
