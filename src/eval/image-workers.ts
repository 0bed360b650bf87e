import { ImageError, VitpruneError } from '../errors.js';
import { currentPlatform, siblingModule, type ThreadHandle } from '../kernels/platform.js';
import type { ViTRunner } from '../model/vit.js';
import type { Progress } from '../util/progress.js';
import type { LabelledImage } from './dataset.js';
import type { Variant, VariantRun } from './evaluate.js';

/**
 * Evaluation with one image per thread: each of `threads` worker threads builds its
 * own runner and variants on one thread (no pool: every forward pass runs exactly as with
 * `--threads 1`, so every logit is the same bit for bit) and takes images one after another —
 * reading, decoding, preprocessing and running every variant — while the others do the same.
 * An evaluation scales this way with no synchronisation inside a forward pass, and decoding
 * overlaps inference without a thread of its own.
 *
 * A worker cannot receive the caller's variants (they hold closures and wasm memory), so it
 * builds them again: `module`'s export `name` is called with `arg` (structured-cloneable) in
 * each worker and must return the same variants, in the same order, as the caller's.
 */
export interface ImageWorkers {
  threads: number; // ≥ 2
  module: string; // URL of the module whose export builds the variants (import.meta.url of its caller, typically)
  name: string; // that export: (arg) => Promise<VariantSetup>
  arg: unknown;
}

/** What a worker's builder returns: the runner variants default to and the variants. */
export interface VariantSetup {
  runner: ViTRunner;
  variants: Variant[];
}

/** Messages to an image worker (image-worker.ts) and from it. */
export type ImageWorkerRequest = { kind: 'setup'; module: string; name: string; arg: unknown } | { kind: 'image'; index: number; file: string };
export type ImageWorkerAnswer =
  | { kind: 'ready' }
  | { kind: 'failed'; error: { name: string; message: string } }
  | { kind: 'result'; index: number; results: VariantRun[] }
  | { kind: 'result'; index: number; error: { name: string; message: string } };

/** Images each worker holds at once: the next one is queued while it runs one, so it never waits for the caller. */
const IN_FLIGHT = 2;

/** One thread of the pool: its handle, and its setup (resolves when it has built the variants). */
interface EvalThread {
  handle: ThreadHandle;
  ready: Promise<void>;
  /** Routes the thread's answers and end to the run in progress. */
  listener: ((answer: ImageWorkerAnswer) => void) | null;
  ended: ((error: Error | undefined) => void) | null;
}

/**
 * The threads of an evaluation, started (and building their variants) as soon as `start` is
 * called, so that their setup overlaps the caller's own; `run` then evaluates; `close` ends them.
 */
export class ImageWorkerPool {
  private constructor(private readonly threads: EvalThread[]) {}

  static async start(workers: ImageWorkers): Promise<ImageWorkerPool> {
    const platform = await currentPlatform();
    const threads = Array.from({ length: workers.threads }, (_, w): EvalThread => {
      const handle = platform.spawn(siblingModule(import.meta.url, 'image-worker'), `vitprune-eval-${w + 1}`);
      handle.keepAlive(false); // only while a run waits for it
      const thread: EvalThread = { handle, ready: Promise.resolve(), listener: null, ended: null };
      thread.ready = new Promise<void>((resolve, reject) => {
        handle.onMessage((data) => {
          const answer = data as ImageWorkerAnswer;
          if (answer.kind === 'ready') resolve();
          else if (answer.kind === 'failed')
            reject(new VitpruneError(`evaluation thread ${w + 1} could not set up the model and methods: ${answer.error.message}`));
          else thread.listener?.(answer);
        });
        handle.onEnd((error) => {
          reject(new VitpruneError(`evaluation thread ${w + 1} ended while setting up${error ? `: ${error.message}` : ''}`, { cause: error }));
          thread.ended?.(error);
        });
      });
      thread.ready.catch(() => {}); // awaited by run; not an unhandled rejection meanwhile
      handle.post({ kind: 'setup', module: workers.module, name: workers.name, arg: workers.arg } satisfies ImageWorkerRequest);
      return thread;
    });
    return new ImageWorkerPool(threads);
  }

  /**
   * Runs `variants` variants on every image; returns per image its variants' results, or the
   * ImageError that made it unreadable (any other error fails the run). One run at a time.
   */
  async run(images: readonly LabelledImage[], variants: number, bar: Progress): Promise<(VariantRun[] | ImageError)[]> {
    const outcomes: (VariantRun[] | ImageError)[] = new Array(images.length);
    for (const thread of this.threads) thread.handle.keepAlive(true);
    let next = 0;
    let finished = 0;
    try {
      await Promise.all(this.threads.map((t) => t.ready));
      await new Promise<void>((resolve, reject) => {
        if (images.length === 0) resolve();
        this.threads.forEach((thread, w) => {
          const send = (): void => {
            if (next >= images.length) return;
            const index = next++;
            thread.handle.post({ kind: 'image', index, file: images[index].file } satisfies ImageWorkerRequest);
          };
          thread.ended = (error) =>
            reject(new VitpruneError(`evaluation thread ${w + 1} ended before the evaluation did${error ? `: ${error.message}` : ''}`, { cause: error }));
          thread.listener = (answer) => {
            if (answer.kind !== 'result') return;
            if ('error' in answer) {
              if (answer.error.name !== 'ImageError') {
                reject(new VitpruneError(`evaluation thread ${w + 1}, image '${images[answer.index].file}': ${answer.error.message}`));
                return;
              }
              outcomes[answer.index] = new ImageError(answer.error.message);
            } else {
              if (answer.results.length !== variants) {
                reject(new VitpruneError(`evaluation thread ${w + 1} ran ${answer.results.length} variants, expected ${variants}`));
                return;
              }
              outcomes[answer.index] = answer.results;
            }
            bar.tick(variants);
            if (++finished === images.length) resolve();
            else send();
          };
          for (let i = 0; i < IN_FLIGHT; i++) send();
        });
      });
    } finally {
      for (const thread of this.threads) {
        thread.listener = thread.ended = null;
        thread.handle.keepAlive(false);
      }
    }
    return outcomes;
  }

  /** Ends the threads (again: nothing). */
  close(): void {
    for (const thread of this.threads) {
      thread.ended = null;
      thread.handle.terminate();
    }
  }
}
