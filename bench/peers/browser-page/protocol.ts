/** Messages between the benchmark page and its engine workers (one worker per engine and thread count). */

export type EngineName = 'vitprune' | 'onnxruntime-web';

export interface EngineSetup {
  engine: EngineName;
  threads: number;
  modelUrl: string; // folder with config.json + model.safetensors (vitprune)
  onnxUrl: string; // the same weights as ONNX (onnxruntime-web)
  ortModuleUrl: string; // onnxruntime-web's ESM build; its wasm files beside it
  input: Float32Array; // [C, S, S], preprocessed
  inputShape: number[]; // [1, C, S, S]
  inputName: string;
  outputName: string;
}

export type ToWorker = { type: 'setup'; setup: EngineSetup } | { type: 'run' } | { type: 'logits' };

export type FromWorker =
  | { type: 'ready'; label: string; threads: number; crossOriginIsolated: boolean }
  | { type: 'unavailable'; reason: string } // vitprune until the library runs in browsers
  | { type: 'ran'; ms: number }
  | { type: 'logits'; logits: Float32Array }
  | { type: 'error'; message: string };
