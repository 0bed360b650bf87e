import { basename } from 'node:path';
import { ImageError } from '../errors.js';
import type { ViTRunner } from '../model/vit.js';
import type { ForwardHooks } from '../model/hooks.js';
import { createProgress } from '../util/progress.js';
import type { LabelledImage } from './dataset.js';
import { loadOnThisThread, type ImageLoader } from './image-loader.js';
import type { ImageWorkerPool } from './image-workers.js';
import { klDivergence, topK } from './metrics.js';

/** One variant's outcome on one image. */
export interface VariantRun {
  top5: number[];
  logits: Float32Array; // [numClasses]
  gmacs: number;
  ms: number; // forward pass only (decode and preprocessing excluded)
}

export interface ImageResult extends VariantRun {
  file: string; // base name
  label: number | null;
}

export interface EvalResult {
  images: ImageResult[];
  top1: number; // fraction of labelled images whose top-1 is the label
  top5: number;
  gmacs: number; // mean executed GMACs per image
  msPerImage: number; // mean forward time per image
}

/** An image an evaluation left out because it could not be read or decoded, as reports list it. */
export interface SkippedImage {
  file: string; // path
  error: string; // the ImageError's message
}

/** Accuracy and agreement of ways of running a model over image files (Node only). */

/** One way of running the model: dense (no hooks) or a pruning method; optionally another model (same preprocessing). */
export interface Variant {
  name: string;
  hooks?: (imageIndex: number) => ForwardHooks;
  runner?: ViTRunner; // default: the runner given to evaluateVariants
}

export interface EvalOptions {
  progress?: boolean;
  /**
   * Where input tensors come from (default: loaded on this thread when their turn comes). The
   * next image's load is started before the current one runs: with a BackgroundImageLoader,
   * decoding overlaps inference.
   */
  loader?: ImageLoader;
  /**
   * Called for each image that cannot be read or decoded (an ImageError), which is then left out
   * of every variant's results, so the results count fewer images than were given. Without it,
   * such an image ends the evaluation with its error.
   */
  onUnreadable?: (image: LabelledImage, error: ImageError) => void;
  /**
   * Run the images on these threads, one image per thread at a time, each thread with the
   * variants built again (image-workers.ts): the same results bit for bit, with no
   * synchronisation inside a forward pass. `loader` is then not used (each thread decodes its own images).
   */
  workers?: ImageWorkerPool;
}

/**
 * Run every variant on every image, each image decoded and preprocessed once; the variants run
 * back to back on the same image so their timings share the machine's state (interleaved).
 */
export async function evaluateVariants(runner: ViTRunner, images: LabelledImage[], variants: Variant[], opts: EvalOptions = {}): Promise<EvalResult[]> {
  const bar = createProgress({ label: 'eval', total: images.length * variants.length, unit: 'items', enabled: opts.progress ?? true });
  const results: ImageResult[][] = variants.map(() => []);
  /** Image i's runs, one per variant, into each variant's results. */
  const record = (i: number, runs: readonly VariantRun[]) => {
    const { file, label } = images[i];
    runs.forEach((r, j) => {
      results[j].push({ file: basename(file), label, ...r });
    });
  };
  if (opts.workers) {
    const outcomes = await opts.workers.run(images, variants.length, bar);
    outcomes.forEach((outcome, i) => {
      if (outcome instanceof ImageError) {
        if (!opts.onUnreadable) throw outcome;
        opts.onUnreadable(images[i], outcome);
        return;
      }
      record(i, outcome);
    });
    bar.done();
    return results.map(summarise);
  }
  const load = (i: number): Promise<Float32Array> | null => {
    if (i >= images.length) return null;
    const tensor = (opts.loader ?? loadOnThisThread)(images[i].file, runner.config.preprocess);
    tensor.catch(() => {}); // awaited (and its failure thrown) on its turn; not an unhandled rejection meanwhile
    return tensor;
  };
  let next = load(0);
  for (let i = 0; i < images.length; i++) {
    let input: Float32Array;
    try {
      input = await next!;
    } catch (error) {
      if (!(error instanceof ImageError) || !opts.onUnreadable) throw error;
      next = load(i + 1);
      opts.onUnreadable(images[i], error);
      bar.tick(variants.length);
      continue;
    }
    next = load(i + 1);
    record(i, runVariants(runner, variants, input, i));
    bar.tick(variants.length);
    // Yield to the event loop now and then so the progress bar and signals get through.
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  bar.done();
  return results.map(summarise);
}

/** Every variant on `input`, the run's image `index` (its hooks are the image's), timed one by one. */
export function runVariants(runner: ViTRunner, variants: readonly Variant[], input: Float32Array, index: number): VariantRun[] {
  return variants.map((v) => {
    const hooks = v.hooks?.(index);
    const t0 = performance.now();
    const { logits, gmacs } = (v.runner ?? runner).forward(input, hooks);
    const ms = performance.now() - t0;
    return { top5: topK(logits, 5), logits, gmacs, ms };
  });
}

/** Evaluate one way of running the model. */
export async function evaluate(runner: ViTRunner, images: LabelledImage[], opts: EvalOptions & { hooks?: Variant['hooks'] } = {}): Promise<EvalResult> {
  const [result] = await evaluateVariants(runner, images, [{ name: 'model', hooks: opts.hooks }], opts);
  return result;
}

export function summarise(results: ImageResult[]): EvalResult {
  const labelled = results.filter((r) => r.label !== null);
  const hits = (k: number) => labelled.filter((r) => r.top5.slice(0, k).includes(r.label!)).length;
  const mean = (f: (r: ImageResult) => number) => results.reduce((s, r) => s + f(r), 0) / Math.max(results.length, 1);
  return {
    images: results,
    top1: labelled.length ? hits(1) / labelled.length : NaN,
    top5: labelled.length ? hits(5) / labelled.length : NaN,
    gmacs: mean((r) => r.gmacs),
    msPerImage: mean((r) => r.ms),
  };
}

export interface AgreementResult {
  agreement: number; // share of images whose top-1 equals the dense model's
  kl: number; // mean KL(dense ‖ pruned) of the softmax outputs, nats
  top1Loss: number; // dense top-1 − pruned top-1 (fraction; noisy on small sets)
}

/** How closely a pruned run follows the dense run on the same images. */
export function agreementWithDense(dense: EvalResult, pruned: EvalResult): AgreementResult {
  const n = dense.images.length;
  let agree = 0;
  let kl = 0;
  for (let i = 0; i < n; i++) {
    if (dense.images[i].top5[0] === pruned.images[i].top5[0]) agree++;
    kl += klDivergence(dense.images[i].logits, pruned.images[i].logits);
  }
  return { agreement: agree / n, kl: kl / n, top1Loss: dense.top1 - pruned.top1 };
}
