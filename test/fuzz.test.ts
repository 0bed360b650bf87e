import { describe, expect, it } from 'vitest';
import { runFuzz, SLOW_MS } from '../fuzz/run.js';
import { TARGET_NAMES } from '../fuzz/targets.js';

/** The fuzz harness (npm run fuzz) with a fixed seed: a few hundred inputs per target. */
describe('fuzz: mutated inputs meet only our own errors, each in under 2 s', () => {
  it.each(TARGET_NAMES)('%s: 300 inputs, seed 1', (target) => {
    const stats = runFuzz(target, 300, 1);
    const clean = [...stats.clean.values()].reduce((a, b) => a + b, 0);
    process.stderr.write(
      `fuzz ${target}: accepted ${stats.accepted}, clean errors ${clean}, internal ${stats.internal.length}, over ${SLOW_MS} ms ${stats.slow.length}, slowest ${stats.slowest.ms.toFixed(1)} ms\n`,
    );
    expect(stats.internal.map((f) => `input ${f.index} (${f.what.join('; ')}): ${f.error}`)).toEqual([]);
    expect(stats.slow.map((s) => `input ${s.index}: ${s.ms.toFixed(0)} ms (${s.what.join('; ')})`)).toEqual([]);
    expect(stats.accepted + clean).toBe(300);
  });
});
