import type { ViTConfig } from '../model/types.js';
import { prefixTokens } from '../model/types.js';
import { idsAt, type BlockState, type ForwardHooks, type TokenReduction } from '../model/hooks.js';
import type { BlockTokens } from '../model/gmacs.js';
import { ScheduleError } from '../errors.js';
import { isRecordingDecisions, recordDecision } from './decisions.js';
import { checkedSettings, defineMethod, settingsObject } from './method.js';
import { mergeKernels, REFERENCE_MERGE_KERNELS, type MergeKernelLoops, type MergeWorkspace } from './merge-kernels.js';
import { rankedRange } from './rank.js';
import { cappedR, mergeWeightedAverage, recordMatching, tomeKnobs, tomeRates, tomeTokens, type TomeMatching, type TomeSchedule } from './tome.js';

/**
 * PiToMe, energy-protected token merging (Tran et al., NeurIPS 2024, "Accelerating Transformers
 * with Spectrum-Preserving Token Merging"; hchautran/PiToMe `algo/pitome/merge.py`,
 * `pitome_vision`), off the shelf. In every block, between the attention residual add and the
 * MLP, r tokens merge, as in ToMe, but only among the tokens of highest energy:
 *
 *   metric  k̄_i = mean_h K_h[i], L2-normalised, for the non-prefix tokens (T of them)
 *   energy  E_i = (1/T) Σ_j ELU_α(cos(k̄_i, k̄_j) − m_l)       j over the T tokens, itself included;
 *           ELU_α(z) = z for z > 0, α(eᶻ − 1) otherwise            (F.elu of the reference code)
 *   rank    the T tokens by decreasing E (ties: lower position first); the first 2r may merge,
 *           the others are protected (isolated, low-energy tokens carry the detail)
 *   split   A = ranks 0, 2, 4, …, 2r − 2;  B = ranks 1, 3, …, 2r − 1
 *   merge   every a ∈ A into argmax_{b ∈ B} cos(k̄_a, k̄_b) (ties: the higher-ranked b), size-weighted
 *   order   [prefix tokens, protected tokens by rank, B by rank]
 *
 * Margin m_l = start − slope · l / L for block l (0-indexed) of L; the reference uses
 * 0.9 − 0.8·l/L. r is capped per block at ⌊T/2⌋ = ⌊(t − prefix)/2⌋, the ToMe cap, so the token
 * counts are ToMe's for the same r (tomeTokens) and ToMe's budget solver serves.
 * Proportional attention follows the sizes, as in ToMe.
 *
 * On DeiT-T it trails ToMe at the same GMACs, as the independent numpy implementation found
 * (500 dev images): r 11 (0.644 × dense) agreement 0.896 / KL 0.095 against ToMe's 0.916 /
 * 0.056, r 4 (0.866 ×) 0.958 / 0.019 against 0.966 / 0.011
 * (`npx tsx bench/methods-check.ts --only tome,pitome`).
 */

/** A margin per block: a constant, the linear schedule start − slope·l/L, or one value per block. */
export type PitomeMargin = number | { start: number; slope: number } | readonly number[];

export interface PitomeSettings {
  r: TomeSchedule; // tokens merged per block (ToMe's schedule forms)
  margin: PitomeMargin;
  alpha: number; // ELU α
}

/** The reference's margin schedule and α; r has no default (the paper sets it per experiment). */
export const PITOME_DEFAULTS: Readonly<Omit<PitomeSettings, 'r'>> = { margin: { start: 0.9, slope: 0.8 }, alpha: 1 };

/** m_l for each of `depth` blocks. */
export function pitomeMargins(depth: number, margin: PitomeMargin): number[] {
  let margins: number[];
  if (typeof margin === 'number') margins = Array.from({ length: depth }, () => margin);
  else if (Array.isArray(margin)) {
    if (margin.length !== depth) throw new ScheduleError(`PiToMe margin: expected one value per block (${depth}), found ${margin.length}`);
    margins = [...margin];
  } else {
    const { start, slope } = margin as { start: number; slope: number };
    margins = Array.from({ length: depth }, (_, l) => start - (slope * l) / depth);
  }
  margins.forEach((m, l) => {
    if (!Number.isFinite(m)) throw new ScheduleError(`PiToMe margin: expected a finite margin for block ${l + 1}, found ${m}`);
  });
  return margins;
}

/**
 * E_i for the T = t − prefix non-prefix tokens and their pairwise cosines.
 *   metric [t, c]  →  energy [T] (index i = position prefix + i), cosines [T, T] (upper triangle, j ≥ i)
 * `kernels` compute into the workspace's buffers, which are returned (default: the TypeScript
 * oracles on fresh arrays).
 */
export function pitomeEnergy(
  metric: Float32Array,
  t: number,
  c: number,
  prefix: number,
  margin: number,
  alpha: number,
  kernels: MergeKernelLoops = REFERENCE_MERGE_KERNELS,
  workspace: Pick<MergeWorkspace, 'cosines' | 'energy'> = { cosines: new Float64Array((t - prefix) ** 2), energy: new Float64Array(t - prefix) },
): { energy: Float64Array; cosines: Float64Array } {
  const T = t - prefix;
  const cosines = workspace.cosines.subarray(0, T * T);
  const energy = workspace.energy.subarray(0, T);
  kernels.pairwiseCosines(metric, prefix, T, c, cosines);
  kernels.pitomeEnergy(cosines, T, margin, alpha, energy);
  return { energy, cosines };
}

/**
 * The PiToMe merge decision for t tokens with head-mean keys `metric` [t, c]; r already capped.
 * Positions are in the sequence of t tokens. `kernels` and `workspace` as for pitomeEnergy.
 */
export function pitomeMatching(
  metric: Float32Array,
  t: number,
  c: number,
  r: number,
  prefix: number,
  margin: number,
  alpha: number,
  kernels: MergeKernelLoops = REFERENCE_MERGE_KERNELS,
  workspace?: Pick<MergeWorkspace, 'cosines' | 'energy' | 'ranking'>,
): TomeMatching {
  const T = t - prefix;
  if (!(Number.isInteger(r) && r >= 0 && 2 * r <= T))
    throw new RangeError(`PiToMe: expected an integer r in 0…${Math.floor(T / 2)} for ${T} mergeable tokens, found ${r}`);
  const { energy, cosines } = pitomeEnergy(metric, t, c, prefix, margin, alpha, kernels, workspace);
  const ranking = rankedRange(energy, 0, T, workspace?.ranking, kernels); // by decreasing energy, ties: lower position first
  // A = ranks 0, 2, …, 2r − 2 and B = ranks 1, 3, …, 2r − 1; every a into its most similar b
  // (ties: the higher-ranked b), cos(a, b) read in the upper triangle (pairwiseCosines).
  const sources = new Int32Array(r);
  const destinations = new Int32Array(r);
  for (let k = 0; k < r; k++) {
    const a = ranking[2 * k];
    let best = ranking[1];
    for (let m = 0; m < r; m++) {
      const b = ranking[2 * m + 1];
      if (upperCosine(cosines, T, a, b) > upperCosine(cosines, T, a, best)) best = b;
    }
    sources[k] = prefix + a;
    destinations[k] = prefix + best;
  }
  // [prefix tokens, protected tokens by rank, B by rank]
  const order = new Int32Array(t - r);
  let o = 0;
  for (let p = 0; p < prefix; p++) order[o++] = p;
  for (let k = 2 * r; k < T; k++) order[o++] = prefix + ranking[k];
  for (let m = 0; m < r; m++) order[o++] = prefix + ranking[2 * m + 1];
  if (isRecordingDecisions()) {
    recordDecision('energy', energy, [T]);
    recordDecision('protected', order.slice(prefix, prefix + T - 2 * r), [T - 2 * r]);
  }
  return { sources, destinations, order };
}

/** cos(a, b) from the upper triangle of cosines [T, T] (pairwiseCosines). */
function upperCosine(cosines: Float64Array, T: number, a: number, b: number): number {
  return a <= b ? cosines[a * T + b] : cosines[b * T + a];
}

/** One PiToMe step on a block's state at the afterAttention hook: merge r tokens (capped), or nothing. */
export function pitomeMerge(state: BlockState, r: number, margin: number, alpha: number): TokenReduction | void {
  const { config: cfg, n } = state;
  const prefix = prefixTokens(cfg);
  r = cappedR(r, n, prefix);
  if (r === 0) return;
  const kernels = mergeKernels(state.kernels);
  const workspace = kernels.workspace(state.model);
  kernels.headMeanKeys(state.qkv, cfg, n, workspace.metric);
  const m = pitomeMatching(workspace.metric, n, cfg.qkDim, r, prefix, margin, alpha, kernels, workspace);
  if (isRecordingDecisions()) recordMatching(m);
  const merged = mergeWeightedAverage(m, state.x, cfg.dim, state.sizes, kernels, workspace);
  return { kind: 'replace', n: m.order.length, x: merged.x, sizes: merged.sizes, tokenIds: idsAt(state.tokenIds, m.order) };
}

/** Forward hooks merging tokens by PiToMe in every block. Stateless per image: one object serves a whole run. */
export function pitomeHooks(settings: Pick<PitomeSettings, 'r'> & Partial<PitomeSettings>): ForwardHooks {
  const s = { ...PITOME_DEFAULTS, ...settings };
  if (!(Number.isFinite(s.alpha) && s.alpha >= 0)) throw new ScheduleError(`PiToMe: expected α ≥ 0, found ${s.alpha}`);
  let depth = -1;
  let rates: number[] = [];
  let margins: number[] = [];
  return {
    afterAttention(state) {
      if (state.config.depth !== depth) {
        depth = state.config.depth;
        rates = tomeRates(depth, s.r);
        margins = pitomeMargins(depth, s.margin);
      }
      return pitomeMerge(state, rates[state.block], margins[state.block], s.alpha);
    },
  };
}

/** Token counts per block without running the model: ToMe's for the same r. */
export function pitomeTokens(cfg: ViTConfig, r: TomeSchedule): BlockTokens[] {
  return tomeTokens(cfg, r);
}

function pitomeSettingsFromJson(cfg: ViTConfig, json: unknown, source: string): PitomeSettings {
  const fields = settingsObject(json, ['r', 'margin', 'alpha'], source);
  const r = fields.r;
  if (!(typeof r === 'number' || (Array.isArray(r) && r.every((v) => typeof v === 'number')))) {
    throw new ScheduleError(`${source}: expected "r", an integer ≥ 0 or one per block, found ${JSON.stringify(r)}`);
  }
  const settings: PitomeSettings = {
    r,
    margin: (fields.margin ?? PITOME_DEFAULTS.margin) as PitomeMargin,
    alpha: (fields.alpha ?? PITOME_DEFAULTS.alpha) as number,
  };
  return checkedSettings(source, () => {
    tomeRates(cfg.depth, settings.r);
    pitomeMargins(cfg.depth, settings.margin);
    if (!(Number.isFinite(settings.alpha) && settings.alpha >= 0)) throw new ScheduleError(`PiToMe: expected α ≥ 0, found ${settings.alpha}`);
    return settings;
  });
}

/** PiToMe as a registered method (method.ts): ToMe's token counts and budget knobs, the reference's margins and α. */
export const pitome = defineMethod<PitomeSettings>({
  name: 'pitome',
  summary: 'PiToMe: in every block, merge r tokens as ToMe does, but only among the highest-energy ones (isolated tokens are protected)',
  removal: 'merged',
  counts: 'fixed',
  fromJson: pitomeSettingsFromJson,
  knobs: (cfg) =>
    tomeKnobs(cfg).map((knob) => ({
      ...knob,
      settings: (t: number): PitomeSettings => ({ ...PITOME_DEFAULTS, r: knob.settings(t) }),
      gmacs: (s: PitomeSettings) => knob.gmacs(s.r),
      describe: (s: PitomeSettings) => knob.describe(s.r),
    })),
  tokens: (cfg, settings) => pitomeTokens(cfg, settings.r),
  hooks(settings) {
    const hooks = pitomeHooks(settings);
    return () => hooks;
  },
  describe: (settings) => ({ ...settings }),
});
