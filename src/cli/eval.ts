import { UsageError, VitpruneError, type ImageError } from '../errors.js';
import { labelImages, listImages, selectSplit, type Split } from '../eval/dataset.js';
import { agreementWithDense, evaluateVariants, type EvalResult, type SkippedImage, type Variant } from '../eval/evaluate.js';
import type { VariantSetup } from '../eval/image-workers.js';
import { intOption, stringOption, type CommandSpec, type Parsed } from './args.js';
import { localModelSpec, MODEL_OPTIONS, openImageLoader, openImageWorkers, openModel, printJson, reportInputError, writeOutputFile } from './common.js';
import { METHOD_OPTIONS, pruningFromOptions } from './pruning.js';

export const evalSpec: CommandSpec = {
  name: 'eval',
  summary:
    'Measure top-1/top-5 accuracy, GMACs and speed on a folder of labelled images (and, with --method, agreement with the dense model); ' +
    'unreadable images are reported and skipped (exit code 1 then).',
  usage: 'vitprune eval [--model M] --images DIR [--labels CSV] [--limit N] [--method NAME --keep|--budget|--gmacs|--schedule ...] [--dense M0] [--json]',
  options: {
    ...MODEL_OPTIONS,
    images: { type: 'string', valueName: 'DIR', help: 'folder of .jpg/.jpeg/.png images (required)' },
    labels: {
      type: 'string',
      valueName: 'CSV',
      help: "CSV with columns 'file' and 'class_index'; without it, labels come from WordNet-id file-name prefixes",
    },
    limit: { type: 'string', valueName: 'N', help: 'evaluate only the first N images (sorted by name)' },
    predictions: { type: 'string', valueName: 'FILE', help: 'also write per-image top-5 predictions and GMACs as JSON (for cross-checks)' },
    split: { type: 'string', valueName: 'S', help: "evaluate only the images at 'even' or 'odd' positions of the sorted folder" },
    dense: {
      type: 'string',
      valueName: 'M',
      help: 'measure agreement and KL against this model (e.g. the original of a channel-pruned one); default: --model without token pruning',
    },
    ...METHOD_OPTIONS,
  },
};

const summary = (r: EvalResult) => ({ top1: r.top1, top5: r.top5, gmacs: r.gmacs, msPerImage: r.msPerImage });

/** The model, plan and variants `vitprune eval` runs for these options: dense (or --dense's model) and, with a method or --dense, the compared one. */
async function evalVariants(values: Parsed['values']) {
  const { model, runner } = await openModel(values);
  const plan = await pruningFromOptions(values, runner);
  // With a method or --dense, the yardstick runs on the same images, interleaved.
  const denseSpec = stringOption(values, 'dense');
  const yardstick = denseSpec ? (await openModel({ ...values, model: denseSpec })).runner : undefined;
  if (yardstick && JSON.stringify(yardstick.config.preprocess) !== JSON.stringify(model.config.preprocess)) {
    throw new UsageError(
      `--dense ${denseSpec} preprocesses images differently from --model ${values.model as string}; they cannot be compared on the same inputs`,
    );
  }
  const compared = Boolean(plan || yardstick);
  const variants: Variant[] = [{ name: 'dense', runner: yardstick }];
  if (compared) variants.push({ name: plan?.method ?? 'model', hooks: plan ? (i) => plan.hooks(i) : undefined });
  return { model, runner, plan, compared, variants };
}

/** What each evaluation thread builds (image-workers.ts): eval's variants on one thread, quietly. */
export async function evalThreadSetup(values: Parsed['values']): Promise<VariantSetup> {
  return evalVariants({ ...values, threads: '1', quiet: true });
}

export async function evalCommand({ values }: Parsed): Promise<number> {
  const imagesDir = stringOption(values, 'images');
  if (!imagesDir) throw new UsageError("'vitprune eval' needs --images DIR (see --help)");
  const limit = intOption(values, 'limit');
  // The folder is read before the model is loaded (or downloaded).
  const files = selectSplit(listImages(imagesDir), values.split as Split | undefined).slice(0, limit);
  // Hub models are downloaded first, once, and every thread loads them from the cache.
  const denseSpec = stringOption(values, 'dense'); // as given, for the report
  const local = { ...values, model: await localModelSpec(values), ...(denseSpec && { dense: await localModelSpec({ ...values, model: denseSpec }) }) };
  // With threads, each thread runs whole images (image-workers.ts; their setup overlaps this
  // one's), unless calibration images make planning costly: then the threads split every forward pass.
  const workers = values.calib === undefined ? await openImageWorkers(values, { module: import.meta.url, name: 'evalThreadSetup', arg: local }) : undefined;
  const { model, runner, plan, compared, variants } = await evalVariants(workers ? { ...local, threads: '1' } : local);
  const images = labelImages(files, model.config.labels, stringOption(values, 'labels'));
  const loader = workers ? undefined : await openImageLoader(values);
  const skipped: SkippedImage[] = [];
  const skipErrors: ImageError[] = []; // reported once the progress line is done
  const onUnreadable = ({ file }: { file: string }, error: ImageError) => {
    skipped.push({ file, error: error.message });
    skipErrors.push(error);
  };
  const started = performance.now();
  const [dense, pruned] = await evaluateVariants(runner, images, variants, { progress: !values.quiet, loader, onUnreadable, workers });
  const evaluated = dense.images.length;
  // Throughput of the whole loop: reading, decoding and preprocessing included (each image runs every variant).
  const imagesPerSecond = evaluated / ((performance.now() - started) / 1000);
  for (const error of skipErrors) reportInputError(error.message, values.verbose ? error.stack : undefined);
  if (evaluated === 0) throw new VitpruneError(`none of the ${images.length} images in '${imagesDir}' could be read (each is reported above)`);
  const result = pruned ?? dense;
  const predictionsFile = stringOption(values, 'predictions');
  if (predictionsFile) {
    const rows = result.images.map(({ file, label, top5, gmacs }) => ({ file, label, top5, gmacs }));
    writeOutputFile('--predictions', predictionsFile, JSON.stringify({ model: values.model, backend: runner.kernels.name, preds: rows }) + '\n');
  }
  const report = {
    model: values.model,
    images: evaluated,
    skipped,
    imagesPerSecond,
    ...summary(result),
    ...(compared && {
      method: plan?.method ?? null,
      schedule: plan?.settings ?? null,
      denseModel: denseSpec ?? values.model,
      ...agreementWithDense(dense, pruned),
      gmacsFraction: pruned.gmacs / dense.gmacs,
      speedup: dense.msPerImage / pruned.msPerImage,
      dense: summary(dense),
    }),
  };
  const exitCode = skipped.length > 0 ? 1 : 0;
  if (values.json) {
    printJson(report);
    return exitCode;
  }
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  const line = (name: string, r: EvalResult) =>
    `${name}: top-1 ${pct(r.top1)}, top-5 ${pct(r.top5)}, ${r.gmacs.toFixed(4)} GMACs, ${r.msPerImage.toFixed(1)} ms/image\n`;
  const skippedNote = skipped.length ? ` (${skipped.length} of ${images.length} skipped: unreadable, listed on stderr)` : '';
  process.stdout.write(`model ${report.model}, ${report.images} images${skippedNote}, ${imagesPerSecond.toFixed(2)} images/s (decoding included)\n`);
  process.stdout.write(line(denseSpec ? `dense ${denseSpec}` : 'dense', dense));
  if (compared) {
    const a = agreementWithDense(dense, pruned);
    process.stdout.write(line(plan?.method ?? String(values.model), pruned));
    process.stdout.write(
      `  vs dense: agreement ${a.agreement.toFixed(3)}, KL ${a.kl.toFixed(4)}, top-1 loss ${(a.top1Loss * 100).toFixed(1)} points, ` +
        `GMACs ×${(pruned.gmacs / dense.gmacs).toFixed(3)}, speed ×${(dense.msPerImage / pruned.msPerImage).toFixed(2)}\n`,
    );
  }
  return exitCode;
}
