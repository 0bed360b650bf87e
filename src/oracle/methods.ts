import { UsageError } from '../errors.js';
import type { ViTConfig } from '../model/types.js';
import type { ForwardHooks } from '../model/hooks.js';
import { EVIT_BLOCKS, evitHooks } from '../prune/evit.js';
import { ltpHooks, type ThresholdUnit } from '../prune/ltp.js';
import type { PruningPlan } from '../prune/method.js';
import { mctfHooks, resolveMctfSettings, type MctfOptions, type MctfPlanSettings, type MctfSettings } from '../prune/mctf.js';
import { pitomeHooks, pitomeMargins, type PitomeSettings } from '../prune/pitome.js';
import { pptHooks, type PptSettings } from '../prune/ppt.js';
import { randomDropHooks } from '../prune/random.js';
import { PLACEMENTS, type Placement, type PruneSchedule } from '../prune/schedule.js';
import { tomeHooks, tomeRates, type TomeSchedule } from '../prune/tome.js';
import type { WprInit } from '../prune/wpr.js';
import {
  DEFAULT_ZERO_TPRUNE_OPTIONS, defaultWprIterations, ZERO_TPRUNE_ABLATIONS, zeroTPruneHooks, type ZeroTPruneOptions,
} from '../prune/zero-tprune.js';
import { JsonFields } from './json-fields.js';

/**
 * A method as a trace bundle records it: its name and every setting resolved to plain values
 * (per-block lists rather than schedules to solve), so that another implementation can run
 * exactly the same thing from the manifest alone. Blocks are 0-indexed throughout.
 */
export type TraceMethod =
  | { name: 'topk' | 'evit'; settings: { keepRate: number; blocks: number[] } }
  | { name: 'tome'; settings: { r: number[] } }
  | { name: 'zero-tprune'; settings: ZeroTPruneSettings }
  | { name: 'random'; settings: { steps: { afterBlock: number; remove: number }[]; seed: number; placement?: Placement } } // placement: default after-block
  | { name: 'ltp'; settings: { theta: number[]; unit: ThresholdUnit; placement?: Placement } } // placement: default pre-mlp
  | { name: 'mctf'; settings: MctfSettings & { layers: number[] } }
  | { name: 'ppt'; settings: { r: number[]; blocks: number[]; threshold: number } } // r: one per listed block
  | { name: 'pitome'; settings: { r: number[]; margin: number[]; alpha: number } }; // per block

export type TraceMethodName = TraceMethod['name'];
export const TRACE_METHODS: readonly TraceMethodName[] = ['topk', 'evit', 'tome', 'zero-tprune', 'random', 'ltp', 'mctf', 'ppt', 'pitome'];

export interface ZeroTPruneSettings {
  steps: { after: number; rS: number; rI: number }[]; // `after`: 1-indexed, as in Zero-TPrune schedules
  init: WprInit;
  iterations: number[]; // I-stage WPR iterations of each block's pruning layer
  tolerance: number;
  useEIR: boolean;
  useVHF: boolean;
  vhfWindow: [number, number];
  useSStage: boolean;
  similarity: ZeroTPruneOptions['similarity'];
  placement?: Placement; // where the layer "after block l" runs (prune/schedule.ts); default after-block
}

/** The forward hooks that run `method`. */
export function traceMethodHooks(method: TraceMethod): ForwardHooks {
  switch (method.name) {
    case 'topk':
    case 'evit':
      return evitHooks({ keepRate: method.settings.keepRate, fuse: method.name === 'evit', blocks: method.settings.blocks });
    case 'tome':
      return tomeHooks(method.settings.r);
    case 'zero-tprune': {
      const { steps, ...options } = method.settings;
      return zeroTPruneHooks({ steps }, options);
    }
    case 'random':
      return randomDropHooks(method.settings.steps, method.settings.seed, method.settings.placement);
    case 'ltp':
      return ltpHooks(method.settings, method.settings.placement);
    case 'mctf':
      return mctfHooks(method.settings);
    case 'ppt':
      return pptHooks(method.settings);
    case 'pitome':
      return pitomeHooks(method.settings);
  }
}

/**
 * The resolved settings of a plan made by planPruning (prune/registry.ts), for image 0 of a run,
 * from the settings JSON the plan reports (each method's `describe`).
 */
export function traceMethodFromPlan(cfg: ViTConfig, plan: PruningPlan): TraceMethod {
  switch (plan.method) {
    case 'topk':
    case 'evit':
      return { name: plan.method, settings: { keepRate: (plan.settings as { keepRate: number }).keepRate, blocks: [...EVIT_BLOCKS] } };
    case 'tome':
      return { name: 'tome', settings: { r: tomeRates(cfg.depth, (plan.settings as { r: TomeSchedule }).r) } };
    case 'random': {
      const { steps, seed, placement } = plan.settings as PruneSchedule & { seed: number; placement: Placement };
      return { name: 'random', settings: { steps: steps.map((s) => ({ afterBlock: s.after - 1, remove: s.rS + s.rI })), seed, placement } };
    }
    case 'zero-tprune': {
      const { steps, ablation, placement } = plan.settings as PruneSchedule & { ablation: keyof typeof ZERO_TPRUNE_ABLATIONS; placement: Placement };
      const { init, tolerance, useEIR, useVHF, vhfWindow, useSStage, similarity } = { ...DEFAULT_ZERO_TPRUNE_OPTIONS, ...ZERO_TPRUNE_ABLATIONS[ablation] };
      const iterations = Array.from({ length: cfg.depth }, (_, b) => defaultWprIterations(b, cfg.depth));
      return {
        name: 'zero-tprune',
        settings: { steps: steps.map((s) => ({ ...s })), init, iterations, tolerance, useEIR, useVHF, vhfWindow: [vhfWindow[0], vhfWindow[1]], useSStage, similarity, placement },
      };
    }
    case 'ltp': {
      const { theta, unit, placement } = plan.settings as { theta: number[]; unit: ThresholdUnit; placement: Placement };
      return { name: 'ltp', settings: { theta: [...theta], unit, placement } };
    }
    case 'mctf': {
      const { 'one-step-ahead': oneStepAhead, bidirectional, ...settings } = plan.settings as MctfPlanSettings & MctfOptions;
      const { layers, ...resolved } = resolveMctfSettings(cfg.depth, { ...settings, oneStepAhead, bidirectional });
      return { name: 'mctf', settings: { ...resolved, layers: [...layers] } };
    }
    case 'ppt': {
      const { r, blocks, threshold } = plan.settings as PptSettings;
      return { name: 'ppt', settings: { r: blocks.map((_, i) => (typeof r === 'number' ? r : r[i])), blocks: [...blocks], threshold } };
    }
    case 'pitome': {
      const { r, margin, alpha } = plan.settings as PitomeSettings;
      return { name: 'pitome', settings: { r: tomeRates(cfg.depth, r), margin: pitomeMargins(cfg.depth, margin), alpha } };
    }
    default:
      throw new UsageError(`method ${plan.method} has no trace settings yet: trace runs ${TRACE_METHODS.join(', ')}`);
  }
}

/** A method read from JSON (a manifest's "method", or --settings), checked; errors name `where`. */
export function traceMethodFromJson(json: unknown, where: string): TraceMethod {
  const method = new JsonFields(json, where);
  const name = method.oneOf('name', TRACE_METHODS);
  const s = method.object('settings');
  switch (name) {
    case 'topk':
    case 'evit':
      return { name, settings: { keepRate: s.number('keepRate', 0, 1), blocks: s.integers('blocks', 0) } };
    case 'tome':
      return { name, settings: { r: s.integers('r', 0) } };
    case 'zero-tprune':
      return {
        name,
        settings: {
          steps: s.objects('steps').map((step) => ({ after: step.integer('after', 1), rS: step.integer('rS', 0), rI: step.integer('rI', 0) })),
          init: s.oneOf('init', ['cls-boost', 'uniform'] as const),
          iterations: s.integers('iterations', 0),
          tolerance: s.number('tolerance', 0, Infinity),
          useEIR: s.boolean('useEIR'),
          useVHF: s.boolean('useVHF'),
          vhfWindow: s.pair('vhfWindow'),
          useSStage: s.boolean('useSStage'),
          similarity: s.oneOf('similarity', ['keys', 'head-mean-keys'] as const),
          ...placementField(s),
        },
      };
    case 'random':
      return { name, settings: { steps: s.objects('steps').map((step) => ({ afterBlock: step.integer('afterBlock', 0), remove: step.integer('remove', 0) })), seed: s.integer('seed', 0), ...placementField(s) } };
    case 'ltp':
      return { name, settings: { theta: s.numbers('theta'), unit: s.oneOf('unit', ['absolute', 'mean'] as const), ...placementField(s) } };
    case 'mctf':
      return {
        name,
        settings: {
          r: s.number('r', 0, Infinity),
          layers: s.integers('layers', 0),
          tauSim: s.number('tauSim', 0, Infinity),
          tauInfo: s.number('tauInfo', 0, Infinity),
          tauSize: s.number('tauSize', 0, Infinity),
          bidirectional: s.boolean('bidirectional'),
          oneStepAhead: s.boolean('oneStepAhead'),
        },
      };
    case 'ppt':
      return { name, settings: { r: s.integers('r', 0), blocks: s.integers('blocks', 0), threshold: s.number('threshold', 0, Infinity) } };
    case 'pitome':
      return { name, settings: { r: s.integers('r', 0), margin: s.numbers('margin'), alpha: s.number('alpha', 0, Infinity) } };
  }
}

/** A method's placement when the manifest records one; bundles recorded before it was a setting leave it out (the method's default: where they ran). */
function placementField(s: JsonFields): { placement?: Placement } {
  return s.has('placement') ? { placement: s.oneOf('placement', PLACEMENTS) } : {};
}
