/**
 * Soak test: many classifications in one process must not grow its memory.
 *
 *   npm run soak -- --runs 10000 [--threads T] [--model M] [--budget 0.65] [--every 1000]
 *                   [--recreate-every 100] [--limit-mb 5] [--backend wasm] [--json]
 *
 * Loads a model (a folder, a hub id or random:<timm architecture>; default the CLI's default
 * model) on the backend, then each run classifies one of the sample photos of fixtures/images,
 * dense and with every method of the registry at `--budget` × dense GMACs in turn (LTP
 * calibrated on the photos). Every `--recreate-every` runs the runner is disposed and a new one
 * made on the same kernels, and the photos are decoded and preprocessed again from their bytes
 * (decoding a photo costs more than a DeiT-Tiny forward pass, so not every run). Every
 * `--every` runs (after a garbage collection) it prints RSS, the JavaScript heap, the wasm
 * memory's size and the bytes its allocator holds. The first report is the warm-up mark: the
 * exit code is 1 when RSS or wasm memory at the last report exceeds it by more than `--limit-mb`
 * (issue 10's target: 10,000 runs within 5 MB of run 1,000).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_MODEL, loadModelSpec } from '../src/cli/common.js';
import { decodeImage } from '../src/image/decode.js';
import { preprocess } from '../src/image/preprocess.js';
import { BACKENDS, createKernels, type Backend } from '../src/kernels/index.js';
import type { Kernels } from '../src/kernels/types.js';
import type { WasmKernels } from '../src/kernels/wasm.js';
import { ViTRunner } from '../src/model/vit.js';
import { calibrationRun, type PruningPlan } from '../src/prune/method.js';
import { TOKEN_METHODS } from '../src/prune/registry.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PHOTOS = path.join(ROOT, 'fixtures/images');
const MB = 2 ** 20;

/** The memory of the process at one report. */
export interface MemorySample {
  run: number; // runs done
  rss: number; // bytes
  heapUsed: number; // bytes of the JavaScript heap in use
  wasmMemory: number; // bytes of the wasm memory (0 on the reference backends)
  wasmAllocated: number; // bytes the wasm allocator holds in buffers not freed
}

export interface SoakVerdict {
  from: MemorySample; // the warm-up mark: the first report
  to: MemorySample; // the last report
  rssGrowth: number; // bytes
  wasmGrowth: number; // bytes
  passed: boolean; // both growths within the limit
}

/** Growth of RSS and wasm memory from the first report (after warm-up) to the last, against `limitBytes`. */
export function soakVerdict(samples: readonly MemorySample[], limitBytes: number): SoakVerdict {
  if (samples.length < 2) throw new Error(`a soak verdict needs two reports or more (the warm-up mark and a later one), found ${samples.length}`);
  const from = samples[0];
  const to = samples[samples.length - 1];
  const rssGrowth = to.rss - from.rss;
  const wasmGrowth = to.wasmMemory - from.wasmMemory;
  return { from, to, rssGrowth, wasmGrowth, passed: rssGrowth <= limitBytes && wasmGrowth <= limitBytes };
}

/** `gc()` of V8, exposed at run time (no node flag needed); RSS is read after it so that garbage not yet collected is not counted as growth. */
function collectGarbage(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function memorySample(run: number, kernels: Kernels): MemorySample {
  const { rss, heapUsed } = process.memoryUsage();
  const wasm = 'memory' in kernels ? (kernels as WasmKernels) : null;
  return { run, rss, heapUsed, wasmMemory: wasm?.memory.buffer.byteLength ?? 0, wasmAllocated: wasm?.allocatedBytes() ?? 0 };
}

const positiveInteger = (raw: string, option: string): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${option} expects a positive integer, got '${raw}'`);
  return n;
};

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '10000' },
      threads: { type: 'string', default: '1' },
      model: { type: 'string', default: DEFAULT_MODEL },
      backend: { type: 'string', default: 'wasm' },
      budget: { type: 'string', default: '0.65' },
      every: { type: 'string', default: '1000' },
      'recreate-every': { type: 'string', default: '100' },
      'limit-mb': { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
    },
  });
  const runs = positiveInteger(values.runs!, 'runs');
  const every = positiveInteger(values.every!, 'every');
  const recreateEvery = positiveInteger(values['recreate-every']!, 'recreate-every');
  const threads = positiveInteger(values.threads!, 'threads');
  const limitMb = Number(values['limit-mb']);
  const budget = Number(values.budget);
  if (runs < 2 * every) throw new Error(`--runs ${runs}: a verdict needs at least 2 × --every (${2 * every}) runs, the first report being the warm-up mark`);
  if (!(BACKENDS as readonly string[]).includes(values.backend!)) throw new Error(`--backend expects one of ${BACKENDS.join(', ')}, got '${values.backend}'`);
  const log = (line: string): void => {
    if (!values.json) process.stdout.write(`${line}\n`);
  };

  const gc = collectGarbage();
  const kernels = await createKernels(values.backend as Backend, { threads });
  try {
    const model = await loadModelSpec(values.model!, { quiet: true });
    const cfg = model.config;
    const photos = readdirSync(PHOTOS)
      .sort()
      .map((name) => ({ name, bytes: new Uint8Array(readFileSync(path.join(PHOTOS, name))) }));
    const input = (bytes: Uint8Array, name: string): Float32Array => preprocess(decodeImage(bytes, name), cfg.preprocess); // [3, S, S]
    const decodeAll = () => photos.map((p) => input(p.bytes, p.name));
    let runner = new ViTRunner(model, kernels);
    let inputs = decodeAll();
    const calibration = calibrationRun(runner, inputs);
    const plans: (PruningPlan | null)[] = [null];
    for (const method of TOKEN_METHODS) plans.push(await method.plan(cfg, { budget }, method.counts === 'per-image' ? { calibration } : {}));
    const names = plans.map((p) => p?.method ?? 'dense');
    log(
      `soak: ${values.model} on ${kernels.name}, ${threads} thread(s); ${runs} runs over ${photos.length} photos × ${names.join(', ')} (at ${budget} × dense GMACs); a new runner and the photos decoded again every ${recreateEvery} runs`,
    );

    const samples: MemorySample[] = [];
    const started = performance.now();
    let runnersMade = 1;
    for (let run = 0; run < runs; run++) {
      if (run > 0 && run % recreateEvery === 0) {
        runner.dispose();
        runner = new ViTRunner(model, kernels);
        runnersMade++;
        inputs = decodeAll();
      }
      const photo = run % photos.length;
      const plan = plans[Math.floor(run / photos.length) % plans.length]; // every photo with every method in turn
      const { logits } = runner.forward(inputs[photo], plan?.hooks(run));
      if (!logits.every(Number.isFinite)) throw new Error(`run ${run + 1}: ${photos[photo].name} with ${plan?.method ?? 'dense'} gave non-finite logits`);
      if ((run + 1) % every === 0) {
        gc();
        const sample = memorySample(run + 1, kernels);
        samples.push(sample);
        const seconds = (performance.now() - started) / 1000;
        log(
          `run ${String(sample.run).padStart(String(runs).length)}: RSS ${(sample.rss / MB).toFixed(1)} MB, heap ${(sample.heapUsed / MB).toFixed(1)} MB, ` +
            `wasm memory ${(sample.wasmMemory / MB).toFixed(1)} MB (${(sample.wasmAllocated / MB).toFixed(1)} MB allocated), ` +
            `${runnersMade} runners made, ${(sample.run / seconds).toFixed(1)} runs/s`,
        );
      }
    }
    runner.dispose();
    const verdict = soakVerdict(samples, limitMb * MB);
    const growth = (bytes: number) => `${bytes >= 0 ? '+' : ''}${(bytes / MB).toFixed(2)} MB`;
    log(
      `from run ${verdict.from.run} to run ${verdict.to.run}: RSS ${growth(verdict.rssGrowth)}, wasm memory ${growth(verdict.wasmGrowth)} ` +
        `(limit ${limitMb} MB): ${verdict.passed ? 'passed' : 'FAILED'}`,
    );
    if (values.json) {
      const report = { model: values.model, backend: kernels.name, threads, runs, methods: names, budget, recreateEvery, limitMb, samples, ...verdict };
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    }
    return verdict.passed ? 0 : 1;
  } finally {
    await kernels.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
