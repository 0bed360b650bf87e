/**
 * vitprune against its peers on the same weights and the same input, batch 1:
 *   - vitprune's wasm runner (relaxed SIMD where the engine has it, else SIMD128; 1 thread),
 *   - onnxruntime-web 1.30 (its SIMD wasm build, in Node; env.wasm.numThreads = T),
 *   - onnxruntime-node 1.30 (native CPU EP; intraOpNumThreads = T, interOpNumThreads = 1),
 * the last two running an ONNX model written from vitprune's weights by ./onnx.ts.
 * First checks that all three produce the same logits, then times them interleaved.
 *
 *   npm run bench:peers -- [--model M] [--runs N] [--threads T] [--warmup W] [--tolerance R] [--json]
 *   (from the project root; or `npx tsx peers.ts …` inside bench/peers after `npm ci`)
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { loadModelSpec } from '../../src/cli/common.js';
import { benchInput, timing, type Timing } from '../../src/eval/bench.js';
import { topK } from '../../src/eval/metrics.js';
import { createKernels } from '../../src/kernels/index.js';
import { ViTRunner } from '../../src/model/vit.js';
import { vitToOnnx } from './onnx.js';
import { benchCommand, modelSpec } from './options.js';
import { wasmSimdStats } from './wasm-inspect.js';

const USAGE = 'usage: npm run bench:peers -- [--model M] [--runs N] [--threads T] [--warmup W] [--tolerance R] [--json]';

const { values, fail, intOpt } = benchCommand('bench:peers', USAGE, {
  model: { type: 'string', default: 'random:deit_small_patch16_224' },
  runs: { type: 'string', default: '20' },
  threads: { type: 'string', default: '1' },
  warmup: { type: 'string', default: '3' },
  tolerance: { type: 'string', default: '1e-3' },
  json: { type: 'boolean', default: false },
} as const);
const runs = intOpt(values.runs!, 'runs', 1);
const threads = intOpt(values.threads!, 'threads', 1);
const warmup = intOpt(values.warmup!, 'warmup', 0);
const tolerance = Number(values.tolerance);
if (!(tolerance > 0)) fail(`--tolerance expects a positive number, got '${values.tolerance}'`);
const json = values.json!;
const log = (line: string): void => {
  if (!json) process.stdout.write(`${line}\n`);
};

// ---------------------------------------------------------------- set-up

const model = await loadModelSpec(modelSpec(values.model!), { quiet: true });
const cfg = model.config;
const input = benchInput(cfg);

const kernels = await createKernels('wasm');
const runner = new ViTRunner(model, kernels);

const t0 = performance.now();
const onnx = vitToOnnx(model);
const onnxMs = performance.now() - t0;

const require = createRequire(import.meta.url);
const webWasmPath = require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm');
const webWasm = new Uint8Array(readFileSync(webWasmPath));
const simd = wasmSimdStats(webWasm);
if (simd.bodiesWithV128Locals === 0) fail(`${webWasmPath} has no function using v128: not a SIMD build`);
ortWeb.env.wasm.numThreads = threads;
ortWeb.env.wasm.simd = true; // feature check for fixed-width SIMD (the only builds 1.30 ships are SIMD builds)
ortWeb.env.wasm.proxy = false;
ortWeb.env.wasm.wasmBinary = webWasm; // exactly the binary inspected above
ortWeb.env.logLevel = 'error';

const webSession = await ortWeb.InferenceSession.create(onnx.bytes, {
  executionProviders: ['wasm'],
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
});
const nodeSession = await ortNode.InferenceSession.create(onnx.bytes, {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const webFeeds = { [onnx.inputName]: new ortWeb.Tensor('float32', input, onnx.inputShape) };
const nodeFeeds = { [onnx.inputName]: new ortNode.Tensor('float32', input, onnx.inputShape) };

interface Engine {
  key: 'vitprune' | 'onnxruntimeWeb' | 'onnxruntimeNode';
  label: string;
  run(): Promise<Float32Array>;
}

const engines: Engine[] = [
  { key: 'vitprune', label: `vitprune (${kernels.name}, 1 thread)`, run: async () => runner.forward(input).logits },
  {
    key: 'onnxruntimeWeb',
    label: `onnxruntime-web ${ortWeb.env.versions.web ?? ''} (${basename(webWasmPath)}, ${threads} thr)`,
    run: async () => (await webSession.run(webFeeds))[onnx.outputName].data as Float32Array,
  },
  {
    key: 'onnxruntimeNode',
    label: `onnxruntime-node ${ortNode.env.versions.node ?? ''} (CPU EP, ${threads} thr)`,
    run: async () => (await nodeSession.run(nodeFeeds))[onnx.outputName].data as Float32Array,
  },
];

// ---------------------------------------------------------------- logits agreement

const logits = Object.fromEntries(await Promise.all(engines.map(async (e) => [e.key, Float32Array.from(await e.run())] as const))) as Record<Engine['key'], Float32Array>;
for (const e of engines) {
  const l = logits[e.key];
  if (l.length !== cfg.numClasses) fail(`${e.label} returned ${l.length} logits, expected ${cfg.numClasses}`);
  if (!l.every(Number.isFinite)) fail(`${e.label} returned non-finite logits`);
}
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
const maxAbsLogit = logits.onnxruntimeNode.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxAbsLogitDiff = {
  vitpruneVsNode: maxAbsDiff(logits.vitprune, logits.onnxruntimeNode),
  vitpruneVsWeb: maxAbsDiff(logits.vitprune, logits.onnxruntimeWeb),
  webVsNode: maxAbsDiff(logits.onnxruntimeWeb, logits.onnxruntimeNode),
};
const limit = tolerance * maxAbsLogit;
const top1 = engines.map((e) => topK(logits[e.key], 1)[0]);

log(`model: ${values.model} (${cfg.architecture}: D ${cfg.dim}, depth ${cfg.depth}, heads ${cfg.heads}, ${cfg.numClasses} classes${cfg.distilled ? ', distilled' : ''}), batch 1, input benchInput(cfg)`);
log(`onnx: ${(onnx.bytes.length / 1e6).toFixed(1)} MB, ${onnx.nodeCount} nodes, written in ${onnxMs.toFixed(0)} ms (ir_version 8, opset 17)`);
log(`onnxruntime-web binary: ${webWasmPath} (${simd.bodiesWithV128Locals} of ${simd.functions} function bodies use v128 locals: SIMD build)`);
log(`threads: vitprune 1 (single-threaded engine), onnxruntime-web ${threads}, onnxruntime-node ${threads}`);
log(`logits: max |logit| ${maxAbsLogit.toPrecision(4)}; max abs diff vitprune–node ${maxAbsLogitDiff.vitpruneVsNode.toExponential(2)}, `
  + `vitprune–web ${maxAbsLogitDiff.vitpruneVsWeb.toExponential(2)}, web–node ${maxAbsLogitDiff.webVsNode.toExponential(2)} `
  + `(limit ${limit.toExponential(2)} = ${tolerance} × max |logit|); top-1 ${top1.join(' / ')}`);

const worst = Math.max(maxAbsLogitDiff.vitpruneVsNode, maxAbsLogitDiff.vitpruneVsWeb, maxAbsLogitDiff.webVsNode);
if (!(worst <= limit)) {
  fail(`LOGITS DISAGREE: max abs diff ${worst.toExponential(3)} > ${limit.toExponential(3)} (${tolerance} × max |logit| ${maxAbsLogit.toPrecision(4)}): `
    + `${JSON.stringify(maxAbsLogitDiff)}; not timing engines that compute different functions`);
}

// ---------------------------------------------------------------- timing

/** Round i runs every engine once, starting from engine i mod 3, so no engine always runs right after another. */
const samples: Record<Engine['key'], number[]> = { vitprune: [], onnxruntimeWeb: [], onnxruntimeNode: [] };
for (let i = 0; i < warmup + runs; i++) {
  for (let j = 0; j < engines.length; j++) {
    const e = engines[(i + j) % engines.length];
    const start = performance.now();
    await e.run();
    const ms = performance.now() - start;
    if (i >= warmup) samples[e.key].push(ms);
  }
}
const ms = Object.fromEntries(engines.map((e) => [e.key, timing(samples[e.key])])) as Record<Engine['key'], Timing>;
const ratios = {
  vitpruneOverWeb: ms.vitprune.median / ms.onnxruntimeWeb.median,
  vitpruneOverNode: ms.vitprune.median / ms.onnxruntimeNode.median,
};

await webSession.release();
await nodeSession.release();

if (json) {
  process.stdout.write(`${JSON.stringify({
    model: values.model,
    threads,
    vitprune: { msPerImage: ms.vitprune },
    onnxruntimeWeb: { msPerImage: ms.onnxruntimeWeb },
    onnxruntimeNode: { msPerImage: ms.onnxruntimeNode },
    ratios,
    maxAbsLogitDiff,
  }, null, 2)}\n`);
} else {
  log(`timing: ${runs} interleaved rounds after ${warmup} warm-up, ms/image (median  min  max)`);
  const width = Math.max(...engines.map((e) => e.label.length));
  for (const e of engines) {
    const t = ms[e.key];
    log(`  ${e.label.padEnd(width)}  ${t.median.toFixed(1).padStart(8)} ${t.min.toFixed(1).padStart(8)} ${t.max.toFixed(1).padStart(8)}`);
  }
  log(`ratios (medians): vitprune / onnxruntime-web = ${ratios.vitpruneOverWeb.toFixed(3)}, vitprune / onnxruntime-node = ${ratios.vitpruneOverNode.toFixed(3)}`);
}
// onnxruntime-web's pthread workers (threads > 1) keep the event loop alive.
process.exit(0);
