import { UsageError } from '../errors.js';
import { softmax, topK } from '../eval/metrics.js';
import { rgbOfInput, type ImageInput } from '../image/input.js';
import { modelCrop, preprocess } from '../image/preprocess.js';
import type { RgbImage } from '../image/rgb-image.js';
import { createKernels, type Backend } from '../kernels/index.js';
import type { WasmKernels } from '../kernels/wasm.js';
import type { ViTConfig, ViTModel } from '../model/types.js';
import { ViTRunner } from '../model/vit.js';
import { calibrationRun, type PruneRequest, type PruningPlan } from '../prune/method.js';
import { planPruning } from '../prune/registry.js';
import { cropTensor, traceTokens, type TokenTrace } from '../viz/trace.js';
import { loadModel, type ModelSource, type ModelSourceOptions } from './model-source.js';

export type { ImageInput } from '../image/input.js';
export type { ModelSource } from './model-source.js';

/**
 * vitprune as a library, in two calls (in the spirit of transformers.js `pipeline()`):
 *
 *   const model = await loadClassifier('timm/deit_tiny_patch16_224.fb_in1k'); // or a folder URL, or the files' bytes
 *   const top5 = await model.classify(jpegBytes, { topK: 5, prune: { method: 'zero-tprune', budget: 0.65 } });
 *   model.dispose();
 *
 * The lower-level pieces are the sub-exports: vitprune/model (ViTRunner, Block, hooks),
 * vitprune/kernels, vitprune/prune (the method registry, the budget solver, each method),
 * vitprune/image, and vitprune/node (files, the hub cache, evaluation; Node only).
 */

/** Where the model comes from (model-source.ts: onProgress, hubEndpoint, revision, …) and what it runs on. */
export interface ClassifierOptions extends ModelSourceOptions {
  backend?: Backend; // default 'wasm'
  threads?: number; // threads the wasm backends run on, this one included (default 1; results are identical for every count; 1 on a page that is not cross-origin isolated)
}

/** A token-pruning method and its settings (prune/method.ts), with images it may calibrate on. */
export interface PruneOptions extends PruneRequest {
  method?: string; // a name of the registry (TOKEN_METHODS); default 'auto', the best method measured at the budget
  calibration?: readonly ImageInput[]; // unlabelled images for per-image methods (ltp) asked for a budget
}

export interface ClassifyOptions {
  topK?: number; // predictions returned (default 5)
  prune?: PruneOptions; // default: the dense model
}

export interface TraceOptions {
  prune?: PruneOptions; // default: the dense model
}

/** One image's run, as `classify` does it, with every token reduction recorded (viz/trace.ts). */
export interface ClassifierTrace extends TokenTrace {
  crop: RgbImage; // [S, S, 3] the cropped image the model saw, before normalisation
}

export interface Prediction {
  index: number; // class index
  label: string; // the checkpoint's label (WordNet id for timm ImageNet models)
  description: string; // a human-readable name ('' when the checkpoint has none)
  score: number; // softmax probability
}

/** A loaded model on a backend, ready to classify images. */
export class Classifier {
  readonly config: ViTConfig;
  private readonly runner: ViTRunner;
  private readonly plans = new Map<string, Promise<PruningPlan>>(); // by request, without calibration images
  private readonly calibratedPlans = new WeakMap<readonly ImageInput[], Map<string, Promise<PruningPlan>>>();
  private disposed = false;

  constructor(model: ViTModel, runner: ViTRunner) {
    this.config = model.config;
    this.runner = runner;
  }

  /** The name of the backend the model runs on, e.g. 'wasm-relaxed'. */
  get backend(): string {
    return this.runner.kernels.name;
  }

  /** Threads the model runs on, this one included (the wasm backends' count; 1 on the reference backends). */
  get threads(): number {
    const kernels = this.runner.kernels;
    return 'threads' in kernels ? (kernels as WasmKernels).threads : 1;
  }

  /** The best `topK` classes of `image`, best first. */
  async classify(image: ImageInput, options: ClassifyOptions = {}): Promise<Prediction[]> {
    this.assertUsable('classify');
    const k = options.topK ?? 5;
    if (!(Number.isInteger(k) && k >= 1)) throw new UsageError(`classify: expected topK to be a positive integer, found ${k}`);
    const input = this.input(image);
    const plan = options.prune ? await this.plan(options.prune) : null;
    const { logits } = this.runner.forward(input, plan?.hooks(0));
    const probs = softmax(logits);
    const { labels, descriptions } = this.config;
    return topK(logits, k).map((index) => ({ index, label: labels[index], description: descriptions[index], score: probs[index] }));
  }

  /**
   * The same run as `classify` (decoding, preprocessing, pruning), recorded: logits, executed
   * GMACs, the patches each reduction removed, the patches kept, and the crop the model saw.
   */
  async trace(image: ImageInput, options: TraceOptions = {}): Promise<ClassifierTrace> {
    this.assertUsable('trace');
    const crop = modelCrop(this.decode(image), this.config.preprocess);
    const plan = options.prune ? await this.plan(options.prune) : null;
    return { ...traceTokens(this.runner, cropTensor(crop, this.config.preprocess), plan), crop };
  }

  /** The dense forward pass alone on a preprocessed input [3, S, S] (what benchmarks time): the logits [numClasses]. */
  async forward(input: Float32Array): Promise<Float32Array> {
    this.assertUsable('forward');
    const { inputSize } = this.config.preprocess;
    const expected = 3 * inputSize * inputSize;
    if (!(input instanceof Float32Array) || input.length !== expected) {
      throw new UsageError(
        `forward: expected a Float32Array of 3×${inputSize}×${inputSize} = ${expected} values (a preprocessed image), found ${input instanceof Float32Array ? input.length : typeof input}`,
      );
    }
    return this.runner.forward(input).logits;
  }

  /**
   * Gives the model's buffers back (ViTRunner.dispose) and ends the backend's worker threads;
   * resolves when they have ended. The classifier cannot classify afterwards.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.runner.dispose();
    await this.runner.kernels.dispose();
  }

  private assertUsable(call: string): void {
    if (this.disposed) throw new UsageError(`${call}: this classifier was disposed`);
  }

  private decode(image: ImageInput): RgbImage {
    return rgbOfInput(image, 'image');
  }

  /** The preprocessed input [3, S, S] of an image. */
  private input(image: ImageInput): Float32Array {
    return preprocess(this.decode(image), this.config.preprocess);
  }

  /** The plan of `options`, made once per request (and calibration images). */
  private plan({ calibration, ...request }: PruneOptions): Promise<PruningPlan> {
    const key = JSON.stringify(request);
    let cache = this.plans;
    if (calibration) {
      cache = this.calibratedPlans.get(calibration) ?? new Map();
      this.calibratedPlans.set(calibration, cache);
    }
    let plan = cache.get(key);
    if (!plan) {
      const context = calibration
        ? {
            calibration: calibrationRun(
              this.runner,
              calibration.map((image) => this.input(image)),
            ),
          }
        : {};
      plan = planPruning(this.config, { ...request, method: request.method ?? 'auto' }, context);
      plan.catch(() => cache.delete(key)); // a request that failed is not remembered
      cache.set(key, plan);
    }
    return plan;
  }
}

/** Load a model (folder URL or path, hub id, or bytes: model-source.ts) and prepare it on a backend. */
export async function loadClassifier(source: ModelSource, options: ClassifierOptions = {}): Promise<Classifier> {
  const model = await loadModel(source, options);
  const runner = new ViTRunner(model, await createKernels(options.backend ?? 'wasm', { threads: options.threads }));
  return new Classifier(model, runner);
}
