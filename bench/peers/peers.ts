/**
 * vitprune against its peers on the same weights and the same input, batch 1:
 *   - vitprune's wasm runner (relaxed SIMD where the engine has it, else SIMD128) on T threads,
 *   - onnxruntime-node 1.30 (native CPU EP; intraOpNumThreads = T, interOpNumThreads = 1),
 *     for every T of --threads (default 1,2),
 *   - onnxruntime-web 1.30 (its SIMD wasm build, in Node, where it has no threads: 1 thread),
 * the peers running an ONNX model written from vitprune's weights by ./onnx.ts.
 * First checks that all produce the same logits (vitprune's bit for bit across T), then times
 * them interleaved; onnxruntime-node's own speed-up from 1 to T threads is the machine's
 * scaling reference for vitprune's.
 *
 *   npm run bench:peers -- [--model M] [--runs N] [--threads T1,T2...] [--warmup W] [--tolerance R] [--json]
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
import type { Kernels } from '../../src/kernels/types.js';
import { ViTRunner } from '../../src/model/vit.js';
import { vitToOnnx } from './onnx.js';
import { benchCommand, modelSpec } from './options.js';
import { wasmSimdStats } from './wasm-inspect.js';

const USAGE = 'usage: npm run bench:peers -- [--model M] [--runs N] [--threads T1,T2...] [--warmup W] [--tolerance R] [--json]';

const { values, fail, intOpt } = benchCommand('bench:peers', USAGE, {
  model: { type: 'string', default: 'random:deit_small_patch16_224' },
  runs: { type: 'string', default: '20' },
  threads: { type: 'string', default: '1,2' },
  warmup: { type: 'string', default: '3' },
  tolerance: { type: 'string', default: '1e-3' },
  json: { type: 'boolean', default: false },
} as const);
const runs = intOpt(values.runs!, 'runs', 1);
const threadCounts = [...new Set(values.threads!.split(',').map((t) => intOpt(t.trim(), 'threads', 1)))];
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

const vitprune: { threads: number; kernels: Kernels; runner: ViTRunner }[] = [];
for (const threads of threadCounts) {
  const kernels = await createKernels('wasm', { threads });
  vitprune.push({ threads, kernels, runner: new ViTRunner(model, kernels) });
}

const t0 = performance.now();
const onnx = vitToOnnx(model);
const onnxMs = performance.now() - t0;

const require = createRequire(import.meta.url);
const webWasmPath = require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm');
const webWasm = new Uint8Array(readFileSync(webWasmPath));
const simd = wasmSimdStats(webWasm);
if (simd.bodiesWithV128Locals === 0) fail(`${webWasmPath} has no function using v128: not a SIMD build`);
ortWeb.env.wasm.numThreads = 1; // it runs no threads under Node (its browser comparison comes with the browser build)
ortWeb.env.wasm.simd = true; // feature check for fixed-width SIMD (the only builds 1.30 ships are SIMD builds)
ortWeb.env.wasm.proxy = false;
ortWeb.env.wasm.wasmBinary = webWasm; // exactly the binary inspected above
ortWeb.env.logLevel = 'error';

const webSession = await ortWeb.InferenceSession.create(onnx.bytes, {
  executionProviders: ['wasm'],
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
});
const nodeSessions = await Promise.all(threadCounts.map((threads) => ortNode.InferenceSession.create(onnx.bytes, {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
})));
const webFeeds = { [onnx.inputName]: new ortWeb.Tensor('float32', input, onnx.inputShape) };
const nodeFeeds = { [onnx.inputName]: new ortNode.Tensor('float32', input, onnx.inputShape) };

type EngineKind = 'vitprune' | 'onnxruntimeNode' | 'onnxruntimeWeb';

interface Engine {
  kind: EngineKind;
  threads: number;
  key: string; // e.g. "vitprune@2"
  label: string;
  run(): Promise<Float32Array>;
}

const threadWord = (n: number): string => `${n} thr`;
const engines: Engine[] = [
  ...vitprune.map(({ threads, kernels, runner }): Engine => ({
    kind: 'vitprune', threads, key: `vitprune@${threads}`,
    label: `vitprune (${kernels.name}, ${threadWord(threads)})`,
    run: async () => runner.forward(input).logits,
  })),
  ...nodeSessions.map((session, i): Engine => ({
    kind: 'onnxruntimeNode', threads: threadCounts[i], key: `onnxruntimeNode@${threadCounts[i]}`,
    label: `onnxruntime-node ${ortNode.env.versions.node ?? ''} (CPU EP, ${threadWord(threadCounts[i])})`,
    run: async () => (await session.run(nodeFeeds))[onnx.outputName].data as Float32Array,
  })),
  {
    kind: 'onnxruntimeWeb', threads: 1, key: 'onnxruntimeWeb@1',
    label: `onnxruntime-web ${ortWeb.env.versions.web ?? ''} (${basename(webWasmPath)}, ${threadWord(1)})`,
    run: async () => (await webSession.run(webFeeds))[onnx.outputName].data as Float32Array,
  },
];

// ---------------------------------------------------------------- logits agreement

const logits = new Map<string, Float32Array>();
for (const e of engines) {
  const l = Float32Array.from(await e.run());
  if (l.length !== cfg.numClasses) fail(`${e.label} returned ${l.length} logits, expected ${cfg.numClasses}`);
  if (!l.every(Number.isFinite)) fail(`${e.label} returned non-finite logits`);
  logits.set(e.key, l);
}
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
const first = (kind: EngineKind): Float32Array => logits.get(engines.find((e) => e.kind === kind)!.key)!;
const sameBits = (a: Float32Array, b: Float32Array): boolean => new Uint32Array(a.buffer).every((v, i) => v === new Uint32Array(b.buffer)[i]);
const vitpruneThreadsIdentical = vitprune.every(({ threads }) => sameBits(logits.get(`vitprune@${threads}`)!, first('vitprune')));
if (!vitpruneThreadsIdentical) fail(`vitprune's logits differ between thread counts ${threadCounts.join(', ')}: they must be bit-identical`);
const maxAbsLogit = first('onnxruntimeNode').reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxAbsLogitDiff = {
  vitpruneVsNode: maxAbsDiff(first('vitprune'), first('onnxruntimeNode')),
  vitpruneVsWeb: maxAbsDiff(first('vitprune'), first('onnxruntimeWeb')),
  webVsNode: maxAbsDiff(first('onnxruntimeWeb'), first('onnxruntimeNode')),
};
const limit = tolerance * maxAbsLogit;
const top1 = (['vitprune', 'onnxruntimeNode', 'onnxruntimeWeb'] as const).map((kind) => topK(first(kind), 1)[0]);

log(`model: ${values.model} (${cfg.architecture}: D ${cfg.dim}, depth ${cfg.depth}, heads ${cfg.heads}, ${cfg.numClasses} classes${cfg.distilled ? ', distilled' : ''}), batch 1, input benchInput(cfg)`);
log(`onnx: ${(onnx.bytes.length / 1e6).toFixed(1)} MB, ${onnx.nodeCount} nodes, written in ${onnxMs.toFixed(0)} ms (ir_version 8, opset 17)`);
log(`onnxruntime-web binary: ${webWasmPath} (${simd.bodiesWithV128Locals} of ${simd.functions} function bodies use v128 locals: SIMD build)`);
log(`threads: vitprune and onnxruntime-node ${threadCounts.join(', ')}; onnxruntime-web 1 (no threads under Node)`);
log(`logits: max |logit| ${maxAbsLogit.toPrecision(4)}; max abs diff vitprune–node ${maxAbsLogitDiff.vitpruneVsNode.toExponential(2)}, `
  + `vitprune–web ${maxAbsLogitDiff.vitpruneVsWeb.toExponential(2)}, web–node ${maxAbsLogitDiff.webVsNode.toExponential(2)} `
  + `(limit ${limit.toExponential(2)} = ${tolerance} × max |logit|); vitprune bit-identical on ${threadCounts.join(', ')} threads; top-1 ${top1.join(' / ')}`);

const worst = Math.max(maxAbsLogitDiff.vitpruneVsNode, maxAbsLogitDiff.vitpruneVsWeb, maxAbsLogitDiff.webVsNode);
if (!(worst <= limit)) {
  fail(`LOGITS DISAGREE: max abs diff ${worst.toExponential(3)} > ${limit.toExponential(3)} (${tolerance} × max |logit| ${maxAbsLogit.toPrecision(4)}): `
    + `${JSON.stringify(maxAbsLogitDiff)}; not timing engines that compute different functions`);
}

// ---------------------------------------------------------------- timing

/** Round i runs every engine once, starting from engine i mod (engine count), so no engine always runs right after another. */
const samples = new Map<string, number[]>(engines.map((e) => [e.key, []]));
for (let i = 0; i < warmup + runs; i++) {
  for (let j = 0; j < engines.length; j++) {
    const e = engines[(i + j) % engines.length];
    const start = performance.now();
    await e.run();
    const ms = performance.now() - start;
    if (i >= warmup) samples.get(e.key)!.push(ms);
  }
}
const ms = new Map<string, Timing>(engines.map((e) => [e.key, timing(samples.get(e.key)!)]));
const median = (key: string): number => ms.get(key)!.median;
const web = median('onnxruntimeWeb@1');
/** Per thread count: vitprune's time over onnxruntime-node's on as many threads, and over onnxruntime-web's (1 thread). */
const ratios = Object.fromEntries(threadCounts.map((t) => [t, {
  vitpruneOverNode: median(`vitprune@${t}`) / median(`onnxruntimeNode@${t}`),
  vitpruneOverWeb: median(`vitprune@${t}`) / web,
}]));
/** Per thread count: the speed-up over the first thread count, of vitprune and of onnxruntime-node (the machine's reference). */
const t0Threads = threadCounts[0];
const scaling = Object.fromEntries(threadCounts.map((t) => [t, {
  vitprune: median(`vitprune@${t0Threads}`) / median(`vitprune@${t}`),
  onnxruntimeNode: median(`onnxruntimeNode@${t0Threads}`) / median(`onnxruntimeNode@${t}`),
}]));

await webSession.release();
await Promise.all(nodeSessions.map((s) => s.release()));
await Promise.all(vitprune.map(({ kernels }) => kernels.dispose()));

if (json) {
  process.stdout.write(`${JSON.stringify({
    model: values.model,
    threads: threadCounts,
    msPerImage: Object.fromEntries(engines.map((e) => [e.key, ms.get(e.key)])),
    ratios,
    scaling,
    maxAbsLogitDiff,
  }, null, 2)}\n`);
} else {
  log(`timing: ${runs} interleaved rounds after ${warmup} warm-up, ms/image (median  min  max)`);
  const width = Math.max(...engines.map((e) => e.label.length));
  for (const e of engines) {
    const t = ms.get(e.key)!;
    log(`  ${e.label.padEnd(width)}  ${t.median.toFixed(1).padStart(8)} ${t.min.toFixed(1).padStart(8)} ${t.max.toFixed(1).padStart(8)}`);
  }
  for (const t of threadCounts) {
    log(`${threadWord(t)}: vitprune / onnxruntime-node = ${ratios[t].vitpruneOverNode.toFixed(3)}, vitprune / onnxruntime-web (1 thr) = ${ratios[t].vitpruneOverWeb.toFixed(3)}`
      + (t === t0Threads ? '' : `; speed-up over ${threadWord(t0Threads)}: vitprune ${scaling[t].vitprune.toFixed(2)}×, onnxruntime-node ${scaling[t].onnxruntimeNode.toFixed(2)}×`));
  }
}
// onnxruntime's threads may keep the event loop alive.
process.exit(0);
