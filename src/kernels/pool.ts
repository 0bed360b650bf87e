import { ThreadPoolError } from '../errors.js';
import { currentPlatform, siblingModule, type ThreadHandle } from './platform.js';
import { slotWord, type CallerMessage, type PoolLayout, type SupervisorMessage, type SupervisorStart } from './pool-protocol.js';

/**
 * A pool of worker threads running the wasm kernels on the caller's shared memory, driven from
 * the caller's thread. A job (one kernel call) is published in a control block in the shared
 * memory (assembly/pool.ts); the workers, spinning briefly and then sleeping in Atomics.wait,
 * claim its chunks, and so does the caller, which then waits for the last chunk — no message
 * is posted per job. Which thread runs a chunk never changes a bit of the result.
 *
 * Threads: the caller is slot 0; workers 1 … threads − 1 are started and watched by a
 * supervisor thread (pool-supervisor.ts), whose free event loop notices a worker that dies while
 * the caller is blocked. Such a job fails with ThreadPoolError once the chunks other threads hold
 * are finished (so nothing writes to the memory after the error); the dead worker is restarted,
 * and jobs meanwhile run on the threads that are left.
 *
 * Waiting: in Node and in workers the caller sleeps in Atomics.wait after a short spin; a
 * browser's main thread may not block, so there it spins (run the engine in a worker instead).
 */

/** The exports of the kernels' module the caller's side uses (assembly/pool.ts). */
export interface PoolExports {
  pool_publish(
    control: number,
    kind: number,
    chunks: number,
    scalar: number,
    a0: number,
    a1: number,
    a2: number,
    a3: number,
    a4: number,
    a5: number,
    a6: number,
    a7: number,
    a8: number,
    a9: number,
    a10: number,
    a11: number,
    a12: number,
    a13: number,
  ): number;
  pool_run(control: number): void;
  pool_seal(control: number, generation: number): void;
}

export interface ThreadPoolOptions {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  exports: PoolExports;
  layout: PoolLayout;
  /** Byte address of layout.controlBytes zeroed bytes of `memory`, 16-byte aligned, kept for the pool's life. */
  control: number;
  /** Threads including the caller's: 2 … layout.maxThreads. */
  threads: number;
}

/** Reads of the generation a worker makes before it sleeps (≈ 50–100 µs): jobs follow each other closely within a forward pass. */
const WORKER_SPIN = 1 << 17;
/**
 * How long the caller spins on the last chunks before it sleeps: about one chunk of a DeiT-S
 * GEMM, so that a worker finishing its last chunk a little after the caller is not also waiting
 * for the caller to wake up.
 */
const CALLER_SPIN_MS = 0.2;
/** The caller's sleeps are this long at most, in case a wake-up is lost. */
const WAIT_SLICE_MS = 100;
/** After a fault, how long the caller waits for the other threads to finish the chunks they hold. */
const SETTLE_MS = 10_000;
/** A job in which no chunk finishes for this long has a stuck worker: it fails rather than hang. */
const STALL_MS = 60_000;
/** Starting the pool fails if its workers are not all ready by then. */
const START_MS = 60_000;

/** The number of threads to use by default: the cores the runtime reports, at most 4. */
export async function defaultThreadCount(): Promise<number> {
  return Math.max(1, Math.min(4, (await currentPlatform()).cores()));
}

export class ThreadPool {
  readonly threads: number;
  /** Jobs run so far (each one a kernel call split over the threads). */
  jobs = 0;
  private readonly exports: PoolExports;
  private readonly layout: PoolLayout;
  private readonly control: number;
  private readonly words: Int32Array; // the control block as i32 words
  private readonly canBlock: boolean;
  private faultsSeen = 0;
  private disposed: Promise<void> | null = null;
  private supervisorEnded = false; // its workers end with it

  private constructor(
    options: ThreadPoolOptions,
    private readonly supervisor: ThreadHandle,
  ) {
    this.threads = options.threads;
    this.exports = options.exports;
    this.layout = options.layout;
    this.control = options.control;
    this.words = new Int32Array(options.memory.buffer, options.control, options.layout.controlBytes / 4);
    this.canBlock = blockingAllowed();
    supervisor.onEnd(() => {
      this.supervisorEnded = true;
    });
  }

  /** Starts the supervisor and the workers; resolves when every worker is ready. */
  static async start(options: ThreadPoolOptions): Promise<ThreadPool> {
    const { threads, layout } = options;
    if (!(Number.isInteger(threads) && threads >= 2 && threads <= layout.maxThreads)) {
      throw new ThreadPoolError(`expected 2 … ${layout.maxThreads} threads for a pool, got ${threads}`);
    }
    const platform = await currentPlatform();
    const supervisor = platform.spawn(siblingModule(import.meta.url, 'pool-supervisor'), 'vitprune-pool-supervisor');
    const pool = new ThreadPool(options, supervisor);
    const start: SupervisorStart = {
      module: options.module,
      memory: options.memory,
      control: options.control,
      layout,
      threads,
      spin: WORKER_SPIN,
    };
    // Kept alive while starting (a top-level await on start-up must not let Node exit), then not.
    supervisor.keepAlive(true);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(
          () => reject(new ThreadPoolError(`could not start the thread pool: its workers were not ready after ${START_MS / 1000} s`)),
          START_MS,
        );
        supervisor.onMessage((data) => {
          const message = data as SupervisorMessage;
          if (message.kind === 'ready') resolve();
          else if (message.kind === 'failed') reject(new ThreadPoolError(`could not start the thread pool: ${message.message}`));
        });
        supervisor.onEnd((error) =>
          reject(new ThreadPoolError(`could not start the thread pool: its supervisor thread ended (${error?.message ?? 'exited'})`, { cause: error })),
        );
        supervisor.post(start);
      });
    } catch (error) {
      supervisor.terminate();
      throw error;
    } finally {
      clearTimeout(timer);
      supervisor.keepAlive(false);
    }
    return pool;
  }

  /**
   * Runs one job of `chunks` chunks (≥ 1) on every thread and returns when all are done.
   * `what` names the kernel in errors; `kind`, `scalar` and the arguments are pool_publish's.
   */
  run(
    what: string,
    kind: number,
    chunks: number,
    scalar: number,
    a0: number,
    a1: number,
    a2: number,
    a3 = 0,
    a4 = 0,
    a5 = 0,
    a6 = 0,
    a7 = 0,
    a8 = 0,
    a9 = 0,
    a10 = 0,
    a11 = 0,
    a12 = 0,
    a13 = 0,
  ): void {
    if (this.disposed) throw new ThreadPoolError(`${what}: the thread pool was disposed`);
    const control = this.control;
    this.jobs++;
    const generation = this.exports.pool_publish(control, kind, chunks, scalar, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13);
    if (Atomics.load(this.words, this.layout.sleepers >> 2) > 0) Atomics.notify(this.words, this.layout.generation >> 2);
    try {
      this.exports.pool_run(control);
    } catch (error) {
      this.settle(generation);
      throw new ThreadPoolError(`${what}: the kernel failed on the calling thread: ${(error as Error).message}`, { cause: error });
    }
    this.waitForChunks(what, generation, chunks);
  }

  /** Threads taking jobs now (the caller's included): fewer than `threads` while a dead worker restarts. */
  liveThreads(): number {
    let live = 1;
    for (let slot = 1; slot < this.threads; slot++) if (Atomics.load(this.words, this.stateAt(slot)) === this.layout.stateReady) live++;
    return live;
  }

  /** Chunks each thread has run so far, the caller's first (a restarted worker counts on in its slot). */
  chunksPerThread(): number[] {
    return Array.from({ length: this.threads }, (_, slot) => Atomics.load(this.words, slotWord(this.layout, slot, this.layout.slotChunks)));
  }

  /**
   * Fault injection, for tests: the supervisor terminates worker `slot` (1 … threads − 1) as soon
   * as it holds a chunk of a job.
   */
  killWorkerWhileBusy(slot: number): void {
    this.tell({ kind: 'kill', worker: slot });
  }

  /** Ends the workers and the supervisor; resolves when they have ended. Jobs fail afterwards. */
  dispose(): Promise<void> {
    if (!this.disposed && this.supervisorEnded) this.disposed = Promise.resolve();
    if (!this.disposed) {
      const supervisor = this.supervisor;
      supervisor.keepAlive(true);
      this.disposed = new Promise<void>((resolve) => {
        supervisor.onMessage((data) => {
          if ((data as SupervisorMessage).kind === 'stopped') resolve();
        });
        supervisor.onEnd(() => resolve());
      }).finally(() => supervisor.keepAlive(false));
      this.tell({ kind: 'stop' });
    }
    return this.disposed;
  }

  private tell(message: CallerMessage): void {
    this.supervisor.post(message);
  }

  private stateAt(slot: number): number {
    return slotWord(this.layout, slot, this.layout.slotState);
  }

  private heldAt(slot: number): number {
    return slotWord(this.layout, slot, this.layout.slotHeld);
  }

  private waitForChunks(what: string, generation: number, chunks: number): void {
    const words = this.words;
    const doneAt = this.layout.done >> 2;
    const faultsAt = this.layout.faults >> 2;
    let spinUntil = -1;
    let progress = -1; // chunks done when last seen to change
    let progressAt = 0;
    for (;;) {
      const done = Atomics.load(words, doneAt);
      if (done === chunks) return;
      if (Atomics.load(words, faultsAt) !== this.faultsSeen) this.checkFaults(what, generation);
      const now = performance.now();
      if (done !== progress) {
        progress = done;
        progressAt = now;
      } else if (now - progressAt > STALL_MS) {
        this.exports.pool_seal(this.control, generation);
        throw new ThreadPoolError(
          `${what}: no chunk finished for ${STALL_MS / 1000} s (${done} of ${chunks} done): a worker is stuck; the pool cannot be trusted any more`,
        );
      }
      if (!this.canBlock) continue;
      if (spinUntil < 0) spinUntil = now + CALLER_SPIN_MS;
      if (now >= spinUntil) Atomics.wait(words, doneAt, done, WAIT_SLICE_MS);
    }
  }

  /** After a worker died: fails the job if the dead worker held one of its chunks (its slot's lost generation). */
  private checkFaults(what: string, generation: number): void {
    const words = this.words;
    this.faultsSeen = Atomics.load(words, this.layout.faults >> 2);
    for (let slot = 1; slot < this.threads; slot++) {
      if (Atomics.load(words, slotWord(this.layout, slot, this.layout.slotLost)) === generation) {
        this.settle(generation);
        throw new ThreadPoolError(`${what}: ${this.faultMessage()} while running a chunk; the pool restarts it`);
      }
    }
  }

  /** Lets no more chunks of `generation` start, and waits (bounded) until no live thread holds one. */
  private settle(generation: number): void {
    this.exports.pool_seal(this.control, generation);
    const words = this.words;
    const deadline = performance.now() + SETTLE_MS;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      let holders = 0;
      for (let slot = 1; slot < this.threads; slot++) {
        if (Atomics.load(words, this.stateAt(slot)) === this.layout.stateReady && Atomics.load(words, this.heldAt(slot)) === generation) holders++;
      }
      if (holders === 0) return;
      if (performance.now() > deadline) {
        throw new ThreadPoolError(`${holders} worker(s) still run a failed job after ${SETTLE_MS / 1000} s: the wasm memory may be in use`);
      }
      if (this.canBlock) Atomics.wait(pause, 0, 0, 1);
    }
  }

  /** The supervisor's description of the latest fault. */
  private faultMessage(): string {
    const bytes = new Uint8Array(this.words.buffer, this.words.byteOffset + this.layout.message, this.layout.messageBytes);
    const end = bytes.indexOf(0);
    // TextDecoder refuses views of shared memory: copy first.
    return new TextDecoder().decode(bytes.slice(0, end < 0 ? bytes.length : end)) || 'a worker died';
  }
}

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
function blockingAllowed(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}
