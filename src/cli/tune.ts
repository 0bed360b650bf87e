import { UsageError } from '../errors.js';
import { listImages, selectSplit, type Split } from '../eval/dataset.js';
import { klDivergence, topK } from '../eval/metrics.js';
import { denseGmacs } from '../model/gmacs.js';
import { PLACEMENT_OPTION, PLACEMENTS, scheduleToJson, type Placement } from '../prune/schedule.js';
import { TOKEN_METHODS, tokenMethod } from '../prune/registry.js';
import type { PruneSchedule } from '../prune/schedule.js';
import { tuneSchedule, type CandidateScore } from '../prune/tune.js';
import { createProgress } from '../util/progress.js';
import { intOption, stringOption, type CommandSpec, type Parsed } from './args.js';
import { loadCalibrationImages } from './calibration-images.js';
import { MODEL_OPTIONS, openModel, printJson, writeOutputFile } from './common.js';

/** The methods whose settings are a post-block schedule, the search space of tuneSchedule. */
const TUNABLE = TOKEN_METHODS.filter((m) => m.tunable).map((m) => m.name);

export const tuneSpec: CommandSpec = {
  name: 'tune',
  summary: 'Search a Zero-TPrune schedule for a GMACs budget on unlabelled calibration images (Monte-Carlo, scored against the dense model).',
  usage: 'vitprune tune [--model M] --method zero-tprune --budget F|--gmacs G --calib DIR [--samples N] [--split even|odd] [--out FILE] [--json]',
  options: {
    ...MODEL_OPTIONS,
    method: { type: 'string', valueName: 'NAME', default: 'zero-tprune', help: `method to tune (${TUNABLE.join(', ')})` },
    budget: { type: 'string', valueName: 'F', help: 'GMACs as a fraction of dense' },
    gmacs: { type: 'string', valueName: 'G', help: 'GMACs as an absolute figure' },
    calib: { type: 'string', valueName: 'DIR', help: 'folder of calibration images (labels are never read)' },
    samples: { type: 'string', valueName: 'N', help: 'use the first N calibration images (default: all)' },
    split: { type: 'string', valueName: 'S', help: "use only the images at 'even' or 'odd' positions of the sorted folder" },
    candidates: { type: 'string', valueName: 'K', default: '100', help: 'random schedules sampled besides the presets' },
    seed: { type: 'string', valueName: 'S', default: '1', help: 'random seed of the search' },
    placement: {
      type: 'string',
      valueName: 'P',
      default: PLACEMENT_OPTION.default,
      help: `the schedules' placement: ${PLACEMENTS.join(' | ')} (${PLACEMENT_OPTION.help})`,
    },
    out: { type: 'string', valueName: 'FILE', help: 'write the best schedule here (JSON, for --schedule)' },
  },
};

export async function tuneCommand({ values }: Parsed): Promise<void> {
  if (!TUNABLE.includes(values.method as string)) {
    throw new UsageError(`tune searches post-block schedules: --method ${TUNABLE.join(' | ')}, got '${values.method}'`);
  }
  const method = tokenMethod(values.method as string);
  const placement = values.placement as Placement;
  if (!PLACEMENTS.includes(placement)) throw new UsageError(`--placement expects one of ${PLACEMENTS.join(', ')}, got '${placement}'`);
  const calib = stringOption(values, 'calib');
  if (!calib) throw new UsageError("'vitprune tune' needs --calib DIR (unlabelled images)");
  if ((values.budget === undefined) === (values.gmacs === undefined)) throw new UsageError("'vitprune tune' needs exactly one of --budget F and --gmacs G");
  const { model, runner } = await openModel(values);
  const cfg = model.config;
  const budget = values.budget !== undefined ? Number(values.budget) : Number(values.gmacs) / denseGmacs(cfg);
  if (!(budget > 0 && budget < 1)) throw new UsageError(`the budget must be a fraction in (0, 1) of dense GMACs, got ${budget}`);
  const files = selectSplit(listImages(calib), values.split as Split | undefined).slice(0, intOption(values, 'samples'));

  // Decode every calibration image once and run the dense model once: the yardstick.
  const inputs = loadCalibrationImages(files, cfg.preprocess, values.quiet === true);
  const dense = inputs.map((input) => runner.forward(input).logits);
  const denseTop1 = dense.map((l) => topK(l, 1)[0]);

  const score = async (schedule: PruneSchedule, images: number): Promise<CandidateScore> => {
    const hooks = (await method.plan(cfg, { settings: schedule, options: { placement } })).hooks(0);
    let agree = 0;
    let kl = 0;
    for (let i = 0; i < images; i++) {
      const { logits } = runner.forward(inputs[i], hooks);
      if (topK(logits, 1)[0] === denseTop1[i]) agree++;
      kl += klDivergence(dense[i], logits);
    }
    return { agreement: agree / images, kl: kl / images };
  };
  // The search reports forward passes done out of its total; the bar is made at the first report.
  const progress: { bar?: ReturnType<typeof createProgress> } = {};
  const result = await tuneSchedule(cfg, score, {
    budget,
    candidates: intOption(values, 'candidates', 100)!,
    images: inputs.length,
    seed: intOption(values, 'seed', 1),
    placement,
    onProgress: (done, total) => {
      progress.bar ??= createProgress({ label: 'tune (forward passes)', total, unit: 'items', enabled: !values.quiet });
      progress.bar.update(done);
    },
  });
  progress.bar?.done();

  const out = stringOption(values, 'out');
  if (out) {
    writeOutputFile('--out', out, scheduleToJson(result.best.schedule));
  }
  const report = {
    model: values.model,
    method: method.name,
    budget,
    calibrationImages: inputs.length,
    candidatesEvaluated: result.evaluated,
    out: out ?? null,
    best: { ...result.best },
    untuned: { ...result.baseline },
  };
  if (values.json) {
    printJson(report);
    return;
  }
  const line = (name: string, c: typeof result.best) =>
    `${name}: ${c.gmacs.toFixed(4)} GMACs (×${c.fraction.toFixed(3)}), agreement ${c.score.agreement.toFixed(3)}, KL ${c.score.kl.toFixed(4)} on ${c.images} images  [${c.origin}]\n`;
  process.stdout.write(line('tuned  ', result.best));
  process.stdout.write(line('untuned', result.baseline));
  process.stdout.write(out ? `schedule written to ${out}\n` : scheduleToJson(result.best.schedule));
}
