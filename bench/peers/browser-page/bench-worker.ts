/**
 * One engine at one thread count, in a dedicated module worker of the benchmark page (the engines'
 * own thread pools are nested workers). 'run' times one forward pass on the set-up input, from the
 * call to the logits, with performance.now().
 */
import type * as Ort from 'onnxruntime-web';
import { loadBenchModel } from '../../../web/library.js';
import type { EngineSetup, FromWorker, ToWorker } from './protocol.js';

interface Engine {
  forward(): Promise<Float32Array>;
}

const scope = globalThis as unknown as {
  postMessage(message: FromWorker): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<ToWorker>) => void): void;
  crossOriginIsolated: boolean;
};
const post = (message: FromWorker): void => scope.postMessage(message);

async function onnxruntimeWeb(setup: EngineSetup): Promise<{ engine: Engine; label: string; threads: number }> {
  const ort = (await import(setup.ortModuleUrl)) as typeof Ort;
  ort.env.wasm.numThreads = setup.threads; // read once, when its wasm starts: one thread count per worker
  ort.env.wasm.wasmPaths = new URL('./', setup.ortModuleUrl).href;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  const onnx = new Uint8Array(await (await fetch(setup.onnxUrl)).arrayBuffer());
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const feeds = { [setup.inputName]: new ort.Tensor('float32', setup.input, setup.inputShape) };
  const threads = ort.env.wasm.numThreads ?? setup.threads;
  return {
    engine: { forward: async () => (await session.run(feeds))[setup.outputName].data as Float32Array },
    label: `onnxruntime-web ${ort.env.versions.web ?? ''} (wasm, ${threads} thread${threads === 1 ? '' : 's'})`,
    threads,
  };
}

async function vitprune(setup: EngineSetup): Promise<{ engine: Engine; label: string; threads: number }> {
  const model = await loadBenchModel(setup.modelUrl, setup.threads);
  return { engine: { forward: () => model.forward(setup.input) }, label: model.label, threads: model.threads };
}

let engine: Engine | null = null;

scope.addEventListener('message', async ({ data }) => {
  try {
    if (data.type === 'setup') {
      let made;
      try {
        made = await (data.setup.engine === 'vitprune' ? vitprune(data.setup) : onnxruntimeWeb(data.setup));
      } catch (e) {
        if (data.setup.engine !== 'vitprune') throw e;
        post({ type: 'unavailable', reason: (e as Error).message });
        return;
      }
      engine = made.engine;
      post({ type: 'ready', label: made.label, threads: made.threads, crossOriginIsolated: scope.crossOriginIsolated });
    } else if (!engine) {
      throw new Error(`expected 'setup' before '${data.type}'`);
    } else if (data.type === 'run') {
      const start = performance.now();
      await engine.forward();
      post({ type: 'ran', ms: performance.now() - start });
    } else {
      post({ type: 'logits', logits: Float32Array.from(await engine.forward()) });
    }
  } catch (e) {
    post({ type: 'error', message: (e as Error).message });
  }
});
