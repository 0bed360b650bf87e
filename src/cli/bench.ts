import { UsageError } from '../errors.js';
import { benchForward, benchGemm, benchInput, modelGemmShapes, type ForwardBench, type Timing } from '../eval/bench.js';
import { BACKENDS, defaultThreadCount, type Backend } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { ViTRunner } from '../model/vit.js';
import { intOption, type CommandSpec, type Parsed } from './args.js';
import { loadModelSpec, MODEL_OPTIONS, openKernels, printJson } from './common.js';
import { METHOD_OPTIONS, pruningFromOptions } from './pruning.js';

export const benchSpec: CommandSpec = {
  name: 'bench',
  summary: 'Time the forward pass (ms/image, batch 1) and the GEMMs of a model (GFLOP/s).',
  usage:
    'vitprune bench [--model M | --model random:deit_small_patch16_224] [--backend B[,B2...]] [--threads N[,N2...]] [--runs N] ' +
    '[--method NAME --keep|--budget|--gmacs|--schedule ...] [--json]',
  options: {
    ...MODEL_OPTIONS,
    backend: {
      type: 'string',
      valueName: 'B',
      default: 'wasm',
      help: `backend, or a comma-separated list timed interleaved in one run (${BACKENDS.join(', ')})`,
    },
    threads: {
      type: 'string',
      valueName: 'N',
      help: 'threads, this one included, or a comma-separated list timed interleaved in one run (default: the cores the runtime reports, at most 4; 1: no worker threads; the reference backends always run on 1)',
    },
    runs: { type: 'string', valueName: 'N', default: '20', help: 'timed forward passes per backend and thread count after 3 warm-up runs' },
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

async function threadList(raw: string | undefined): Promise<number[]> {
  if (raw === undefined) return [await defaultThreadCount()];
  return raw.split(',').map((t) => intOption({ threads: t.trim() }, 'threads')!);
}

/** One timed configuration: a backend on a thread count. */
interface Setup {
  backend: Backend;
  threads: number;
}

/** Every backend on every thread count (the reference backends on one), in the order given, without repeats. */
function setups(backends: Backend[], threads: number[]): Setup[] {
  const all = backends.flatMap((backend) => threads.map((t) => ({ backend, threads: backend.startsWith('reference') ? 1 : t })));
  return all.filter((s, i) => all.findIndex((o) => o.backend === s.backend && o.threads === s.threads) === i);
}

const threadWord = (n: number): string => `${n} thread${n === 1 ? '' : 's'}`;

export async function benchCommand({ values }: Parsed): Promise<void> {
  const runs = intOption(values, 'runs', 20)!;
  const configs = setups(backendList(values.backend as string), await threadList(values.threads as string | undefined));
  const model = await loadModelSpec(values.model as string, { quiet: values.quiet === true });
  const kernels: Kernels[] = [];
  for (const c of configs) kernels.push(await openKernels(c.backend, c.threads));
  const runners = kernels.map((k) => new ViTRunner(model, k));
  const plan = await pruningFromOptions(values, runners[0]);
  const input = benchInput(model.config);
  // Dense on every setup; with --method, the pruned model on every setup too; all interleaved.
  const entries: ForwardBench[] = [
    ...runners.map((runner) => ({ runner })),
    ...(plan ? runners.map((runner) => ({ runner, hooks: () => plan.hooks(0) })) : []),
  ];
  const timed = benchForward(entries, input, runs);
  const forward = timed.slice(0, runners.length);
  const pruned = plan ? timed.slice(runners.length) : null;
  // GEMM throughput of the first setup on the model's own shapes (the reference is slow: fewer runs).
  const gemmRuns = configs[0].backend.startsWith('reference') ? 3 : runs;
  const gemm = modelGemmShapes(model.config, runners[0].maxTokens).map((s) => ({ ...s, gflops: benchGemm(kernels[0], s, gemmRuns) }));

  const report = {
    model: values.model,
    backend: kernels[0].name,
    threads: configs[0].threads,
    gmacs: (pruned?.[0] ?? forward[0]).gmacs,
    msPerImage: (pruned?.[0] ?? forward[0]).ms,
    ...(plan &&
      pruned && {
        method: plan.method,
        schedule: plan.settings,
        dense: { gmacs: forward[0].gmacs, msPerImage: forward[0].ms },
        gmacsFraction: pruned[0].gmacs / forward[0].gmacs,
        msRatio: pruned[0].ms.median / forward[0].ms.median, // pruned / dense, same setup, same run
      }),
    gemm: gemm.map(({ name, m, n, k, gflops }) => ({ name, m, n, k, gflops })),
    ...(configs.length > 1 && {
      // Every other setup against the first, on the same model (pruned too with --method): > 1 is slower.
      compare: configs.slice(1).map((c, i) => ({
        backend: kernels[i + 1].name,
        threads: c.threads,
        msPerImage: forward[i + 1].ms,
        ratio: forward[i + 1].ms.median / forward[0].ms.median,
        ...(pruned && { pruned: { msPerImage: pruned[i + 1].ms, ratio: pruned[i + 1].ms.median / pruned[0].ms.median } }),
      })),
    }),
  };
  if (values.json) {
    printJson(report);
    return;
  }
  const ms = (t: Timing) => `${t.median.toFixed(2)} ms/image (min ${t.min.toFixed(2)}, max ${t.max.toFixed(2)})`;
  const label = (i: number) => `${kernels[i].name} ${threadWord(configs[i].threads)}`.padEnd(24);
  const first = label(0).trim();
  process.stdout.write(`${report.model}: ${forward[0].gmacs.toFixed(4)} GMACs dense, ${runs} runs\n`);
  configs.forEach((_, i) => {
    const ratio = i === 0 ? '' : `  = ${(forward[i].ms.median / forward[0].ms.median).toFixed(2)}× ${first}`;
    process.stdout.write(`  ${label(i)} ${ms(forward[i].ms)}${ratio}\n`);
  });
  if (plan && pruned) {
    process.stdout.write(`${plan.method}: ${pruned[0].gmacs.toFixed(4)} GMACs (×${report.gmacsFraction!.toFixed(3)} of dense)\n`);
    configs.forEach((_, i) => {
      const ratio = i === 0 ? `  (×${report.msRatio!.toFixed(3)} time of dense)` : `  = ${(pruned[i].ms.median / pruned[0].ms.median).toFixed(2)}× ${first}`;
      process.stdout.write(`  ${label(i)} ${ms(pruned[i].ms)}${ratio}\n`);
    });
  }
  process.stdout.write(`GEMMs on ${first}:\n`);
  for (const g of report.gemm) {
    process.stdout.write(
      `  ${g.name.padEnd(12)} ${String(g.m).padStart(4)}×${String(g.k).padEnd(5)}· ${String(g.k).padStart(5)}×${String(g.n).padEnd(5)} ${g.gflops.toFixed(1).padStart(6)} GFLOP/s\n`,
    );
  }
}
