/**
 * Cost of Zero-TPrune's pruning logic against the forward pass it saves, single thread:
 * dense, Zero-TPrune and random drop on the same post-block schedule, interleaved in one run on
 * the same input, plus the time spent inside the Zero-TPrune hook (`afterBlock`).
 *   npx tsx bench/prune.ts [--model M] [--keep RHO | --budget F] [--runs N] [--backend B]
 * M: a model folder (default /work/shared/data/deit-tiny, fed its golden sample0 input, a real
 * image) or random:<timm architecture> (fed benchInput). Without --keep/--budget: keep 0.735 and
 * the ρ solved for 0.653 × dense GMACs (if it differs). With --oracle, also Zero-TPrune with
 * its steps run by the TypeScript oracles (the reference kernels; the pre-kernel implementation)
 * on the same backend's forward pass: the kernels' gain, measured in the same run.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelSpec } from '../src/cli/common.js';
import { benchInput } from '../src/eval/bench.js';
import { median } from '../src/eval/metrics.js';
import { createKernels, type Backend } from '../src/kernels/index.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { readSafetensors } from '../src/model/safetensors-file.js';
import { ViTRunner } from '../src/model/vit.js';
import type { ForwardHooks } from '../src/model/hooks.js';
import { denseGmacs } from '../src/model/gmacs.js';
import { solveBudget } from '../src/prune/budget.js';
import { planPruning } from '../src/prune/registry.js';
import { keepRatioKnob, keepRatioSchedule, scheduleGmacs } from '../src/prune/schedule.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '/work/shared/data/deit-tiny' },
    keep: { type: 'string' },
    budget: { type: 'string' },
    runs: { type: 'string', default: '20' },
    backend: { type: 'string', default: 'wasm' },
    oracle: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const spec = values.model!;
const model = await loadModelSpec(spec, { quiet: true });
const cfg = model.config;
const runner = new ViTRunner(model, await createKernels(values.backend as Backend));

const golden = path.join(spec, 'golden_reference.safetensors');
const realInput = !spec.startsWith('random:') && existsSync(golden);
const input = realInput ? readSafetensors(golden).tensors.get('sample0.input')!.data : benchInput(cfg);

const solvedRho = async (budget: number) => (await solveBudget(denseGmacs(cfg), budget, [keepRatioKnob(cfg)])).position;
let rhos: number[];
if (values.keep !== undefined) rhos = [Number(values.keep)];
else if (values.budget !== undefined) rhos = [await solvedRho(Number(values.budget))];
else rhos = [...new Set([0.735, await solvedRho(0.653)])];

/** afterBlock wrapped with a stopwatch; `spent` accumulates its ms. */
function stopwatch(hooks: ForwardHooks): { hooks: ForwardHooks; spent: { ms: number } } {
  const spent = { ms: 0 };
  const inner = hooks.afterBlock!;
  return {
    spent,
    hooks: {
      afterBlock(state) {
        const t0 = performance.now();
        const r = inner(state);
        spent.ms += performance.now() - t0;
        return r;
      },
    },
  };
}

/** The hooks with the pruning steps on the reference kernels (the TypeScript oracles). */
function onOracle(hooks: ForwardHooks): ForwardHooks {
  const reference = createReferenceKernels();
  return { afterBlock: (state) => hooks.afterBlock!({ ...state, kernels: reference }) };
}

interface Entry {
  name: string;
  rho: number;
  hooks: () => ForwardHooks | undefined;
  hookMs?: { ms: number };
}

const entries: Entry[] = [{ name: 'dense', rho: 1, hooks: () => undefined }];
for (const rho of rhos) {
  const zt = stopwatch((await planPruning(cfg, { method: 'zero-tprune', keep: rho })).hooks(0));
  const random = await planPruning(cfg, { method: 'random', keep: rho });
  entries.push({ name: `zero-tprune ρ=${rho}`, rho, hooks: () => zt.hooks, hookMs: zt.spent });
  if (values.oracle) {
    const ts = stopwatch(onOracle((await planPruning(cfg, { method: 'zero-tprune', keep: rho })).hooks(0)));
    entries.push({ name: `  TS oracle ρ=${rho}`, rho, hooks: () => ts.hooks, hookMs: ts.spent });
  }
  entries.push({ name: `random ρ=${rho}`, rho, hooks: () => random.hooks(0) });
}

const warmup = 3;
const samples = entries.map(() => [] as number[]);
const hookSamples = entries.map(() => [] as number[]);
for (let i = 0; i < warmup + runs; i++) {
  entries.forEach((e, j) => {
    if (e.hookMs) e.hookMs.ms = 0;
    const t0 = performance.now();
    runner.forward(input, e.hooks());
    const ms = performance.now() - t0;
    if (i >= warmup) {
      samples[j].push(ms);
      if (e.hookMs) hookSamples[j].push(e.hookMs.ms);
    }
  });
}

const dense = median(samples[0]);
console.log(`${spec} (${runner.kernels.name}, 1 thread, ${runs} runs, input: ${realInput ? 'golden sample0' : 'benchInput'})`);
console.log(`  dense                 ${dense.toFixed(2)} ms/image, ${denseGmacs(cfg).toFixed(4)} GMACs`);
entries.forEach((e, j) => {
  if (j === 0) return;
  const rho = e.rho;
  const fraction = scheduleGmacs(cfg, keepRatioSchedule(cfg, rho)) / denseGmacs(cfg);
  const ms = median(samples[j]);
  let line = `  ${e.name.padEnd(21)} ${ms.toFixed(2)} ms/image  ×${fraction.toFixed(3)} GMACs  ×${(ms / dense).toFixed(3)} time of dense`;
  if (e.hookMs) {
    const hook = median(hookSamples[j]);
    line += `  hook ${hook.toFixed(2)} ms = ${((100 * hook) / ms).toFixed(1)} % of pruned`;
  }
  console.log(line);
});
