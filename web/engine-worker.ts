/**
 * The demo's engine: a dedicated module worker that loads the model and runs it (web/library.ts),
 * answering the page's messages (protocol.ts). While a classification runs, newer requests
 * replace older waiting ones: as the budget slider moves, only the latest position is computed.
 */
import { loadDemoModel, openLibrary, type DemoModel } from './library.js';
import type { FromEngine, ToEngine } from './protocol.js';

interface WorkerScope {
  postMessage(message: FromEngine): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<ToEngine>) => void): void;
  crossOriginIsolated: boolean;
  navigator: { hardwareConcurrency: number };
}
const scope = globalThis as unknown as WorkerScope;
const post = (message: FromEngine): void => scope.postMessage(message);

let model: DemoModel | null = null;
let image: Uint8Array | null = null;
let waiting: Extract<ToEngine, { type: 'classify' | 'inspect' }> | null = null;
let busy = false;

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function runWaiting(): Promise<void> {
  if (busy) return;
  busy = true;
  while (waiting) {
    const request = waiting;
    waiting = null;
    try {
      if (!model) throw new Error('expected a model to be loaded first, none is');
      if (!image) throw new Error('expected an image to be chosen first, none is');
      if (request.type === 'classify') {
        post({ type: 'result', id: request.id, result: await model.classify(image, request.prune) });
      } else {
        const predictions = await model.predict(image, request.prune, request.topK);
        post({ type: 'inspected', id: request.id, predictions, logits: await model.logits(image, request.prune) });
      }
    } catch (e) {
      post({ type: 'error', id: request.id, message: errorMessage(e) });
    }
  }
  busy = false;
}

scope.addEventListener('message', async ({ data }) => {
  switch (data.type) {
    case 'load': {
      try {
        const start = performance.now();
        await model?.dispose();
        model = null;
        model = await loadDemoModel(data.url, data.name, data.threads, (loaded, total) => post({ type: 'progress', loaded, total }));
        post({ type: 'loaded', model: model.summary, ms: performance.now() - start });
      } catch (e) {
        post({ type: 'error', id: null, message: errorMessage(e) });
      }
      return;
    }
    case 'image':
      image = data.bytes;
      return;
    case 'classify':
    case 'inspect':
      if (waiting) post({ type: 'error', id: waiting.id, message: 'superseded by a newer request' });
      waiting = data;
      await runWaiting();
      return;
  }
});

post({
  type: 'started',
  environment: { crossOriginIsolated: scope.crossOriginIsolated, cores: scope.navigator.hardwareConcurrency, library: await openLibrary() },
});
