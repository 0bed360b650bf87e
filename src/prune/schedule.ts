import { ScheduleError } from '../errors.js';
import type { ViTConfig } from '../model/types.js';
import { numPatches } from '../model/types.js';
import type { BlockTokens } from '../model/gmacs.js';
import { initialTokens, modelGmacs } from '../model/gmacs.js';
import type { BudgetKnob } from './budget.js';

/**
 * Zero-TPrune schedules (docs/algorithms.md §1.9): where the pruning layers sit and how many patch
 * tokens each removes in its S-stage (similarity) and I-stage (importance).
 *
 * Block numbers are 1-indexed, as in the papers: a step with `after: l` is a pruning layer
 * between block l and block l + 1, fed with block l's attention and keys (it runs in the
 * `afterBlock` hook of `BlockState.block === l − 1`).
 *
 * JSON form (a schedule file), steps in increasing `after`:
 *   { "steps": [ { "after": 3, "rS": 25, "rI": 26 }, { "after": 6, "rS": 19, "rI": 19 } ] }
 */

export interface PruneStep {
  after: number; // 1-indexed block the pruning layer follows
  rS: number; // patch tokens removed by the S-stage
  rI: number; // patch tokens removed by the I-stage
}

export interface PruneSchedule {
  steps: PruneStep[]; // strictly increasing `after`
}

/** The S-stage removes tokens from group A only: at most ⌊m/2⌋ of m patch tokens. */
export function maxSimilarityDrops(patches: number): number {
  return Math.floor(patches / 2);
}

const STEP_KEYS = ['after', 'rS', 'rI'] as const;

/** Parse and check the structure of a schedule file's text (use `validateSchedule` for a model). */
export function parseSchedule(text: string, source = 'schedule'): PruneSchedule {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ScheduleError(`${source}: expected JSON, found a syntax error (${(e as Error).message})`);
  }
  return scheduleFromJson(json, source);
}

/** Check a parsed JSON value: `{ steps: [{ after, rS, rI }, …] }`, integers, `after` ≥ 1 and strictly increasing. */
export function scheduleFromJson(json: unknown, source = 'schedule'): PruneSchedule {
  if (!isPlainObject(json)) throw new ScheduleError(`${source}: expected an object { "steps": [...] }, found ${describe(json)}`);
  for (const key of Object.keys(json)) {
    if (key !== 'steps') throw new ScheduleError(`${source}: unexpected key "${key}" (expected only "steps")`);
  }
  const steps = json.steps;
  if (!Array.isArray(steps)) throw new ScheduleError(`${source}: "steps": expected an array, found ${describe(steps)}`);
  const parsed: PruneStep[] = [];
  steps.forEach((step: unknown, i) => {
    const where = `${source}: steps[${i}]`;
    if (!isPlainObject(step)) throw new ScheduleError(`${where}: expected an object { "after", "rS", "rI" }, found ${describe(step)}`);
    for (const key of Object.keys(step)) {
      if (!(STEP_KEYS as readonly string[]).includes(key)) throw new ScheduleError(`${where}: unexpected key "${key}" (expected "after", "rS", "rI")`);
    }
    for (const key of STEP_KEYS) {
      const v = step[key];
      const min = key === 'after' ? 1 : 0;
      if (!Number.isInteger(v) || (v as number) < min) throw new ScheduleError(`${where}.${key}: expected an integer ≥ ${min}, found ${describe(v)}`);
    }
    const after = step.after as number;
    const previous = i > 0 ? parsed[i - 1].after : 0;
    if (after <= previous) throw new ScheduleError(`${where}.after: expected a block after ${previous} (steps in increasing order), found ${after}`);
    parsed.push({ after, rS: step.rS as number, rI: step.rI as number });
  });
  return { steps: parsed };
}

/** A schedule from its JSON (`scheduleFromJson`) checked against a model (`validateSchedule`). */
export function validatedSchedule(cfg: ViTConfig, json: unknown, source: string): PruneSchedule {
  const schedule = scheduleFromJson(json, source);
  validateSchedule(cfg, schedule);
  return schedule;
}

/** The JSON text of a schedule, one step per line. */
export function scheduleToJson(schedule: PruneSchedule): string {
  const steps = schedule.steps.map((s) => `    { "after": ${s.after}, "rS": ${s.rS}, "rI": ${s.rI} }`);
  return `{\n  "steps": [\n${steps.join(',\n')}\n  ]\n}\n`;
}

/**
 * Where the pruning layer of a step "after block l" runs. Its decision reads only block l's
 * attention probabilities and keys (or, random drop, nothing), which the MLP does not change,
 * and the MLP works on each token alone: so the survivors come out the same either way.
 *   'after-block': after block l's MLP, as the papers place it; every token alive runs that MLP.
 *   'pre-mlp':     after block l's attention, before its MLP; the dropped tokens skip the MLP
 *                  (the engine's default for dropping methods: the same outputs for fewer GMACs).
 */
export type Placement = 'pre-mlp' | 'after-block';

export const PLACEMENTS: readonly Placement[] = ['pre-mlp', 'after-block'];

/** The `placement` option of the dropping methods (method.ts), default pre-MLP. */
export const PLACEMENT_OPTION = {
  help: 'where the pruning layer "after block l" runs: before block l\'s MLP (the dropped tokens skip it) or after the block (the paper\'s)',
  values: PLACEMENTS,
  default: 'pre-mlp' as Placement,
};

/**
 * Token counts per block under a schedule: block l runs on n_l tokens in attention and MLP,
 * n_{l+1} = n_l − rS − rI after a step at l; pre-MLP, block l's MLP already runs on n_{l+1}.
 * Throws ScheduleError if the schedule does not fit the model (block beyond the depth, or more
 * removals than the stages allow).
 */
export function scheduleTokens(cfg: ViTConfig, schedule: PruneSchedule, placement: Placement = 'after-block'): BlockTokens[] {
  validateSchedule(cfg, schedule);
  const steps = new Map(schedule.steps.map((s) => [s.after, s]));
  let n = initialTokens(cfg);
  const tokens: BlockTokens[] = [];
  for (let b = 0; b < cfg.depth; b++) {
    const attention = n;
    const step = steps.get(b + 1);
    if (step) n -= step.rS + step.rI;
    tokens.push({ attention, mlp: placement === 'pre-mlp' ? n : attention });
  }
  return tokens;
}

/** GMACs of a schedule, without running the model. */
export function scheduleGmacs(cfg: ViTConfig, schedule: PruneSchedule, placement: Placement = 'after-block'): number {
  return modelGmacs(cfg, scheduleTokens(cfg, schedule, placement));
}

/** Check a (structurally valid) schedule against a model: blocks exist, every step removes what it can. */
export function validateSchedule(cfg: ViTConfig, schedule: PruneSchedule): void {
  let patches = numPatches(cfg);
  let previous = 0;
  schedule.steps.forEach((step, i) => {
    const where = `schedule step ${i} (after block ${step.after})`;
    if (!(Number.isInteger(step.after) && step.after > previous && step.after <= cfg.depth)) {
      throw new ScheduleError(
        `${where}: expected a block in ${previous + 1}..${cfg.depth} (the model has ${cfg.depth} blocks, steps in increasing order), found ${step.after}`,
      );
    }
    if (!(Number.isInteger(step.rS) && Number.isInteger(step.rI) && step.rS >= 0 && step.rI >= 0)) {
      throw new ScheduleError(`${where}: expected non-negative integer rS and rI, found rS = ${step.rS}, rI = ${step.rI}`);
    }
    if (step.rS > maxSimilarityDrops(patches)) {
      const most = maxSimilarityDrops(patches);
      throw new ScheduleError(`${where}: the S-stage can remove at most ⌊${patches}/2⌋ = ${most} of the ${patches} patch tokens alive, found rS = ${step.rS}`);
    }
    if (step.rS + step.rI > patches) {
      throw new ScheduleError(`${where}: expected rS + rI ≤ ${patches} patch tokens alive, found ${step.rS + step.rI}`);
    }
    patches -= step.rS + step.rI;
    previous = step.after;
  });
}

export interface KeepRatioOptions {
  after?: readonly number[]; // 1-indexed blocks followed by a pruning layer; default [3, 6, 9]
  sSplit?: number; // share of each layer's removals done by the S-stage; default 0.5
  placement?: Placement; // for the GMACs of keepRatioKnob; default 'after-block'
}

/**
 * The "keep-ratio" preset (docs/algorithms.md §1.9, the oracle's setting): after each block in
 * `after`, the m patch tokens alive become ⌈ρ·m⌉; of the r = m − ⌈ρ·m⌉ removed, the S-stage
 * removes ⌊r·sSplit⌋ (capped at ⌊m/2⌋, the size of group A) and the I-stage the rest.
 * DeiT-S, ρ = 0.7: tokens 197 → 139 → 98 → 69.
 */
export function keepRatioSchedule(cfg: ViTConfig, rho: number, options: KeepRatioOptions = {}): PruneSchedule {
  const after = options.after ?? [3, 6, 9];
  const sSplit = options.sSplit ?? 0.5;
  if (!(rho >= 0 && rho <= 1)) throw new ScheduleError(`keep ratio: expected ρ in [0, 1], found ${rho}`);
  if (!(sSplit >= 0 && sSplit <= 1)) throw new ScheduleError(`S-stage share: expected a number in [0, 1], found ${sSplit}`);
  let patches = numPatches(cfg);
  const steps = after.map((block) => {
    const kept = Math.ceil(rho * patches - 1e-9); // the tolerance keeps 0.7·10 = 7.000000000000001 at 7
    const r = patches - kept;
    const rS = Math.min(Math.floor(r * sSplit), maxSimilarityDrops(patches));
    patches = kept;
    return { after: block, rS, rI: r - rS };
  });
  const schedule = { steps };
  validateSchedule(cfg, schedule);
  return schedule;
}

/**
 * Keep-ratio schedules as a budget knob (budget.ts): ρ from 1 (dense) down to 0, every schedule's
 * GMACs from its token counts; the ρ reported is the decimal with the fewest digits that gives the
 * same schedule as the ρ found.
 */
export function keepRatioKnob(cfg: ViTConfig, options: KeepRatioOptions = {}): BudgetKnob<PruneSchedule> {
  const schedule = (rho: number) => keepRatioSchedule(cfg, rho, options);
  return {
    dense: 1,
    sparse: 0,
    integer: false,
    settings: schedule,
    gmacs: (s) => scheduleGmacs(cfg, s, options.placement),
    canonical: (rho) => shortestEquivalentRho(rho, schedule),
    describe: (s) => `schedule ${JSON.stringify(s.steps)}`,
  };
}

/** The decimal with the fewest digits that gives the same schedule as `rho`. */
function shortestEquivalentRho(rho: number, schedule: (rho: number) => PruneSchedule): number {
  const key = scheduleToJson(schedule(rho));
  for (let digits = 1; digits <= 12; digits++) {
    const rounded = Number(rho.toFixed(digits));
    if (rounded >= 0 && rounded <= 1 && scheduleToJson(schedule(rounded)) === key) return rounded;
  }
  return rho;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return JSON.stringify(v);
}
