import type { ViTConfig } from '../model/types.js';
import { prefixTokens, qkvLayout } from '../model/types.js';
import { idsAt, type BlockState, type ForwardHooks, type TokenReduction } from '../model/hooks.js';
import type { BlockTokens } from '../model/gmacs.js';
import { initialTokens, modelGmacs } from '../model/gmacs.js';
import { ScheduleError } from '../errors.js';
import { isRecordingDecisions, recordDecision } from './decisions.js';
import type { BudgetKnob } from './budget.js';
import { checkedSettings, defineMethod, settingsObject } from './method.js';
import { rankedRange } from './rank.js';
import { cappedR, tomeMerge } from './tome.js';

/**
 * PPT, token pruning and pooling (Wu et al., 2023, arXiv 2310.01812; xjwu1024/PPT), off the
 * shelf. In each listed block, between the attention residual add and the MLP, r tokens go,
 * chosen per image by how uneven the token importance is:
 *
 *   s_j = (Σ_h P_h[0, j]) · ‖v_j‖            CLS attention summed over heads × the norm of token
 *                                            j's value row, all heads concatenated (ATS's score)
 *   ŝ_j = s_j / Σ_{patches} s                over the non-prefix tokens
 *   σ² = unbiased variance of ŝ over them
 *   σ² ≥ threshold → prune: keep the prefix tokens and the patch tokens of the largest ŝ,
 *                    ordered by decreasing ŝ as the reference leaves them (ties: lower
 *                    position first); the survivors keep their sizes
 *   σ² < threshold → pool: one ToMe step (tome.ts: head-mean keys, bipartite matching,
 *                    size-weighted merge)
 *
 * r is capped per block at ⌊(t − prefix)/2⌋, so both branches remove the same number of tokens
 * and the token counts do not depend on the image. Proportional attention follows the sizes.
 * The reference's `pp_loc_list 3 6 9` indexes blocks from 0: blocks 4, 7, 10 counted from 1.
 */

export interface PptSettings {
  r: number | readonly number[]; // tokens removed in each listed block (a list: one per listed block)
  blocks: readonly number[]; // 0-indexed blocks that reduce
  threshold: number; // on the unbiased variance of the normalised importance
}

/** The paper's DeiT-S evaluation: r 50 at pp_loc_list 3, 6, 9 (0-indexed), threshold 7e-5. */
export const PPT_DEFAULTS: Readonly<PptSettings> = { r: 50, blocks: [3, 6, 9], threshold: 7e-5 };

/** What one PPT layer decided, for statistics and visualisation. */
export interface PptDecision {
  block: number; // 0-indexed
  variance: number; // σ² of the normalised importance
  pruned: boolean; // true: pruned by importance; false: pooled
  removed: Int32Array; // token ids pruned or merged away
}

/** Fill in defaults and check the settings against a model of `depth` blocks. */
export function resolvePptSettings(depth: number, settings: Partial<PptSettings> = {}): PptSettings & { rates: number[] } {
  const s = { ...PPT_DEFAULTS };
  for (const [key, value] of Object.entries(settings)) if (value !== undefined) Object.assign(s, { [key]: value });
  s.blocks.forEach((b, i) => {
    if (!(Number.isInteger(b) && b >= 0 && b < depth)) throw new ScheduleError(`PPT: expected 0-indexed blocks in 0…${depth - 1}, found ${b}`);
    if (i > 0 && b <= s.blocks[i - 1]) throw new ScheduleError(`PPT: expected blocks in increasing order, found ${s.blocks.join(', ')}`);
  });
  const listed = typeof s.r === 'number' ? s.blocks.map(() => s.r as number) : [...s.r];
  if (listed.length !== s.blocks.length) throw new ScheduleError(`PPT: expected one r per listed block (${s.blocks.length}), found ${listed.length}`);
  listed.forEach((r) => {
    if (!(Number.isInteger(r) && r >= 0)) throw new ScheduleError(`PPT: expected r to be an integer ≥ 0, found ${r}`);
  });
  if (!(s.threshold >= 0)) throw new ScheduleError(`PPT: expected a variance threshold ≥ 0, found ${s.threshold}`);
  const rates = new Array<number>(depth).fill(0);
  s.blocks.forEach((b, i) => (rates[b] = listed[i]));
  return { ...s, rates };
}

/**
 * ŝ_j for the non-prefix tokens j of a block (prefix entries 0).
 *   probs [H, n, n], qkv [n, stride]  →  [n]
 */
export function pptImportance(probs: Float32Array, qkv: Float32Array, cfg: ViTConfig, n: number): Float64Array {
  const prefix = prefixTokens(cfg);
  const { stride, valueOffset } = qkvLayout(cfg);
  const width = cfg.heads * cfg.vDim; // the heads' values are contiguous
  const s = new Float64Array(n);
  let total = 0;
  for (let j = prefix; j < n; j++) {
    let cls = 0;
    for (let h = 0; h < cfg.heads; h++) cls += probs[h * n * n + j];
    let norm = 0;
    const v = j * stride + valueOffset(0);
    for (let c = 0; c < width; c++) norm += qkv[v + c] ** 2;
    s[j] = cls * Math.sqrt(norm);
    total += s[j];
  }
  for (let j = prefix; j < n; j++) s[j] /= total;
  return s;
}

/** Unbiased variance of values[from..n). */
export function unbiasedVariance(values: ArrayLike<number>, from: number, n: number): number {
  const m = n - from;
  let mean = 0;
  for (let j = from; j < n; j++) mean += values[j];
  mean /= m;
  let sq = 0;
  for (let j = from; j < n; j++) sq += (values[j] - mean) ** 2;
  return sq / (m - 1);
}

/** One PPT layer on a block's state at the afterAttention hook: the reduction (none when r caps to 0) and what was decided. */
export function pptReduce(state: BlockState, r: number, threshold: number): { reduction: TokenReduction; decision: PptDecision } | null {
  const { config: cfg, n } = state;
  const prefix = prefixTokens(cfg);
  r = cappedR(r, n, prefix);
  if (r === 0) return null;
  if (state.attentionTokens !== n)
    throw new RangeError(`PPT in block ${state.block + 1}: expected the attention of the ${n} tokens alive, found ${state.attentionTokens}`);
  const importance = pptImportance(state.probs, state.qkv, cfg, n);
  const variance = unbiasedVariance(importance, prefix, n);
  const pruned = variance >= threshold;
  if (isRecordingDecisions()) {
    recordDecision('importance', importance, [n]);
    recordDecision('variance', Float64Array.of(variance), [1]);
    recordDecision('pruned', Int32Array.of(pruned ? 1 : 0), [1]);
  }
  let reduction: TokenReduction;
  let removed: Int32Array;
  if (pruned) {
    const ranked = rankedRange(importance, prefix, n);
    const indices = new Int32Array(prefix + ranked.length - r);
    for (let p = 0; p < prefix; p++) indices[p] = p;
    indices.set(ranked.subarray(0, ranked.length - r), prefix);
    reduction = { kind: 'keep', indices };
    recordDecision('kept', indices, [indices.length]);
    removed = idsAt(state.tokenIds, ranked.subarray(ranked.length - r));
  } else {
    reduction = tomeMerge(state, r) as TokenReduction;
    const survivors = new Set(reduction.kind === 'replace' ? reduction.tokenIds : []);
    removed = Int32Array.from(Array.from(state.tokenIds).filter((id) => !survivors.has(id)));
  }
  return { reduction, decision: { block: state.block, variance, pruned, removed } };
}

/** Forward hooks running PPT. Stateless per image: one object serves a whole run. */
export function pptHooks(settings: Partial<PptSettings> = {}, options: { onLayer?: (d: PptDecision) => void } = {}): ForwardHooks {
  let depth = -1;
  let resolved: ReturnType<typeof resolvePptSettings> | null = null;
  return {
    afterAttention(state) {
      if (state.config.depth !== depth) {
        depth = state.config.depth;
        resolved = resolvePptSettings(depth, settings);
      }
      const r = resolved!.rates[state.block];
      if (r === 0) return;
      const step = pptReduce(state, r, resolved!.threshold);
      if (!step) return;
      options.onLayer?.(step.decision);
      return step.reduction;
    },
  };
}

/** Token counts per block without running the model: a listed block runs its MLP on t − r (capped). */
export function pptTokens(cfg: ViTConfig, settings: Partial<PptSettings> = {}): BlockTokens[] {
  const { rates } = resolvePptSettings(cfg.depth, settings);
  const prefix = prefixTokens(cfg);
  let t = initialTokens(cfg);
  return rates.map((r) => {
    const attention = t;
    t -= cappedR(r, t, prefix);
    return { attention, mlp: t };
  });
}

/** PPT's options: the variance threshold between pruning and pooling. */
export interface PptOptions extends Record<string, number> {
  threshold: number;
}

type PptPlanSettings = Pick<PptSettings, 'r' | 'blocks'>;

function pptSettingsFromJson(cfg: ViTConfig, json: unknown, o: PptOptions, source: string): PptPlanSettings {
  const fields = settingsObject(json, ['r', 'blocks'], source);
  const integers = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number');
  if (!(typeof fields.r === 'number' || integers(fields.r)))
    throw new ScheduleError(`${source}: expected "r", an integer ≥ 0 or one per listed block, found ${JSON.stringify(fields.r)}`);
  if (!(fields.blocks === undefined || integers(fields.blocks)))
    throw new ScheduleError(`${source}: expected "blocks", a list of 0-indexed blocks, found ${JSON.stringify(fields.blocks)}`);
  const settings = { r: fields.r as PptSettings['r'], blocks: (fields.blocks ?? PPT_DEFAULTS.blocks) as number[] };
  checkedSettings(source, () => resolvePptSettings(cfg.depth, { ...settings, threshold: o.threshold }));
  return settings;
}

/** The budget knob: the same r in every listed block (the paper's blocks), from 0 (dense) to where every block is capped. */
function pptKnob(cfg: ViTConfig): BudgetKnob<PptPlanSettings> {
  return {
    dense: 0,
    sparse: Math.floor((initialTokens(cfg) - prefixTokens(cfg)) / 2),
    integer: true,
    settings: (r) => ({ r, blocks: PPT_DEFAULTS.blocks }),
    gmacs: (s) => modelGmacs(cfg, pptTokens(cfg, s)),
    describe: (s) => `r = ${JSON.stringify(s.r)} in blocks ${s.blocks.join(', ')}`,
  };
}

/** PPT as a registered method (method.ts). Its stages: 'pruned' or 'pooled', per layer and image. */
export const ppt = defineMethod<PptPlanSettings, PptOptions>({
  name: 'ppt',
  summary: 'PPT: in blocks 4, 7, 10 remove r tokens per image, by pruning (CLS attention × value norm) when importance is uneven, else by ToMe pooling',
  removal: 'merged',
  counts: 'fixed',
  options: {
    threshold: { help: 'variance of the normalised importance from which a layer prunes rather than pools', values: 'number', default: PPT_DEFAULTS.threshold },
  },
  fromJson: pptSettingsFromJson,
  knobs: (cfg) => [pptKnob(cfg)],
  tokens: (cfg, settings) => pptTokens(cfg, settings),
  hooks(settings, { threshold }) {
    const hooks = pptHooks({ ...settings, threshold });
    return () => hooks;
  },
  stagedHooks(settings, { threshold }, onStage) {
    const hooks = pptHooks(
      { ...settings, threshold },
      {
        onLayer: (d) => onStage({ after: d.block + 1, hook: 'attention', stage: d.pruned ? 'pruned' : 'pooled', removed: d.removed }),
      },
    );
    return () => hooks;
  },
  describe: (settings, { threshold }) => ({ ...settings, threshold }),
});
