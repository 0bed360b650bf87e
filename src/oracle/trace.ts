import type { ViTConfig, ViTModel } from '../model/types.js';
import { prefixTokens } from '../model/types.js';
import type { ViTRunner } from '../model/vit.js';
import { idsAfter, wrapReductionHooks, type BlockState, type ForwardHooks, type TokenReduction } from '../model/hooks.js';
import { recordingDecisions, type DecisionData } from '../prune/decisions.js';
import { dtypeOf, type BundleTensor, type TraceBundle } from './bundle-bytes.js';
import { TraceFormatError } from '../errors.js';
import {
  DEFAULT_TOLERANCES,
  MANIFEST_FILE,
  TRACE_FORMAT,
  TRACE_FORMAT_VERSION,
  tensorBlock,
  tensorSpec,
  type TraceConfig,
  type TraceInput,
  type TraceManifest,
} from './format.js';
import { traceMethodFromJson, traceMethodHooks, type TraceMethod } from './methods.js';

/**
 * The trace producer: one forward pass of `runner` on `input` with `method` (null: dense), and
 * everything it computed as a bundle — the input, every intermediate tensor the forward pass
 * shows (ForwardHooks.observe), each reduction's decisions (prune/decisions.ts) and the token
 * ids (and sizes) alive after it, the logits. Floats are stored in the backend's precision
 * (float64 from reference64, float32 otherwise), token ids and positions as int32.
 */

export interface TraceRequest {
  input: Float32Array; // [C, S, S]
  inputSource: TraceInput;
  method: TraceMethod | null;
  modelSource: string; // how the model was named (folder, hub id): for the manifest
  producerVersion?: string; // vitprune's version, for the manifest (in Node: util/package-version.ts)
}

export function recordTrace(runner: ViTRunner, model: ViTModel, request: TraceRequest): TraceBundle {
  const cfg = model.config;
  const recorded: { name: string; data: Float64Array | Int32Array; shape: number[] }[] = [];
  const add = (name: string, data: ArrayLike<number>, shape: readonly number[], integer: boolean) => {
    if (recorded.some((r) => r.name === name)) throw new Error(`trace: tensor "${name}" recorded twice`);
    recorded.push({ name, data: integer ? Int32Array.from(data) : Float64Array.from(data), shape: [...shape] });
  };
  let floatStorage: 'F64' | 'F32' = 'F32'; // the backend's, seen in the first observed tensor

  let site: string | null = null; // `block.b.after_attention` while a reduction hook runs
  const methodHooks = request.method ? traceMethodHooks(request.method, model) : {};
  const hooks: ForwardHooks = {
    // sites: after_block, or after_attention for the reductions inside a block's attention (MCTF's one-step-ahead runs before the projection)
    ...wrapReductionHooks(methodHooks, (hook, name) => (state: BlockState): TokenReduction | void => {
      site = `block.${state.block}.${name === 'afterBlock' ? 'after_block' : 'after_attention'}`;
      const reduction = hook(state);
      if (reduction) recordReduction(site, state, reduction, add);
      site = null;
      return reduction;
    }),
    observe(block, name, data, shape) {
      if (name === 'embed' && data instanceof Float64Array) floatStorage = 'F64';
      add(block >= 0 && block < cfg.depth ? `block.${block}.${name}` : name, data, shape, false);
    },
  };
  const onDecision = (name: string, data: DecisionData, shape: readonly number[]) => {
    if (site === null) throw new Error(`trace: decision "${name}" recorded outside a reduction hook`);
    add(`${site}.${name}`, data, shape, data instanceof Int32Array);
  };
  const { gmacs } = recordingDecisions(onDecision, () => runner.forward(request.input, hooks));

  const tensors = new Map<string, BundleTensor>();
  const store = (name: string, data: Float64Array | Int32Array, shape: number[]) => {
    const spec = tensorSpec(name);
    const stored = data instanceof Int32Array || floatStorage === 'F64' ? data : Float32Array.from(data);
    tensors.set(name, { info: { name, dtype: dtypeOf(stored), shape, ...spec, block: tensorBlock(name, cfg.depth) }, data: stored });
  };
  store('input', Float64Array.from(request.input), [cfg.inChannels, cfg.imageSize, cfg.imageSize]);
  for (const r of recorded) store(r.name, r.data, r.shape);

  const manifest: TraceManifest = {
    format: TRACE_FORMAT,
    version: TRACE_FORMAT_VERSION,
    producer: { name: 'vitprune', version: request.producerVersion, backend: runner.kernels.name, floatDtype: floatStorage, runtime: runtimeName() },
    model: { source: request.modelSource, architecture: cfg.architecture, layout: cfg.layout },
    config: traceConfig(cfg),
    input: request.inputSource,
    method: request.method,
    gmacs,
    tolerances: { ...DEFAULT_TOLERANCES },
  };
  return { manifest, tensors };
}

/**
 * The request that runs a bundle's case again: its input tensor and its method (`where` names the
 * bundle in messages).
 */
export function requestFromBundle(bundle: TraceBundle, where: string): Omit<TraceRequest, 'modelSource'> {
  const tensor = bundle.tensors.get('input');
  if (!tensor || tensor.data instanceof Int32Array)
    throw new TraceFormatError(`${where}: expected a float tensor "input" to run, found ${tensor ? 'int32' : 'none'}`);
  const { method } = bundle.manifest;
  return {
    input: Float32Array.from(tensor.data),
    inputSource: bundle.manifest.input ?? { source: 'tensor', description: `the input of ${where}` },
    method: method ? traceMethodFromJson(method, `${where}: ${MANIFEST_FILE}: method`) : null,
  };
}

/** The token ids alive after a reduction (and their sizes, when tokens carry sizes). */
function recordReduction(
  site: string,
  state: BlockState,
  r: TokenReduction,
  add: (name: string, data: ArrayLike<number>, shape: readonly number[], integer: boolean) => void,
): void {
  const { tokenIds, sizes } = state;
  const ids = idsAfter(tokenIds, r);
  add(`${site}.ids`, ids, [ids.length], true);
  const newSizes = r.kind === 'keep' ? sizes && Array.from(r.indices, (i) => sizes[i]) : r.sizes?.subarray(0, r.n);
  if (newSizes) add(`${site}.sizes`, newSizes, [newSizes.length], false);
}

export function traceConfig(cfg: ViTConfig): TraceConfig {
  const { dim, depth, heads, qkDim, vDim, blockWidths, mlpDim, imageSize, patchSize, inChannels, numClasses, eps, distilled } = cfg;
  return {
    dim,
    depth,
    heads,
    qkDim,
    vDim,
    ...(blockWidths && { blockWidths }),
    mlpDim,
    imageSize,
    patchSize,
    inChannels,
    numClasses,
    eps,
    distilled,
    prefixTokens: prefixTokens(cfg),
  };
}

/** The JavaScript runtime: `node v20.…`, else the browser's user agent. */
function runtimeName(): string {
  if (typeof process !== 'undefined' && process.versions?.node) return `node ${process.version}`;
  return globalThis.navigator?.userAgent ?? 'unknown';
}
