/**
 * The one place where the demo (and the browser benchmark) call vitprune: everything else in
 * web/ speaks protocol.ts. The library is the browser bundle (dist/browser/vitprune.js, the
 * package's `browser` export), imported at run time.
 *
 * It calls the public API (src/api/classifier.ts) —
 * `loadClassifier(folderUrl, { backend, threads, onProgress })`, `model.classify(image, { topK, prune })`,
 * `model.trace`, `model.forward`, `model.threads`, `model.backend`, `model.config`,
 * `model.dispose()` (see `ClassifierApi`). `openLibrary()` imports the bundle and says which exports it
 * lacks (or why it failed to load), `loadClassifier` which members; the page shows that instead
 * of a result.
 */
import {
  describeLibraryStatus,
  type Classification,
  type LibraryStatus,
  type ModelSummary,
  type Prediction,
  type PruneChoice,
  type RgbPixels,
  type Stage,
} from './protocol.js';

/** model/remote.ts: DownloadProgress. */
export interface DownloadProgress {
  file: string;
  url: string;
  loaded: number;
  total: number | undefined;
}

/** The library as the engine uses it. */
export interface LibraryApi {
  /** A model folder's URL here; the browser tests' reference side, in Node, gives a folder path. */
  loadClassifier(source: string, options: { backend: 'wasm'; threads: number; onProgress?: (progress: DownloadProgress) => void }): Promise<ClassifierApi>;
  /** The token-pruning methods (prune/registry.ts). */
  TOKEN_METHODS: readonly { name: string }[];
}

export interface PruneRequest {
  method: string;
  budget: number;
}

/** A loaded model (api/classifier.ts: Classifier). */
export interface ClassifierApi {
  classify(image: Uint8Array, options: { topK: number; prune?: PruneRequest }): Promise<Prediction[]>;
  /**
   * The same run as `classify` (same decoding, preprocessing and pruning) as viz/trace.ts records it — `traceTokens(runner, input, plan)`: logits, executed
   * GMACs, removal stages in patch indices — with the cropped input before normalisation
   * (`modelCrop(decoded, config.preprocess)`).
   */
  trace(image: Uint8Array, options: { prune?: PruneRequest }): Promise<{ logits: Float32Array; gmacs: number; stages: TraceStage[]; crop: RgbPixels }>;
  /** The forward pass alone on a preprocessed input [C, S, S] → logits (the browser benchmark times it, as bench:peers does in Node). */
  forward(input: Float32Array): Promise<Float32Array>;
  /** Threads in use, 1 without workers. */
  readonly threads: number;
  readonly backend: string; // the kernels' name ('wasm-relaxed', 'wasm-simd')
  readonly config: { readonly patchSize: number };
  dispose(): void | Promise<void>;
}

/** viz/trace.ts: TokenStage. */
interface TraceStage {
  after: number;
  hook: 'attention' | 'block';
  stage: string | null;
  dropped: number[];
}

const EXPECTED_EXPORTS: (keyof LibraryApi)[] = ['loadClassifier', 'TOKEN_METHODS'];
const EXPECTED_MEMBERS: (keyof ClassifierApi)[] = ['classify', 'trace', 'forward', 'threads', 'backend', 'config', 'dispose'];

let library: Partial<LibraryApi> | null = null;

/** Imports the library bundle (once) and tells whether it offers what the engine calls. */
export async function openLibrary(): Promise<LibraryStatus> {
  try {
    // Imported dynamically so that a bundle that fails to load (a Node import, a missing file)
    // is reported with the browser's reason instead of a worker that silently fails to start.
    library ??= (await import('vitprune')) as unknown as Partial<LibraryApi>;
  } catch (e) {
    return { wired: false, missing: [...EXPECTED_EXPORTS], loadError: (e as Error).message };
  }
  const missing = EXPECTED_EXPORTS.filter((name) => !(name in library!)).map(String);
  return { wired: missing.length === 0, missing, loadError: null };
}

async function api(): Promise<LibraryApi> {
  const status = await openLibrary();
  if (!status.wired) throw new Error(describeLibraryStatus(status));
  return library as LibraryApi;
}

/** A model loaded for the demo. */
export interface DemoModel {
  summary: ModelSummary;
  classify(image: Uint8Array, prune: PruneChoice): Promise<Classification>;
  /** The top-k, as a page would ask for it (the browser tests compare it with Node's). */
  predict(image: Uint8Array, prune: PruneChoice, topK: number): Promise<Prediction[]>;
  /** The logits of the same run (the browser tests compare them with Node's). */
  logits(image: Uint8Array, prune: PruneChoice): Promise<Float32Array>;
  dispose(): Promise<void>;
}

function pruneRequest(choice: PruneChoice): PruneRequest | undefined {
  return choice.method === 'dense' ? undefined : { method: choice.method, budget: choice.budget };
}

async function loadClassifier(url: string, threads: number, onProgress?: (loaded: number, total: number) => void): Promise<ClassifierApi> {
  const lib = await api();
  const model = await lib.loadClassifier(url, {
    backend: 'wasm',
    threads,
    // The weights are what takes time: the bar follows model.safetensors.
    onProgress: ({ file, loaded, total }) => file === 'model.safetensors' && onProgress?.(loaded, Math.max(total ?? 0, loaded)),
  });
  const missing = EXPECTED_MEMBERS.filter((member) => !(member in model));
  if (missing.length > 0) throw new Error(`the loaded classifier has no ${missing.join(', ')} (web/library.ts calls them)`);
  return model;
}

/** A model for the browser benchmark: the forward pass on a preprocessed input. */
export interface BenchModel {
  label: string; // backend and threads
  threads: number;
  forward(input: Float32Array): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export async function loadBenchModel(url: string, threads: number): Promise<BenchModel> {
  const model = await loadClassifier(url, threads);
  return {
    label: `vitprune (${model.backend}, ${model.threads} thread${model.threads === 1 ? '' : 's'})`,
    threads: model.threads,
    forward: (input) => model.forward(input),
    async dispose() {
      await model.dispose();
    },
  };
}

export async function loadDemoModel(
  url: string,
  name: string,
  threads: number,
  onProgress: (loaded: number, total: number) => void,
): Promise<DemoModel> {
  const lib = await api();
  const model = await loadClassifier(url, threads, onProgress);
  let denseGmacs: number | undefined; // the same for every image

  return {
    summary: { name, threads: model.threads, backend: model.backend, methods: lib.TOKEN_METHODS.map((m) => m.name) },
    async classify(image, choice) {
      const prune = pruneRequest(choice);
      const start = performance.now();
      const predictions = await model.classify(image, { topK: 5, prune });
      const ms = performance.now() - start;
      const traced = await model.trace(image, { prune });
      denseGmacs ??= prune ? (await model.trace(image, {})).gmacs : traced.gmacs;
      const stages: Stage[] = traced.stages.map((s) => ({ after: s.after, name: s.stage ?? s.hook, removed: s.dropped }));
      return { predictions, ms, gmacs: traced.gmacs, denseGmacs, threads: model.threads, stages, crop: traced.crop, patchSize: model.config.patchSize };
    },
    predict: (image, choice, topK) => model.classify(image, { topK, prune: pruneRequest(choice) }),
    logits: async (image, choice) => (await model.trace(image, { prune: pruneRequest(choice) })).logits,
    async dispose() {
      await model.dispose();
    },
  };
}
