/**
 * Runs a fuzz target on `count` mutated inputs, in-process, and counts what happened to each:
 * accepted, refused with one of our error classes (clean), or anything else thrown (internal).
 * Every input is timed; peak memory is the process's maximum RSS.
 */
import { inputSeed, mutate, Random } from './mutate.js';
import { createTarget, isOurs, type TargetName } from './targets.js';

export const SLOW_MS = 2000;

export interface FuzzFailure {
  index: number; // reproduce with --only index (same seed)
  what: string[];
  error: string;
  bytes: Uint8Array;
}

export interface FuzzStats {
  target: TargetName;
  count: number;
  seed: number;
  accepted: number;
  clean: Map<string, number>; // error class name → count
  internal: FuzzFailure[];
  slow: { index: number; ms: number; what: string[] }[]; // over SLOW_MS
  slowest: { index: number; ms: number; what: string[]; bytes: number };
  peakRssMb: number;
  seconds: number;
}

/** The input `index` of a run: reproducible from (target, seed, index) alone. */
export function fuzzInput(seeds: readonly Uint8Array[], mutators: Parameters<typeof mutate>[1], seed: number, target: TargetName, index: number) {
  return mutate(seeds, mutators, new Random(inputSeed(seed, target, index)));
}

export function runFuzz(name: TargetName, count: number, seed: number, options: { only?: number; onProgress?: (done: number) => void } = {}): FuzzStats {
  const target = createTarget(name);
  const stats: FuzzStats = {
    target: name,
    count: 0,
    seed,
    accepted: 0,
    clean: new Map(),
    internal: [],
    slow: [],
    slowest: { index: -1, ms: 0, what: [], bytes: 0 },
    peakRssMb: 0,
    seconds: 0,
  };
  const started = performance.now();
  try {
    const indices = options.only !== undefined ? [options.only] : Array.from({ length: count }, (_, i) => i);
    for (const index of indices) {
      const { bytes, what } = fuzzInput(target.seeds, target.mutators, seed, name, index);
      const start = performance.now();
      try {
        target.run(bytes);
        stats.accepted++;
      } catch (error) {
        if (isOurs(error)) {
          const kind = (error as Error).constructor.name;
          stats.clean.set(kind, (stats.clean.get(kind) ?? 0) + 1);
        } else {
          const message = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
          stats.internal.push({ index, what, error: message, bytes });
        }
      }
      const ms = performance.now() - start;
      if (ms > stats.slowest.ms) stats.slowest = { index, ms, what, bytes: bytes.length };
      if (ms > SLOW_MS) stats.slow.push({ index, ms, what });
      stats.count++;
      if (stats.count % 1000 === 0) options.onProgress?.(stats.count);
    }
  } finally {
    target.close();
  }
  stats.seconds = (performance.now() - started) / 1000;
  stats.peakRssMb = (process.resourceUsage().maxRSS * 1024) / 2 ** 20;
  return stats;
}
