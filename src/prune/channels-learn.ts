import { ScheduleError } from '../errors.js';
import { Adam, type AdamState } from '../grad/adam.js';
import { distillationLoss } from '../grad/distillation.js';
import type { ProjCorrection } from '../grad/reweight-proj.js';
import type { SoftMaskedViT, SoftPruning } from '../grad/soft-vit.js';
import type { Kernels } from '../kernels/types.js';
import { denseGmacs } from '../model/gmacs.js';
import { seededRandom } from '../model/random.js';
import type { BlockWeights, ViTConfig, ViTModel } from '../model/types.js';
import { ViTRunner } from '../model/vit.js';
import { blockChannelScores, type BlockChannelScores, type QkScore } from './channels-select.js';
import { shrinkConfig, shrinkProj, shrinkQkv } from './channels-shrink.js';
import { accumulateChannelStats, emptyChannelStats } from './channels-stats.js';
import { LearnedChannelParameters, sigmoid, type BlockLayout, type LearnedSelection } from './channels-learn-params.js';
import { argmax, shuffled } from './ltp-learn.js';

/**
 * Attention channel pruning with learned indicators and a trained reweight module (issue 17;
 * Lee & Hwang, arXiv 2405.20867, as its paper describes it, with the ViT's weights frozen):
 * learned on unlabelled calibration images by distillation from the dense model; labels never read.
 *
 * Indicators: per block, one sigmoid gate per q/k channel (it scales the query channel, so the
 * logit loses g·q_c·k_c: q and k share it) and one per v channel, g = σ(φ/τ) (grad/channel-gates.ts).
 * Reweight module: per head a logit scale a_h = e^ψ_h (the head's query gates times a_h), and a
 * rank-r correction U·Vᵀ + Δb of the output projection (grad/reweight-proj.ts: why low rank).
 *
 * Objective, weights frozen, on the soft model (grad/soft-vit.ts):
 *
 *   minimise  mean_images KL(dense ‖ gated)   subject to   Σ_{c ∈ group} σ(φ_c/τ) = k_group
 *
 * Groups (equal proportion, the default): each head's q/k channels and each head's v channels,
 * k = round((1 − ratio)·width), the same in every head and block. Without equal proportion: the
 * q/k and the v channels of a whole block, k = heads·that. The kept-fraction constraint is the
 * regulariser's λ → ∞ limit, held exactly: after every Adam step each group's gate logits are
 * shifted by the one δ that restores Σ σ((φ + δ)/τ) = k (bisection; what Adam does to the
 * group's common mode is the constraint's business). A finite penalty λ·(Σ g − k)² needs λ tuned
 * against a KL that shrinks as learning goes; learned LTP's budget controller made the same choice.
 *
 * Schedule: τ annealed geometrically from τ_start to τ_end over the learning steps (warm gates
 * give every channel a gradient; cold ones make the soft model the hard one), images in a seeded
 * random order per epoch, Adam on φ, ψ and (U, V, Δb) with one learning rate each. Then the hard
 * selection (the top k gate logits of each group), and `finetuneEpochs` more passes that train
 * only the reweight module with the gates at exactly 0/1, so that what is folded is what was trained.
 *
 * A model already pruned (today's calibration-only result) can have its reweight module trained
 * end to end alone: ratio 0 (every channel kept), epochs 0, a dense `teacher`.
 *
 * Initialisation ('scores'): φ = spread × the standardised log of today's calibration scores
 * (channels-select.ts: q/k attention difference × similarity weight or its variants; v: RMS head
 * output × proj column norm) per group, then the constraint's shift; 'uniform': all φ equal
 * (tiny seeded noise), everything learned. a_h = 1, U = 0, V small random (so dU ≠ 0), Δb = 0.
 *
 * Fold: the kept Q/K/V rows, Q rows × a_h·√(width′/d) (the runtime divides logits by √width′),
 * proj = W + U·Vᵀ on the kept columns and b + Δb: an ordinary smaller ViT whose logits are the
 * gated model's with hard gates. Without equal proportion a block keeps its widest head's width;
 * narrower heads are padded with removed channels whose rows (and proj columns) are zero.
 */

export type GateInit = 'scores' | 'uniform';
export const GATE_INITS: readonly GateInit[] = ['scores', 'uniform'];

export interface ChannelLearnOptions {
  ratio: number; // fraction of the q/k and of the v channels removed, in [0, 1)
  epochs?: number; // learning passes over the images (default 4)
  finetuneEpochs?: number; // passes with hard gates training the reweight module only (default 1; 0 without the module)
  batchSize?: number; // images per Adam step (default 10)
  learningRates?: { gates: number; logitScale: number; proj: number }; // Adam's α on φ, ψ and (U, V, Δb)
  temperature?: { start: number; end: number }; // τ of g = σ(φ/τ) (default 1 → 0.05)
  rank?: number; // r of the proj correction (default 16)
  equalProportion?: boolean; // the same kept count in every head (default true)
  reweight?: boolean; // learn the logit scales and the proj correction (default true)
  init?: GateInit; // default 'scores'
  scores?: readonly BlockChannelScores[]; // the calibration scores, required by init 'scores'
  seed?: number; // of the image order and V's initial values (default 1)
  /**
   * β of a feature term added to the KL: β·mean over blocks of ‖x_b − x̂_b‖²/‖x̂_b‖², each block's
   * output against the dense model's on the same image (default 0: logits only).
   */
  featureWeight?: number;
  /** The model distilled from (default: `runner`'s). Another when `model` is already pruned and only its reweight module learns (ratio 0, epochs 0). */
  teacher?: ViTRunner;
  resume?: ChannelLearnCheckpoint; // continue from a checkpoint of the same run
  onCheckpoint?: (checkpoint: ChannelLearnCheckpoint) => void; // after every epoch
  onProgress?: (stage: LearnStage, done: number, total: number) => void; // after every image
  log?: (line: string) => void; // one line per epoch
}

export type LearnStage = 'learning' | 'finetuning';
export type { LearnedSelection } from './channels-learn-params.js';

export const CHANNEL_LEARN_DEFAULTS = {
  epochs: 4,
  finetuneEpochs: 1,
  batchSize: 10,
  learningRates: { gates: 0.1, logitScale: 0.01, proj: 1e-3 },
  temperature: { start: 1, end: 0.05 },
  rank: 16,
  equalProportion: true,
  reweight: true,
  init: 'scores' as GateInit,
  seed: 1,
  featureWeight: 0,
};

/**
 * The removed share of each group grows from KEEP_RAMP_START to all of it over the first KEEP_RAMP
 * of the learning steps: learning starts near the dense model, where a channel's gradient says how
 * much the model needs it, rather than among gates all cut to the kept fraction.
 */
const KEEP_RAMP = 0.5;
const KEEP_RAMP_START = 0.1;
/** Spread of the initial gate logits: standardised log scores × this (in units of τ_start). */
const INIT_SPREAD = 2;
/** Scale of V's initial values, relative to 1/√(H·v). */
const DOWN_INIT = 0.1;

/** Where learning stands after an epoch: enough to continue as if it had not stopped. */
export interface ChannelLearnCheckpoint {
  fingerprint: string; // the options and images it belongs to
  stage: LearnStage;
  epochsDone: number; // in `stage`
  gates: number[]; // φ, all blocks: [H·qk] then [H·v] per block
  logitScales: number[]; // ψ [depth·H]
  proj: number[]; // (U [D·r], V [H·v·r], Δb [D]) per block
  adam: { gates: AdamState; logitScales: AdamState; proj: AdamState };
  history: ChannelLearnEpoch[];
}

export interface ChannelLearnEpoch {
  stage: LearnStage;
  epoch: number; // 1-based within the stage
  kl: number; // mean KL over the epoch's images (soft gates while learning, hard ones after)
  temperature: number | null; // τ at the epoch's end (null: hard gates)
  seconds: number;
}

export interface HardChannelEvaluation {
  agreement: number; // share of the images whose top-1 is the dense model's
  kl: number; // mean KL(dense ‖ pruned)
}

export interface ChannelLearnResult {
  model: ViTModel; // the folded, smaller model
  selection: LearnedSelection;
  logitScales: number[][]; // [block][head] a_h (1 without the reweight module)
  hard: HardChannelEvaluation; // of the folded model on the calibration images
  epochs: ChannelLearnEpoch[];
  gmacsBefore: number;
  gmacsAfter: number;
  seconds: number; // wall time of this call (dense pass, learning, fold, evaluation)
}

/** The calibration scores (channels-select.ts) of the dense model on `inputs`, for init 'scores'. */
export function calibrationScores(
  model: ViTModel,
  kernels: Kernels,
  inputs: readonly Float32Array[],
  opts: { qkScore: QkScore; similarity: boolean },
  onImage?: (done: number, total: number) => void,
): BlockChannelScores[] {
  const cfg = model.config;
  const stats = Array.from({ length: cfg.depth }, () => emptyChannelStats(cfg, opts.qkScore === 'attention-difference'));
  const runner = new ViTRunner(model, kernels);
  inputs.forEach((input, i) => {
    runner.forward(input, { afterAttention: (state) => accumulateChannelStats(stats[state.block], state) });
    onImage?.(i + 1, inputs.length);
  });
  return stats.map((s, b) => blockChannelScores(cfg, model.weights, b, s, opts));
}

/** A group of gates that keeps `keep` of them: offset and length in the gate vector. */
interface GateGroup {
  offset: number;
  length: number;
  keep: number;
}

/**
 * Learns which channels to keep and the reweight module on `inputs` (preprocessed images), then
 * folds them into a smaller model. `runner` (dense passes) and `soft` (gated forward and backward)
 * run the same dense model.
 */
export async function learnChannelPruning(
  model: ViTModel,
  runner: ViTRunner,
  soft: SoftMaskedViT,
  inputs: readonly Float32Array[],
  options: ChannelLearnOptions,
): Promise<ChannelLearnResult> {
  const started = performance.now();
  const cfg = model.config;
  const opts = { ...CHANNEL_LEARN_DEFAULTS, ...options };
  checkOptions(cfg, opts, inputs.length, runner, soft);
  const { heads: H, qkDim: d, vDim: dv } = cfg;
  const keepQk = Math.max(1, Math.round((1 - opts.ratio) * d));
  const keepV = Math.max(1, Math.round((1 - opts.ratio) * dv));
  const log = opts.log ?? (() => {});

  const params = new LearnedChannelParameters(cfg, opts.rank, opts.reweight);
  const { phi, psi, layouts, corrections } = params;
  const groups = gateGroups(cfg, layouts, keepQk, keepV, opts.equalProportion);
  const adam = {
    gates: new Adam(phi.length, { learningRate: opts.learningRates.gates }),
    logitScales: new Adam(psi.length, { learningRate: opts.learningRates.logitScale }),
    proj: new Adam(params.proj.length, { learningRate: opts.learningRates.proj }),
  };
  const fingerprint = JSON.stringify({
    model: cfg.architecture,
    ratio: opts.ratio,
    epochs: opts.epochs,
    finetuneEpochs: opts.finetuneEpochs,
    batchSize: opts.batchSize,
    learningRates: opts.learningRates,
    temperature: opts.temperature,
    rank: opts.rank,
    equalProportion: opts.equalProportion,
    reweight: opts.reweight,
    init: opts.init,
    seed: opts.seed,
    featureWeight: opts.featureWeight,
    images: inputs.length,
    checksum: imagesChecksum(inputs),
  });

  const batches = Math.ceil(inputs.length / opts.batchSize);
  const learningSteps = opts.epochs * batches;
  const history: ChannelLearnEpoch[] = [];
  let resumed: { stage: LearnStage; epochsDone: number } | null = null;
  if (opts.resume) {
    const c = opts.resume;
    if (c.fingerprint !== fingerprint)
      throw new ScheduleError('learn channels: the checkpoint belongs to another run (options, model or images differ); delete it or use the same options');
    phi.set(c.gates);
    psi.set(c.logitScales);
    params.proj.set(c.proj);
    adam.gates.restore(c.adam.gates);
    adam.logitScales.restore(c.adam.logitScales);
    adam.proj.restore(c.adam.proj);
    history.push(...c.history);
    resumed = { stage: c.stage, epochsDone: c.epochsDone };
    log(`resumed after ${c.stage} epoch ${c.epochsDone}`);
  } else {
    initialiseGates(layouts, groups, opts, phi);
    const random = seededRandom(opts.seed);
    const scale = DOWN_INIT / Math.sqrt(H * dv);
    for (const c of corrections) c?.down.forEach((_, i, down) => (down[i] = scale * (2 * random() - 1)));
    holdConstraint(phi, groups, opts.temperature.start, keptShare(0));
  }
  const checkpoint = (stage: LearnStage, epochsDone: number) =>
    opts.onCheckpoint?.({
      fingerprint,
      stage,
      epochsDone,
      gates: Array.from(phi),
      logitScales: Array.from(psi),
      proj: Array.from(params.proj),
      adam: { gates: adam.gates.snapshot(), logitScales: adam.logitScales.snapshot(), proj: adam.proj.snapshot() },
      history: [...history],
    });

  const teacher = opts.teacher ?? runner;
  const teachers = inputs.map((input) => teacher.forward(input).logits);
  const denseOutputs = Array.from({ length: opts.featureWeight > 0 ? cfg.depth : 0 }, () => new Float32Array(soft.tokens * cfg.dim)); // [depth][n, D] x̂_(b+1)
  const { start: tStart, end: tEnd } = opts.temperature;
  const temperatureAt = (step: number) => tStart * (tEnd / tStart) ** (learningSteps > 1 ? step / (learningSteps - 1) : 1);
  function keptShare(step: number): number {
    return Math.max(KEEP_RAMP_START, Math.min(1, (step + 1) / Math.max(1, KEEP_RAMP * learningSteps)));
  }

  /** One Adam step on a batch; the gates learn only when soft (τ given). Returns the batch's mean KL. */
  let done = 0;
  const step = (images: number[], stepIndex: number, tau: number | null, selection: LearnedSelection | null, stage: LearnStage, total: number): number => {
    const gates = params.gates(tau, selection);
    const pruning: SoftPruning = { gates, proj: corrections };
    const grads = params.zeroGradients();
    let kl = 0;
    for (const i of images) {
      if (opts.featureWeight > 0)
        teacher.forward(inputs[i], { afterBlock: (state) => void denseOutputs[state.block].set(state.x.subarray(0, state.n * cfg.dim)) });
      const result = soft.forward(runner.embed(inputs[i]), pruning);
      const distillation = distillationLoss(teachers[i], result.logits);
      kl += distillation.loss;
      const features =
        opts.featureWeight > 0
          ? (b: number, output: ArrayLike<number>, dOutput: { [i: number]: number }) =>
              void featureLoss(output, denseOutputs[b], opts.featureWeight / cfg.depth, dOutput)
          : undefined;
      params.addGradients(gates, tau, soft.backward(distillation.dLogits, undefined, features), grads);
      opts.onProgress?.(stage, ++done, total);
    }
    const mean = (g: Float64Array) => g.map((x) => x / images.length);
    if (tau !== null) {
      adam.gates.step(phi, mean(grads.phi));
      holdConstraint(phi, groups, tau, keptShare(stepIndex));
    }
    if (opts.reweight) {
      adam.logitScales.step(psi, mean(grads.psi));
      adam.proj.step(params.proj, mean(grads.proj));
    }
    return kl / images.length;
  };

  const runStage = async (stage: LearnStage, epochs: number, tauOf: (step: number) => number | null, selection: LearnedSelection | null) => {
    const first = resumed?.stage === stage ? resumed.epochsDone + 1 : 1;
    done = (first - 1) * inputs.length;
    for (let epoch = first; epoch <= epochs; epoch++) {
      const epochStarted = performance.now();
      const order = shuffled(inputs.length, seededRandom(opts.seed * 7919 + epoch + (stage === 'finetuning' ? 104729 : 0)));
      let klSum = 0;
      let tau: number | null = null;
      for (let b = 0; b < batches; b++) {
        const images = order.slice(b * opts.batchSize, (b + 1) * opts.batchSize);
        const stepIndex = (epoch - 1) * batches + b;
        tau = tauOf(stepIndex);
        klSum += step(images, stepIndex, tau, selection, stage, epochs * inputs.length) * images.length;
        await new Promise((resolve) => setImmediate(resolve)); // let progress output and signals through
      }
      const summary: ChannelLearnEpoch = { stage, epoch, kl: klSum / inputs.length, temperature: tau, seconds: (performance.now() - epochStarted) / 1000 };
      history.push(summary);
      log(
        `${stage} epoch ${epoch}/${epochs}: KL ${summary.kl.toFixed(4)}${tau === null ? ' (hard gates)' : `, τ ${tau.toPrecision(3)}`}, ${summary.seconds.toFixed(0)} s`,
      );
      checkpoint(stage, epoch);
    }
  };

  if (resumed?.stage !== 'finetuning') await runStage('learning', opts.epochs, temperatureAt, null);
  const selection = hardSelection(cfg, layouts, groups, phi, keepQk, keepV, opts.equalProportion);
  const finetuneEpochs = opts.reweight ? opts.finetuneEpochs : 0;
  await runStage('finetuning', finetuneEpochs, () => null, selection);

  const logitScales = params.logitScales();
  const pruned = foldLearnedChannels(model, selection, logitScales, corrections);
  const hard = evaluateAgainst(new ViTRunner(pruned, runner.kernels), inputs, teachers);
  log(`folded: agreement ${hard.agreement.toFixed(3)}, KL ${hard.kl.toFixed(4)} on the ${inputs.length} calibration images`);
  return {
    model: pruned,
    selection,
    logitScales,
    hard,
    epochs: history,
    gmacsBefore: denseGmacs(cfg),
    gmacsAfter: denseGmacs(pruned.config),
    seconds: (performance.now() - started) / 1000,
  };
}

function checkOptions(cfg: ViTConfig, opts: typeof CHANNEL_LEARN_DEFAULTS & ChannelLearnOptions, images: number, runner: ViTRunner, soft: SoftMaskedViT): void {
  if (cfg.blockWidths)
    throw new ScheduleError('learn channels: expected a model with the same widths in every block, found per-block widths (already channel-pruned?)');
  if (opts.teacher && opts.teacher.config.numClasses !== cfg.numClasses)
    throw new ScheduleError(`learn channels: the teacher has ${opts.teacher.config.numClasses} classes, the model ${cfg.numClasses}`);
  for (const [what, other] of [
    ['runner', runner.config],
    ['soft model', soft.config],
  ] as const) {
    if (other !== cfg && other.architecture !== cfg.architecture)
      throw new ScheduleError(`learn channels: the ${what} runs ${other.architecture}, expected the model's ${cfg.architecture}`);
  }
  if (!(opts.ratio >= 0 && opts.ratio < 1)) throw new ScheduleError(`learn channels: expected a pruning ratio in [0, 1), found ${opts.ratio}`);
  if (images === 0) throw new ScheduleError('learn channels: expected at least one calibration image, found none');
  for (const [name, value, min] of [
    ['epochs', opts.epochs, 0],
    ['finetuneEpochs', opts.finetuneEpochs, 0],
    ['batchSize', opts.batchSize, 1],
    ['rank', opts.rank, 1],
  ] as const) {
    if (!(Number.isInteger(value) && value >= min)) throw new ScheduleError(`learn channels: ${name}: expected an integer ≥ ${min}, found ${value}`);
  }
  const { start, end } = opts.temperature;
  const rates = Object.values(opts.learningRates);
  if (!(start > 0 && end > 0 && rates.every((a) => a > 0)))
    throw new ScheduleError(`learn channels: expected temperatures and learning rates > 0, found τ ${start} → ${end}, α ${rates.join(', ')}`);
  if (opts.init === 'scores' && opts.scores?.length !== cfg.depth) {
    throw new ScheduleError(
      `learn channels: init 'scores' expects calibration scores for each of the ${cfg.depth} blocks, found ${opts.scores?.length ?? 'none'}`,
    );
  }
}

/** The gate groups whose kept count is held: per head (equal proportion) or per block, q/k and v apart. */
function gateGroups(cfg: ViTConfig, layouts: BlockLayout[], keepQk: number, keepV: number, equalProportion: boolean): GateGroup[] {
  const { heads: H, qkDim: d, vDim: dv } = cfg;
  return layouts.flatMap((l) =>
    equalProportion
      ? [
          ...Array.from({ length: H }, (_, h) => ({ offset: l.qk.offset + h * d, length: d, keep: keepQk })),
          ...Array.from({ length: H }, (_, h) => ({ offset: l.v.offset + h * dv, length: dv, keep: keepV })),
        ]
      : [
          { ...l.qk, keep: H * keepQk },
          { ...l.v, keep: H * keepV },
        ],
  );
}

/** φ from the scores (standardised log per group × INIT_SPREAD) or all 0 with seeded noise ±1e-3. */
function initialiseGates(layouts: BlockLayout[], groups: GateGroup[], opts: ChannelLearnOptions & { seed: number }, phi: Float64Array): void {
  if (opts.init === 'uniform' || !opts.scores) {
    const random = seededRandom(opts.seed + 1);
    phi.forEach((_, i) => (phi[i] = 1e-3 * (2 * random() - 1)));
    return;
  }
  layouts.forEach((l, b) => {
    phi.set(opts.scores![b].qk, l.qk.offset);
    phi.set(opts.scores![b].v, l.v.offset);
  });
  for (const g of groups) {
    const values = phi.subarray(g.offset, g.offset + g.length);
    const largest = Math.max(...values);
    const logs = Array.from(values, (s) => Math.log(Math.max(s, 1e-12 * largest, Number.MIN_VALUE)));
    const mean = logs.reduce((a, x) => a + x, 0) / logs.length;
    const sd = Math.sqrt(logs.reduce((a, x) => a + (x - mean) ** 2, 0) / logs.length);
    logs.forEach((x, i) => (values[i] = sd > 0 ? (INIT_SPREAD * (x - mean)) / sd : 0));
  }
}

/**
 * weight·‖x − x̂‖²/‖x̂‖² of one block output x [n, D] against the dense x̂; its gradient
 * 2·weight·(x − x̂)/‖x̂‖² is added to dOutput. Returns the term.
 */
export function featureLoss(output: ArrayLike<number>, dense: ArrayLike<number>, weight: number, dOutput: { [i: number]: number }): number {
  let norm = 0;
  let error = 0;
  for (let i = 0; i < dense.length; i++) {
    norm += dense[i] * dense[i];
    error += (output[i] - dense[i]) ** 2;
  }
  for (let i = 0; i < dense.length; i++) dOutput[i] += (2 * weight * (output[i] - dense[i])) / norm;
  return (weight * error) / norm;
}

/**
 * Shift each group's logits so that Σ σ(φ/τ) = its target (bisection on the shift, to 1e-9·τ):
 * length − share·(length − keep), the removed count scaled by `share` ∈ (0, 1].
 */
export function holdConstraint(phi: Float64Array, groups: readonly GateGroup[], tau: number, share = 1): void {
  for (const g of groups) {
    const values = phi.subarray(g.offset, g.offset + g.length);
    const target = g.length - share * (g.length - g.keep);
    const kept = (shift: number) => values.reduce((sum, p) => sum + sigmoid((p + shift) / tau), 0);
    let low = -Math.max(...values) - 40 * tau; // every gate ≈ 0
    let high = -Math.min(...values) + 40 * tau; // every gate ≈ 1
    for (let i = 0; i < 100 && high - low > 1e-9 * tau; i++) {
      const mid = (low + high) / 2;
      if (kept(mid) > target) high = mid;
      else low = mid;
    }
    const shift = (low + high) / 2;
    values.forEach((p, i) => (values[i] = p + shift));
  }
}

/** The top `keep` logits of each group; a block without equal proportion keeps its widest head's width, padded. */
function hardSelection(
  cfg: ViTConfig,
  layouts: BlockLayout[],
  groups: GateGroup[],
  phi: Float64Array,
  keepQk: number,
  keepV: number,
  equalProportion: boolean,
): LearnedSelection {
  const { heads: H, qkDim: d, vDim: dv } = cfg;
  const kept = new Uint8Array(phi.length);
  for (const g of groups) {
    const order = Array.from({ length: g.length }, (_, i) => g.offset + i).sort((a, b) => phi[b] - phi[a] || a - b);
    for (const i of order.slice(0, g.keep)) kept[i] = 1;
  }
  const perHead = (offset: number, width: number, h: number) => Array.from({ length: width }, (_, c) => c).filter((c) => kept[offset + h * width + c]);
  const selection: LearnedSelection = { widths: [], qk: [], v: [], qkActive: [], vActive: [] };
  layouts.forEach((l) => {
    const qk = Array.from({ length: H }, (_, h) => perHead(l.qk.offset, d, h));
    const v = Array.from({ length: H }, (_, h) => perHead(l.v.offset, dv, h));
    const qkWidth = equalProportion ? keepQk : Math.max(...qk.map((c) => c.length));
    const vWidth = equalProportion ? keepV : Math.max(...v.map((c) => c.length));
    const padded = (channels: number[][], width: number, offset: number, full: number) =>
      channels.map((mine, h) => {
        const extra = Array.from({ length: full }, (_, c) => c)
          .filter((c) => !kept[offset + h * full + c])
          .sort((a, b) => phi[offset + h * full + b] - phi[offset + h * full + a]);
        const all = [...mine, ...extra.slice(0, width - mine.length)].sort((a, b) => a - b);
        return { indices: Int32Array.from(all), active: all.map((c) => kept[offset + h * full + c] === 1) };
      });
    const qkPadded = padded(qk, qkWidth, l.qk.offset, d);
    const vPadded = padded(v, vWidth, l.v.offset, dv);
    selection.widths.push({ qkDim: qkWidth, vDim: vWidth });
    selection.qk.push(qkPadded.map((p) => p.indices));
    selection.qkActive.push(qkPadded.map((p) => p.active));
    selection.v.push(vPadded.map((p) => p.indices));
    selection.vActive.push(vPadded.map((p) => p.active));
  });
  return selection;
}

/**
 * The smaller model: kept rows of qkv (Q rows × a_h·√(qk′/d)), proj = (W + U·Vᵀ) on the kept
 * columns with b + Δb; padding channels (inactive) get zero Q and V rows and zero proj columns.
 * Its logits are those of the gated soft model with hard gates (1 kept, 0 removed; query gates × a_h).
 */
export function foldLearnedChannels(
  model: ViTModel,
  selection: LearnedSelection,
  logitScales: readonly (readonly number[])[],
  corrections: readonly (ProjCorrection | null)[],
): ViTModel {
  const cfg = model.config;
  const { heads: H, qkDim: d, vDim: dv, dim: D } = cfg;
  const blocks: BlockWeights[] = model.weights.blocks.map((blk, b) => {
    const { qkDim: qkWidth, vDim: vWidth } = selection.widths[b];
    const qScale = logitScales[b].map((a) => a * Math.sqrt(qkWidth / d));
    const qkv = shrinkQkv(cfg, blk.qkv, selection.qk[b], selection.v[b], qScale);
    const correction = corrections[b];
    const proj = { ...blk.proj, weight: Float32Array.from(blk.proj.weight), bias: Float32Array.from(blk.proj.bias) };
    if (correction) {
      const r = correction.rank;
      for (let o = 0; o < D; o++) {
        proj.bias[o] += correction.bias[o];
        for (let j = 0; j < H * dv; j++) {
          let sum = 0;
          for (let k = 0; k < r; k++) sum += correction.up[o * r + k] * correction.down[j * r + k];
          proj.weight[o * H * dv + j] += sum;
        }
      }
    }
    const shrunkProj = shrinkProj(cfg, proj, selection.v[b]);
    // padding: zero Q rows (the logit loses the channel) and zero V rows and proj columns
    const Din = qkv.inFeatures;
    for (let h = 0; h < H; h++) {
      selection.qkActive[b][h].forEach((active, i) => !active && qkv.weight.fill(0, (h * qkWidth + i) * Din, (h * qkWidth + i + 1) * Din));
      selection.qkActive[b][h].forEach((active, i) => !active && (qkv.bias[h * qkWidth + i] = 0));
      selection.vActive[b][h].forEach((active, i) => {
        if (active) return;
        const row = 2 * H * qkWidth + h * vWidth + i;
        qkv.weight.fill(0, row * Din, (row + 1) * Din);
        qkv.bias[row] = 0;
        for (let o = 0; o < D; o++) shrunkProj.weight[o * H * vWidth + h * vWidth + i] = 0;
      });
    }
    return { ...blk, qkv, proj: shrunkProj };
  });
  return {
    config: shrinkConfig(cfg, selection.widths),
    weights: { ...model.weights, blocks },
    source: `${model.source} (attention channels pruned, learned)`,
  };
}

function evaluateAgainst(runner: ViTRunner, inputs: readonly Float32Array[], teachers: readonly Float32Array[]): HardChannelEvaluation {
  let agree = 0;
  let kl = 0;
  inputs.forEach((input, i) => {
    const logits = runner.forward(input).logits;
    if (argmax(logits) === argmax(teachers[i])) agree++;
    kl += distillationLoss(teachers[i], logits).loss;
  });
  return { agreement: agree / inputs.length, kl: kl / inputs.length };
}

/** A cheap fingerprint of the images (sums of a spread of their values), so a checkpoint is not resumed on other images. */
function imagesChecksum(inputs: readonly Float32Array[]): number {
  let sum = 0;
  inputs.forEach((input, i) => {
    for (let j = i % 97; j < input.length; j += 997) sum += input[j] * ((j % 13) + 1);
  });
  return Math.round(sum * 1e3) / 1e3;
}
