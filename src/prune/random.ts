import type { ViTConfig } from '../model/types.js';
import { prefixTokens } from '../model/types.js';
import { seededRandom } from '../model/random.js';
import type { BlockState, ForwardHooks, TokenReduction } from '../model/hooks.js';
import type { BlockTokens } from '../model/gmacs.js';
import { initialTokens } from '../model/gmacs.js';
import { ScheduleError } from '../errors.js';
import { defineMethod } from './method.js';
import { PLACEMENT_OPTION, keepRatioKnob, keepRatioSchedule, scheduleTokens, validatedSchedule, type Placement, type PruneSchedule } from './schedule.js';

/**
 * Random token dropping: the floor every importance-based method should beat. It follows a
 * Zero-TPrune-style post-block schedule (after block l, remove r_l tokens) but picks the
 * removed tokens uniformly at random among the non-prefix tokens, with a seeded generator, so a
 * run is reproducible. Survivors keep their order; prefix tokens (CLS, DIST) always survive.
 */

export interface RandomDropStep {
  afterBlock: number; // 0-indexed block (as BlockState.block) after which tokens are removed
  remove: number; // tokens removed there
}

/**
 * Positions surviving the removal of `remove` of the n − prefix non-prefix tokens, ascending:
 * a partial Fisher–Yates shuffle driven by `rand` ([0, 1) uniform) picks the removed ones.
 */
export function randomSurvivors(n: number, prefix: number, remove: number, rand: () => number): Int32Array {
  const candidates = Int32Array.from({ length: n - prefix }, (_, j) => prefix + j);
  const removed = new Uint8Array(n);
  for (let i = 0; i < remove; i++) {
    const j = i + Math.floor(rand() * (candidates.length - i));
    [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
    removed[candidates[i]] = 1;
  }
  const kept: number[] = [];
  for (let p = 0; p < n; p++) if (!removed[p]) kept.push(p);
  return Int32Array.from(kept);
}

/** Token counts per block without running the model. Throws ScheduleError if a step does not fit the model. */
export function randomDropTokens(cfg: ViTConfig, steps: readonly RandomDropStep[]): BlockTokens[] {
  const removals = removalsByBlock(cfg, steps);
  let n = initialTokens(cfg);
  return Array.from({ length: cfg.depth }, (_, b) => {
    const t = { attention: n, mlp: n };
    n -= removals.get(b) ?? 0;
    return t;
  });
}

/**
 * Forward hooks dropping random tokens by `steps`, drawing from seededRandom(seed), after each
 * step's block or, pre-MLP, after its attention (schedule.ts, Placement: the same draws). The
 * generator advances across images: create the hooks once per image (e.g. seed = base + image
 * index) for results that do not depend on the order in which images run.
 */
export function randomDropHooks(steps: readonly RandomDropStep[], seed: number, placement: Placement = 'after-block'): ForwardHooks {
  const rand = seededRandom(seed);
  let config: ViTConfig | null = null;
  let removals = new Map<number, number>();
  const pruningLayer = (state: BlockState): TokenReduction | void => {
    if (state.model !== config) {
      config = state.model;
      removals = removalsByBlock(config, steps);
    }
    const remove = removals.get(state.block);
    if (remove) return { kind: 'keep', indices: randomSurvivors(state.n, prefixTokens(state.config), remove, rand) };
  };
  return placement === 'pre-mlp' ? { afterAttention: pruningLayer } : { afterBlock: pruningLayer };
}

/** Removals per 0-indexed block, checked against the model: blocks exist, at most every non-prefix token alive. */
function removalsByBlock(cfg: ViTConfig, steps: readonly RandomDropStep[]): Map<number, number> {
  const removals = new Map<number, number>();
  for (const { afterBlock, remove } of steps) {
    if (!(Number.isInteger(afterBlock) && afterBlock >= 0 && afterBlock < cfg.depth)) {
      throw new ScheduleError(`random drop: expected a 0-indexed block in 0..${cfg.depth - 1}, found ${afterBlock}`);
    }
    if (!(Number.isInteger(remove) && remove >= 0)) {
      throw new ScheduleError(`random drop after block ${afterBlock}: expected an integer count ≥ 0, found ${remove}`);
    }
    removals.set(afterBlock, (removals.get(afterBlock) ?? 0) + remove);
  }
  let patches = initialTokens(cfg) - prefixTokens(cfg);
  for (let b = 0; b < cfg.depth; b++) {
    const remove = removals.get(b) ?? 0;
    if (remove > patches) throw new ScheduleError(`random drop after block ${b}: expected at most the ${patches} non-prefix tokens alive, found ${remove}`);
    patches -= remove;
  }
  return removals;
}

/** Random drop as a registered method (method.ts): Zero-TPrune's schedules, tokens drawn by a seeded generator. */
export const randomDrop = defineMethod<PruneSchedule, { seed: number; placement: Placement }>({
  name: 'random',
  summary: "random drop: Zero-TPrune's schedule with the removed tokens drawn at random, the floor every method should beat",
  removal: 'dropped',
  counts: 'fixed',
  options: { seed: { help: 'seed of the draws (image i of a run draws from seed + i)', values: 'integer', default: 0 }, placement: PLACEMENT_OPTION },
  keepRatio: (cfg, rho) => keepRatioSchedule(cfg, rho),
  fromJson: (cfg, json, _, source) => validatedSchedule(cfg, json, source),
  knobs: (cfg, { placement }) => [keepRatioKnob(cfg, { placement })],
  tokens: (cfg, schedule, { placement }) => scheduleTokens(cfg, schedule, placement),
  hooks(schedule, { seed, placement }) {
    const steps: RandomDropStep[] = schedule.steps.map((s) => ({ afterBlock: s.after - 1, remove: s.rS + s.rI }));
    return (imageIndex) => randomDropHooks(steps, seed + imageIndex, placement);
  },
  describe: (schedule, { seed, placement }) => ({ ...schedule, seed, placement }),
});
