import { createReferenceKernels } from '../src/kernels/reference.js';
import { configFromDims, randomModel, seededRandom } from '../src/model/random.js';
import type { ViTConfig } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import type { BlockState } from '../src/model/hooks.js';

/**
 * A tiny random ViT for the token-method tests: 32×32 input, patch 4 → 64 patches + CLS = 65
 * tokens, width 24, 3 heads of 8, 6 blocks (and its distilled twin), on the reference kernels.
 */
export const tiny = configFromDims({ dim: 24, depth: 6, heads: 3, imageSize: 32, patchSize: 4, numClasses: 10 });
export const tinyDistilled = configFromDims({ dim: 24, depth: 6, heads: 3, imageSize: 32, patchSize: 4, numClasses: 10, distilled: true });
export const tinyModel = randomModel(tiny, 7);
export const tinyDistilledModel = randomModel(tinyDistilled, 8);
export const kernels = createReferenceKernels();
export const tinyRunner = new ViTRunner(tinyModel, kernels);
export const tinyDistilledRunner = new ViTRunner(tinyDistilledModel, kernels);

export const deitT = configFromDims({ dim: 192, depth: 12, heads: 3 });
export const deitS = configFromDims({ dim: 384, depth: 12, heads: 6 });

/** A random [3, 32, 32] input. */
export function tinyImage(seed: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: 3 * 32 * 32 }, () => rand() * 4 - 2);
}

/** A hand-made block state: only the fields the reducers read (qkv [n, stride], probs [H, n, n]). */
export function handState(cfg: ViTConfig, n: number, fields: Partial<BlockState>): BlockState {
  return {
    config: cfg,
    model: cfg,
    block: 0,
    n,
    x: new Float32Array(n * cfg.dim),
    probs: new Float32Array(cfg.heads * n * n),
    attentionTokens: n,
    qkv: new Float32Array(0),
    attnOut: new Float32Array(n * cfg.heads * cfg.vDim),
    sizes: null,
    tokenIds: Int32Array.from({ length: n }, (_, i) => i),
    kernels,
    ...fields,
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
