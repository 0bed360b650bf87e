import type { ParentLink, ThreadHandle, ThreadPlatform } from './platform.js';

/**
 * Web Workers (module workers). A page that uses threads must be cross-origin isolated (shared
 * memory) and should run the engine itself in a dedicated worker: a page's main thread may not
 * block, so the pool can only spin there while it waits for its workers.
 */

/** The parts of a DedicatedWorkerGlobalScope used here (this file compiles without the DOM library). */
interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
}

interface WebWorker {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'error', listener: (event: { message?: string; preventDefault(): void }) => void): void;
  terminate(): void;
}

type WorkerConstructor = new (url: URL, options: { type: 'module'; name: string }) => WebWorker;

export const webPlatform: ThreadPlatform = {
  spawn(entry, name): ThreadHandle {
    const Worker = (globalThis as unknown as { Worker?: WorkerConstructor }).Worker;
    if (!Worker) throw new Error('expected Web Workers in this runtime, found none');
    const worker = new Worker(entry, { type: 'module', name });
    const endListeners: ((error: Error | undefined) => void)[] = [];
    let ended = false;
    const end = (error: Error | undefined): void => {
      if (ended) return;
      ended = true;
      for (const listener of endListeners) listener(error);
    };
    worker.addEventListener('error', (event) => {
      event.preventDefault();
      end(new Error(event.message ?? `worker ${name} failed`));
    });
    return {
      post: (message) => worker.postMessage(message),
      onMessage: (listener) => worker.addEventListener('message', (event) => listener(event.data)),
      onEnd: (listener) => void endListeners.push(listener),
      // A terminated Web Worker fires no event: its end is reported here.
      terminate() {
        worker.terminate();
        end(undefined);
      },
      keepAlive: () => {},
    };
  },

  parent(): ParentLink {
    const scope = globalThis as unknown as WorkerScope;
    return {
      post: (message) => scope.postMessage(message),
      onMessage: (listener) => scope.addEventListener('message', (event) => listener(event.data)),
      close: () => scope.close(),
    };
  },

  cores: () => (globalThis as unknown as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1,
};
