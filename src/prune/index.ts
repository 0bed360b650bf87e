/**
 * vitprune/prune: making a model cheaper without retraining.
 *
 * Token pruning: every method implements TokenMethod (method.ts) and is listed in the registry
 * (registry.ts); `planPruning(config, { method, budget | keep | settings })` gives its hooks for
 * ViTRunner.forward. Budgets are solved by one solver (budget.ts). Each method's pure parts
 * (hooks, token counts, knobs) are exported for direct use. Attention channel pruning:
 * pruneChannels (channels.ts; saving the smaller model is vitprune/node's savePrunedModel).
 */
export { planPruning, TOKEN_METHODS, tokenMethod } from './registry.js';
export {
  calibrationRun,
  defineMethod,
  settingsObject,
  type CalibrationRun,
  type MethodOption,
  type MethodSpec,
  type PlanContext,
  type PruneRequest,
  type PruningPlan,
  type Removal,
  type TokenCounts,
  type TokenMethod,
} from './method.js';
export { reductionStages, type RemovalStage } from './removal-stages.js';
export { solveBudget, type BudgetKnob, type BudgetSolution } from './budget.js';

export {
  zeroTPrune,
  zeroTPruneHooks,
  zeroTPruneLayer,
  ZERO_TPRUNE_ABLATIONS,
  type Ablation,
  type ZeroTPruneOptions,
  type ZeroTPruneRecord,
} from './zero-tprune.js';
export { zeroTPruneKernels, type ZeroTPruneKernels } from './zero-tprune-kernels.js';
export {
  keepRatioKnob,
  keepRatioSchedule,
  parseSchedule,
  scheduleFromJson,
  scheduleGmacs,
  scheduleToJson,
  scheduleTokens,
  validateSchedule,
  type KeepRatioOptions,
  type PruneSchedule,
  type PruneStep,
} from './schedule.js';
export { tuneSchedule, type CandidateScore, type TuneOptions, type TuneResult } from './tune.js';
export { tome, tomeHooks, tomeKnobs, tomeTokens, type TomeSchedule } from './tome.js';
export { evit, evitHooks, evitTokens, keepRateKnob, topk, type EvitOptions } from './evit.js';
export { calibrateLtpQuantiles, ltp, ltpHooks, ltpRampKnob, type LtpSettings, type LtpThresholds } from './ltp.js';
export { randomDrop, randomDropHooks, type RandomDropStep } from './random.js';

export { pruneChannels, type ChannelPruningOptions, type ChannelPruningResult, type PrunedDescription } from './channels.js';
