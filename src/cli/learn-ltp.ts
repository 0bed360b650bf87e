import path from 'node:path';
import { UsageError } from '../errors.js';
import { listImages, selectSplit, spreadSample, type Split } from '../eval/dataset.js';
import { gradKernelsFor } from '../grad/kernels.js';
import { SoftMaskedViT } from '../grad/soft-vit.js';
import { learnLtpThresholds, LTP_LEARN_DEFAULTS } from '../prune/ltp-learn.js';
import { ltpThresholdsToJson } from '../prune/ltp-thresholds.js';
import { createProgress } from '../util/progress.js';
import { intOption, stringOption, type CommandSpec, type Parsed } from './args.js';
import { loadCalibrationImages } from './calibration-images.js';
import { MODEL_OPTIONS, openModel, printJson, writeOutputFile } from './common.js';

const D = LTP_LEARN_DEFAULTS;

export const learnLtpSpec: CommandSpec = {
  name: 'learn-ltp',
  summary: 'Learn LTP thresholds (one per block) for a GMACs budget on unlabelled calibration images, the model frozen (distillation from the dense model).',
  usage: 'vitprune learn-ltp [--model M] --calib DIR --budget F [--samples N] [--split even|odd] [--epochs E] --out thresholds.json [--json]',
  options: {
    ...MODEL_OPTIONS,
    calib: { type: 'string', valueName: 'DIR', help: 'folder of calibration images (labels are never read)' },
    budget: { type: 'string', valueName: 'F', help: 'GMACs as a fraction of dense: the hard thresholds land within 1 % of it on the calibration images' },
    samples: { type: 'string', valueName: 'N', help: 'use N calibration images spread evenly over the folder (default: all)' },
    split: { type: 'string', valueName: 'S', help: "use only the images at 'even' or 'odd' positions of the sorted folder" },
    epochs: { type: 'string', valueName: 'E', default: String(D.epochs), help: 'passes over the calibration images' },
    batch: { type: 'string', valueName: 'B', default: String(D.batchSize), help: 'images per Adam step' },
    lr: { type: 'string', valueName: 'A', default: String(D.learningRate), help: "Adam's learning rate on log θ" },
    temperature: {
      type: 'string',
      valueName: 'T0:T1',
      default: `${D.temperature.start}:${D.temperature.end}`,
      help: 'soft-mask temperature τ relative to each threshold (T = τ·θ), annealed geometrically from T0 to T1',
    },
    seed: { type: 'string', valueName: 'S', default: String(D.seed), help: 'seed of the image order' },
    out: { type: 'string', valueName: 'FILE', help: 'write the thresholds here (JSON; required)' },
  },
};

function positiveNumber(values: Parsed['values'], name: string): number {
  const raw = values[name] as string;
  const n = Number(raw);
  if (!(Number.isFinite(n) && n > 0)) throw new UsageError(`--${name} expects a number > 0, got '${raw}'`);
  return n;
}

function temperatureOption(raw: string): { start: number; end: number } {
  const [start, end] = raw.split(':').map(Number);
  if (!(start > 0 && end > 0) || raw.split(':').length !== 2) throw new UsageError(`--temperature expects T0:T1 with both > 0, got '${raw}'`);
  return { start, end };
}

export async function learnLtpCommand({ values }: Parsed): Promise<void> {
  const calib = stringOption(values, 'calib');
  if (!calib) throw new UsageError("'vitprune learn-ltp' needs --calib DIR (unlabelled images)");
  const out = stringOption(values, 'out');
  if (!out) throw new UsageError("'vitprune learn-ltp' needs --out FILE (where the thresholds go)");
  if (values.budget === undefined) throw new UsageError("'vitprune learn-ltp' needs --budget F (GMACs as a fraction of dense)");
  const budget = Number(values.budget);
  if (!(budget > 0 && budget < 1)) throw new UsageError(`--budget expects a fraction in (0, 1) of dense GMACs, got '${values.budget as string}'`);
  const options = {
    budget,
    epochs: intOption(values, 'epochs')!,
    batchSize: intOption(values, 'batch')!,
    learningRate: positiveNumber(values, 'lr'),
    temperature: temperatureOption(values.temperature as string),
    seed: intOption(values, 'seed')!,
  };
  const split = values.split as Split | undefined;
  const all = selectSplit(listImages(calib), split);
  const files = spreadSample(all, intOption(values, 'samples', all.length)!);

  const { model, runner } = await openModel(values);
  const cfg = model.config;
  const inputs = loadCalibrationImages(files, cfg.preprocess, values.quiet === true);

  const soft = new SoftMaskedViT(model, gradKernelsFor(runner.kernels));
  const log = values.quiet ? undefined : (line: string) => process.stderr.write(`learn-ltp: ${line}\n`);
  const progress: { bar?: ReturnType<typeof createProgress> } = {};
  log?.(`calibrating LTP thresholds (quantiles, ramp) to ${budget} × dense on ${inputs.length} images: the starting points`);
  const result = await learnLtpThresholds(runner, soft, inputs, {
    ...options,
    log,
    onProgress: (done, total) => {
      progress.bar ??= createProgress({ label: 'learn-ltp (forward + backward)', total, unit: 'items', enabled: !values.quiet });
      progress.bar.update(done);
      if (done === total) progress.bar.done();
    },
  });

  const calibration = { folder: path.resolve(calib), split: split ?? null, images: inputs.length, ...result.hard };
  writeOutputFile(
    '--out',
    out,
    ltpThresholdsToJson({
      theta: result.thresholds.theta,
      unit: result.thresholds.unit,
      model: cfg.architecture,
      budget,
      calibration,
      initial: {
        method: result.initial.method,
        c: result.initial.c,
        keep: result.initial.keep,
        theta: result.initial.thresholds.theta,
        ...result.initial.hard,
        starts: result.starts.map(({ method, hard }) => ({ method, ...hard })),
      },
      learning: { ...options, kept: result.kept, scale: result.scale, history: result.epochs, seconds: result.seconds, backend: runner.kernels.name },
    }),
  );

  const report = {
    model: values.model,
    budget,
    out,
    thresholds: result.thresholds,
    calibration,
    initial: { method: result.initial.method, theta: result.initial.thresholds.theta, ...result.initial.hard },
    kept: result.kept,
    scale: result.scale,
    history: result.epochs,
    seconds: result.seconds,
  };
  if (values.json) {
    printJson(report);
    return;
  }
  const line = (name: string, h: typeof result.hard) =>
    `${name}: ${h.gmacs.toFixed(4)} GMACs (×${h.fraction.toFixed(3)}), agreement ${h.agreement.toFixed(3)}, KL ${h.kl.toFixed(4)} on ${inputs.length} calibration images\n`;
  const calibrated = `calibrated (${result.initial.method})`;
  process.stdout.write(line((result.kept === 'start' ? 'written' : 'learned').padEnd(calibrated.length), result.hard));
  process.stdout.write(line(calibrated, result.initial.hard));
  if (result.kept === 'start') process.stdout.write("learning did not lower the start's KL on the calibration images: the start's thresholds are written\n");
  process.stdout.write(`θ (mean-score units): ${result.thresholds.theta.map((t) => t.toFixed(3)).join(' ')}\n`);
  process.stdout.write(`learned in ${result.seconds.toFixed(0)} s; thresholds written to ${out}\n`);
}
