import { ImageError, VitpruneError } from '../errors.js';
import { loadImageTensor } from '../image/file.js';
import { currentPlatform, siblingModule, type ThreadHandle } from '../kernels/platform.js';
import type { PreprocessConfig } from '../model/types.js';

/**
 * Where evaluation gets its input tensors (Node only): `file` read, decoded and preprocessed to [3, S, S].
 * A loader that returns before the work is done lets the caller start the next image's load
 * before running the current one (evaluateVariants does), so decoding overlaps inference.
 */
export type ImageLoader = (file: string, preprocess: PreprocessConfig) => Promise<Float32Array>;

/** On this thread, when asked (no overlap). */
export const loadOnThisThread: ImageLoader = async (file, preprocess) => loadImageTensor(file, preprocess);

/** A request to image-loader-worker.ts, and its answer. */
export interface LoadRequest {
  id: number;
  file: string;
  preprocess: PreprocessConfig;
}
export type LoadAnswer = { id: number; tensor: Float32Array } | { id: number; error: { name: string; message: string } };

/** The errors a load may end in, rebuilt by name on this side (anything else becomes a VitpruneError). */
const ERRORS: Record<string, new (message: string) => VitpruneError> = { ImageError };

/**
 * A loader whose loads run one after another on a thread of their own (image-loader-worker.ts):
 * while the caller's thread is busy (a forward pass blocks it), the next image is decoded. The
 * thread keeps Node alive only while a load is pending; `close()` ends it.
 */
export class BackgroundImageLoader {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(t: Float32Array): void; reject(e: Error): void }>();
  private ended: Error | null = null;

  private constructor(private readonly thread: ThreadHandle) {
    thread.keepAlive(false);
    thread.onMessage((data) => {
      const answer = data as LoadAnswer;
      const request = this.pending.get(answer.id);
      if (!request) return;
      this.settled(answer.id);
      if ('tensor' in answer) request.resolve(answer.tensor);
      else request.reject(new (ERRORS[answer.error.name] ?? VitpruneError)(answer.error.message));
    });
    thread.onEnd((error) => {
      this.ended = new VitpruneError(`the image loading thread ended${error ? `: ${error.message}` : ''}`, { cause: error });
      for (const [id, request] of this.pending) {
        this.settled(id);
        request.reject(this.ended);
      }
    });
  }

  static async start(): Promise<BackgroundImageLoader> {
    const platform = await currentPlatform();
    return new BackgroundImageLoader(platform.spawn(siblingModule(import.meta.url, 'image-loader-worker'), 'vitprune-image-loader'));
  }

  readonly load: ImageLoader = (file, preprocess) => {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    if (this.pending.size === 0) this.thread.keepAlive(true);
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread.post({ id, file, preprocess } satisfies LoadRequest);
    });
  };

  close(): void {
    this.thread.terminate();
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.thread.keepAlive(false);
  }
}
