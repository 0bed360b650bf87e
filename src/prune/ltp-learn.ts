import { Adam } from '../grad/adam.js';
import { distillationLoss } from '../grad/distillation.js';
import type { SoftMaskedViT, SoftPruning } from '../grad/soft-vit.js';
import { seededRandom } from '../model/random.js';
import type { ViTConfig } from '../model/types.js';
import type { ViTRunner } from '../model/vit.js';
import { denseGmacs, initialTokens, modelGmacs } from '../model/gmacs.js';
import { geometricKeepSchedule } from './ltp-keep-schedule.js';
import { solveBudget } from './budget.js';
import { calibrateLtpQuantiles, ltpHooks, ltpRampKnob, type LtpThresholds } from './ltp.js';
import { calibrationRun, type CalibrationRun } from './method.js';
import { ScheduleError } from '../errors.js';

/**
 * Learned LTP thresholds with the model frozen (issue 16; docs/algorithms.md §4.3 without the weight
 * updates): one threshold per block learned on unlabelled calibration images by distillation
 * from the dense model. Labels are never read.
 *
 * Relaxation (grad/token-masks.ts): a token's mask after block l is σ((score − θ_l)/T), scores
 * in multiples of the mean score; later attentions see log M as a key bias, so at T → 0 the
 * soft model is the hard-threshold one (a token removed, not merely shrunk as in LTP's code).
 *
 * Objective (weights frozen, θ_l = e^φ_l learned), on the soft GMACs budget:
 *
 *   minimise  mean_images KL(dense ‖ soft-masked)   subject to   G_soft/G_dense = F
 *
 * G_soft is the GMACs of the soft token counts Σ_i M_i of every block (prune/flops.ts on
 * fractional counts): the mean soft mask of each block weighted by the MACs a token costs there.
 * Each batch: an Adam step on φ down the KL's gradient without its common mode (the mean over
 * blocks: how high the thresholds are overall is the budget's business), then one common shift
 * of log θ by a proportional controller on the batch's soft GMACs, gain κ = BUDGET_GAIN:
 *
 *   Δ = Adam step on ∇_φ KL;   φ ← φ + Δ − mean(Δ) + κ·(G_soft/(F·G_dense) − 1)
 *
 * (This is the Lagrangian KL + λ·G_soft/G_dense with λ always at the value that holds the budget.
 * Learning λ itself by dual ascent alongside Adam oscillated: on DeiT-Tiny at F = 0.7, λ went
 * 48 → 1e-7 → 5e6 → 2e-4 over three epochs.)
 *
 * Initialisation [I]: calibrated thresholds at the budget, on the same images, whichever of two
 * has the lower hard KL there (block 1 never prunes, nor does it learn):
 *   - calibrateLtpQuantiles (docs/algorithms.md §4.5 option 1) matched to geometricKeepSchedule, every
 *     block from the second keeping the same share of the patches alive at it;
 *   - LTP's ramp θ_l = c·l/L, c solved to the budget (ltpRampKnob, what `compare` runs as 'ltp').
 * Neither wins everywhere. Hard KL on the 250 even dev images (start → learned, 10 epochs, α 0.1):
 *
 *                      0.70×: quantiles     0.70×: ramp         0.87×: quantiles    0.87×: ramp
 *   DeiT-Tiny          0.098 → 0.076        0.429 → 0.134       0.032 → 0.019       0.0054 → 0.016
 *   ViT-Tiny           0.107 → 0.073        0.810 → 0.073       0.024 → 0.0084      0.027
 *
 * At 0.70× learning from the ramp also depended on α (0.05: DeiT-Tiny 0.050, ViT-Tiny 0.105;
 * ViT-Tiny for 15 epochs: 0.415), while from the quantiles it ended near 0.075 on both models
 * (α 0.05 on ViT-Tiny: 0.089). At 0.87× the ramp, which prunes mostly late blocks, starts 6×
 * lower than the quantiles on DeiT-Tiny and learning from the quantiles does not close the gap
 * (from the ramp, α 0.05: 0.0054 → 0.0026; at α 0.1 learning ended above its start, see Result).
 *
 * Learning: Adam on φ = log θ (steps relative to θ; θ stays positive), α = 0.1 (see above), capped
 * at log 2n₀ (a threshold above prunes all it can: see maxLogTheta). Temperature relative to each
 * threshold, T_l = τ·θ_l (held fixed within a step), so that a mask spans the same share of scores
 * at every block: σ((s − θ)/(τθ)) is 0.12 at s = (1 − 2τ)θ and 0.88 at (1 + 2τ)θ. τ is annealed
 * geometrically from τ_start to τ_end over all steps: warm masks give every token near its
 * threshold a gradient, cold ones make the soft model the hard one. Images are visited in a
 * seeded random order per epoch.
 *
 * Budget: the soft count is not the hard one, so the learned thresholds are finally scaled by
 * one common factor s, bisected (as the ramp's c) until the HARD-threshold GMACs on the
 * calibration images are within `tolerance` (1 %) of F.
 *
 * Result [I]: the learned thresholds only if their hard KL on the calibration images is below the
 * start's; otherwise the start (scaled to the budget alike). The last steps of learning are noisy
 * at cold temperatures: DeiT-Tiny at 0.87× from the ramp (α 0.1) went from KL 0.0054 to 0.0162 on
 * the calibration images, its soft KL 0.0027 after epoch 4 and 0.0103 after epoch 10.
 */

export interface LtpLearnOptions {
  budget: number; // F: GMACs as a fraction of dense
  epochs?: number; // passes over the images (default 10)
  batchSize?: number; // images per Adam step (default 10)
  learningRate?: number; // Adam's α on log θ (default 0.1)
  temperature?: { start: number; end: number }; // τ: T_l = τ·θ_l (default 0.3 → 0.02)
  tolerance?: number; // of the final hard budget (default 0.01)
  seed?: number; // of the image order (default 1)
  /**
   * Where learning starts, in unit 'mean' (blocks at θ = 0 neither prune nor learn); default: the
   * quantiles or the ramp calibrated to the budget on the same images, the one with the lower KL.
   */
  initial?: LtpThresholds;
  /** Called after each image of the learning passes (done out of total). */
  onProgress?: (done: number, total: number) => void;
  /** One line per stage and epoch. */
  log?: (line: string) => void;
}

/** Where learning may start. */
export interface LtpStart {
  method: 'quantiles' | 'ramp' | 'given';
  description: string; // for messages
  thresholds: LtpThresholds;
  keep?: number[]; // 'quantiles': the per-block keep schedule matched
  c?: number; // 'ramp': its height
}

/** The learning defaults (documented in the options). */
export const LTP_LEARN_DEFAULTS = { epochs: 10, batchSize: 10, learningRate: 0.1, temperature: { start: 0.3, end: 0.02 }, tolerance: 0.01, seed: 1 };

/** Gain of the budget controller: the shift of log θ per unit of relative budget excess (per batch). */
const BUDGET_GAIN = 1;

export interface HardEvaluation {
  gmacs: number; // mean executed GMACs per calibration image
  fraction: number; // gmacs / dense
  agreement: number; // share of calibration images whose top-1 is the dense model's
  kl: number; // mean KL(dense ‖ hard-pruned)
}

export interface LtpEpoch {
  epoch: number; // 1-based
  kl: number; // mean soft KL over the epoch's images
  softFraction: number; // mean G_soft/G_dense
  temperature: number; // τ at the epoch's end
  theta: number[]; // θ at the epoch's end (before the final budget scaling)
}

export interface LtpLearnResult {
  thresholds: LtpThresholds; // learned (or the start, see `kept`), budget-scaled, unit 'mean'
  scale: number; // s: the final common factor on the learned θ
  hard: HardEvaluation; // of `thresholds` on the calibration images
  kept: 'learned' | 'start'; // 'start' when learning did not lower the start's hard KL on the calibration images
  initial: LtpStart & { hard: HardEvaluation }; // where it started
  starts: (LtpStart & { hard: HardEvaluation })[]; // the starts considered (the calibrated ones, or the given one)
  epochs: LtpEpoch[];
  seconds: number; // wall time of the whole learning (dense pass, calibration, learning, scaling)
}

/**
 * Learns LTP thresholds for `budget` on `inputs` (preprocessed images [C, S, S]). `runner` runs the
 * dense and hard passes, `soft` the soft-masked forward and backward: the same model.
 */
export async function learnLtpThresholds(
  runner: ViTRunner,
  soft: SoftMaskedViT,
  inputs: readonly Float32Array[],
  options: LtpLearnOptions,
): Promise<LtpLearnResult> {
  const started = performance.now();
  const cfg = runner.config;
  if (soft.config.architecture !== cfg.architecture || soft.config.depth !== cfg.depth) {
    throw new ScheduleError(`learn-ltp: the soft model (${soft.config.architecture}) is not the runner's (${cfg.architecture})`);
  }
  const opts = { ...LTP_LEARN_DEFAULTS, ...options };
  const { budget } = opts;
  if (!(budget > 0 && budget < 1)) throw new ScheduleError(`learn-ltp: expected a GMACs budget in (0, 1) of dense, found ${budget}`);
  if (inputs.length === 0) throw new ScheduleError('learn-ltp: expected at least one calibration image, found none');
  for (const [name, value] of [
    ['epochs', opts.epochs],
    ['batchSize', opts.batchSize],
  ] as const) {
    if (!(Number.isInteger(value) && value >= 1)) throw new ScheduleError(`learn-ltp: ${name}: expected a positive integer, found ${value}`);
  }
  const { start: tStart, end: tEnd } = opts.temperature;
  if (!(tStart > 0 && tEnd > 0 && opts.learningRate > 0)) {
    throw new ScheduleError(`learn-ltp: expected temperatures and a learning rate > 0, found T ${tStart} → ${tEnd}, α ${opts.learningRate}`);
  }
  const log = opts.log ?? (() => {});
  const dense = denseGmacs(cfg);
  const teachers = inputs.map((input) => runner.forward(input).logits);

  /** Hard thresholds on the calibration images: GMACs, agreement and KL against the dense model. */
  const evaluateHard = (thresholds: LtpThresholds): HardEvaluation => {
    const hooks = ltpHooks(thresholds);
    let gmacs = 0;
    let agree = 0;
    let kl = 0;
    inputs.forEach((input, i) => {
      const result = runner.forward(input, hooks);
      gmacs += result.gmacs;
      if (argmax(result.logits) === argmax(teachers[i])) agree++;
      kl += distillationLoss(teachers[i], result.logits).loss;
    });
    const count = inputs.length;
    return { gmacs: gmacs / count, fraction: gmacs / count / dense, agreement: agree / count, kl: kl / count };
  };

  // Initialisation: the caller's thresholds, or the calibrated ones with the lower hard KL on these images.
  const starts = (opts.initial ? [givenStart(cfg, opts.initial)] : await calibratedStarts(cfg, calibrationRun(runner, inputs), budget, opts.tolerance)).map(
    (candidate) => ({ ...candidate, hard: evaluateHard(candidate.thresholds) }),
  );
  for (const { description, hard } of starts) {
    log(
      `start: ${description}, ${hard.fraction.toFixed(4)} × dense, agreement ${hard.agreement.toFixed(3)}, KL ${hard.kl.toFixed(4)} on ${inputs.length} calibration images`,
    );
  }
  const start = starts.reduce((best, candidate) => (candidate.hard.kl < best.hard.kl ? candidate : best));
  const initial = start.thresholds;
  if (starts.length > 1) log(`learning starts from the ${start.method} (the lower KL)`);
  // A score in mean units, n·s(i), never exceeds n ≤ n₀: a threshold above prunes every token the
  // block can (its KL gradient is then 0, and the budget alone would raise it without end).
  const maxLogTheta = Math.log(2 * initialTokens(cfg));
  const learned = initial.theta.flatMap((t, b) => (t > 0 ? [b] : [])); // blocks that prune
  if (learned.length === 0) throw new ScheduleError('learn-ltp: expected initial thresholds with at least one block that prunes (θ > 0), found none');
  const logTheta = Float64Array.from(learned, (b) => Math.min(Math.log(initial.theta[b]), maxLogTheta));
  const thetaOf = (phi: Float64Array): number[] => {
    const theta = Array.from({ length: cfg.depth }, () => 0);
    learned.forEach((b, j) => (theta[b] = Math.exp(phi[j])));
    return theta;
  };

  const batches = Math.ceil(inputs.length / opts.batchSize);
  const totalSteps = opts.epochs * batches;
  const temperatureAt = (step: number) => tStart * (tEnd / tStart) ** (totalSteps > 1 ? step / (totalSteps - 1) : 1);
  const adam = new Adam(learned.length, { learningRate: opts.learningRate });
  const random = seededRandom(opts.seed);
  let step = 0;
  let done = 0;
  const epochs: LtpEpoch[] = [];

  /** Over `images` at relative temperature τ: the mean gradient of KL on log θ, the mean KL and G_soft/G_dense. */
  const batchGradient = (images: number[], tau: number) => {
    const theta = thetaOf(logTheta);
    const pruning: SoftPruning = { thresholds: theta.map((t) => (t > 0 ? { theta: t, temperature: tau * t, unit: 'mean' as const } : null)) };
    const gradient = new Float64Array(learned.length);
    let kl = 0;
    let fraction = 0;
    for (const i of images) {
      const result = soft.forward(runner.embed(inputs[i]), pruning);
      const distillation = distillationLoss(teachers[i], result.logits);
      kl += distillation.loss;
      fraction += modelGmacs(cfg, result.tokens) / dense;
      const { theta: dTheta } = soft.backward(distillation.dLogits);
      learned.forEach((b, j) => (gradient[j] += (dTheta[b] * theta[b]) / images.length)); // ∂/∂φ = θ·∂/∂θ
      opts.onProgress?.(++done, opts.epochs * inputs.length);
    }
    return { gradient, kl: kl / images.length, fraction: fraction / images.length };
  };

  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    const order = shuffled(inputs.length, random);
    let klSum = 0;
    let fractionSum = 0;
    for (let first = 0; first < order.length; first += opts.batchSize) {
      const images = order.slice(first, first + opts.batchSize);
      const batch = batchGradient(images, temperatureAt(step));
      const before = Float64Array.from(logTheta);
      adam.step(logTheta, batch.gradient);
      const commonMode = logTheta.reduce((sum, phi, j) => sum + phi - before[j], 0) / logTheta.length;
      const shift = BUDGET_GAIN * (batch.fraction / budget - 1) - commonMode; // over budget: raise every threshold
      logTheta.forEach((phi, j) => (logTheta[j] = Math.min(phi + shift, maxLogTheta)));
      klSum += batch.kl * images.length;
      fractionSum += batch.fraction * images.length;
      step++;
      await new Promise((resolve) => setImmediate(resolve)); // let progress output and signals through
    }
    const summary: LtpEpoch = {
      epoch,
      kl: klSum / inputs.length,
      softFraction: fractionSum / inputs.length,
      temperature: temperatureAt(step - 1),
      theta: thetaOf(logTheta),
    };
    epochs.push(summary);
    log(
      `epoch ${epoch}/${opts.epochs}: soft KL ${summary.kl.toFixed(4)}, soft GMACs ${summary.softFraction.toFixed(4)} × dense, τ ${summary.temperature.toPrecision(3)}`,
    );
  }

  // The hard budget: one common factor on the learned thresholds. Learning is kept only if it
  // lowered the hard KL on the calibration images; otherwise the start stands, fitted alike.
  const scaledFit = (theta: number[]) => {
    const fit = fitScale(budget, opts.tolerance, (s) => evaluateHard({ theta: theta.map((t) => t * s), unit: 'mean' }));
    return { ...fit, thresholds: { theta: theta.map((t) => t * fit.scale), unit: 'mean' as const } };
  };
  const learnedFit = scaledFit(thetaOf(logTheta));
  log(
    `learned: ×${learnedFit.scale.toFixed(4)} to the budget, ${learnedFit.hard.fraction.toFixed(4)} × dense, agreement ${learnedFit.hard.agreement.toFixed(3)}, KL ${learnedFit.hard.kl.toFixed(4)} on the calibration images`,
  );
  let kept: 'learned' | 'start' = 'learned';
  let fit = learnedFit;
  if (!(learnedFit.hard.kl < start.hard.kl)) {
    const startFit = scaledFit(initial.theta);
    if (startFit.hard.kl <= learnedFit.hard.kl) {
      kept = 'start';
      fit = startFit;
      log(`learning did not lower the hard KL of the start (${start.hard.kl.toFixed(4)}): the start's thresholds are kept`);
    }
  }
  return {
    thresholds: fit.thresholds,
    scale: fit.scale,
    hard: fit.hard,
    kept,
    initial: start,
    starts,
    epochs,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The calibrated starts (see LtpLearnOptions.initial): quantiles at the geometric keep schedule, and LTP's ramp. */
async function calibratedStarts(cfg: ViTConfig, run: CalibrationRun, budget: number, tolerance: number): Promise<LtpStart[]> {
  const keep = geometricKeepSchedule(cfg, budget);
  const quantiles = await calibrateLtpQuantiles(cfg, run, keep, 'mean');
  const { settings: ramp } = await solveBudget(denseGmacs(cfg), budget, [ltpRampKnob(cfg, run)], tolerance);
  return [
    { method: 'quantiles', description: `LTP quantiles calibrated to keep ${keep[1].toFixed(4)} of the patches per block`, thresholds: quantiles, keep },
    { method: 'ramp', description: `LTP ramp calibrated to the budget (c = ${ramp.c!.toFixed(4)})`, thresholds: ramp.thresholds, c: ramp.c },
  ];
}

function givenStart(cfg: ViTConfig, initial: LtpThresholds): LtpStart {
  if (initial.unit !== 'mean' || initial.theta.length !== cfg.depth) {
    throw new ScheduleError(
      `learn-ltp: expected initial thresholds in unit 'mean', one per block (${cfg.depth}), found ${initial.theta.length} in '${initial.unit}'`,
    );
  }
  return { method: 'given', description: 'given thresholds', thresholds: initial };
}

/**
 * The factor s whose hard GMACs fraction is within `tolerance` of `budget` (the fraction falls
 * as s grows): bracketed by steps of ×1.25 from 1, then bisected in log s, at most 30 runs. The
 * closest seen is returned; throws ScheduleError if it misses.
 */
function fitScale(budget: number, tolerance: number, run: (s: number) => HardEvaluation): { scale: number; hard: HardEvaluation } {
  const miss = (h: HardEvaluation) => Math.abs(h.fraction / budget - 1);
  let runs = 0;
  const at = (scale: number) => (runs++, { scale, hard: run(scale) });
  let best = at(1);
  if (miss(best.hard) <= tolerance) return best;
  const step = best.hard.fraction > budget ? 1.25 : 0.8; // > budget: prune more, raise the thresholds
  let near = best;
  let far = at(step);
  while (far.hard.fraction > budget === near.hard.fraction > budget && runs < 30) {
    if (miss(far.hard) < miss(best.hard)) best = far;
    near = far;
    far = at(far.scale * step);
  }
  if (miss(far.hard) < miss(best.hard)) best = far;
  while (miss(best.hard) > tolerance && runs < 30) {
    const mid = at(Math.sqrt(near.scale * far.scale));
    if (miss(mid.hard) < miss(best.hard)) best = mid;
    if (mid.hard.fraction > budget === near.hard.fraction > budget) near = mid;
    else far = mid;
  }
  if (miss(best.hard) > tolerance) {
    throw new ScheduleError(
      `learn-ltp: expected hard thresholds within ${tolerance * 100} % of ${budget} × dense GMACs on the calibration images, found at best ${best.hard.fraction.toFixed(4)} × dense (scale ${best.scale.toFixed(4)}, ${runs} runs)`,
    );
  }
  return best;
}

export function shuffled(count: number, random: () => number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
