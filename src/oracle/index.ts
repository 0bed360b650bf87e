/**
 * vitprune/oracle: the conformance format for ports (docs/porting.md, docs/trace-format.md).
 *
 *   import { checkBundles, decodeBundle, formatCheckReport } from 'vitprune/oracle';
 *   const report = checkBundles(decodeBundle(expectedFiles, 'expected'), decodeBundle(actualFiles, 'mine'));
 *   if (!report.ok) console.log(formatCheckReport(report, depth));
 *
 * Trace bundles in memory and as the bytes of their two files, the tensor vocabulary and
 * tolerances, the checker, the methods' trace settings, and the producer (recordTrace: one
 * forward pass of a ViTRunner recorded as a bundle). Nothing here needs Node; bundles as folders
 * on disk (readBundle, writeBundle) and the conformance suite (readSuite, checkSuite) are in
 * vitprune/node.
 */
export {
  DEFAULT_TOLERANCES,
  depthFactor,
  FLOAT_KINDS,
  INTEGER_KINDS,
  isIntegerKind,
  MANIFEST_FILE,
  TENSOR_KINDS,
  tensorBlock,
  tensorSpec,
  TENSORS_FILE,
  TRACE_FORMAT,
  TRACE_FORMAT_VERSION,
  type ManifestTensor,
  type TensorDtype,
  type TensorKind,
  type TraceArray,
  type TraceConfig,
  type TraceInput,
  type TraceManifest,
} from './format.js';
export { decodeBundle, dtypeOf, encodeBundle, type BundleFiles, type BundleTensor, type TraceBundle } from './bundle-bytes.js';
export {
  checkBundles,
  describeDivergence,
  formatCheckReport,
  type CheckOptions,
  type CheckReport,
  type ElementDifference,
  type KindSummary,
  type TensorComparison,
  type TensorStatus,
} from './check.js';
export {
  TRACE_METHODS,
  traceMethodFromJson,
  traceMethodFromPlan,
  traceMethodHooks,
  type MctfTraceSettings,
  type TraceMethod,
  type TraceMethodName,
  type ZeroTPruneSettings,
} from './methods.js';
export { recordTrace, requestFromBundle, traceConfig, type TraceRequest } from './trace.js';
