import { UsageError } from '../errors.js';
import type { ViTConfig, ViTModel } from '../model/types.js';
import type { ForwardHooks } from '../model/hooks.js';
import { EVIT_BLOCKS, evitHooks } from '../prune/evit.js';
import { ltpHooks, type ThresholdUnit } from '../prune/ltp.js';
import { mctfHooks, resolveMctfSettings, type MctfOptions, type MctfPlanSettings, type MctfSettings } from '../prune/mctf.js';
import type { PruningPlan } from '../prune/method.js';
import { PITOME_DEFAULTS, pitomeHooks, pitomeMargins, type PitomeSettings } from '../prune/pitome.js';
import { pptHooks, resolvePptSettings, type PptSettings } from '../prune/ppt.js';
import { randomDropHooks } from '../prune/random.js';
import { PLACEMENTS, type Placement, type PruneSchedule } from '../prune/schedule.js';
import { tomeHooks, tomeRates, type TomeSchedule } from '../prune/tome.js';
import type { WprInit } from '../prune/wpr.js';
import { DEFAULT_ZERO_TPRUNE_OPTIONS, defaultWprIterations, ZERO_TPRUNE_ABLATIONS, zeroTPruneHooks, type ZeroTPruneOptions } from '../prune/zero-tprune.js';
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
  | { name: 'mctf'; settings: MctfTraceSettings }
  | { name: 'ppt'; settings: { r: number[]; blocks: number[]; threshold: number } }
  | { name: 'pitome'; settings: { r: number[]; margin: number[]; alpha: number } };

export type TraceMethodName = TraceMethod['name'];
export const TRACE_METHODS: readonly TraceMethodName[] = ['topk', 'evit', 'tome', 'zero-tprune', 'random', 'ltp', 'mctf', 'ppt', 'pitome'];

/** MCTF's settings with its fusing blocks listed: r spreads over them by rounding the running total (prune/mctf.ts). */
export interface MctfTraceSettings {
  r: number;
  layers: number[]; // 0-indexed fusing blocks
  tauSim: number;
  tauInfo: number;
  tauSize: number;
  bidirectional: boolean;
  oneStepAhead: boolean;
}

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

/** The forward hooks that run `method` on `model` (MCTF's one-step-ahead attention needs its weights). */
export function traceMethodHooks(method: TraceMethod, model: ViTModel): ForwardHooks {
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

/** Plain values of the fields `keys` of a plan's settings (what the method's `describe` reported). */
function fields<T>(settings: unknown, keys: readonly (keyof T)[]): Partial<T> {
  const object = (typeof settings === 'object' && settings !== null ? settings : {}) as Record<string, unknown>;
  return Object.fromEntries(keys.filter((k) => object[k as string] !== undefined).map((k) => [k, object[k as string]])) as Partial<T>;
}

/** MCTF's settings from what its plan reports (MctfSettings' fields; the others default), resolved for a model of `depth` blocks. */
export function mctfTraceSettings(depth: number, settings: Partial<MctfSettings>): MctfTraceSettings {
  const { r, layers, tauSim, tauInfo, tauSize, bidirectional, oneStepAhead } = resolveMctfSettings(depth, settings);
  return { r, layers: [...layers], tauSim, tauInfo, tauSize, bidirectional, oneStepAhead };
}

/** PPT's settings resolved: one r per listed block. */
export function pptTraceSettings(depth: number, settings: Partial<PptSettings>): Extract<TraceMethod, { name: 'ppt' }>['settings'] {
  const { blocks, threshold, rates } = resolvePptSettings(depth, settings);
  return { r: blocks.map((b) => rates[b]), blocks: [...blocks], threshold };
}

/** PiToMe's settings resolved: r and the margin per block. */
export function pitomeTraceSettings(
  depth: number,
  settings: Pick<PitomeSettings, 'r'> & Partial<PitomeSettings>,
): Extract<TraceMethod, { name: 'pitome' }>['settings'] {
  const s = { ...PITOME_DEFAULTS, ...settings };
  return { r: tomeRates(depth, s.r), margin: pitomeMargins(depth, s.margin), alpha: s.alpha };
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
        settings: {
          steps: steps.map((s) => ({ ...s })),
          init,
          iterations,
          tolerance,
          useEIR,
          useVHF,
          vhfWindow: [vhfWindow[0], vhfWindow[1]],
          useSStage,
          similarity,
          placement,
        },
      };
    }
    case 'ltp': {
      const { theta, unit, placement } = plan.settings as { theta: number[]; unit: ThresholdUnit; placement: Placement };
      return { name: 'ltp', settings: { theta: [...theta], unit, placement } };
    }
    case 'mctf': {
      // The plan reports MCTF's settings and its switches as options ('one-step-ahead', 'bidirectional').
      const { 'one-step-ahead': oneStepAhead, bidirectional, ...settings } = plan.settings as MctfPlanSettings & Partial<MctfOptions>;
      const switches = fields<MctfSettings>({ oneStepAhead, bidirectional }, ['oneStepAhead', 'bidirectional']);
      return {
        name: 'mctf',
        settings: mctfTraceSettings(cfg.depth, { ...fields<MctfSettings>(settings, ['r', 'layers', 'tauSim', 'tauInfo', 'tauSize']), ...switches }),
      };
    }
    case 'ppt':
      return { name: 'ppt', settings: pptTraceSettings(cfg.depth, fields<PptSettings>(plan.settings, ['r', 'blocks', 'threshold'])) };
    case 'pitome': {
      const settings = fields<PitomeSettings>(plan.settings, ['r', 'margin', 'alpha']);
      if (settings.r === undefined) throw new UsageError(`method pitome: expected its plan's settings to give "r", found ${JSON.stringify(plan.settings)}`);
      return { name: 'pitome', settings: pitomeTraceSettings(cfg.depth, { ...settings, r: settings.r }) };
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
      return {
        name,
        settings: {
          steps: s.objects('steps').map((step) => ({ afterBlock: step.integer('afterBlock', 0), remove: step.integer('remove', 0) })),
          seed: s.integer('seed', 0),
          ...placementField(s),
        },
      };
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
