import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { ViTConfig } from '../model/types.js';
import type { ForwardHooks } from '../model/vit.js';
import { evitHooks, evitTokens, solveKeepRateForBudget } from './evit.js';
import { denseGmacs, modelGmacs } from '../model/gmacs.js';
import { randomDropHooks, type RandomDropStep } from './random.js';
import {
  keepRatioSchedule, parseSchedule, scheduleGmacs, solveKeepRatioForBudget, validateSchedule, type PruneSchedule,
} from './schedule.js';
import { solveTomeForBudget, tomeHooks, tomeTokens, type TomeSchedule } from './tome.js';
import { ZERO_TPRUNE_ABLATIONS, zeroTPruneHooks, type ZeroTPruneHookOptions } from './zero-tprune.js';

/**
 * One entry point from command-line options to forward hooks (Node only): it reads schedule files. So `--keep`, `--budget`,
 * `--gmacs` and `--schedule` mean the same for every method:
 *
 *   --keep ρ       Zero-TPrune / random: after blocks 3, 6, 9 the patch count becomes ⌈ρ·m⌉
 *                  (removals split 50/50 between S- and I-stage); EViT / top-k: keep rate ρ
 *                  at blocks 4, 7, 10. ToMe: not a keep ratio; use --r.
 *   --budget F     the schedule whose GMACs are the fraction F of dense (within 1 %)
 *   --gmacs G      the same for an absolute figure (G / dense GMACs)
 *   --schedule F   Zero-TPrune / random: JSON { "steps": [{ "after", "rS", "rI" }] };
 *                  ToMe: JSON { "r": [r per block] }
 */
export const METHODS = ['zero-tprune', 'tome', 'evit', 'topk', 'random'] as const;
export type Method = (typeof METHODS)[number];

export const ABLATIONS = Object.keys(ZERO_TPRUNE_ABLATIONS) as (keyof typeof ZERO_TPRUNE_ABLATIONS)[];
export type Ablation = (typeof ABLATIONS)[number];

export interface MethodOptions {
  method: Method;
  keep?: number;
  budget?: number; // fraction of dense GMACs
  gmacs?: number; // absolute GMACs
  schedule?: string; // path of a JSON schedule file
  r?: number; // ToMe: tokens merged per block
  ablation?: Ablation; // Zero-TPrune components switched on (default: full)
  seed?: number; // random drop
}

export interface PruningPlan {
  method: Method;
  /** What will run, as JSON-able data (reported by `eval --json` as "schedule"). */
  schedule: unknown;
  /** GMACs per image this plan executes (every method here is input-independent). */
  gmacs: number;
  /** Hooks for the image with this index in the run (random drop reseeds per image). */
  hooks(imageIndex: number): ForwardHooks;
}

const SCHEDULE_SOURCES = ['keep', 'budget', 'gmacs', 'schedule', 'r'] as const;

/** Build the hooks for `opts.method` on a model of config `cfg`. */
export function planPruning(cfg: ViTConfig, opts: MethodOptions): PruningPlan {
  const given = SCHEDULE_SOURCES.filter((k) => opts[k] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      `--method ${opts.method} needs exactly one of --keep, --budget, --gmacs, --schedule${opts.method === 'tome' ? ', --r' : ''}; found ${given.length ? given.map((g) => `--${g}`).join(', ') : 'none'}`,
    );
  }
  const fraction = opts.budget ?? (opts.gmacs !== undefined ? opts.gmacs / denseGmacs(cfg) : undefined);
  if (fraction !== undefined && !(fraction > 0 && fraction <= 1)) {
    throw new UsageError(`the GMACs target must be a fraction in (0, 1] of dense (${denseGmacs(cfg).toFixed(4)} GMACs), found ${fraction}`);
  }
  if (opts.keep !== undefined && !(opts.keep > 0 && opts.keep <= 1)) throw new UsageError(`--keep expects a ratio in (0, 1], found ${opts.keep}`);
  if (opts.ablation !== undefined && opts.method !== 'zero-tprune') throw new UsageError(`--ablation applies to --method zero-tprune only`);

  switch (opts.method) {
    case 'zero-tprune':
    case 'random': {
      const schedule = postBlockSchedule(cfg, opts, fraction);
      const gmacs = scheduleGmacs(cfg, schedule);
      if (opts.method === 'random') {
        const steps: RandomDropStep[] = schedule.steps.map((s) => ({ afterBlock: s.after - 1, remove: s.rS + s.rI }));
        const seed = opts.seed ?? 0;
        return { method: 'random', schedule: { ...schedule, seed }, gmacs, hooks: (i) => randomDropHooks(steps, seed + i) };
      }
      const options: ZeroTPruneHookOptions = ZERO_TPRUNE_ABLATIONS[opts.ablation ?? 'full'];
      const hooks = zeroTPruneHooks(schedule, options);
      return { method: 'zero-tprune', schedule: { ...schedule, ablation: opts.ablation ?? 'full' }, gmacs, hooks: () => hooks };
    }
    case 'tome': {
      let r: TomeSchedule;
      if (opts.r !== undefined) r = opts.r;
      else if (fraction !== undefined) r = solveTomeForBudget(cfg, fraction).schedule;
      else if (opts.schedule !== undefined) r = readTomeSchedule(opts.schedule);
      else throw new UsageError('--method tome takes --r R, --budget F, --gmacs G or --schedule FILE ({"r": [...]}), not --keep');
      const hooks = tomeHooks(r);
      return { method: 'tome', schedule: { r }, gmacs: modelGmacs(cfg, tomeTokens(cfg, r)), hooks: () => hooks };
    }
    case 'evit':
    case 'topk': {
      const fuse = opts.method === 'evit';
      if (opts.schedule !== undefined) throw new UsageError(`--method ${opts.method} takes --keep, --budget or --gmacs, not --schedule`);
      const keepRate = opts.keep ?? solveKeepRateForBudget(cfg, fraction!, fuse).keepRate;
      const hooks = evitHooks({ keepRate, fuse });
      return { method: opts.method, schedule: { keepRate }, gmacs: modelGmacs(cfg, evitTokens(cfg, { keepRate, fuse })), hooks: () => hooks };
    }
  }
}

/** Zero-TPrune's and random drop's schedule from --keep / --budget / --gmacs / --schedule. */
function postBlockSchedule(cfg: ViTConfig, opts: MethodOptions, fraction: number | undefined): PruneSchedule {
  if (opts.keep !== undefined) return keepRatioSchedule(cfg, opts.keep);
  if (fraction !== undefined) return solveKeepRatioForBudget(cfg, fraction).schedule;
  if (opts.schedule !== undefined) {
    const schedule = parseSchedule(readText(opts.schedule), opts.schedule);
    validateSchedule(cfg, schedule);
    return schedule;
  }
  throw new UsageError(`--method ${opts.method} takes --keep, --budget, --gmacs or --schedule, not --r`);
}

function readTomeSchedule(file: string): number[] {
  let json: unknown;
  try {
    json = JSON.parse(readText(file));
  } catch (err) {
    throw new UsageError(`${file}: expected JSON {"r": [tokens merged per block]}, found a syntax error (${(err as Error).message})`);
  }
  const r = (json as { r?: unknown })?.r;
  if (!Array.isArray(r) || !r.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new UsageError(`${file}: expected {"r": [non-negative integers, one per block]}, found ${JSON.stringify(json).slice(0, 80)}`);
  }
  return r as number[];
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read schedule file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
