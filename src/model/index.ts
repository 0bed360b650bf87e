/**
 * vitprune/model: the ViT / DeiT model: its description (types.ts), config and safetensors
 * parsing, assembly from a folder's files given as bytes, GMACs counting, and the forward pass
 * (ViTRunner over Blocks, with hooks). Folders on disk and the hub cache: vitprune/node.
 */
export {
  Block,
  allocBlockActivations,
  multiHeadAttention,
  prepareNorm,
  type BlockActivations,
  type BlockObserver,
  type PreparedBlockWeights,
  type PreparedNorm,
} from './block.js';
export { declareModel, timmArchitectureDims, TRANSFORMERS_CLASSES, type ConfigDocument, type DeclaredModel } from './config.js';
export { blockMacs, denseGmacs, initialTokens, modelGmacs, stemAndHeadMacs, type BlockTokens } from './gmacs.js';
export type { BlockState, ForwardHooks, TokenReduction, TraceTensorName } from './hooks.js';
export { assembleModel, modelFolderFiles, modelFromBytes, type ModelBytes } from './load.js';
export { configFromDims, IMAGENET_PREPROCESS, randomModel, seededRandom, type ViTDims } from './random.js';
export {
  float16ToNumber,
  parseSafetensors,
  serializeSafetensors,
  SUPPORTED_DTYPES,
  type SafetensorsDtype,
  type SafetensorsFile,
  type SafetensorsTensor,
  type TensorsToWrite,
  type TensorToWrite,
} from './safetensors.js';
export { blockConfig, numPatches, prefixTokens, qkvLayout } from './types.js';
export type { BlockWeights, BlockWidths, Linear, Norm, PreprocessConfig, QkvLayout, ViTConfig, ViTModel, ViTWeights } from './types.js';
export { ViTRunner, type ForwardResult } from './vit.js';
