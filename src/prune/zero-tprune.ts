import { createReferenceKernels } from '../kernels/reference.js';
import type { Kernels } from '../kernels/types.js';
import { idsAt, type BlockState, type ForwardHooks, type TokenReduction } from '../model/hooks.js';
import type { ViTConfig } from '../model/types.js';
import { numPatches, prefixTokens, qkvLayout } from '../model/types.js';
import { isRecordingDecisions, recordDecision } from './decisions.js';
import { defineMethod } from './method.js';
import type { Placement, PruneSchedule } from './schedule.js';
import { rankDescending, rankedRange } from './rank.js';
import { PLACEMENT_OPTION, keepRatioKnob, keepRatioSchedule, maxSimilarityDrops, scheduleTokens, validateSchedule, validatedSchedule } from './schedule.js';
import type { FeatureRows, WprInit } from './wpr.js';
import { aggregateHeads, initialScores, varianceHeadFilter } from './wpr.js';
import { zeroTPruneKernels, type ZeroTPruneKernels } from './zero-tprune-kernels.js';

export { bestMatch, type FeatureRows } from './wpr.js';

/**
 * Zero-TPrune (Wang, Dedhia, Jha, CVPR 2024; docs/algorithms.md §1): a pruning layer between two
 * blocks that drops patch tokens using the attention probabilities P [H, n, n] and the keys
 * K [n, H·d] of the block just before it, in three stages:
 *
 *   I′: s′ = EIR∘VHF( WPR(P_h, 1 iteration) )                    rough importance, nothing dropped
 *   S:  patches sorted by s′: B = first ⌈m/2⌉, A = the other ⌊m/2⌋;
 *       best(a) = max_{b∈B} cos(k_a, k_b); drop the r_S tokens of A with the largest best(a)
 *   I:  P_h restricted to the survivors (CLS included), rows re-normalised;
 *       s = EIR∘VHF( WPR(P_h, T_l iterations) ); drop the r_I patch tokens with the lowest s
 *
 * Prefix tokens (CLS, and DIST in distilled DeiT) are never dropped; survivors keep their
 * order. Ties go to the lower position: it is dropped first by the S-stage (most similar
 * first) and kept first by the I-stage (most important first). Dropped tokens are gone: no
 * merging, no sizes.
 */

export interface ZeroTPruneOptions {
  init: WprInit; // WPR start: 'cls-boost' (Zero-TPrune) | 'uniform' (Zero-TPrune-uni)
  iterations: readonly number[] | null; // I-stage WPR iterations by block position (0-based, as BlockState.block); null = defaultWprIterations
  tolerance: number; // stop WPR early when ‖Δs‖₁ < tolerance; 0 = always run every iteration
  useEIR: boolean; // aggregate heads by root-mean-square (EIR); false = plain mean
  useVHF: boolean; // filter heads by score variance (VHF)
  vhfWindow: readonly [number, number]; // VHF keeps heads whose mean-1 patch-score variance is in [min, max]
  useSStage: boolean; // false: no S-stage, the I-stage removes r_S + r_I
  similarity: 'keys' | 'head-mean-keys'; // S-stage features: key rows of all heads concatenated [H·d] | mean over heads [d]
}

export const DEFAULT_ZERO_TPRUNE_OPTIONS: Readonly<ZeroTPruneOptions> = {
  init: 'cls-boost',
  iterations: null,
  tolerance: 0,
  useEIR: true,
  useVHF: true,
  vhfWindow: [0.01, 0.7],
  useSStage: true,
  similarity: 'keys',
};

/** The paper's ablation ladder (DeiT-S: random → +WPR → +EIR → +VHF → +S-stage), as option sets. */
export const ZERO_TPRUNE_ABLATIONS = {
  wpr: { useEIR: false, useVHF: false, useSStage: false },
  'wpr+eir': { useEIR: true, useVHF: false, useSStage: false },
  'wpr+eir+vhf': { useEIR: true, useVHF: true, useSStage: false },
  'wpr+eir+s': { useEIR: true, useVHF: false, useSStage: true },
  full: { useEIR: true, useVHF: true, useSStage: true },
} as const satisfies Record<string, Partial<ZeroTPruneOptions>>;

/** Options objects resolveZeroTPruneOptions returned (never changed afterwards: nothing writes to them). */
const RESOLVED = new WeakSet<object>();

/** Fill in defaults (undefined fields too) and check enumerations and the VHF window. */
export function resolveZeroTPruneOptions(options: Partial<ZeroTPruneOptions> = {}): ZeroTPruneOptions {
  if (RESOLVED.has(options)) return options as ZeroTPruneOptions; // the hooks resolve once, each layer again
  const o = { ...DEFAULT_ZERO_TPRUNE_OPTIONS };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) Object.assign(o, { [key]: value });
  if (o.init !== 'cls-boost' && o.init !== 'uniform') throw new RangeError(`Zero-TPrune init: expected 'cls-boost' or 'uniform', found '${o.init}'`);
  if (o.similarity !== 'keys' && o.similarity !== 'head-mean-keys') {
    throw new RangeError(`Zero-TPrune similarity: expected 'keys' or 'head-mean-keys', found '${o.similarity}'`);
  }
  const [lo, hi] = o.vhfWindow;
  if (!(lo >= 0 && lo <= hi)) throw new RangeError(`VHF window: expected 0 ≤ min ≤ max, found [${lo}, ${hi}]`);
  RESOLVED.add(o);
  return o;
}

/**
 * The paper's iteration schedule (30–50 / 5–10 / 1, engine default 30 / 5 / 1): 30 for the
 * first three blocks, 1 for the last three, 5 in between. `block` is 0-based.
 */
export function defaultWprIterations(block: number, depth: number): number {
  if (block < 3) return 30;
  if (block >= depth - 3) return 1;
  return 5;
}

let defaultBackend: Kernels | null = null;

/**
 * Buffers for one model size, allocated once and reused by every pruning layer. The heavy steps
 * (sub-graph restriction, WPR, S-stage matching) run on the Zero-TPrune kernels of `backend`,
 * whose buffers these are: give the backend the model runs on (BlockState.kernels) so that its
 * attention probabilities and keys are used where they lie. Every backend gives results
 * bit-identical to the TypeScript oracles in wpr.ts, so the choice changes speed only.
 */
export class ZeroTPruneScratch {
  readonly kernels: ZeroTPruneKernels; // runs restrictGraph, weightedPageRank, maxCosine on the buffers below
  readonly maxTokens: number; // T
  readonly heads: number; // H
  readonly scores: Float64Array; // [H, T] per-head WPR scores
  readonly scoreRows: Float64Array[]; // H views of `scores`, one row each
  readonly next: Float64Array; // [T] WPR step
  readonly importance: Float64Array; // [T] aggregated score per token (s′, then s)
  readonly valid: Uint8Array; // [H] heads used by the aggregation
  readonly graph: Float32Array; // [T, T] one head's attention restricted to the survivors
  readonly meanKeys: Float32Array; // [T, meanKeyDim] head-mean keys
  readonly work: Float64Array; // [(T + 4)·H·meanKeyDim] S-stage matching scratch (ZeroTPruneKernels.maxCosine)
  readonly best: Float64Array; // [T] best cosine match in B, by position
  readonly order: Int32Array; // [T] tokens sorted by importance
  readonly alive: Int32Array; // [T] positions alive after the S-stage
  readonly dropped: Uint8Array; // [T] 1 = dropped, by position
  readonly keep: Int32Array; // [T] result: positions kept
  readonly droppedS: Int32Array; // [T] result: positions dropped by the S-stage
  readonly droppedI: Int32Array; // [T] result: positions dropped by the I-stage

  /** backend: default the reference kernels (plain typed arrays, any input arrays accepted). */
  constructor(maxTokens: number, heads: number, meanKeyDim: number, backend?: Kernels) {
    const T = maxTokens;
    const k = zeroTPruneKernels(backend ?? (defaultBackend ??= createReferenceKernels()));
    this.kernels = k;
    this.maxTokens = T;
    this.heads = heads;
    this.scores = k.allocFloat64(heads * T);
    this.scoreRows = Array.from({ length: heads }, (_, h) => this.scores.subarray(h * T, (h + 1) * T));
    this.next = k.allocFloat64(T);
    this.importance = new Float64Array(T);
    this.valid = new Uint8Array(heads);
    this.graph = k.alloc(T * T);
    this.meanKeys = k.alloc(T * meanKeyDim);
    this.work = k.allocFloat64((T + 4) * heads * meanKeyDim);
    this.best = k.allocFloat64(T);
    this.order = k.allocInt32(T);
    this.alive = k.allocInt32(T);
    this.dropped = new Uint8Array(T);
    this.keep = new Int32Array(T);
    this.droppedS = new Int32Array(T);
    this.droppedI = new Int32Array(T);
  }

  static forModel(cfg: ViTConfig, backend?: Kernels): ZeroTPruneScratch {
    return new ZeroTPruneScratch(prefixTokens(cfg) + numPatches(cfg), cfg.heads, cfg.qkDim, backend);
  }
}

/**
 * Importance of the tokens alive[0..c) (ascending positions into the block's n tokens, the
 * `prefix` prefix tokens first): per head WPR on P_h restricted to them with rows
 * re-normalised (§1.7), VHF over their patch tokens, EIR (or mean) over the heads kept.
 *   probs: [H, n, n]  →  scratch.importance[0..c), by rank in `alive`
 * Returns the number of heads inside the VHF window (H without VHF; 0 = none, all heads used).
 */
export function tokenImportance(
  probs: Float32Array,
  heads: number,
  n: number,
  alive: Int32Array,
  c: number,
  prefix: number,
  iterations: number,
  o: ZeroTPruneOptions,
  scratch: ZeroTPruneScratch,
): number {
  const k = scratch.kernels;
  for (let h = 0; h < heads; h++) {
    // With every token alive the rows already sum to 1: no copy.
    const head = probs.subarray(h * n * n, (h + 1) * n * n);
    const graph = c === n ? head : scratch.graph;
    if (c !== n) k.restrictGraph(head, n, alive, c, graph);
    initialScores(o.init, c, prefix, scratch.scoreRows[h]);
    k.weightedPageRank(graph, c, scratch.scoreRows[h], iterations, scratch.next, o.tolerance);
  }
  const T = scratch.maxTokens;
  let passed = heads;
  if (o.useVHF) passed = varianceHeadFilter(scratch.scores, heads, T, prefix, c, o.vhfWindow, scratch.valid);
  else scratch.valid.fill(1, 0, heads);
  aggregateHeads(scratch.scores, heads, T, c, scratch.valid, o.useEIR ? 'rms' : 'mean', scratch.importance);
  return passed;
}

/** The S-stage features of a block's tokens: key rows of all heads, or their mean over heads (into scratch.meanKeys). */
export function similarityFeatures(state: BlockState, similarity: ZeroTPruneOptions['similarity'], scratch: ZeroTPruneScratch): FeatureRows {
  const { heads: H, qkDim: d } = state.config;
  const layout = qkvLayout(state.config);
  // K_h of token i is qkv[i·stride + keyOffset(h) …]; the heads' keys are contiguous.
  if (similarity === 'keys') return { data: state.qkv, offset: layout.keyOffset(0), stride: layout.stride, dim: H * d };
  const out = scratch.meanKeys;
  for (let i = 0; i < state.n; i++) {
    for (let j = 0; j < d; j++) {
      let sum = 0;
      for (let h = 0; h < H; h++) sum += state.qkv[i * layout.stride + layout.keyOffset(h) + j];
      out[i * d + j] = sum / H;
    }
  }
  return { data: out, offset: 0, stride: d, dim: d };
}

/**
 * Sequential-U partition: order[0..m) ← the patch positions prefix..n−1 sorted by importance
 * descending (ties: lower position first). B = order[0..⌈m/2⌉), A = order[⌈m/2⌉..m).
 * Returns |B|.   importance: [n] by position
 */
export function partitionByImportance(importance: Float64Array, n: number, prefix: number, order: Int32Array): number {
  rankedRange(importance, prefix, n, order);
  return Math.ceil((n - prefix) / 2);
}

/**
 * S-stage: partition the patch tokens by `importance` (Sequential-U) and drop the rS tokens of
 * A with the largest best match in B (ties: the lower position is dropped first).
 *   importance: [n] by position  →  scratch.droppedS[0..rS), ascending positions
 */
export function similarityPrune(f: FeatureRows, importance: Float64Array, n: number, prefix: number, rS: number, scratch: ZeroTPruneScratch): Int32Array {
  const { order, best } = scratch;
  const m = n - prefix;
  const bCount = partitionByImportance(importance, n, prefix, order);
  scratch.kernels.maxCosine(f.data, f.offset, f.stride, f.dim, order, m, bCount, scratch.work, best);
  const groupA = order.subarray(bCount, m);
  rankDescending(best, groupA, groupA.length);
  const dropped = scratch.droppedS.subarray(0, rS);
  dropped.set(groupA.subarray(0, rS));
  return dropped.sort();
}

export interface ZeroTPruneLayerResult {
  keep: Int32Array; // [n − r_S − r_I] positions kept, ascending (prefix tokens first)
  droppedS: Int32Array; // [r_S] positions dropped by the S-stage, ascending
  droppedI: Int32Array; // [r_I] positions dropped by the I-stage, ascending
  // Share of heads inside the VHF window, per stage (1 without VHF; 0 = none, so all were used); null = stage not run.
  headsKept: { preRank: number | null; importance: number | null };
}

/**
 * One Zero-TPrune pruning layer on the state of the block before it (`afterBlock`): removes
 * rS patch tokens by similarity, then rI by importance (§1.8). With `useSStage: false` the
 * I-stage removes rS + rI. The result's arrays are views into `scratch`, valid until its next use.
 * Without a scratch, fresh reference-kernel buffers are made (plain typed arrays); for speed,
 * reuse one made with the model's backend: ZeroTPruneScratch.forModel(cfg, state.kernels).
 */
export function zeroTPruneLayer(
  state: BlockState,
  rS: number,
  rI: number,
  options: Partial<ZeroTPruneOptions> = {},
  scratch = ZeroTPruneScratch.forModel(state.config),
): ZeroTPruneLayerResult {
  const o = resolveZeroTPruneOptions(options);
  const cfg = state.config;
  const { n, probs } = state;
  const H = cfg.heads;
  const prefix = prefixTokens(cfg);
  const patches = n - prefix;
  const where = `Zero-TPrune after block ${state.block + 1}`;
  if (state.attentionTokens !== n) {
    throw new RangeError(
      `${where}: expected the attention of the ${n} tokens alive, found attention over ${state.attentionTokens} (a reduction ran inside the block)`,
    );
  }
  if (!(Number.isInteger(rS) && Number.isInteger(rI) && rS >= 0 && rI >= 0)) {
    throw new RangeError(`${where}: expected non-negative integer rS, rI, found ${rS}, ${rI}`);
  }
  const sDrops = o.useSStage ? rS : 0;
  const iDrops = o.useSStage ? rI : rS + rI;
  if (sDrops > maxSimilarityDrops(patches)) {
    throw new RangeError(`${where}: the S-stage can remove at most ${maxSimilarityDrops(patches)} of ${patches} patch tokens, found rS = ${sDrops}`);
  }
  if (sDrops + iDrops > patches) throw new RangeError(`${where}: expected at most ${patches} removals (patch tokens alive), found ${sDrops + iDrops}`);
  if (scratch.maxTokens < n || scratch.heads !== H) {
    throw new RangeError(`${where}: scratch is sized for ${scratch.maxTokens} tokens × ${scratch.heads} heads, the block has ${n} × ${H}`);
  }
  const iterations = o.iterations ? o.iterations[state.block] : defaultWprIterations(state.block, cfg.depth);
  if (iDrops > 0 && !(Number.isInteger(iterations) && iterations >= 0)) {
    throw new RangeError(`${where}: expected a WPR iteration count for block position ${state.block}, found ${iterations}`);
  }

  const { alive, dropped, importance, order } = scratch;
  dropped.fill(0, 0, n);
  for (let i = 0; i < n; i++) alive[i] = i;
  const headsKept: ZeroTPruneLayerResult['headsKept'] = { preRank: null, importance: null };

  // I′ + S: rough importance of every token (one WPR step), then similarity pruning.
  const droppedS = scratch.droppedS.subarray(0, sDrops);
  if (sDrops > 0) {
    headsKept.preRank = tokenImportance(probs, H, n, alive, n, prefix, 1, o, scratch) / H;
    if (isRecordingDecisions()) recordImportance('pre', scratch, n);
    const features = similarityFeatures(state, o.similarity, scratch);
    similarityPrune(features, importance, n, prefix, sDrops, scratch);
    if (isRecordingDecisions()) recordSimilarityPairs(features, scratch, n - prefix, droppedS);
    for (const i of droppedS) dropped[i] = 1;
  }
  let c = 0; // tokens alive after the S-stage
  for (let i = 0; i < n; i++) if (!dropped[i]) alive[c++] = i;

  // I: full WPR on the survivors' sub-graph, drop the iDrops lowest patch tokens.
  const droppedI = scratch.droppedI.subarray(0, iDrops);
  if (iDrops > 0) {
    headsKept.importance = tokenImportance(probs, H, n, alive, c, prefix, iterations, o, scratch) / H;
    if (isRecordingDecisions()) recordImportance('i', scratch, c);
    const ranks = rankedRange(importance, prefix, c, order);
    for (let j = 0; j < iDrops; j++) droppedI[j] = alive[ranks[ranks.length - 1 - j]];
    droppedI.sort();
    recordDecision('i.dropped', droppedI, [iDrops]);
    for (const i of droppedI) dropped[i] = 1;
  }

  let kept = 0;
  for (let i = 0; i < n; i++) if (!dropped[i]) scratch.keep[kept++] = i;
  return { keep: scratch.keep.subarray(0, kept), droppedS, droppedI, headsKept };
}

/** The decisions of an importance stage over c tokens: per-head WPR scores [H, c], heads used [H], aggregated importance [c]. */
function recordImportance(stage: 'pre' | 'i', scratch: ZeroTPruneScratch, c: number): void {
  const H = scratch.heads;
  const scores = new Float64Array(H * c);
  for (let h = 0; h < H; h++) scores.set(scratch.scoreRows[h].subarray(0, c), h * c);
  recordDecision(`${stage}.scores`, scores, [H, c]);
  recordDecision(`${stage}.heads`, Int32Array.from(scratch.valid), [H]);
  recordDecision(`${stage}.importance`, scratch.importance.subarray(0, c), [c]);
}

/**
 * The S-stage's pairs [rS, 2]: each dropped token a (ascending) and the B token b it is most
 * similar to (cosine in float64; ties: the lower position), and their similarities [rS] as the
 * stage measured them (scratch.best). B = scratch.order[0..⌈m/2⌉), as similarityPrune left it.
 */
function recordSimilarityPairs(f: FeatureRows, scratch: ZeroTPruneScratch, m: number, droppedS: Int32Array): void {
  const row = (t: number) => f.data.subarray(f.offset + t * f.stride, f.offset + t * f.stride + f.dim);
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
  const pairs = new Int32Array(2 * droppedS.length);
  droppedS.forEach((a, i) => {
    const fa = row(a);
    let bestB = -1;
    let bestCosine = -Infinity;
    for (const b of scratch.order.subarray(0, Math.ceil(m / 2))) {
      const fb = row(b);
      const cosine = fa.reduce((sum, x, d) => sum + x * fb[d], 0) / (norm(fa) * norm(fb) || 1);
      if (cosine > bestCosine || (cosine === bestCosine && b < bestB)) [bestB, bestCosine] = [b, cosine];
    }
    pairs.set([a, bestB], 2 * i);
  });
  recordDecision('s.pairs', pairs, [droppedS.length, 2]);
  recordDecision(
    's.similarity',
    Float64Array.from(droppedS, (a) => scratch.best[a]),
    [droppedS.length],
  );
}

/** What one pruning layer did, in original token ids (0 = CLS, prefix + p = patch p). */
export interface ZeroTPruneRecord {
  after: number; // 1-indexed block the layer followed (as in the schedule)
  tokensIn: number;
  droppedS: Int32Array; // original ids dropped by the S-stage
  droppedI: Int32Array; // original ids dropped by the I-stage
  headsKept: ZeroTPruneLayerResult['headsKept'];
}

export interface ZeroTPruneHookOptions extends Partial<ZeroTPruneOptions> {
  onLayer?: (record: ZeroTPruneRecord) => void; // called after every pruning layer (visualisation, logging)
  placement?: Placement; // where a layer "after block l" runs (schedule.ts); default 'after-block'
}

/**
 * Forward hooks running `schedule`: after block l (1-indexed) of each step, a pruning layer
 * removes rS + rI patch tokens. Scratch buffers are allocated once per model and backend, from
 * the backend's kernels (BlockState.kernels), which then run the heavy steps.
 */
export function zeroTPruneHooks(schedule: PruneSchedule, options: ZeroTPruneHookOptions = {}): ForwardHooks {
  const { onLayer, placement = 'after-block', ...layer } = options;
  const o = resolveZeroTPruneOptions(layer);
  const steps = new Map(schedule.steps.map((s) => [s.after, s]));
  let config: ViTConfig | null = null;
  const scratches = new Map<Kernels | undefined, ZeroTPruneScratch>(); // per backend, for `config`
  const pruningLayer = (state: BlockState): TokenReduction | void => {
    if (state.model !== config) {
      validateSchedule(state.model, schedule);
      config = state.model;
      scratches.clear();
    }
    let scratch = scratches.get(state.kernels);
    if (!scratch) {
      scratch = ZeroTPruneScratch.forModel(config, state.kernels);
      scratches.set(state.kernels, scratch);
    }
    const step = steps.get(state.block + 1);
    if (!step) return;
    const r = zeroTPruneLayer(state, step.rS, step.rI, o, scratch);
    if (onLayer) {
      const ids = state.tokenIds;
      onLayer({
        after: step.after,
        tokensIn: state.n,
        droppedS: idsAt(ids, r.droppedS),
        droppedI: idsAt(ids, r.droppedI),
        headsKept: r.headsKept,
      });
    }
    return { kind: 'keep', indices: r.keep };
  };
  return placement === 'pre-mlp' ? { afterAttention: pruningLayer } : { afterBlock: pruningLayer };
}

export type Ablation = keyof typeof ZERO_TPRUNE_ABLATIONS;

/** Zero-TPrune as a registered method (method.ts): settings are a post-block schedule, the ablation an option. */
export const zeroTPrune = defineMethod<PruneSchedule, { ablation: Ablation; placement: Placement }>({
  name: 'zero-tprune',
  summary: 'Zero-TPrune: after blocks 3, 6, 9 drop the most similar (S-stage) and least important (I-stage, Weighted Page Rank) patches',
  removal: 'dropped',
  counts: 'fixed',
  tunable: true,
  options: {
    ablation: { help: "components switched on (the paper's ablation ladder)", values: Object.keys(ZERO_TPRUNE_ABLATIONS) as Ablation[], default: 'full' },
    placement: PLACEMENT_OPTION,
  },
  keepRatio: (cfg, rho) => keepRatioSchedule(cfg, rho),
  fromJson: (cfg, json, _, source) => validatedSchedule(cfg, json, source),
  knobs: (cfg, { placement }) => [keepRatioKnob(cfg, { placement })],
  tokens: (cfg, schedule, { placement }) => scheduleTokens(cfg, schedule, placement),
  hooks(schedule, { ablation, placement }) {
    const hooks = zeroTPruneHooks(schedule, { ...ZERO_TPRUNE_ABLATIONS[ablation], placement });
    return () => hooks;
  },
  stagedHooks(schedule, { ablation, placement }, onStage) {
    const hook = placement === 'pre-mlp' ? 'attention' : 'block';
    const hooks = zeroTPruneHooks(schedule, {
      ...ZERO_TPRUNE_ABLATIONS[ablation],
      placement,
      onLayer(record) {
        onStage({ after: record.after, hook, stage: 'S', removed: record.droppedS });
        onStage({ after: record.after, hook, stage: 'I', removed: record.droppedI });
      },
    });
    return () => hooks;
  },
  describe: (schedule, { ablation, placement }) => ({ ...schedule, ablation, placement }),
});
