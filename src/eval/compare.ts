import type { ViTModel } from '../model/types.js';
import type { ViTRunner } from '../model/vit.js';
import { denseGmacs } from '../model/gmacs.js';
import { gradKernelsFor } from '../grad/kernels.js';
import { SoftMaskedViT } from '../grad/soft-vit.js';
import { ltp } from '../prune/ltp.js';
import { learnLtpThresholds } from '../prune/ltp-learn.js';
import { calibrationRun, type PlanContext } from '../prune/method.js';
import { tokenMethod } from '../prune/registry.js';
import { zeroTPrune } from '../prune/zero-tprune.js';
import { createProgress } from '../util/progress.js';
import { ImageError, UsageError } from '../errors.js';
import type { LabelledImage } from './dataset.js';
import { agreementWithDense, evaluateVariants, type EvalResult, type SkippedImage, type Variant } from './evaluate.js';
import type { ImageLoader } from './image-loader.js';
import type { ImageWorkerPool } from './image-workers.js';

/**
 * Every method at every budget on the same images (each decoded once), against the dense model (Node only).
 * Methods: any of the registry (prune/registry.ts), planned for each budget; per-image ones (LTP)
 * calibrate on the unlabelled calibration images; 'zero-tprune-tuned', Zero-TPrune with the
 * schedules `vitprune tune` found, given per budget; and 'ltp-learned', LTP with thresholds learned
 * with the model frozen (prune/ltp-learn.ts): a thresholds file of `vitprune learn-ltp` given for
 * the budget, or else learned here on the calibration images.
 */
export const TUNED_METHOD = 'zero-tprune-tuned';
export const LEARNED_METHOD = 'ltp-learned';

export interface CompareRow {
  method: string;
  budget: number; // requested GMACs fraction of dense
  gmacs: number; // mean executed GMACs per image
  top1: number;
  top5: number;
  agreement: number;
  kl: number;
  msPerImage: number;
  schedule: unknown;
}

export interface CompareReport {
  model: string;
  images: number; // images evaluated (unreadable ones left out)
  skipped: SkippedImage[]; // images that could not be read or decoded, left out of every row
  dense: { top1: number; top5: number; gmacs: number; msPerImage: number };
  results: CompareRow[];
}

/** A Zero-TPrune schedule found by `vitprune tune` for one budget. */
export interface TunedSchedule {
  budget: number;
  schedule: unknown; // its JSON
  file: string; // where it came from
}

/** LTP thresholds learned by `vitprune learn-ltp` for one budget. */
export interface LearnedThresholds {
  budget: number;
  thresholds: unknown; // the file's JSON (ltp-thresholds.ts): method ltp's settings
  file: string; // where it came from
}

export interface CompareOptions {
  modelName: string;
  methods: string[]; // registry names, TUNED_METHOD and LEARNED_METHOD
  budgets: number[];
  /** Tuned schedules (for TUNED_METHOD), for some budgets. */
  tuned?: TunedSchedule[];
  /** Learned thresholds (for LEARNED_METHOD), for some budgets; at the others they are learned on `calibration`. */
  learned?: LearnedThresholds[];
  /** Preprocessed unlabelled images the per-image methods calibrate on, and LEARNED_METHOD learns on (never the evaluated ones). */
  calibration?: Float32Array[];
  progress?: boolean;
  log?: (line: string) => void;
  /** Where the evaluated images are loaded (EvalOptions.loader). */
  loader?: ImageLoader;
  /** Whole images on worker threads (EvalOptions.workers): each builds dense and planVariants' variants again. */
  workers?: ImageWorkerPool;
}

interface PlannedVariant extends Variant {
  method: string;
  budget: number;
  schedule: unknown;
}

/** The variants compare runs besides dense, planned for `model` (also what each evaluation thread plans again). */
export async function planVariants(model: ViTModel, runner: ViTRunner, opts: CompareOptions): Promise<PlannedVariant[]> {
  const cfg = model.config;
  const dense = denseGmacs(cfg);
  const context: PlanContext = opts.calibration?.length ? { calibration: calibrationRun(runner, opts.calibration) } : {};
  const variants: PlannedVariant[] = [];
  let soft: SoftMaskedViT | undefined; // prepared (weights packed again, transposed) at the first budget LEARNED_METHOD learns at
  const softModel = () => (soft ??= new SoftMaskedViT(model, gradKernelsFor(runner.kernels)));
  for (const budget of opts.budgets) {
    for (const name of opts.methods) {
      if (name === TUNED_METHOD) {
        const tuned = opts.tuned?.find((t) => t.budget === budget);
        if (!tuned) continue; // tuned schedules exist for some budgets only
        const plan = await zeroTPrune.plan(cfg, { settings: tuned.schedule, settingsSource: tuned.file });
        const fraction = plan.gmacs! / dense;
        if (Math.abs(fraction / budget - 1) > 0.01) {
          throw new UsageError(`compare: tuned schedule ${tuned.file} costs ${fraction.toFixed(3)} × dense GMACs, not within 1 % of ${budget}`);
        }
        const schedule = { ...(plan.settings as object), file: tuned.file };
        variants.push({ name: `${name}@${budget}`, method: name, budget, schedule, hooks: (i) => plan.hooks(i) });
        continue;
      }
      if (name === LEARNED_METHOD) {
        variants.push(await learnedVariant(model, runner, softModel, budget, opts));
        continue;
      }
      const method = tokenMethod(name);
      const plan = await method.plan(cfg, { budget }, context);
      if (method.counts === 'per-image') {
        const fraction = (plan.gmacs! / dense).toFixed(3);
        opts.log?.(`${name} at ${budget}: ${JSON.stringify(plan.settings)}, ${fraction} × dense on ${opts.calibration?.length} calibration images`);
      }
      variants.push({ name: `${name}@${budget}`, method: name, budget, schedule: plan.settings, hooks: (i) => plan.hooks(i) });
    }
  }
  return variants;
}

/** LEARNED_METHOD at `budget`: the thresholds file given for it, or thresholds learned now on the calibration images. */
async function learnedVariant(model: ViTModel, runner: ViTRunner, soft: () => SoftMaskedViT, budget: number, opts: CompareOptions): Promise<PlannedVariant> {
  const name = `${LEARNED_METHOD}@${budget}`;
  const given = opts.learned?.find((t) => t.budget === budget);
  if (given) {
    const plan = await ltp.plan(model.config, { settings: given.thresholds, settingsSource: given.file });
    return { name, method: LEARNED_METHOD, budget, schedule: { ...(plan.settings as object), file: given.file }, hooks: (i) => plan.hooks(i) };
  }
  const calibration = opts.calibration ?? [];
  if (calibration.length === 0) {
    throw new UsageError(`compare: ${LEARNED_METHOD} at ${budget} needs a thresholds file learned for that budget, or calibration images to learn on`);
  }
  const progress: { bar?: ReturnType<typeof createProgress> } = {};
  const learned = await learnLtpThresholds(runner, soft(), calibration, {
    budget,
    log: opts.log && ((line) => opts.log!(`${name}: ${line}`)),
    onProgress: (done, total) => {
      progress.bar ??= createProgress({ label: `${name} (forward + backward)`, total, unit: 'items', enabled: opts.progress === true });
      progress.bar.update(done);
      if (done === total) progress.bar.done();
    },
  });
  const plan = await ltp.plan(model.config, { settings: learned.thresholds, settingsSource: name });
  const schedule = { ...(plan.settings as object), learned: { images: calibration.length, kept: learned.kept, seconds: learned.seconds, ...learned.hard } };
  return { name, method: LEARNED_METHOD, budget, schedule, hooks: (i) => plan.hooks(i) };
}

/**
 * Runs dense and every planned variant over `images`. An image that cannot be read or decoded is
 * left out of every row and listed in the report's `skipped` (ImageError when none can be read).
 */
export async function compareMethods(model: ViTModel, runner: ViTRunner, images: LabelledImage[], opts: CompareOptions): Promise<CompareReport> {
  const variants = await planVariants(model, runner, opts);
  const skipped: SkippedImage[] = [];
  const [dense, ...pruned] = await evaluateVariants(runner, images, [{ name: 'dense' }, ...variants], {
    progress: opts.progress,
    loader: opts.loader,
    workers: opts.workers,
    onUnreadable: ({ file }, error) => skipped.push({ file, error: error.message }),
  });
  if (dense.images.length === 0) throw new ImageError(`compare: none of the ${images.length} images could be read (first: ${skipped[0]?.error})`);
  const summary = (r: EvalResult) => ({ top1: r.top1, top5: r.top5, gmacs: r.gmacs, msPerImage: r.msPerImage });
  return {
    model: opts.modelName,
    images: dense.images.length,
    skipped,
    dense: summary(dense),
    results: variants.map((v, i) => {
      const { agreement, kl } = agreementWithDense(dense, pruned[i]);
      return { method: v.method, budget: v.budget, ...summary(pruned[i]), agreement, kl, schedule: v.schedule };
    }),
  };
}

/** The report as a Markdown table (one row per method and budget, dense first). */
export function reportMarkdown(r: CompareReport): string {
  const pct = (x: number) => (x * 100).toFixed(1);
  const lines = [
    `# ${r.model}: ${r.images} images${r.skipped.length ? ` (${r.skipped.length} more could not be read and are left out: ${r.skipped.map((s) => s.file).join(', ')})` : ''}`,
    '',
    "Agreement = share of images whose top-1 equals the dense model's; KL = mean KL(dense ‖ pruned). " +
      `With ${r.images} images one image is ${(100 / r.images).toFixed(2)} point and top-1 carries a sampling noise of about ±${(100 * Math.sqrt((r.dense.top1 * (1 - r.dense.top1)) / r.images)).toFixed(1)} points (one standard error): agreement and KL decide.`,
    '',
    '| method | budget | GMACs (× dense) | top-1 % | top-5 % | agreement | KL | ms/image |',
    '|---|---|---|---|---|---|---|---|',
    `| dense | 1 | ${r.dense.gmacs.toFixed(4)} (1.000) | ${pct(r.dense.top1)} | ${pct(r.dense.top5)} | — | — | ${r.dense.msPerImage.toFixed(1)} |`,
  ];
  const rows = [...r.results].sort((a, b) => b.budget - a.budget || a.method.localeCompare(b.method));
  for (const x of rows) {
    lines.push(
      `| ${x.method} | ${x.budget} | ${x.gmacs.toFixed(4)} (${(x.gmacs / r.dense.gmacs).toFixed(3)}) | ${pct(x.top1)} | ${pct(x.top5)} | ${x.agreement.toFixed(3)} | ${x.kl.toFixed(4)} | ${x.msPerImage.toFixed(1)} |`,
    );
  }
  return lines.join('\n') + '\n';
}
