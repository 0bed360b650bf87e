/**
 * A compute worker of the thread pool (started by pool-supervisor.ts). It instantiates the
 * kernels' module on the shared memory and takes jobs from the control block: pool_worker_run
 * spins for a job and runs its chunks; between jobs this loop wakes the caller (who may sleep on
 * DONE) and, when no job came during the spin, sleeps until the next one. A trap in a kernel (or
 * a failed instantiation) is reported to the supervisor, and the thread ends.
 */
import { currentPlatform } from './platform.js';
import { slotWord, type WorkerMessage, type WorkerStart } from './pool-protocol.js';

type WorkerRun = (control: number, worker: number, seen: number, spin: number) => number;

const parent = (await currentPlatform()).parent();
const report = (message: WorkerMessage): void => parent.post(message);

parent.onMessage(async (data) => {
  const start = data as WorkerStart;
  try {
    const instance = await WebAssembly.instantiate(start.module, { env: { memory: start.memory } });
    const run = instance.exports.pool_worker_run as WorkerRun;
    const { layout, control, worker, spin } = start;
    const words = new Int32Array(start.memory.buffer, control, layout.controlBytes / 4);
    const generationAt = layout.generation >> 2;
    const stateAt = slotWord(layout, worker, layout.slotState);
    Atomics.store(words, stateAt, layout.stateReady);
    report({ kind: 'ready' });
    let seen = Atomics.load(words, generationAt);
    while (!Atomics.load(words, layout.stop >> 2)) {
      const generation = run(control, worker, seen, spin);
      if (generation !== seen) {
        seen = generation;
        Atomics.notify(words, layout.done >> 2); // the caller may be asleep on the last chunk
        continue;
      }
      // No job: sleep. Counted first, so that a caller publishing now sees a sleeper and wakes it.
      Atomics.add(words, layout.sleepers >> 2, 1);
      Atomics.add(words, slotWord(layout, worker, layout.slotSleeps), 1);
      Atomics.wait(words, generationAt, seen);
      Atomics.sub(words, layout.sleepers >> 2, 1);
    }
    Atomics.store(words, stateAt, layout.stateStopped);
    report({ kind: 'stopped' });
  } catch (error) {
    report({ kind: 'crashed', message: (error as Error).message ?? String(error) });
  }
  parent.close();
});
