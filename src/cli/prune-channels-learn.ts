import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { gradKernelsFor } from '../grad/kernels.js';
import { SoftMaskedViT } from '../grad/soft-vit.js';
import type { Kernels } from '../kernels/types.js';
import { denseGmacs } from '../model/gmacs.js';
import type { ViTModel } from '../model/types.js';
import { ViTRunner } from '../model/vit.js';
import type { ChannelPruningResult, QkScore } from '../prune/channels.js';
import type { BlockChannelScores } from '../prune/channels-select.js';
import {
  calibrationScores,
  CHANNEL_LEARN_DEFAULTS,
  GATE_INITS,
  learnChannelPruning,
  type ChannelLearnCheckpoint,
  type GateInit,
  type LearnStage,
} from '../prune/channels-learn.js';
import { savePrunedModel } from '../prune/channels-save.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { createProgress, type Progress } from '../util/progress.js';
import { intOption, stringOption, type CommandSpec, type Parsed } from './args.js';
import { printJson } from './common.js';

const D = CHANNEL_LEARN_DEFAULTS;
const DEFAULT_SCORE_IMAGES = 64;
/** --init: the gate initialisations, or 'calibrated': today's calibration-only model, whose reweight module alone is then trained. */
const INITS = [...GATE_INITS, 'calibrated'] as const;

/** The options `prune-channels --learn` adds (learned indicators and reweight module, issue 17). */
export const LEARN_OPTIONS: CommandSpec['options'] = {
  learn: { type: 'boolean', help: 'learn the channel gates and the reweight module by distillation (weights frozen) instead of the calibration-only fits' },
  epochs: { type: 'string', valueName: 'E', default: String(D.epochs), help: '--learn: passes over the images learning the gates and reweights' },
  'finetune-epochs': {
    type: 'string',
    valueName: 'F',
    default: String(D.finetuneEpochs),
    help: '--learn: passes with the gates fixed at 0/1, training the reweight module only',
  },
  batch: { type: 'string', valueName: 'B', default: String(D.batchSize), help: '--learn: images per Adam step' },
  rank: { type: 'string', valueName: 'R', default: String(D.rank), help: '--learn: rank of the learned proj correction' },
  init: {
    type: 'string',
    valueName: 'I',
    default: D.init,
    help:
      `--learn: ${INITS.join(' | ')}: gates from the calibration scores (see --qk-score, --no-similarity) or all equal; calibrated: ` +
      'the calibration-only pruned model (its fits and flags), then its logit scales and proj correction trained end to end for E + F epochs',
  },
  'score-images': {
    type: 'string',
    valueName: 'N',
    default: String(DEFAULT_SCORE_IMAGES),
    help: '--learn: calibration images (the first N) the initial scores are measured on',
  },
  'feature-weight': {
    type: 'string',
    valueName: 'B',
    default: String(D.featureWeight),
    help: "--learn: weight of a block-output term beside the logits' KL: B·mean over blocks of ‖x − x_dense‖²/‖x_dense‖²",
  },
  'no-equal-proportion': { type: 'boolean', help: '--learn: hold the kept count per block instead of per head (narrower heads are zero-padded to the widest)' },
  'no-reweight': { type: 'boolean', help: '--learn: learn the gates only (no logit scales, no proj correction)' },
  checkpoint: {
    type: 'string',
    valueName: 'FILE',
    help: '--learn: checkpoint written after every epoch and resumed from when present (default: DIR2.checkpoint.json; removed when done)',
  },
  seed: { type: 'string', valueName: 'S', default: String(D.seed), help: "--learn: seed of the image order and the correction's initial values" },
};

/** An integer option of at least `min` (every one here has a default). */
function integer(values: Parsed['values'], name: string, min: number): number {
  return intOption(values, name, undefined, min)!;
}

/** `prune-channels --learn`: learns on `inputs`, writes the smaller model folder to `out`, reports. */
export async function pruneChannelsLearned(
  values: Parsed['values'],
  dense: ViTModel,
  kernels: Kernels,
  inputs: readonly Float32Array[],
  ratio: number,
  out: string,
  calib: string,
  calibrationOnly: () => ChannelPruningResult,
): Promise<void> {
  const started = performance.now();
  const init = values.init as string;
  if (!(INITS as readonly string[]).includes(init)) throw new UsageError(`--init expects one of ${INITS.join(', ')}, got '${init}'`);
  const quiet = values.quiet === true;
  const options = {
    ratio,
    epochs: integer(values, 'epochs', 1),
    finetuneEpochs: integer(values, 'finetune-epochs', 0),
    batchSize: integer(values, 'batch', 1),
    rank: integer(values, 'rank', 1),
    init: (init === 'calibrated' ? 'uniform' : init) as GateInit,
    equalProportion: !values['no-equal-proportion'],
    reweight: !values['no-reweight'],
    seed: integer(values, 'seed', 0),
    featureWeight: Number(values['feature-weight']),
  };
  if (!(options.featureWeight >= 0)) throw new UsageError(`--feature-weight expects a number ≥ 0, got '${values['feature-weight'] as string}'`);
  const scoreOptions = { qkScore: values['qk-score'] as QkScore, similarity: !values['no-similarity'] };
  const checkpointFile = stringOption(values, 'checkpoint') ?? `${out.replace(/[/\\]+$/, '')}.checkpoint.json`;
  const resume = existsSync(checkpointFile) ? (JSON.parse(readFileSync(checkpointFile, 'utf8')) as ChannelLearnCheckpoint) : undefined;
  const log = quiet ? undefined : (line: string) => process.stderr.write(`prune-channels --learn: ${line}\n`);

  // --init calibrated: the reweight module of today's pruned model, trained against the dense one.
  const calibrated = init === 'calibrated' ? calibrationOnly() : null;
  const model = calibrated?.model ?? dense;
  const learnOptions = calibrated ? { ...options, ratio: 0, epochs: 0, finetuneEpochs: options.epochs + options.finetuneEpochs } : options;
  const scoreImages = inputs.slice(0, integer(values, 'score-images', 1));
  let scores: BlockChannelScores[] | undefined;
  if (init === 'scores' && !resume) {
    const bar = createProgress({ label: `channel scores (${scoreOptions.qkScore})`, total: scoreImages.length, unit: 'items', enabled: !quiet });
    scores = calibrationScores(model, kernels, scoreImages, scoreOptions, (done) => bar.update(done));
    bar.done();
  }
  if (resume) log?.(`resuming from ${checkpointFile}`);

  const runner = new ViTRunner(model, kernels);
  const soft = new SoftMaskedViT(model, gradKernelsFor(kernels));
  const bars: Partial<Record<LearnStage, Progress>> = {};
  const result = await learnChannelPruning(model, runner, soft, inputs, {
    ...learnOptions,
    teacher: calibrated ? new ViTRunner(dense, kernels) : undefined,
    scores,
    resume,
    log,
    onCheckpoint: (checkpoint) => writeFileAtomic(checkpointFile, new TextEncoder().encode(JSON.stringify(checkpoint))),
    onProgress: (stage, done, total) => {
      bars[stage] ??= createProgress({ label: `${stage} (forward + backward)`, total, unit: 'items', enabled: !quiet });
      bars[stage]!.update(done);
      if (done === total) bars[stage]!.done();
    },
  });

  const cfg = dense.config;
  const seconds = (performance.now() - started) / 1000; // with the scores or the calibration-only pruning, not the image loading
  const gmacs = { before: denseGmacs(cfg), after: result.gmacsAfter };
  const description = {
    method: 'attention-channels-learned',
    reference: 'learned channel gates and reweight module after Lee & Hwang, arXiv 2405.20867, weights frozen (vitprune src/prune/channels-learn.ts)',
    source: dense.source,
    ...options,
    init,
    initScores: init === 'scores' ? { ...scoreOptions, images: scoreImages.length } : null,
    calibrated: calibrated?.description ?? null,
    learningRates: D.learningRates,
    temperature: D.temperature,
    original: { qkDim: cfg.qkDim, vDim: cfg.vDim },
    widths: result.selection.widths,
    gmacs,
    calibration: { folder: path.resolve(calib), split: values.split ?? null, images: inputs.length, ...result.hard },
    learning: { history: result.epochs, seconds, backend: kernels.name },
    blocks: result.selection.widths.map((w, b) => ({
      block: b,
      ...w,
      qk: result.selection.qk[b].map((idx, h) => Array.from(idx).filter((_, i) => result.selection.qkActive[b][h][i])),
      v: result.selection.v[b].map((idx, h) => Array.from(idx).filter((_, i) => result.selection.vActive[b][h][i])),
      logitScale: result.logitScales[b],
    })),
  };
  savePrunedModel(out, result.model, description);
  rmSync(checkpointFile, { force: true });

  const report = {
    model: values.model,
    out,
    ...options,
    init,
    calibrationImages: inputs.length,
    widths: result.selection.widths.map((w, block) => ({ block, ...w })),
    gmacs: { ...gmacs, fraction: gmacs.after / gmacs.before },
    calibration: result.hard,
    history: result.epochs,
    seconds,
  };
  if (values.json) {
    printJson(report);
    return;
  }
  const widths = (key: 'qkDim' | 'vDim') => [...new Set(result.selection.widths.map((w) => w[key]))].join('/');
  process.stdout.write(
    `learned ${ratio * 100} % channel pruning: per head q/k ${cfg.qkDim} → ${widths('qkDim')}, v ${cfg.vDim} → ${widths('vDim')}\n` +
      `GMACs ${gmacs.before.toFixed(4)} → ${gmacs.after.toFixed(4)} (×${report.gmacs.fraction.toFixed(3)}); ` +
      `on the ${inputs.length} calibration images: agreement ${result.hard.agreement.toFixed(3)}, KL ${result.hard.kl.toFixed(4)}\n` +
      `learned in ${seconds.toFixed(0)} s; model written to ${out}\n`,
  );
}
