import { UsageError, VitpruneError } from '../errors.js';
import { BackgroundImageLoader, type ImageLoader } from '../eval/image-loader.js';
import { ImageWorkerPool, type ImageWorkers } from '../eval/image-workers.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { BACKENDS, createKernels, defaultThreadCount, type Backend } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { resolveModel } from '../model/hub.js';
import { timmArchitectureDims } from '../model/config.js';
import { loadModelFolder } from '../model/folder.js';
import { configFromDims, randomModel } from '../model/random.js';
import type { ViTModel } from '../model/types.js';
import { ViTRunner } from '../model/vit.js';
import { intOption, type OptionSpec, type Parsed } from './args.js';

export const DEFAULT_MODEL = 'timm/deit_tiny_patch16_224.fb_in1k';

/** Options of every command that runs a model. */
export const MODEL_OPTIONS: Record<string, OptionSpec> = {
  model: {
    type: 'string',
    valueName: 'M',
    default: DEFAULT_MODEL,
    help: 'model folder (config.json + model.safetensors), hub id, or random:<timm architecture> (random weights, for timing)',
  },
  backend: { type: 'string', valueName: 'B', default: 'wasm', help: `compute backend: ${BACKENDS.join(' | ')}` },
  threads: {
    type: 'string',
    valueName: 'N',
    help: 'threads the wasm backends run on, this one included (default: the cores the runtime reports, at most 4; 1: no worker threads); results are identical for every N',
  },
};

/** `--threads`, or the default: the cores the runtime reports, at most 4. */
export async function threadsOption(values: Parsed['values']): Promise<number> {
  return intOption(values, 'threads') ?? (await defaultThreadCount());
}

const openedKernels: Kernels[] = [];
const openedLoaders: BackgroundImageLoader[] = [];

/** Kernels for a backend and a thread count, disposed (their worker threads ended) by closeThreads when the command ends. */
export async function openKernels(backend: Backend, threads: number): Promise<Kernels> {
  const kernels = await createKernels(backend, { threads });
  openedKernels.push(kernels);
  return kernels;
}

/**
 * With more than one `--threads`, an image loader on a thread of its own, so that the next image
 * is decoded while the current one runs (ended by closeThreads); with one, none (load in turn).
 */
export async function openImageLoader(values: Parsed['values']): Promise<ImageLoader | undefined> {
  if ((await threadsOption(values)) === 1) return undefined;
  const loader = await BackgroundImageLoader.start();
  openedLoaders.push(loader);
  return loader.load;
}

const openedImageWorkers: ImageWorkerPool[] = [];

/**
 * With 2 or more threads (--threads), evaluation threads that each take whole images
 * (image-workers.ts), started now so that their setup (`name` of `module` called with `arg`)
 * overlaps the caller's; undefined on 1 thread. Ended by closeThreads.
 */
export async function openImageWorkers(values: Parsed['values'], setup: Omit<ImageWorkers, 'threads'>): Promise<ImageWorkerPool | undefined> {
  const threads = await threadsOption(values);
  if (threads === 1) return undefined;
  const pool = await ImageWorkerPool.start({ threads, ...setup });
  openedImageWorkers.push(pool);
  return pool;
}

/** Ends the threads of every backend openKernels opened, of every loader openImageLoader started and of every pool openImageWorkers started. */
export async function closeThreads(): Promise<void> {
  for (const loader of openedLoaders.splice(0)) loader.close();
  for (const pool of openedImageWorkers.splice(0)) pool.close();
  await Promise.all(openedKernels.splice(0).map((k) => k.dispose()));
}

export function backendOption(values: Parsed['values']): Backend {
  const b = values.backend as string;
  if (!(BACKENDS as readonly string[]).includes(b)) throw new UsageError(`--backend expects one of ${BACKENDS.join(', ')}, got '${b}'`);
  return b as Backend;
}

export interface OpenedModel {
  model: ViTModel;
  runner: ViTRunner;
}

const RANDOM_PREFIX = 'random:';

/** `--model` as a spec that loads without the network: a hub id downloaded into the cache (progress unless --quiet) becomes its folder; folders and random: specs stay. */
export async function localModelSpec(values: Parsed['values']): Promise<string> {
  const spec = values.model as string;
  return spec.startsWith(RANDOM_PREFIX) ? spec : resolveModel(spec, { progress: values.quiet !== true });
}

/** `--model`: a folder, a hub id (downloaded into the cache), or `random:<timm architecture>`. */
export async function loadModelSpec(spec: string, opts: { quiet?: boolean } = {}): Promise<ViTModel> {
  if (spec.startsWith(RANDOM_PREFIX)) {
    const architecture = spec.slice(RANDOM_PREFIX.length);
    return randomModel(configFromDims(timmArchitectureDims(architecture), architecture));
  }
  return loadModelFolder(await resolveModel(spec, { progress: !opts.quiet }));
}

/** Load `--model` and prepare it on `--backend` with `--threads`. */
export async function openModel(values: Parsed['values']): Promise<OpenedModel> {
  const backend = backendOption(values);
  const threads = await threadsOption(values);
  const model = await loadModelSpec(values.model as string, { quiet: values.quiet === true });
  const runner = new ViTRunner(model, await openKernels(backend, threads));
  return { model, runner };
}

/** Write an output file atomically; a failure is one line naming the option and the file. */
export function writeOutputFile(option: string, file: string, content: string | Uint8Array): void {
  try {
    writeFileAtomic(file, typeof content === 'string' ? new TextEncoder().encode(content) : content);
  } catch (err) {
    throw new VitpruneError(`cannot write ${option} file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * One input that failed (an unreadable image) while the command goes on with the others: one
 * line `error: <message>` on stderr, as the command's own errors look; then `stack`, if given (--verbose).
 */
export function reportInputError(message: string, stack?: string): void {
  process.stderr.write(`error: ${message.split('\n')[0]}\n`);
  if (stack) process.stderr.write(stack + '\n');
}

/** Write one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
