/**
 * vitprune/node (Node only): model folders and the hub cache on disk, safetensors and image
 * files, writing pruned models, and evaluation over folders of images. Everything else is in
 * the package root and its sub-exports, which run in a browser too.
 */
export { loadModelFolder, readModelConfig, saveModelFolder } from './model/folder.js';
export { defaultHubCacheDir, isHubId, parseHubId, resolveModel, type HubId, type ResolveOptions } from './model/hub.js';
export { readSafetensors, writeSafetensors } from './model/safetensors-file.js';
export { loadImage, loadImageTensor } from './image/file.js';
export { savePrunedModel } from './prune/channels-save.js';
export { writeFileAtomic } from './util/atomic-file.js';
export { labelImages, listImages, readLabelsCsv, selectSplit, spreadSample, type LabelledImage, type Split } from './eval/dataset.js';
export {
  agreementWithDense,
  evaluate,
  evaluateVariants,
  type AgreementResult,
  type EvalResult,
  type ImageResult,
  type SkippedImage,
  type Variant,
} from './eval/evaluate.js';
export { compareMethods, reportMarkdown, TUNED_METHOD, type CompareOptions, type CompareReport, type CompareRow, type TunedSchedule } from './eval/compare.js';
export { readBundle, writeBundle } from './oracle/bundle.js';
export { checkSuite, readSuite, type CaseResult, type SuiteCase, type SuiteIndex, type SuiteModel } from './oracle/suite.js';
