import path from 'node:path';
import { UsageError } from '../errors.js';
import { listImages, selectSplit, type Split } from '../eval/dataset.js';
import { loadImageTensor } from '../image/file.js';
import { ALLOCATORS, pruneChannels, SELECTIONS, type Allocator, type QkScore, type Selection } from '../prune/channels.js';
import { savePrunedModel } from '../prune/channels-save.js';
import { createProgress, type Progress } from '../util/progress.js';
import { intOption, stringOption, type CommandSpec, type Parsed } from './args.js';
import { backendOption, loadModelSpec, MODEL_OPTIONS, openKernels, printJson, threadsOption } from './common.js';
import { LEARN_OPTIONS, pruneChannelsLearned } from './prune-channels-learn.js';

const QK_SCORES: readonly QkScore[] = ['attention-difference', 'logit-proxy'];

export const pruneChannelsSpec: CommandSpec = {
  name: 'prune-channels',
  summary: 'Remove attention q/k and v channels (the same number in every head) calibrated on unlabelled images, and write the smaller model.',
  usage:
    'vitprune prune-channels [--model M] --calib DIR --ratio P [--samples N] [--split even|odd] [--allocator uniform|greedy] ' +
    '[--selection reconstruction|score] [--no-similarity] [--no-qk-basis] [--no-query-refit] [--no-value-basis] [--no-logit-scale] [--no-refit] --out DIR2 [--json]\n' +
    '       vitprune prune-channels [--model M] --calib DIR --ratio P --learn [--epochs E] [--finetune-epochs F] [--rank R] [--init scores|uniform|calibrated] ' +
    '[--feature-weight B] [--no-equal-proportion] [--no-reweight] [--no-similarity] [--qk-score S] [--checkpoint FILE] --out DIR2 [--json]',
  options: {
    ...MODEL_OPTIONS,
    calib: { type: 'string', valueName: 'DIR', help: 'folder of calibration images (labels are never read)' },
    ratio: { type: 'string', valueName: 'P', help: 'fraction of the q/k channels and of the v channels removed from every head, in [0, 1)' },
    samples: { type: 'string', valueName: 'N', help: 'use the first N calibration images (default: all)' },
    split: { type: 'string', valueName: 'S', help: "use only the images at 'even' or 'odd' positions of the sorted folder" },
    allocator: {
      type: 'string',
      valueName: 'A',
      default: 'uniform',
      help: `how the MAC saving is spread: ${ALLOCATORS.join(' | ')} (greedy: across blocks and between q/k and v, by score per MAC saved)`,
    },
    selection: {
      type: 'string',
      valueName: 'S',
      default: 'reconstruction',
      help: 'kept channels: reconstruction (least error after the refits) | score (top channels by the §5.3 scores)',
    },
    'qk-score': {
      type: 'string',
      valueName: 'S',
      default: 'attention-difference',
      help: `q/k channel score (score selection, greedy allocator): ${QK_SCORES.join(' | ')}`,
    },
    'no-similarity': { type: 'boolean', help: 'do not weight q/k scores by channel dissimilarity' },
    'no-qk-basis': { type: 'boolean', help: 'keep selected q/k channels (with the query refit) instead of the rank-reduced q/k basis' },
    'no-query-refit': { type: 'boolean', help: 'keep the kept Q rows instead of refitting them to reproduce the logits' },
    'no-value-basis': { type: 'boolean', help: 'keep selected v channels instead of the reduced-rank value basis' },
    'no-logit-scale': { type: 'boolean', help: 'do not fit the per-head logit scale' },
    'no-refit': { type: 'boolean', help: 'do not refit the output projection' },
    out: { type: 'string', valueName: 'DIR2', help: 'write the pruned model folder here (config.json + model.safetensors)' },
    ...LEARN_OPTIONS,
  },
};

export async function pruneChannelsCommand({ values }: Parsed): Promise<void> {
  const calib = stringOption(values, 'calib');
  if (!calib) throw new UsageError("'vitprune prune-channels' needs --calib DIR (unlabelled images)");
  const out = stringOption(values, 'out');
  if (!out) throw new UsageError("'vitprune prune-channels' needs --out DIR2 (where to write the pruned model)");
  const rawRatio = stringOption(values, 'ratio');
  if (rawRatio === undefined) throw new UsageError("'vitprune prune-channels' needs --ratio P (fraction of channels removed)");
  const ratio = Number(rawRatio);
  if (!(ratio >= 0 && ratio < 1)) throw new UsageError(`--ratio expects a fraction in [0, 1), got '${rawRatio}'`);
  const allocator = values.allocator as string;
  if (!(ALLOCATORS as readonly string[]).includes(allocator)) throw new UsageError(`--allocator expects one of ${ALLOCATORS.join(', ')}, got '${allocator}'`);
  const selection = values.selection as string;
  if (!(SELECTIONS as readonly string[]).includes(selection)) throw new UsageError(`--selection expects one of ${SELECTIONS.join(', ')}, got '${selection}'`);
  const qkScore = values['qk-score'] as string;
  if (!(QK_SCORES as readonly string[]).includes(qkScore)) throw new UsageError(`--qk-score expects one of ${QK_SCORES.join(', ')}, got '${qkScore}'`);

  // pruneChannels runs the model on its own runner: only the backend is needed here.
  const kernels = await openKernels(backendOption(values), await threadsOption(values));
  const model = await loadModelSpec(values.model as string, { quiet: values.quiet === true });
  const cfg = model.config;
  const files = selectSplit(listImages(calib), values.split as Split | undefined).slice(0, intOption(values, 'samples'));
  const quiet = values.quiet === true;
  const loading = createProgress({ label: 'calibration images', total: files.length, unit: 'items', enabled: !quiet });
  const inputs = files.map((f) => {
    const input = loadImageTensor(f, cfg.preprocess);
    loading.tick();
    return input;
  });
  loading.done();

  const bars: Record<string, Progress> = {};
  const calibrationOnly = () =>
    pruneChannels(model, kernels, inputs, {
      ratio,
      allocator: allocator as Allocator,
      selection: selection as Selection,
      qkScore: qkScore as QkScore,
      similarity: !values['no-similarity'],
      qkBasis: !values['no-qk-basis'],
      queryRefit: !values['no-query-refit'],
      valueBasis: !values['no-value-basis'],
      logitScale: !values['no-logit-scale'],
      refit: !values['no-refit'],
      onProgress: (stage, done, total) => {
        const label = stage === 'statistics' ? 'channel statistics (images)' : 'pruned blocks';
        bars[stage] ??= createProgress({ label, total, unit: 'items', enabled: !quiet });
        bars[stage].update(done);
        if (done === total) bars[stage].done();
      },
    });
  if (values.learn) return pruneChannelsLearned(values, model, kernels, inputs, ratio, out, calib, calibrationOnly);
  const result = calibrationOnly();
  const description = { ...result.description, calibration: { folder: path.resolve(calib), split: values.split ?? null, images: inputs.length } };
  savePrunedModel(out, result.model, description);

  const mean = (xs: (number | null)[]) => {
    const known = xs.filter((x): x is number => x !== null);
    return known.length ? known.reduce((a, b) => a + b, 0) / known.length : null;
  };
  const report = {
    model: values.model,
    out,
    ratio,
    allocator,
    selection,
    qkScore: description.qkScore,
    similarity: description.similarity,
    qkBasis: description.qkBasis,
    queryRefit: description.queryRefit,
    valueBasis: description.valueBasis,
    logitScale: description.logitScale,
    refit: description.refit,
    calibrationImages: inputs.length,
    widths: result.selection.widths.map((w, block) => ({ block, ...w })),
    gmacs: { before: result.gmacsBefore, after: result.gmacsAfter, fraction: result.gmacsAfter / result.gmacsBefore },
    reconstruction: {
      // ‖Y − proj′(Z′)‖² / ‖Y‖² on the calibration tokens, per block: Y = original attention-branch output
      meanBefore: mean(result.blocks.map((b) => b.reconstructionBefore)),
      meanAfter: mean(result.blocks.map((b) => b.reconstructionAfter)),
      blocks: result.blocks.map((b) => ({ block: b.block, before: b.reconstructionBefore, after: b.reconstructionAfter })),
    },
    attention: result.blocks.map((b) => ({ block: b.block, logitScale: b.logitScale, klBefore: b.attentionKlBefore, klAfter: b.attentionKlAfter })),
  };
  if (values.json) {
    printJson(report);
    return;
  }
  const fmt = (x: number | null) => (x === null ? '-' : x.toFixed(4));
  const widthList = (key: 'qkDim' | 'vDim') => {
    const ws = result.selection.widths.map((w) => w[key]);
    return ws.every((w) => w === ws[0]) ? String(ws[0]) : ws.join('/');
  };
  process.stdout.write(
    `pruned ${ratio * 100} % of the attention channels (${allocator}): per head, block by block, q/k ${cfg.qkDim} → ${widthList('qkDim')}, v ${cfg.vDim} → ${widthList('vDim')}\n` +
      `GMACs ${result.gmacsBefore.toFixed(4)} → ${result.gmacsAfter.toFixed(4)} (×${report.gmacs.fraction.toFixed(3)}), ` +
      `calibration reconstruction error ${fmt(report.reconstruction.meanBefore)} → ${fmt(report.reconstruction.meanAfter)} (mean over blocks)\n` +
      `model written to ${out}\n`,
  );
}
