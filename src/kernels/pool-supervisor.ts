/**
 * The thread pool's supervisor: a thread of its own that starts the compute workers
 * (pool-worker.ts) and watches them. It exists because the caller's thread blocks while a job
 * runs, and a blocked thread receives no events: when a worker crashes or is terminated, the
 * supervisor, whose event loop is free, marks its slot dead in the control block, writes the
 * reason there and wakes the caller (which then fails the job instead of waiting for a chunk
 * that will never be done), and starts a new worker in that slot.
 */
import { currentPlatform, siblingModule, type ThreadHandle } from './platform.js';
import { slotWord, type CallerMessage, type PoolLayout, type SupervisorMessage, type SupervisorStart, type WorkerMessage } from './pool-protocol.js';

/** How long stopping waits for a worker to leave its loop before terminating it. */
const STOP_GRACE_MS = 2000;
/** How long a kill request waits for its worker to hold a chunk. */
const KILL_WAIT_MS = 10_000;

interface Incarnation {
  handle: ThreadHandle;
  ready: boolean; // has reached pool_worker_loop
  crash?: string; // what it reported before ending
}

const platform = await currentPlatform();
const parent = platform.parent();
const tell = (message: SupervisorMessage): void => parent.post(message);

let start: SupervisorStart | undefined;
let control: Int32Array; // the control block, as i32 words
let layout: PoolLayout;
const workers: (Incarnation | undefined)[] = [];
let startedAll = false;
let stopping = false;

parent.onMessage((data) => {
  if (!start) {
    start = data as SupervisorStart;
    layout = start.layout;
    control = new Int32Array(start.memory.buffer, start.control, layout.controlBytes / 4);
    for (let slot = 1; slot < start.threads; slot++) spawn(slot);
    return;
  }
  const message = data as CallerMessage;
  if (message.kind === 'stop') stop();
  else killWhileBusy(message.worker);
});

const word = (byteOffset: number): number => byteOffset >> 2;
const stateAt = (slot: number): number => slotWord(layout, slot, layout.slotState);
const heldAt = (slot: number): number => slotWord(layout, slot, layout.slotHeld);

function spawn(slot: number): void {
  Atomics.store(control, heldAt(slot), 0);
  Atomics.store(control, stateAt(slot), layout.stateStarting);
  const incarnation: Incarnation = { handle: platform.spawn(siblingModule(import.meta.url, 'pool-worker'), `vitprune-pool-${slot}`), ready: false };
  workers[slot] = incarnation;
  incarnation.handle.onMessage((data) => {
    const message = data as WorkerMessage;
    if (message.kind === 'ready') {
      incarnation.ready = true;
      if (!startedAll && workers.every((w, s) => s === 0 || w?.ready)) {
        startedAll = true;
        tell({ kind: 'ready' });
      }
    } else {
      // It ends itself after 'stopped' or 'crashed'. A Web Worker that closes itself fires no
      // event: terminating it here reports its end on every platform (onEnd).
      if (message.kind === 'crashed') incarnation.crash = message.message;
      incarnation.handle.terminate();
    }
  });
  incarnation.handle.onEnd((error) => ended(slot, incarnation, error));
  incarnation.handle.post({ ...start!, worker: slot });
}

function ended(slot: number, incarnation: Incarnation, error: Error | undefined): void {
  if (workers[slot] !== incarnation) return; // reported already
  workers[slot] = undefined;
  if (stopping) {
    if (workers.every((w) => w === undefined)) {
      tell({ kind: 'stopped' });
      parent.close();
    }
    return;
  }
  const reason = incarnation.crash ?? error?.message ?? 'the thread exited';
  writeMessage(`worker ${slot} ${incarnation.ready ? 'died' : 'failed to start'}: ${reason}`);
  // Kept apart from the slot's live fields, which the restart resets: the caller matches it against its job.
  Atomics.store(control, slotWord(layout, slot, layout.slotLost), Atomics.load(control, heldAt(slot)));
  Atomics.store(control, stateAt(slot), layout.stateDead);
  Atomics.add(control, word(layout.faults), 1);
  Atomics.notify(control, word(layout.done));
  if (!incarnation.ready && !startedAll) {
    tell({ kind: 'failed', message: `worker ${slot} failed to start: ${reason}` });
    return;
  }
  spawn(slot);
}

/** The reason of the latest fault, as NUL-terminated UTF-8 in the control block. */
function writeMessage(text: string): void {
  const bytes = new Uint8Array(control.buffer, control.byteOffset + layout.message, layout.messageBytes);
  const { written } = new TextEncoder().encodeInto(text, bytes.subarray(0, layout.messageBytes - 1));
  bytes[written] = 0;
}

function stop(): void {
  stopping = true;
  Atomics.store(control, word(layout.stop), 1);
  Atomics.add(control, word(layout.generation), 1);
  Atomics.notify(control, word(layout.generation));
  if (workers.every((w) => w === undefined)) {
    tell({ kind: 'stopped' });
    parent.close();
    return;
  }
  // A worker inside a long kernel, or one still starting, is ended the hard way.
  setTimeout(() => workers.forEach((w) => w?.handle.terminate()), STOP_GRACE_MS);
}

/**
 * Fault injection for tests: terminate `slot`'s worker the moment it holds a chunk of a job (the
 * supervisor watches the slot; it has nothing else to do meanwhile).
 */
function killWhileBusy(slot: number): void {
  const incarnation = workers[slot];
  if (!incarnation) return;
  const deadline = Date.now() + KILL_WAIT_MS;
  while (Atomics.load(control, heldAt(slot)) === 0 && Date.now() < deadline) {
    /* spin */
  }
  incarnation.handle.terminate();
}
