import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Kernels } from '../kernels/types.js';
import { saveModelFolder } from '../model/load.js';
import { writeFileAtomic } from '../model/safetensors.js';
import type { BlockWidths, ViTModel } from '../model/types.js';
import { ViTRunner } from '../model/vit.js';
import { compensateBlocks, type BlockCompensation } from './channels-compensate.js';
import {
  allocateWidths, blockChannelScores, selectByElimination, selectChannels,
  type Allocator, type BlockChannelScores, type ChannelSelection, type QkScore,
} from './channels-select.js';
import { shrinkConfig } from './channels-shrink.js';
import { accumulateChannelStats, emptyChannelStats } from './channels-stats.js';
import { denseGmacs } from './flops.js';

export { ALLOCATORS, allocateWidths, channelMacs, selectByElimination, selectChannels, similarityWeights, topChannels, type Allocator, type BlockChannelScores, type ChannelSelection, type QkScore } from './channels-select.js';
export { fitLogitScale, fitQkBasis, fitQueryMap, fitValueBases, fitValueBasis, logitScaleObjective, refitProjection, RefitStatistics, type LogitScaleFit, type LogitScaleProblem, type ProjectionRefit } from './channels-fit.js';
export { choleskySolve, symmetricEigen } from './channels-linalg.js';
export { eliminateChannels } from './channels-elimination.js';
export { shrinkConfig, shrinkProj, shrinkQkv } from './channels-shrink.js';
export type { BlockCompensation } from './channels-compensate.js';

/**
 * Channel pruning of multi-head attention without retraining (after Lee & Hwang, arXiv
 * 2405.20867; algorithms.md §5.3 and the extensions below). From unlabelled calibration images:
 *
 *   1. statistics of the dense model, per block and head (channels-stats.ts);
 *   2. widths: qk′ and v′ per head, the same in every head of a block (equal proportion);
 *      uniform over the blocks, or greedy across blocks and between q/k and v (channels-select.ts);
 *   3. the kept channels of each head, q and k sharing indices, by
 *        'score' (§5.3): q/k = (1 − max |cos| to another channel of the head) × attention difference,
 *                         v = RMS head output × norm of its proj column; the top channels;
 *        'reconstruction': backward elimination of the error the reweightings leave (the part of a
 *                         channel the others cannot predict; channels-elimination.ts);
 *   4. blocks rebuilt one after another on the pruned model's own activations
 *      (channels-compensate.ts): q/k basis or query refit, value basis (extensions beyond §5.3; with
 *      both bases, step 3's choice of channels no longer matters), per-head logit scale (§5.3 a)
 *      and ridge refit of the output projection (§5.3 b), all folded into the weights;
 *   5. a model with physically smaller qkv and proj that every command runs like any other.
 */

export type Selection = 'score' | 'reconstruction';
export const SELECTIONS: readonly Selection[] = ['score', 'reconstruction'];

export interface ChannelPruningOptions {
  ratio: number; // fraction of the q/k channels and of the v channels removed from every head, in [0, 1)
  allocator?: Allocator; // 'uniform' (default) | 'greedy'
  selection?: Selection; // 'reconstruction' (default) | 'score'
  qkScore?: QkScore; // scores: 'attention-difference' (default, exact) | 'logit-proxy' (E|s·q_c·k_c|, cheap)
  similarity?: boolean; // scores: weight q/k by 1 − max |cos| (default true)
  qkBasis?: boolean; // q′/k′ = the best rank-qk′ factorisation of the logits instead of selected channels (default true; overrides queryRefit)
  queryRefit?: boolean; // refit the kept Q rows to reproduce the logits from the kept keys (default true)
  valueBasis?: boolean; // v′ = reduced-rank basis of the head outputs instead of selected v channels (default true)
  logitScale?: boolean; // fit and fold a logit scale per head (default true)
  refit?: boolean; // ridge-refit the output projection (default true)
  ridge?: number; // λ of every fit, relative to the mean diagonal of its Gram matrix (default 1e-3)
  logitScaleImages?: number; // calibration images used for the logit scales (default 32)
  onProgress?: (stage: 'statistics' | 'blocks', done: number, total: number) => void;
}

export interface ChannelPruningResult {
  model: ViTModel; // the pruned model (weights pruning does not change are shared with the input model)
  selection: ChannelSelection;
  scores: BlockChannelScores[]; // per block
  blocks: BlockCompensation[]; // per block: logit scales, attention KL, reconstruction errors
  gmacsBefore: number;
  gmacsAfter: number;
  description: PrunedDescription; // what savePrunedModel records in config.json
}

/** The `pruned` object of a pruned model's config.json. */
export interface PrunedDescription {
  method: 'attention-channels';
  reference: string;
  source: string; // the dense model
  ratio: number;
  allocator: Allocator;
  selection: Selection;
  qkScore: QkScore;
  similarity: boolean;
  qkBasis: boolean;
  queryRefit: boolean;
  valueBasis: boolean;
  logitScale: boolean;
  refit: boolean;
  ridge: number;
  calibrationImages: number;
  original: { qkDim: number; vDim: number };
  widths: BlockWidths[]; // per block
  gmacs: { before: number; after: number };
  // per block: kept q/k channels per head (null: q/k basis), kept v channels per head (null: value basis), fitted logit scales
  blocks: { block: number; qkDim: number; vDim: number; qk: number[][] | null; v: number[][] | null; logitScale: number[] | null }[];
  [extra: string]: unknown; // e.g. the calibration folder, added by the caller
}

export const DEFAULT_RIDGE = 1e-3;
export const DEFAULT_LOGIT_SCALE_IMAGES = 32;

/** Prune the attention channels of `model`, calibrated on preprocessed images `inputs` ([C, S, S] each), computing on `kernels`. */
export function pruneChannels(model: ViTModel, kernels: Kernels, inputs: readonly Float32Array[], options: ChannelPruningOptions): ChannelPruningResult {
  const cfg = model.config;
  const opts = {
    allocator: 'uniform' as Allocator,
    selection: 'reconstruction' as Selection,
    qkScore: 'attention-difference' as QkScore,
    similarity: true,
    qkBasis: true,
    queryRefit: true,
    valueBasis: true,
    logitScale: true,
    refit: true,
    ridge: DEFAULT_RIDGE,
    logitScaleImages: DEFAULT_LOGIT_SCALE_IMAGES,
    ...options,
  };
  if (!(opts.ratio >= 0 && opts.ratio < 1)) throw new RangeError(`the pruning ratio must be in [0, 1), got ${opts.ratio}`);
  if (inputs.length === 0) throw new RangeError('channel pruning needs at least one calibration image');

  // 1. Statistics of the dense model; the exact attention difference (≈ 1 s per image for DeiT-T) only when scores choose.
  const scoresChoose = opts.selection === 'score' || opts.allocator === 'greedy';
  const qkScore: QkScore = scoresChoose ? opts.qkScore : 'logit-proxy';
  const stats = Array.from({ length: cfg.depth }, () => emptyChannelStats(cfg, qkScore === 'attention-difference'));
  const runner = new ViTRunner(model, kernels);
  const embeddings = inputs.map((input, i) => {
    runner.forward(input, { afterAttention: (state) => accumulateChannelStats(stats[state.block], state) });
    opts.onProgress?.('statistics', i + 1, inputs.length);
    return runner.embed(input).slice(); // the residual stream entering block 0, for step 4
  });

  // 2–3. Scores, widths, kept channels.
  const scores = stats.map((s, b) => blockChannelScores(cfg, model.weights, b, s, { qkScore, similarity: opts.similarity }));
  const widths = allocateWidths(cfg, scores, opts.ratio, opts.allocator);
  const selection = opts.selection === 'score' ? selectChannels(cfg, scores, widths) : selectByElimination(cfg, model.weights, stats, widths, opts.ridge);

  // 4. Blocks rebuilt with the reweightings.
  const { qkBasis, queryRefit, valueBasis, logitScale, refit, ridge } = opts;
  const fits = { qkBasis, queryRefit, valueBasis, logitScale, refit, ridge }; // also recorded in the description
  const { blocks, reports } = compensateBlocks(model, kernels, embeddings, selection, {
    ...fits,
    logitScaleImages: opts.logitScaleImages,
    onBlock: (done, total) => opts.onProgress?.('blocks', done, total),
  });

  // 5. The smaller model.
  const pruned: ViTModel = {
    config: shrinkConfig(cfg, selection.widths),
    weights: { ...model.weights, blocks },
    source: `${model.source} (attention channels pruned)`,
  };
  const gmacsBefore = denseGmacs(cfg);
  const gmacsAfter = denseGmacs(pruned.config);
  const description: PrunedDescription = {
    method: 'attention-channels',
    reference: 'calibration-only channel pruning after Lee & Hwang, arXiv 2405.20867 (vitprune docs/algorithms.md §5.3)',
    source: model.source,
    ratio: opts.ratio,
    allocator: opts.allocator,
    selection: opts.selection,
    qkScore,
    similarity: opts.similarity,
    ...fits,
    calibrationImages: inputs.length,
    original: { qkDim: cfg.qkDim, vDim: cfg.vDim },
    widths: selection.widths,
    gmacs: { before: gmacsBefore, after: gmacsAfter },
    blocks: reports.map((r, b) => ({
      block: b,
      ...selection.widths[b],
      qk: qkBasis && selection.widths[b].qkDim < cfg.qkDim ? null : selection.qk[b].map((idx) => Array.from(idx)),
      v: valueBasis && selection.widths[b].vDim < cfg.vDim ? null : selection.v[b].map((idx) => Array.from(idx)),
      logitScale: r.logitScale,
    })),
  };
  return { model: pruned, selection, scores, blocks: reports, gmacsBefore, gmacsAfter, description };
}

/**
 * Save a pruned model like any model (saveModelFolder: timm layout, config.json recording the
 * widths), then add the `pruned` description to its config.json (replaced atomically).
 */
export function savePrunedModel(dir: string, model: ViTModel, description: { method: string; [extra: string]: unknown }): void {
  saveModelFolder(dir, model);
  const configFile = path.join(dir, 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  config.pruned = description;
  writeFileAtomic(configFile, new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n'));
}
