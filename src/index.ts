/**
 * vitprune: Vision Transformers (ViT, DeiT) on CPUs, with token pruning that needs no retraining.
 *
 *   import { loadClassifier } from 'vitprune';
 *   const model = await loadClassifier('timm/deit_tiny_patch16_224.fb_in1k');
 *   const top5 = await model.classify(jpegBytes, { topK: 5, prune: { method: 'zero-tprune', budget: 0.65 } });
 *
 * The lower-level pieces: vitprune/model, vitprune/kernels, vitprune/prune, vitprune/image,
 * vitprune/oracle (trace bundles and the checker, for ports), and
 * the Node-only vitprune/node.
 */
export {
  Classifier,
  loadClassifier,
  type ClassifierOptions,
  type ClassifyOptions,
  type ImageInput,
  type ModelSource,
  type Prediction,
  type PruneOptions,
} from './api/classifier.js';
export * from './errors.js';
export { softmax, topK } from './eval/metrics.js';
export type { RgbImage } from './image/rgb-image.js';
export { BACKENDS, type Backend } from './kernels/index.js';
export type { ModelBytes } from './model/load.js';
export { HUB_CACHE_NAME } from './model/hub-web.js';
export type { DownloadProgress } from './model/remote.js';
export type { ViTConfig } from './model/types.js';
export { TOKEN_METHODS } from './prune/registry.js';
