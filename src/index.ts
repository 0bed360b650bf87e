/**
 * vitprune as a library: load a ViT/DeiT, run it on a backend, prune its tokens.
 *
 *   const model = loadModelFolder('deit-tiny');
 *   const runner = new ViTRunner(model, await createKernels('wasm'));
 *   const plan = planPruning(model.config, { method: 'zero-tprune', budget: 0.65 });
 *   const { logits, gmacs } = runner.forward(loadImageTensor('cat.jpg', model.config.preprocess), plan.hooks(0));
 */
export * from './errors.js';
export type * from './model/types.js';
export { loadModelFolder, saveModelFolder } from './model/load.js';
export { resolveModel, isHubId } from './model/hub.js';
export { readSafetensors, parseSafetensors, writeSafetensors, serializeSafetensors } from './model/safetensors.js';
export { configFromDims, randomModel } from './model/random.js';
export { ViTRunner, qkvLayout, type BlockState, type ForwardHooks, type ForwardResult, type TokenReduction } from './model/vit.js';
export type { Kernels, PreparedLinear } from './kernels/types.js';
export { createKernels, defaultThreadCount, BACKENDS, type Backend, type KernelOptions } from './kernels/index.js';
export { createReferenceKernels } from './kernels/reference.js';
export { decodeImage } from './image/decode.js';
export { preprocess, loadImageTensor } from './image/preprocess.js';
export { resizePil } from './image/resize.js';
export { blockMacs, denseGmacs, modelGmacs, type BlockTokens } from './prune/flops.js';
export { planPruning, METHODS, type Method, type MethodOptions, type PruningPlan } from './prune/methods.js';
export * from './prune/schedule.js';
export { zeroTPruneHooks, zeroTPruneLayer, ZERO_TPRUNE_ABLATIONS, type ZeroTPruneOptions } from './prune/zero-tprune.js';
export { tomeHooks, tomeTokens } from './prune/tome.js';
export { evitHooks, evitTokens } from './prune/evit.js';
export { ltpHooks, calibrateLtpQuantiles, calibrateLtpRamp } from './prune/ltp.js';
export { randomDropHooks } from './prune/random.js';
export { tuneSchedule } from './prune/tune.js';
export { pruneChannels, savePrunedModel, type ChannelPruningOptions, type ChannelPruningResult, type PrunedDescription } from './prune/channels.js';
