/**
 * The fuzz harness:
 *   npm run fuzz -- --target jpeg|png|safetensors|config|schedule|all [--count N] [--seed S] [--only I] [--save DIR]
 * mutates the project's own seed files (fixtures and inputs generated in memory) and feeds each
 * input to the parser or loader in this process. Prints per target: accepted, clean errors
 * (our error classes, by class), internal errors (anything else: bugs), inputs over 2 s, the
 * slowest input, and the peak RSS of the process so far. `--only I` reruns input I of the same
 * seed (to reproduce one); `--save DIR` writes every input that caused an internal error.
 * Exit code 1 when any input caused an internal error or took over 2 s.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runFuzz, SLOW_MS, type FuzzStats } from './run.js';
import { TARGET_NAMES, type TargetName } from './targets.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'all' },
    count: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    only: { type: 'string' },
    save: { type: 'string' },
  },
});

const targets = values.target === 'all' ? [...TARGET_NAMES] : [values.target as TargetName];
for (const t of targets) {
  if (!TARGET_NAMES.includes(t)) {
    process.stderr.write(`error: unknown target '${t}': expected one of ${TARGET_NAMES.join(', ')} or all\n`);
    process.exit(1);
  }
}
const count = Number(values.count);
const seed = Number(values.seed);
if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(seed)) {
  process.stderr.write(`error: expected --count a positive integer and --seed an integer, found ${values.count} and ${values.seed}\n`);
  process.exit(1);
}

function report(s: FuzzStats): string {
  const clean = [...s.clean].map(([k, n]) => `${k} ${n}`).join(', ') || '0';
  const lines = [
    `${s.target}: ${s.count} inputs (seed ${s.seed}) in ${s.seconds.toFixed(1)} s`,
    `  accepted ${s.accepted}; clean errors ${[...s.clean.values()].reduce((a, b) => a + b, 0)} (${clean}); internal errors ${s.internal.length}; over ${SLOW_MS / 1000} s ${s.slow.length}`,
    `  slowest: input ${s.slowest.index}, ${s.slowest.ms.toFixed(1)} ms, ${s.slowest.bytes} bytes (${s.slowest.what.join('; ')})`,
    `  peak RSS of the process so far: ${s.peakRssMb.toFixed(0)} MB`,
  ];
  for (const f of s.internal.slice(0, 10)) lines.push(`  internal: input ${f.index} (${f.what.join('; ')}): ${f.error.split('\n')[0]}`);
  for (const f of s.slow.slice(0, 10)) lines.push(`  slow: input ${f.index}, ${f.ms.toFixed(0)} ms (${f.what.join('; ')})`);
  return lines.join('\n');
}

let failed = false;
for (const target of targets) {
  const stats = runFuzz(target, count, seed, {
    only: values.only === undefined ? undefined : Number(values.only),
    onProgress: (done) => process.stderr.write(`${target}: ${done} of ${count}\n`),
  });
  process.stdout.write(report(stats) + '\n');
  if (values.save) {
    mkdirSync(values.save, { recursive: true });
    for (const f of stats.internal) writeFileSync(path.join(values.save, `${target}-seed${seed}-input${f.index}`), f.bytes);
  }
  failed ||= stats.internal.length > 0 || stats.slow.length > 0;
}
process.exitCode = failed ? 1 : 0;
