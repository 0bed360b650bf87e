import { UsageError } from '../errors.js';
import { benchForward, benchGemm, benchInput, modelGemmShapes } from '../eval/bench.js';
import { BACKENDS, createKernels, type Backend } from '../kernels/index.js';
import { ViTRunner } from '../model/vit.js';
import { intOption, type CommandSpec, type Parsed } from './args.js';
import { loadModelSpec, MODEL_OPTIONS, printJson } from './common.js';
import { METHOD_OPTIONS, pruningFromOptions } from './pruning.js';

export const benchSpec: CommandSpec = {
  name: 'bench',
  summary: 'Time the forward pass (ms/image, batch 1, 1 thread) and the GEMMs of a model (GFLOP/s).',
  usage:
    'vitprune bench [--model M | --model random:deit_small_patch16_224] [--backend B[,B2...]] [--runs N] ' +
    '[--method NAME --keep|--budget|--gmacs|--schedule ...] [--json]',
  options: {
    ...MODEL_OPTIONS,
    backend: {
      type: 'string',
      valueName: 'B',
      default: 'wasm',
      help: `backend, or a comma-separated list timed interleaved in one run (${BACKENDS.join(', ')})`,
    },
    runs: { type: 'string', valueName: 'N', default: '20', help: 'timed forward passes per backend after 3 warm-up runs' },
    ...METHOD_OPTIONS,
  },
};

function backendList(raw: string): Backend[] {
  const list = raw.split(',').map((b) => b.trim());
  for (const b of list) {
    if (!(BACKENDS as readonly string[]).includes(b)) throw new UsageError(`--backend expects ${BACKENDS.join(', ')} (or a comma-separated list), got '${b}'`);
  }
  return list as Backend[];
}

export async function benchCommand({ values }: Parsed): Promise<void> {
  const runs = intOption(values, 'runs', 20)!;
  const backends = backendList(values.backend as string);
  const model = await loadModelSpec(values.model as string, { quiet: values.quiet === true });
  const kernels = await Promise.all(backends.map((b) => createKernels(b)));
  const runners = kernels.map((k) => new ViTRunner(model, k));
  const plan = await pruningFromOptions(values, runners[0]);
  const input = benchInput(model.config);
  // Dense on every backend; with --method, the pruned model on the first backend too, interleaved.
  const entries = [...runners.map((runner) => ({ runner })), ...(plan ? [{ runner: runners[0], hooks: () => plan.hooks(0) }] : [])];
  const timed = benchForward(entries, input, runs);
  const forward = timed.slice(0, runners.length);
  const pruned = plan ? timed[runners.length] : null;
  // GEMM throughput of the first backend on the model's own shapes (the reference is slow: fewer runs).
  const gemmRuns = backends[0] === 'reference' ? 3 : runs;
  const gemm = modelGemmShapes(model.config, runners[0].maxTokens).map((s) => ({ ...s, gflops: benchGemm(kernels[0], s, gemmRuns) }));

  const report = {
    model: values.model,
    backend: kernels[0].name,
    threads: 1,
    gmacs: (pruned ?? forward[0]).gmacs,
    msPerImage: (pruned ?? forward[0]).ms,
    ...(plan && pruned && {
      method: plan.method,
      schedule: plan.settings,
      dense: { gmacs: forward[0].gmacs, msPerImage: forward[0].ms },
      gmacsFraction: pruned.gmacs / forward[0].gmacs,
      msRatio: pruned.ms.median / forward[0].ms.median, // pruned / dense, same backend, same run
    }),
    gemm: gemm.map(({ name, m, n, k, gflops }) => ({ name, m, n, k, gflops })),
    ...(backends.length > 1 && {
      compare: kernels.slice(1).map((k, i) => ({
        backend: k.name,
        msPerImage: forward[i + 1].ms,
        ratio: forward[i + 1].ms.median / forward[0].ms.median, // > 1: slower than the first backend
      })),
    }),
  };
  if (values.json) {
    printJson(report);
    return;
  }
  const ms = (t: { median: number; min: number; max: number }) => `${t.median.toFixed(2)} ms/image (min ${t.min.toFixed(2)}, max ${t.max.toFixed(2)})`;
  process.stdout.write(`${report.model}: ${forward[0].gmacs.toFixed(4)} GMACs dense, ${runs} runs, 1 thread\n`);
  process.stdout.write(`  ${report.backend.padEnd(14)} ${ms(forward[0].ms)}\n`);
  for (const c of report.compare ?? []) {
    process.stdout.write(`  ${c.backend.padEnd(14)} ${ms(c.msPerImage)}  = ${c.ratio.toFixed(2)}× ${report.backend}\n`);
  }
  if (plan && pruned) {
    process.stdout.write(
      `  ${plan.method.padEnd(14)} ${ms(pruned.ms)} on ${report.backend}, ${pruned.gmacs.toFixed(4)} GMACs ` +
        `(×${report.gmacsFraction!.toFixed(3)} GMACs, ×${report.msRatio!.toFixed(3)} time of dense)\n`,
    );
  }
  process.stdout.write(`GEMMs on ${report.backend}:\n`);
  for (const g of report.gemm) {
    process.stdout.write(`  ${g.name.padEnd(12)} ${String(g.m).padStart(4)}×${String(g.k).padEnd(5)}· ${String(g.k).padStart(5)}×${String(g.n).padEnd(5)} ${g.gflops.toFixed(1).padStart(6)} GFLOP/s\n`);
  }
}
