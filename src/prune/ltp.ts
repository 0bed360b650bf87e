import type { ViTConfig } from '../model/types.js';
import { prefixTokens } from '../model/types.js';
import type { BlockState, ForwardHooks, TokenReduction } from '../model/hooks.js';
import { initialTokens } from '../model/gmacs.js';
import { ScheduleError, UsageError } from '../errors.js';
import type { BudgetKnob } from './budget.js';
import { isRecordingDecisions, recordDecision } from './decisions.js';
import { isLtpThresholdsFile, ltpThresholdsFromJson } from './ltp-thresholds.js';
import { defineMethod, settingsObject, type CalibrationRun } from './method.js';
import { PLACEMENT_OPTION, type Placement } from './schedule.js';

/**
 * LTP-style threshold pruning (Learned Token Pruning, Kim et al., KDD 2022; docs/algorithms.md §4),
 * with thresholds calibrated on unlabelled images, without any training.
 *
 * This is NOT how LTP gets its thresholds: the paper learns them jointly with the model
 * weights by fine-tuning (soft masks, then hard masks and more fine-tuning), and LTMP did the
 * same for DeiT. Here the model is unchanged and the thresholds come from one of two
 * calibration procedures of this project (docs/algorithms.md §4.5, options 1 and 2):
 *   - `calibrateLtpQuantiles`: sequential quantile matching to a per-block keep schedule;
 *   - `ltpRampKnob`: LTP's rising ramp θ_l = c·l/L in units of the mean score, with c
 *     solved (budget.ts) to hit a mean-GMACs budget on the calibration images.
 * Or they are given as settings, {"theta": [...], "unit": ...}, or learned with the model frozen
 * (`vitprune learn-ltp`, prune/ltp-learn.ts) and given as its thresholds file.
 *
 * Importance of token i in block l, the attention it receives averaged over heads and queries:
 *
 *   s(i) = (1/(H·n)) Σ_h Σ_q P_h[q, i]          P [H, n, n], row = query;  mean_i s(i) = 1/n exactly
 *
 * Token i is pruned right after the attention of block l iff s(i) < θ_l; prefix tokens (CLS,
 * DIST) never are. The MLP of block l and all later blocks see only the survivors, so token
 * counts and GMACs vary per image: report the mean over images. (LTP's code uses
 * max(θ_l, 1e-5); here θ_l ≤ 0 simply means no pruning.)
 *
 * Thresholds have a unit: 'absolute' compares θ with s, as LTP does; 'mean' measures θ in
 * multiples of the mean score 1/n, i.e. prunes iff n·s(i) < θ, whatever the token count.
 */

export type ThresholdUnit = 'absolute' | 'mean';

export interface LtpThresholds {
  theta: number[]; // [depth] θ_l of each block (0-indexed); ≤ 0 = no pruning in that block
  unit: ThresholdUnit;
}

/** s(i) = (1/(H·n)) Σ_h Σ_q P_h[q, i].  probs [H, n, n] (row = query) → [n]. */
export function ltpImportance(probs: Float32Array, heads: number, n: number): Float64Array {
  const s = new Float64Array(n);
  for (let hq = 0; hq < heads * n; hq++) {
    const row = hq * n;
    for (let i = 0; i < n; i++) s[i] += probs[row + i];
  }
  for (let i = 0; i < n; i++) s[i] /= heads * n;
  return s;
}

/** A score in the unit of a threshold: s, or n·s. */
function inUnit(s: number, n: number, unit: ThresholdUnit): number {
  return unit === 'mean' ? n * s : s;
}

/** Positions kept by threshold θ: the prefix tokens and every i with score ≥ θ (scores in θ's unit), ascending. */
export function thresholdKeep(scores: Float64Array, n: number, prefix: number, theta: number, unit: ThresholdUnit): Int32Array {
  const kept: number[] = [];
  for (let i = 0; i < n; i++) if (i < prefix || !(inUnit(scores[i], n, unit) < theta)) kept.push(i);
  return Int32Array.from(kept);
}

/** One LTP step on a block's state at the afterAttention hook (where every token alive entered the attention). */
export function ltpPrune(state: BlockState, theta: number, unit: ThresholdUnit): TokenReduction | void {
  if (!(theta > 0)) return;
  const { config: cfg, n } = state;
  if (n !== state.attentionTokens) {
    throw new RangeError(`LTP prunes right after the attention: expected the ${state.attentionTokens} tokens that entered it, found ${n}`);
  }
  const scores = ltpImportance(state.probs, cfg.heads, n);
  const kept = thresholdKeep(scores, n, prefixTokens(cfg), theta, unit);
  if (isRecordingDecisions()) {
    recordDecision(
      'importance',
      scores.map((s) => inUnit(s, n, unit)),
      [n],
    );
    const mask = new Int32Array(n);
    for (const i of kept) mask[i] = 1;
    recordDecision('mask', mask, [n]);
  }
  if (kept.length < n) return { kind: 'keep', indices: kept };
}

/**
 * Forward hooks pruning by per-block thresholds, right after each block's attention (LTP's
 * placement, 'pre-mlp') or after the whole block ('after-block': the same tokens go, after
 * running the MLP). Stateless per image: one object serves a whole run.
 */
export function ltpHooks(thresholds: LtpThresholds, placement: Placement = 'pre-mlp'): ForwardHooks {
  const pruningLayer = (state: BlockState): TokenReduction | void => {
    if (thresholds.theta.length !== state.config.depth) {
      throw new ScheduleError(`LTP thresholds: expected one per block (${state.config.depth}), found ${thresholds.theta.length}`);
    }
    return ltpPrune(state, thresholds.theta[state.block], thresholds.unit);
  };
  return placement === 'pre-mlp' ? { afterAttention: pruningLayer } : { afterBlock: pruningLayer };
}

/** LTP's threshold ramp θ_l = c·l/L (0-indexed l: block 1 never prunes), in units of the mean score. */
export function ltpRamp(depth: number, c: number): LtpThresholds {
  return { theta: Array.from({ length: depth }, (_, l) => (c * l) / depth), unit: 'mean' };
}

/**
 * Sequential quantile matching (docs/algorithms.md §4.5 option 1). For l = 1…L: run the calibration
 * images with the thresholds found so far applied to blocks < l, pool the scores (in `unit`) of
 * the N patch tokens alive at block l over all images, and set θ_l to the m-th smallest,
 * m = round((1 − keep[l])·N), so that on the calibration images exactly m are pruned (barring
 * ties). keep[l] is the fraction of the patch tokens alive at block l that survive it; 1 skips
 * the block. Each pass drops every token after block l, so it costs about l/L of a forward
 * pass: the whole calibration ≈ (L + 1)/2 forward passes per image.
 */
export async function calibrateLtpQuantiles(
  cfg: ViTConfig,
  run: CalibrationRun,
  keep: readonly number[],
  unit: ThresholdUnit = 'absolute',
): Promise<LtpThresholds> {
  if (keep.length !== cfg.depth) throw new ScheduleError(`LTP keep schedule: expected one fraction per block (${cfg.depth}), found ${keep.length}`);
  keep.forEach((k, l) => {
    if (!(k >= 0 && k <= 1)) throw new ScheduleError(`LTP keep schedule: expected fractions in [0, 1], found ${k} for block ${l + 1}`);
  });
  const prefix = prefixTokens(cfg);
  const theta: number[] = Array.from({ length: cfg.depth }, () => 0);
  for (let l = 0; l < cfg.depth; l++) {
    if (keep[l] >= 1) continue;
    const pooled: number[] = [];
    await run({
      afterAttention(state) {
        if (state.block < l) return ltpPrune(state, theta[state.block], unit);
        if (state.block > l) return;
        const scores = ltpImportance(state.probs, cfg.heads, state.n);
        for (let i = prefix; i < state.n; i++) pooled.push(inUnit(scores[i], state.n, unit));
        return { kind: 'keep', indices: Array.from({ length: prefix }, (_, p) => p) }; // the rest of the pass is not needed
      },
    });
    const sorted = Float64Array.from(pooled).sort();
    const m = Math.round((1 - keep[l]) * sorted.length);
    theta[l] = m === 0 ? 0 : m >= sorted.length ? Infinity : sorted[m];
  }
  return { theta, unit };
}

/** LTP's settings: thresholds, and the ramp height they were made from (when they were). */
export interface LtpSettings {
  c?: number; // ramp height: θ_l = c·l/L in units of the mean score
  thresholds: LtpThresholds;
}

/**
 * The LTP ramp as a measured budget knob (budget.ts, docs/algorithms.md §4.5 option 2): c from 0
 * (nothing pruned) up, mean GMACs over the calibration images falling as c grows; the search
 * starts at c = 1 and doubles, for at most 40 calibration runs. Above c = 2·n₀·L every block from
 * the second keeps only the prefix (a mean-unit score n·s(i) never exceeds n ≤ n₀).
 */
export function ltpRampKnob(cfg: ViTConfig, run: CalibrationRun, placement: Placement = 'pre-mlp'): BudgetKnob<LtpSettings> {
  return {
    dense: 0,
    sparse: 2 * initialTokens(cfg) * cfg.depth,
    integer: false,
    measured: { start: 1, maxRuns: 40 },
    settings: (c) => ({ c, thresholds: ltpRamp(cfg.depth, c) }),
    gmacs: (s) => run(ltpHooks(s.thresholds, placement)),
    describe: (s) => `ramp c = ${s.c}`,
  };
}

/**
 * LTP's thresholds from JSON: {"theta": [θ per block], "unit": "absolute" | "mean"} (and "c", as
 * LTP's settings are described), or a thresholds file of `vitprune learn-ltp` (ltp-thresholds.ts),
 * which must have been learned for this model.
 */
function ltpSettingsFromJson(cfg: ViTConfig, json: unknown, source: string): LtpSettings {
  if (isLtpThresholdsFile(json)) {
    const { theta, unit } = ltpThresholdsFromJson(json, source, cfg);
    return { thresholds: { theta, unit } };
  }
  const { c, theta, unit } = settingsObject(json, ['c', 'theta', 'unit'], source);
  if (!(Array.isArray(theta) && theta.length === cfg.depth && theta.every((t) => typeof t === 'number'))) {
    throw new ScheduleError(`${source}: expected "theta" to list ${cfg.depth} thresholds (one per block), found ${JSON.stringify(theta)?.slice(0, 80)}`);
  }
  if (unit !== 'absolute' && unit !== 'mean') throw new ScheduleError(`${source}: expected "unit" "absolute" or "mean", found ${JSON.stringify(unit)}`);
  if (c !== undefined && typeof c !== 'number') throw new ScheduleError(`${source}: expected "c" to be a number, found ${JSON.stringify(c)}`);
  return { ...(c !== undefined && { c }), thresholds: { theta, unit } };
}

/** LTP as a registered method (method.ts): thresholds calibrated by its budget knob, or given as settings (a `learn-ltp` file among them). */
export const ltp = defineMethod<LtpSettings, { placement: Placement }>({
  name: 'ltp',
  summary: "LTP-style thresholds: after each block's attention drop the tokens that receive less attention than the block's threshold",
  removal: 'dropped',
  counts: 'per-image',
  options: { placement: PLACEMENT_OPTION },
  fromJson: (cfg, json, _, source) => ltpSettingsFromJson(cfg, json, source),
  knobs(cfg, { placement }, { calibration }) {
    if (!calibration) {
      throw new UsageError(
        'method ltp reaches a budget by calibrating its thresholds on unlabelled images: give it calibration images, or its thresholds as settings',
      );
    }
    return [ltpRampKnob(cfg, calibration, placement)];
  },
  hooks({ thresholds }, { placement }) {
    const hooks = ltpHooks(thresholds, placement);
    return () => hooks;
  },
  describe: ({ c, thresholds }, { placement }) => ({ ...(c !== undefined && { c }), theta: thresholds.theta, unit: thresholds.unit, placement }),
});
