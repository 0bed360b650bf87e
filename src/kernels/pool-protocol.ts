/**
 * What the thread pool's three parties share: the control block layout (defined in
 * assembly/pool.ts, read from the module's exported globals) and the messages between the
 * caller's thread (pool.ts), the supervisor (pool-supervisor.ts) and the workers (pool-worker.ts).
 * Messages are used only to start and stop threads and to report faults; jobs go through the
 * control block.
 */

/** Byte offsets and codes of the control block (see assembly/pool.ts). */
export interface PoolLayout {
  generation: number;
  stop: number;
  sleepers: number;
  done: number;
  faults: number;
  slots: number;
  slotBytes: number;
  slotState: number; // fields of a slot, from its start
  slotHeld: number;
  slotChunks: number;
  slotSleeps: number;
  slotLost: number;
  message: number;
  messageBytes: number;
  controlBytes: number;
  maxThreads: number;
  maxChunks: number;
  stateStarting: number;
  stateReady: number;
  stateDead: number;
  stateStopped: number;
}

/** The names of the layout's exported globals (assembly/index.ts). */
const LAYOUT_GLOBALS: Record<keyof PoolLayout, string> = {
  generation: 'POOL_GENERATION',
  stop: 'POOL_STOP',
  sleepers: 'POOL_SLEEPERS',
  done: 'POOL_DONE',
  faults: 'POOL_FAULTS',
  slots: 'POOL_SLOTS',
  slotBytes: 'POOL_SLOT_BYTES',
  slotState: 'POOL_SLOT_STATE',
  slotHeld: 'POOL_SLOT_HELD',
  slotChunks: 'POOL_SLOT_CHUNKS',
  slotSleeps: 'POOL_SLOT_SLEEPS',
  slotLost: 'POOL_SLOT_LOST',
  message: 'POOL_MESSAGE',
  messageBytes: 'POOL_MESSAGE_BYTES',
  controlBytes: 'POOL_CONTROL_BYTES',
  maxThreads: 'POOL_MAX_THREADS',
  maxChunks: 'POOL_MAX_CHUNKS',
  stateStarting: 'POOL_STATE_STARTING',
  stateReady: 'POOL_STATE_READY',
  stateDead: 'POOL_STATE_DEAD',
  stateStopped: 'POOL_STATE_STOPPED',
};

export function readPoolLayout(exports: WebAssembly.Exports): PoolLayout {
  const layout = {} as PoolLayout;
  for (const [key, name] of Object.entries(LAYOUT_GLOBALS) as [keyof PoolLayout, string][]) {
    const global = exports[name];
    if (!(global instanceof WebAssembly.Global))
      throw new Error(`expected the wasm build to export the global ${name}, found none (rebuild with \`npm run build:wasm\`)`);
    layout[key] = global.value as number;
  }
  return layout;
}

/** Start-up data of a compute worker (its first message). */
export interface WorkerStart {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: number; // byte address of the control block
  layout: PoolLayout;
  worker: number; // its slot, 1 … threads − 1 (0 is the caller's)
  spin: number; // reads of the generation before sleeping
}

/** Start-up data of the supervisor (its first message). */
export interface SupervisorStart extends Omit<WorkerStart, 'worker'> {
  threads: number; // including the caller: workers are slots 1 … threads − 1
}

export type WorkerMessage =
  | { kind: 'ready' } // about to take jobs
  | { kind: 'stopped' } // stopped after POOL_STOP
  | { kind: 'crashed'; message: string }; // a kernel trapped (or instantiation failed)

export type CallerMessage =
  | { kind: 'stop' } // end every worker, then the supervisor
  | { kind: 'kill'; worker: number }; // fault injection: terminate this worker while it holds a chunk

export type SupervisorMessage =
  | { kind: 'ready' } // every worker has started (once)
  | { kind: 'failed'; message: string } // a worker could not start: the pool cannot run
  | { kind: 'stopped' }; // every worker has ended; the supervisor ends too

/** Index in an Int32Array over the control block of `field` (a byte offset in a slot) of thread `slot`. */
export function slotWord(layout: PoolLayout, slot: number, field: number): number {
  return (layout.slots + slot * layout.slotBytes + field) >> 2;
}
