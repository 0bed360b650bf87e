import { availableParallelism } from 'node:os';
import { Worker, parentPort } from 'node:worker_threads';
import type { ParentLink, ThreadHandle, ThreadPlatform } from './platform.js';

/**
 * Node's worker_threads (Node only). A module run from TypeScript sources (tests, tsx) is started through
 * tsx's loader API, resolved from this package, since Node 20 cannot load .ts itself.
 */
function startWorker(entry: URL, name: string): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { name });
  const loader = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(loader)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(entry.href)}))`;
  return new Worker(bootstrap, { eval: true, name });
}

export const nodePlatform: ThreadPlatform = {
  spawn(entry, name): ThreadHandle {
    const worker = startWorker(entry, name);
    return {
      post: (message) => worker.postMessage(message),
      onMessage: (listener) => void worker.on('message', listener),
      onEnd(listener) {
        let error: Error | undefined;
        worker.on('error', (e: Error) => {
          error = e;
        });
        worker.on('exit', () => listener(error));
      },
      terminate: () => void worker.terminate(),
      keepAlive: (yes) => (yes ? worker.ref() : worker.unref()),
    };
  },

  parent(): ParentLink {
    const port = parentPort;
    if (!port) throw new Error('expected to run in a worker thread, found the main thread');
    return {
      post: (message) => port.postMessage(message),
      onMessage: (listener) => void port.on('message', listener),
      close: () => process.exit(0),
    };
  },

  cores: () => availableParallelism(),
};
