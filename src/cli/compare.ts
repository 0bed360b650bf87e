import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import {
  compareMethods,
  planVariants,
  type CompareOptions,
  LEARNED_METHOD,
  reportMarkdown,
  TUNED_METHOD,
  type CompareReport,
  type LearnedThresholds,
  type TunedSchedule,
} from '../eval/compare.js';
import { labelImages, listImages, selectSplit, spreadSample, type Split } from '../eval/dataset.js';
import type { VariantSetup } from '../eval/image-workers.js';
import { loadImageTensor } from '../image/file.js';
import type { ViTConfig } from '../model/types.js';
import { parseLtpThresholds } from '../prune/ltp-thresholds.js';
import { TOKEN_METHODS } from '../prune/registry.js';
import { intOption, stringOption, type CommandSpec, type Parsed } from './args.js';
import { MODEL_OPTIONS, openImageLoader, openImageWorkers, openModel, printJson, reportInputError, writeOutputFile } from './common.js';

const COMPARE_METHODS = [...TOKEN_METHODS.map((m) => m.name), TUNED_METHOD, LEARNED_METHOD];

export const compareSpec: CommandSpec = {
  name: 'compare',
  summary: 'Run several pruning methods at several GMACs budgets on the same images and write a report (JSON, Markdown, plots).',
  usage:
    'vitprune compare [--model M[,M2...]] --images DIR [--labels CSV] --budgets 0.95,0.87,0.78,0.70,0.62 ' +
    '--methods zero-tprune,tome,evit,topk,ltp,random [--tuned F=FILE,...] [--thresholds FILE,...] [--calib DIR] [--out DIR] [--json]',
  options: {
    ...MODEL_OPTIONS,
    images: { type: 'string', valueName: 'DIR', help: 'folder of evaluation images (required)' },
    labels: { type: 'string', valueName: 'CSV', help: "labels CSV (columns 'file', 'class_index'); default: WordNet-id file names" },
    split: { type: 'string', valueName: 'S', help: "evaluate only the images at 'even' or 'odd' positions" },
    limit: { type: 'string', valueName: 'N', help: 'evaluate only the first N images' },
    budgets: { type: 'string', valueName: 'LIST', default: '0.95,0.87,0.78,0.70,0.62', help: 'GMACs fractions of dense' },
    methods: { type: 'string', valueName: 'LIST', default: TOKEN_METHODS.map((m) => m.name).join(','), help: `methods: ${COMPARE_METHODS.join(', ')}` },
    tuned: { type: 'string', valueName: 'LIST', help: `tuned Zero-TPrune schedules as 'budget=FILE,...' (method ${TUNED_METHOD})` },
    thresholds: {
      type: 'string',
      valueName: 'LIST',
      help: `LTP thresholds files of vitprune learn-ltp, 'FILE,...', each for the budget it was learned for (method ${LEARNED_METHOD}; at budgets without one it learns on the calibration images)`,
    },
    calib: {
      type: 'string',
      valueName: 'DIR',
      help: `unlabelled images to calibrate per-image methods (LTP thresholds) on, and ${LEARNED_METHOD} to learn on (default: the --images folder)`,
    },
    'calib-split': {
      type: 'string',
      valueName: 'S',
      help: "calibrate on the 'even' or 'odd' images of --calib (default: the half not evaluated, when --split is given)",
    },
    'calib-samples': { type: 'string', valueName: 'N', default: '128', help: 'calibration images, spread evenly over the folder' },
    out: { type: 'string', valueName: 'DIR', help: 'write report.json, report.md and the plots here' },
  },
};

function parseList<T extends string>(raw: string, allowed: readonly T[], option: string): T[] {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const x of list) {
    if (!(allowed as readonly string[]).includes(x)) throw new UsageError(`--${option}: expected items from ${allowed.join(', ')}, got '${x}'`);
  }
  return list as T[];
}

function parseBudgets(raw: string): number[] {
  return raw.split(',').map((s) => {
    const b = Number(s);
    if (!(b > 0 && b <= 1)) throw new UsageError(`--budgets expects fractions in (0, 1], got '${s}'`);
    return b;
  });
}

function parseTuned(raw: string | undefined): TunedSchedule[] {
  return (raw?.split(',') ?? []).map((item) => {
    const [budget, file] = item.split('=');
    if (!file || !(Number(budget) > 0)) throw new UsageError(`--tuned expects 'budget=FILE' items, got '${item}'`);
    let schedule: unknown;
    try {
      schedule = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new UsageError(`--tuned: cannot read the schedule '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return { budget: Number(budget), schedule, file };
  });
}

/** The files of --thresholds, read (each is checked against the model it runs on). */
function readThresholdsFiles(raw: string | undefined): { file: string; text: string }[] {
  return (
    raw
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean) ?? []
  ).map((file) => {
    try {
      return { file, text: readFileSync(file, 'utf8') };
    } catch (err) {
      throw new UsageError(`--thresholds: cannot read the thresholds file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  });
}

/** How many of `files` are also in `others` (by resolved path). */
function overlap(files: readonly string[], others: readonly string[]): number {
  const set = new Set(others.map((f) => path.resolve(f)));
  return files.filter((f) => set.has(path.resolve(f))).length;
}

/**
 * The images a thresholds file was learned on, from its calibration record (folder, split, count,
 * as learn-ltp picks them); null when the record or the folder is missing.
 */
function learnedOn(record: unknown): string[] | null {
  const { folder, split, images } = (record ?? {}) as { folder?: unknown; split?: unknown; images?: unknown };
  if (typeof folder !== 'string' || typeof images !== 'number' || !existsSync(folder)) return null;
  return spreadSample(selectSplit(listImages(folder), (split ?? undefined) as Split | undefined), images);
}

/** A --thresholds file for `cfg`'s model: learned for one of `budgets`, and not on the evaluated images. */
function learnedThresholds(
  file: string,
  text: string,
  cfg: ViTConfig,
  budgets: readonly number[],
  evaluated: readonly string[],
  log?: (line: string) => void,
): LearnedThresholds {
  const thresholds = parseLtpThresholds(text, file, cfg);
  if (!budgets.includes(thresholds.budget)) {
    throw new UsageError(`--thresholds: ${file} was learned for ${thresholds.budget} × dense GMACs, not one of --budgets ${budgets.join(',')}`);
  }
  const learnedFiles = learnedOn(thresholds.calibration);
  if (learnedFiles === null) {
    log?.(`${LEARNED_METHOD}: ${file} does not say which images it was learned on (or they are gone): not checked against the evaluated ones`);
    return { budget: thresholds.budget, thresholds, file };
  }
  const shared = overlap(learnedFiles, evaluated);
  if (shared > 0) throw new UsageError(`--thresholds: ${file} was learned on ${shared} of the images compare evaluates: evaluate others (--split)`);
  return { budget: thresholds.budget, thresholds, file };
}

/** What each evaluation thread builds (image-workers.ts): dense and compare's variants for one model, on one thread. */
export async function compareThreadSetup({ values, planned }: { values: Parsed['values']; planned: CompareOptions }): Promise<VariantSetup> {
  const { model, runner } = await openModel({ ...values, model: planned.modelName, threads: '1', quiet: true });
  return { runner, variants: [{ name: 'dense' }, ...(await planVariants(model, runner, planned))] };
}

export async function compareCommand({ values }: Parsed): Promise<number> {
  const imagesDir = stringOption(values, 'images');
  if (!imagesDir) throw new UsageError("'vitprune compare' needs --images DIR (see --help)");
  const methods = parseList(values.methods as string, COMPARE_METHODS, 'methods');
  const budgets = parseBudgets(values.budgets as string);
  const tuned = parseTuned(stringOption(values, 'tuned'));
  if (tuned.length && !methods.includes(TUNED_METHOD)) methods.push(TUNED_METHOD);
  const thresholdsFiles = readThresholdsFiles(stringOption(values, 'thresholds'));
  if (thresholdsFiles.length && !methods.includes(LEARNED_METHOD)) methods.push(LEARNED_METHOD);
  const split = values.split as Split | undefined;
  const out = stringOption(values, 'out');
  if (out) mkdirSync(out, { recursive: true });

  // The folder is read before any model is loaded (or downloaded).
  const files = selectSplit(listImages(imagesDir), split).slice(0, intOption(values, 'limit'));
  const reports: CompareReport[] = [];
  for (const spec of (values.model as string).split(',')) {
    const { model, runner } = await openModel({ ...values, model: spec });
    const images = labelImages(files, model.config.labels, stringOption(values, 'labels'));
    const log = values.quiet ? undefined : (line: string) => process.stderr.write(line + '\n');
    const learned = thresholdsFiles.map(({ file, text }) => learnedThresholds(file, text, model.config, budgets, files, log));
    const learnsHere = methods.includes(LEARNED_METHOD) && budgets.some((b) => !learned.some((l) => l.budget === b));
    let calibration: Float32Array[] | undefined;
    if (learnsHere || TOKEN_METHODS.some((m) => m.counts === 'per-image' && methods.includes(m.name))) {
      const calibSplit = (values['calib-split'] as Split | undefined) ?? (split === 'even' ? 'odd' : split === 'odd' ? 'even' : undefined);
      const calibFolder = selectSplit(listImages(stringOption(values, 'calib') ?? imagesDir), calibSplit);
      const calibFiles = spreadSample(calibFolder, intOption(values, 'calib-samples', 128)!);
      const shared = overlap(calibFiles, files);
      if (learnsHere && shared > 0) {
        throw new UsageError(
          `compare: ${LEARNED_METHOD} learns on calibration images it is not evaluated on, but ${shared} of the ${calibFiles.length} are evaluated: ` +
            'give --split even|odd (it learns on the other half), or --calib DIR with other images, or --thresholds files',
        );
      }
      calibration = calibFiles.map((f) => loadImageTensor(f, model.config.preprocess));
    }
    // With threads, each thread runs whole images (image-workers.ts), unless calibration images
    // make planning costly: then the threads split every forward pass.
    const planned = { modelName: spec, methods, budgets, tuned, learned };
    const workers = calibration
      ? undefined
      : await openImageWorkers(values, { module: import.meta.url, name: 'compareThreadSetup', arg: { values: { ...values }, planned } });
    const loader = workers ? undefined : await openImageLoader(values);
    reports.push(await compareMethods(model, runner, images, { ...planned, calibration, progress: !values.quiet, log, loader, workers }));
    workers?.close(); // its threads hold this model; the next one gets its own
  }
  // Each unreadable image once, though every model met it.
  const skipped = new Map(reports.flatMap((r) => r.skipped.map((s) => [s.file, s.error] as const)));
  for (const error of skipped.values()) reportInputError(error);

  if (out) {
    const name = (i: number) => (reports.length > 1 ? `report-${i + 1}` : 'report');
    // The plotting packages are optional: loaded only when plots are written.
    const { comparePlotSpecs, renderSvg, svgToPng } = await import('../eval/plots.js');
    for (const [i, r] of reports.entries()) {
      writeOutputFile('--out', path.join(out, `${name(i)}.json`), JSON.stringify(r, null, 2) + '\n');
      writeOutputFile('--out', path.join(out, `${name(i)}.md`), reportMarkdown(r));
      for (const [plot, spec] of Object.entries(comparePlotSpecs(r))) {
        const svg = await renderSvg(spec);
        const base = path.join(out, `${name(i)}-${plot}`);
        writeOutputFile('--out', `${base}.svg`, svg);
        writeOutputFile('--out', `${base}.png`, await svgToPng(svg));
      }
    }
  }
  if (values.json) printJson(reports.length === 1 ? reports[0] : reports);
  else for (const r of reports) process.stdout.write(reportMarkdown(r) + '\n');
  return skipped.size > 0 ? 1 : 0;
}
