/**
 * The messages between the demo page and its engine, a dedicated module worker (a page's main
 * thread may not block in Atomics.wait, which the thread pool does; the pool's own workers are
 * nested workers started from the engine's).
 */

export interface Prediction {
  index: number;
  label: string;
  description: string;
  score: number; // softmax probability
}

/** One removal stage of a pruned run, in patch indices (patch p: row ⌊p / side⌋, column p mod side). */
export interface Stage {
  after: number; // 1-indexed block it follows
  name: string; // 'S', 'I' (Zero-TPrune's stages), 'attention' or 'block' (the hook)
  removed: number[]; // patches removed (dropped, merged or fused) there
}

/** 8-bit RGB pixels, row-major. */
export interface RgbPixels {
  width: number;
  height: number;
  data: Uint8Array; // [height, width, 3]
}

/** What one classification of one image shows. */
export interface Classification {
  predictions: Prediction[]; // best first
  ms: number; // classify's wall time: decode, preprocessing, forward pass (and pruning), top-k
  gmacs: number; // executed
  denseGmacs: number;
  threads: number;
  stages: Stage[];
  crop: RgbPixels; // the model's input before normalisation, [S, S, 3]
  patchSize: number;
}

export interface ModelSummary {
  name: string;
  threads: number; // threads the engine runs on
  backend: string; // e.g. 'wasm-relaxed'
  methods: string[]; // token-pruning methods the library offers
}

/** Whether the library bundle offers what the engine calls (web/library.ts). */
export interface LibraryStatus {
  wired: boolean;
  missing: string[]; // names the engine calls that the bundle does not have
  loadError: string | null; // why the bundle failed to load, if it did
}

/** Why the engine cannot run, for a person; '' when it can. */
export function describeLibraryStatus(status: LibraryStatus): string {
  if (status.loadError !== null) return `the library bundle failed to load: ${status.loadError}`;
  if (!status.wired) return `the library bundle does not export ${status.missing.join(', ')} yet (web/library.ts calls them)`;
  return '';
}

/** What the engine worker sees of its environment. */
export interface EngineEnvironment {
  crossOriginIsolated: boolean;
  cores: number; // navigator.hardwareConcurrency
  library: LibraryStatus;
}

export interface PruneChoice {
  method: string; // 'dense' or a token-pruning method's name
  budget: number; // GMACs as a fraction of dense
}

export type ToEngine =
  | { type: 'load'; url: string; name: string; threads: number }
  | { type: 'image'; bytes: Uint8Array } // the image the next requests are about
  | { type: 'classify'; id: number; prune: PruneChoice }
  | { type: 'inspect'; id: number; prune: PruneChoice; topK: number }; // top-k and logits (tests)

export type FromEngine =
  | { type: 'started'; environment: EngineEnvironment }
  | { type: 'progress'; loaded: number; total: number }
  | { type: 'loaded'; model: ModelSummary; ms: number }
  | { type: 'result'; id: number; result: Classification }
  | { type: 'inspected'; id: number; predictions: Prediction[]; logits: Float32Array }
  | { type: 'error'; id: number | null; message: string };
