import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { ViTModel } from '../model/types.js';
import type { ViTRunner } from '../model/vit.js';
import { denseGmacs } from '../prune/flops.js';
import { calibrateLtpRamp, calibrationRun, ltpHooks } from '../prune/ltp.js';
import { planPruning, type Method } from '../prune/methods.js';
import { parseSchedule, scheduleGmacs } from '../prune/schedule.js';
import { zeroTPruneHooks } from '../prune/zero-tprune.js';
import type { LabelledImage } from './dataset.js';
import { agreementWithDense, evaluateVariants, type EvalResult, type Variant } from './evaluate.js';
import type { ImageLoader } from './image-loader.js';

/**
 * Every method at every budget on the same images (each decoded once), against the dense model.
 * Methods: the fixed-schedule ones of methods.ts, 'ltp' (a one-parameter threshold ramp
 * calibrated to the budget on unlabelled calibration images; the LTP paper learns thresholds by
 * fine-tuning, this does not), and 'zero-tprune-tuned' (schedule files from `vitprune tune`).
 */
export const COMPARE_METHODS = ['zero-tprune', 'tome', 'evit', 'topk', 'ltp', 'random', 'zero-tprune-tuned'] as const;
export type CompareMethod = (typeof COMPARE_METHODS)[number];

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
  images: number;
  dense: { top1: number; top5: number; gmacs: number; msPerImage: number };
  results: CompareRow[];
}

export interface CompareOptions {
  modelName: string;
  methods: CompareMethod[];
  budgets: number[];
  /** Tuned schedule file per budget (for 'zero-tprune-tuned'). */
  tuned?: Map<number, string>;
  /** Preprocessed unlabelled images for LTP's calibration. */
  calibration?: Float32Array[];
  progress?: boolean;
  log?: (line: string) => void;
  /** Where the evaluated images are loaded (EvalOptions.loader). */
  loader?: ImageLoader;
}

interface PlannedVariant extends Variant {
  method: string;
  budget: number;
  schedule: unknown;
}

async function planVariants(model: ViTModel, runner: ViTRunner, opts: CompareOptions): Promise<PlannedVariant[]> {
  const cfg = model.config;
  const variants: PlannedVariant[] = [];
  for (const budget of opts.budgets) {
    for (const method of opts.methods) {
      if (method === 'ltp') {
        if (!opts.calibration?.length) throw new UsageError('compare: LTP needs calibration images (--calib DIR)');
        const s = await calibrateLtpRamp(cfg, calibrationRun(runner, opts.calibration), budget);
        opts.log?.(`ltp at ${budget}: ramp c = ${s.c.toFixed(4)}, ${s.fraction.toFixed(3)} × dense on ${opts.calibration.length} calibration images`);
        const hooks = ltpHooks(s.thresholds);
        variants.push({ name: `ltp@${budget}`, method, budget, schedule: { c: s.c, theta: s.thresholds.theta, unit: s.thresholds.unit }, hooks: () => hooks });
      } else if (method === 'zero-tprune-tuned') {
        const file = opts.tuned?.get(budget);
        if (!file) continue; // tuned schedules exist for some budgets only
        const schedule = parseSchedule(readFileSync(file, 'utf8'), file);
        const fraction = scheduleGmacs(cfg, schedule) / denseGmacs(cfg);
        if (Math.abs(fraction / budget - 1) > 0.01) {
          throw new UsageError(`compare: tuned schedule ${file} costs ${fraction.toFixed(3)} × dense GMACs, not within 1 % of ${budget}`);
        }
        const hooks = zeroTPruneHooks(schedule);
        variants.push({ name: `zero-tprune-tuned@${budget}`, method, budget, schedule: { ...schedule, file }, hooks: () => hooks });
      } else {
        const plan = planPruning(cfg, { method: method as Method, budget });
        variants.push({ name: `${method}@${budget}`, method, budget, schedule: plan.schedule, hooks: (i) => plan.hooks(i) });
      }
    }
  }
  return variants;
}

export async function compareMethods(model: ViTModel, runner: ViTRunner, images: LabelledImage[], opts: CompareOptions): Promise<CompareReport> {
  const variants = await planVariants(model, runner, opts);
  const [dense, ...pruned] = await evaluateVariants(runner, images, [{ name: 'dense' }, ...variants], { progress: opts.progress, loader: opts.loader });
  const summary = (r: EvalResult) => ({ top1: r.top1, top5: r.top5, gmacs: r.gmacs, msPerImage: r.msPerImage });
  return {
    model: opts.modelName,
    images: images.length,
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
    `# ${r.model}: ${r.images} images`,
    '',
    'Agreement = share of images whose top-1 equals the dense model\'s; KL = mean KL(dense ‖ pruned). ' +
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
