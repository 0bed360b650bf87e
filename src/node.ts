/**
 * vitprune's Node-only parts (Node only): model folders and the hub cache on disk, safetensors
 * and image files, writing pruned models. Everything else is in the package root and its
 * browser-safe sub-exports.
 */
export { loadModelFolder, readModelConfig, saveModelFolder } from './model/folder.js';
export { defaultHubCacheDir, isHubId, parseHubId, resolveModel, type HubId, type ResolveOptions } from './model/hub.js';
export { readSafetensors, writeSafetensors } from './model/safetensors-file.js';
export { loadImage, loadImageTensor } from './image/file.js';
export { savePrunedModel } from './prune/channels-save.js';
export { writeFileAtomic } from './util/atomic-file.js';
