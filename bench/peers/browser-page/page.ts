/**
 * The benchmark page: starts one worker per engine and thread count and relays the driver's
 * requests (bench/peers/browser.ts, through `window.bench`) to them, one at a time.
 */
import type { EngineSetup, FromWorker, ToWorker } from './protocol.js';

const workers: Worker[] = [];

function ask(worker: Worker, message: ToWorker): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const onMessage = ({ data }: MessageEvent<FromWorker>): void => {
      worker.removeEventListener('message', onMessage);
      worker.removeEventListener('error', onError);
      if (data.type === 'error') reject(new Error(data.message));
      else resolve(data);
    };
    const onError = (event: ErrorEvent): void => {
      worker.removeEventListener('message', onMessage);
      worker.removeEventListener('error', onError);
      reject(new Error(`benchmark worker failed: ${event.message || 'see the console'}`));
    };
    worker.addEventListener('message', onMessage);
    worker.addEventListener('error', onError);
    worker.postMessage(message);
  });
}

export interface BenchPageApi {
  /** Starts an engine; resolves to its index and its 'ready' or 'unavailable' answer. */
  add(setup: EngineSetup): Promise<{ index: number; answer: FromWorker }>;
  /** Milliseconds of one forward pass of engine `index`. */
  run(index: number): Promise<number>;
  logits(index: number): Promise<number[]>;
}

const bench: BenchPageApi = {
  async add(setup) {
    const worker = new Worker(new URL('./bench-worker.js', import.meta.url), { type: 'module', name: `${setup.engine}-${setup.threads}` });
    workers.push(worker);
    return { index: workers.length - 1, answer: await ask(worker, { type: 'setup', setup }) };
  },
  async run(index) {
    const answer = await ask(workers[index], { type: 'run' });
    if (answer.type !== 'ran') throw new Error(`expected a time, got '${answer.type}'`);
    return answer.ms;
  },
  async logits(index) {
    const answer = await ask(workers[index], { type: 'logits' });
    if (answer.type !== 'logits') throw new Error(`expected logits, got '${answer.type}'`);
    return Array.from(answer.logits);
  },
};
Object.assign(window, { bench });
