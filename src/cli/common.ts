import { UsageError, VitpruneError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { BACKENDS, createKernels, type Backend } from '../kernels/index.js';
import { resolveModel } from '../model/hub.js';
import { timmArchitectureDims } from '../model/config.js';
import { loadModelFolder } from '../model/folder.js';
import { configFromDims, randomModel } from '../model/random.js';
import type { ViTModel } from '../model/types.js';
import { ViTRunner } from '../model/vit.js';
import type { OptionSpec, Parsed } from './args.js';

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
};

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

/** `--model`: a folder, a hub id (downloaded into the cache), or `random:<timm architecture>`. */
export async function loadModelSpec(spec: string, opts: { quiet?: boolean } = {}): Promise<ViTModel> {
  if (spec.startsWith(RANDOM_PREFIX)) {
    const architecture = spec.slice(RANDOM_PREFIX.length);
    return randomModel(configFromDims(timmArchitectureDims(architecture), architecture));
  }
  return loadModelFolder(await resolveModel(spec, { progress: !opts.quiet }));
}

/** Load `--model` and prepare it on `--backend`. */
export async function openModel(values: Parsed['values']): Promise<OpenedModel> {
  const backend = backendOption(values);
  const model = await loadModelSpec(values.model as string, { quiet: values.quiet === true });
  const runner = new ViTRunner(model, await createKernels(backend));
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

/** Write one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
