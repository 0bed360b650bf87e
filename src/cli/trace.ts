import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { UsageError } from '../errors.js';
import { checkImageFile, loadImageTensor } from '../image/file.js';
import { ViTRunner } from '../model/vit.js';
import { readBundle, writeBundle, type TraceBundle } from '../oracle/bundle.js';
import { MANIFEST_FILE, type TraceInput } from '../oracle/format.js';
import { traceMethodFromJson, traceMethodFromPlan, TRACE_METHODS, type TraceMethod } from '../oracle/methods.js';
import { recordTrace, requestFromBundle } from '../oracle/trace.js';
import type { ViTConfig } from '../model/types.js';
import { packageVersion } from '../util/package-version.js';
import { stringOption, type CommandSpec, type Parsed } from './args.js';
import { backendOption, DEFAULT_MODEL, loadModelSpec, MODEL_OPTIONS, openKernels, printJson, threadsOption } from './common.js';
import { METHOD_OPTIONS, pruningFromOptions } from './pruning.js';

export const traceSpec: CommandSpec = {
  name: 'trace',
  summary: 'Run one image and write every intermediate tensor and pruning decision as a trace bundle (docs/trace-format.md).',
  usage:
    'vitprune trace [--model M] IMAGE|BUNDLE [--method NAME (--keep|--budget|--gmacs|--schedule|--r ... | --settings JSON)] ' +
    '[--backend reference64|reference|wasm|wasm-simd] [--threads N] --out DIR [--json]',
  options: {
    model: { ...MODEL_OPTIONS.model, default: undefined, help: `${MODEL_OPTIONS.model.help} (default: a BUNDLE's model, else ${DEFAULT_MODEL})` },
    backend: { ...MODEL_OPTIONS.backend, default: 'reference64' },
    threads: MODEL_OPTIONS.threads,
    ...METHOD_OPTIONS,
    method: { ...METHOD_OPTIONS.method, help: `token pruning method: ${TRACE_METHODS.join(' | ')} (default: a BUNDLE's method, else none)` },
    settings: { type: 'string', valueName: 'JSON', help: 'with --method: its settings as a bundle manifest records them (method.settings)' },
    out: { type: 'string', valueName: 'DIR', help: 'the bundle folder to write (required)' },
  },
  positionals: { name: 'IMAGE', min: 1 },
};

/**
 * IMAGE is an image file, preprocessed as the model's config says; or a bundle folder, whose
 * input tensor is run again (with its model and method unless --model / --method say otherwise),
 * e.g. to trace a conformance case on another backend.
 */
export async function traceCommand({ values, positionals }: Parsed): Promise<void> {
  if (positionals.length !== 1) throw new UsageError(`'vitprune trace' expects one IMAGE or BUNDLE, got ${positionals.length} (see --help)`);
  const out = stringOption(values, 'out');
  if (!out) throw new UsageError("'vitprune trace' needs --out DIR, the bundle folder to write (see --help)");
  const [source] = positionals;
  const base = isBundle(source) ? readBundle(source) : null;
  if (!base) checkImageFile(source); // before the model is loaded (or downloaded)
  const modelSpec = stringOption(values, 'model') ?? (base ? bundleModel(source, base) : DEFAULT_MODEL);
  const model = await loadModelSpec(modelSpec, { quiet: values.quiet === true });
  const replay = base && requestFromBundle(base, source);
  const { input, inputSource } = replay ?? imageInput(source, model.config);
  const runner = new ViTRunner(model, await openKernels(backendOption(values), await threadsOption(values)));
  const method = (await methodFromOptions(values, runner)) ?? replay?.method ?? null;

  const started = performance.now();
  const bundle = recordTrace(runner, model, { input, inputSource, method, modelSource: modelSpec, producerVersion: packageVersion() });
  const traced = performance.now();
  const bytes = writeBundle(out, bundle);
  const written = performance.now();

  const summary = {
    out,
    tensors: bundle.tensors.size,
    bytes,
    backend: runner.kernels.name,
    floatDtype: bundle.manifest.producer!.floatDtype,
    method: method?.name ?? null,
    gmacs: bundle.manifest.gmacs,
    traceSeconds: (traced - started) / 1000,
    writeSeconds: (written - traced) / 1000,
  };
  if (values.json) {
    printJson(summary);
    return;
  }
  process.stdout.write(
    `wrote ${out}: ${summary.tensors} tensors, ${(bytes / 1e6).toFixed(2)} MB (${summary.floatDtype} from ${summary.backend}, ${method ? method.name : 'dense'}, ` +
      `${summary.gmacs!.toPrecision(5)} GMACs); forward and record ${summary.traceSeconds.toFixed(2)} s, write ${summary.writeSeconds.toFixed(2)} s\n`,
  );
}

function isBundle(source: string): boolean {
  return existsSync(source) && statSync(source).isDirectory() && existsSync(path.join(source, MANIFEST_FILE));
}

/** A bundle's model: its source, taken relative to the bundle folder when that is where it exists. */
function bundleModel(dir: string, bundle: TraceBundle): string {
  const recorded = bundle.manifest.model?.source;
  if (!recorded) throw new UsageError(`${path.join(dir, MANIFEST_FILE)} names no model ("model.source"): give --model`);
  const relative = path.join(dir, recorded);
  return !path.isAbsolute(recorded) && existsSync(relative) ? relative : recorded;
}

function imageInput(file: string, cfg: ViTConfig): { input: Float32Array; inputSource: TraceInput } {
  const input = loadImageTensor(file, cfg.preprocess);
  const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
  return { input, inputSource: { source: 'image', file: path.basename(file), sha256, preprocessing: cfg.preprocess } };
}

/** --method with --settings, or with the usual schedule options; undefined without --method. */
async function methodFromOptions(values: Parsed['values'], runner: ViTRunner): Promise<TraceMethod | undefined> {
  const settings = stringOption(values, 'settings');
  const name = stringOption(values, 'method');
  if (settings !== undefined) {
    if (name === undefined) throw new UsageError(`--settings needs --method (one of ${TRACE_METHODS.join(', ')})`);
    let json: unknown;
    try {
      json = JSON.parse(settings);
    } catch (err) {
      throw new UsageError(`--settings expects JSON, found a syntax error (${(err as Error).message})`);
    }
    return traceMethodFromJson({ name, settings: json }, '--settings');
  }
  const plan = await pruningFromOptions(values, runner);
  return plan ? traceMethodFromPlan(runner.config, plan) : undefined;
}
