import type { Prediction } from '../api/classifier.js';
import { ImageError } from '../errors.js';
import { checkImageFile, loadImageTensor } from '../image/file.js';
import { softmax, topK } from '../eval/metrics.js';
import { createProgress } from '../util/progress.js';
import { intOption, type CommandSpec, type Parsed } from './args.js';
import { MODEL_OPTIONS, openModel, printJson, reportInputError } from './common.js';
import { METHOD_OPTIONS, pruningFromOptions } from './pruning.js';

export const classifySpec: CommandSpec = {
  name: 'classify',
  summary: 'Classify images with a ViT/DeiT model and print the top predictions (an unreadable image is reported and skipped; exit code 1 then).',
  usage: 'vitprune classify [--model M] [--top K] [--method NAME --keep|--budget|--gmacs|--schedule ...] [--json] IMAGE...',
  options: {
    ...MODEL_OPTIONS,
    top: { type: 'string', valueName: 'K', default: '5', help: 'number of predictions per image' },
    ...METHOD_OPTIONS,
  },
  positionals: { name: 'IMAGE', min: 1 },
};

/** From this many images on, classify shows its progress on stderr (fewer finish before a progress line would help). */
const PROGRESS_FROM_IMAGES = 10;

type Outcome = { file: string; method?: string; gmacs?: number; predictions: Prediction[] } | { file: string; error: string };

/**
 * Every image is classified on its own: one that cannot be read or decoded is reported (one
 * stderr line; in --json an entry `{ file, error }` in its place) and the others go on. Files
 * that are missing or do not start like an image are refused before the model is loaded, so
 * no download starts for them. Exit code 1 when any image failed.
 */
export async function classifyCommand({ values, positionals }: Parsed): Promise<number> {
  const k = intOption(values, 'top', 5)!;
  const verbose = values.verbose === true;
  const failures = new Map<number, ImageError>(); // by position in the command line
  const fail = (i: number, error: unknown): void => {
    if (!(error instanceof ImageError)) throw error;
    failures.set(i, error);
    reportInputError(error.message, verbose ? error.stack : undefined);
  };
  positionals.forEach((file, i) => {
    try {
      checkImageFile(file);
    } catch (error) {
      fail(i, error);
    }
  });
  if (failures.size === positionals.length) {
    // No model needed: --json still gives one entry per file.
    if (values.json) printJson(positionals.map((file, i) => ({ file, error: failures.get(i)!.message })));
    return 1;
  }

  const { model, runner } = await openModel(values);
  const { labels, descriptions, preprocess } = model.config;
  const plan = await pruningFromOptions(values, runner);
  const readable = positionals.length - failures.size;
  const bar = createProgress({ label: 'classify', total: readable, unit: 'items', enabled: !values.quiet && readable >= PROGRESS_FROM_IMAGES });
  const outcomes: Outcome[] = [];
  const lateFailures: ImageError[] = []; // reported once the progress line is done
  for (const [i, file] of positionals.entries()) {
    const failed = failures.get(i);
    if (failed) {
      outcomes.push({ file, error: failed.message });
      continue;
    }
    let input: Float32Array;
    try {
      input = loadImageTensor(file, preprocess);
    } catch (error) {
      if (!(error instanceof ImageError)) throw error;
      failures.set(i, error);
      lateFailures.push(error);
      outcomes.push({ file, error: error.message });
      bar.tick();
      continue;
    }
    const { logits, gmacs } = runner.forward(input, plan?.hooks(i));
    const probs = softmax(logits);
    const predictions = topK(logits, k).map((index) => ({ index, label: labels[index], description: descriptions[index], score: probs[index] }));
    outcomes.push({ file, ...(plan && { method: plan.method, gmacs }), predictions });
    bar.tick();
    // Yield to the event loop now and then so the progress line and signals get through.
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  bar.done();
  for (const error of lateFailures) reportInputError(error.message, verbose ? error.stack : undefined);

  if (values.json) printJson(outcomes);
  else {
    for (const outcome of outcomes) {
      if ('error' in outcome) continue;
      const { file, predictions, gmacs } = outcome;
      process.stdout.write(`${file}${plan ? ` (${plan.method}, ${gmacs!.toFixed(4)} GMACs)` : ''}\n`);
      for (const p of predictions) {
        const name = p.description ? `${p.label} (${p.description})` : p.label;
        process.stdout.write(`  ${(p.score * 100).toFixed(2).padStart(6)} %  ${String(p.index).padStart(4)}  ${name}\n`);
      }
    }
  }
  return failures.size > 0 ? 1 : 0;
}
