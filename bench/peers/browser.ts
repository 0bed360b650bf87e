/**
 * vitprune against onnxruntime-web in headless Chromium (Debian's), on the same weights and the
 * same input, batch 1, wasm, at each thread count, in one cross-origin isolated page: one
 * dedicated worker per engine and thread count (the engines' thread pools are nested workers).
 * First checks every engine's logits against vitprune's in Node, then times them interleaved:
 * each round runs every engine once, the starting one rotating.
 *
 *   npm run bench:browser -- [--model M] [--threads 1,2] [--runs N] [--warmup W] [--pause MS] [--tolerance R] [--json]
 *   (from the project root; or `npx tsx browser.ts …` inside bench/peers after `npm ci`)
 *
 * vitprune's side goes through web/library.ts, as the demo's does; until the library runs in
 * browsers it reports why it is unavailable and only onnxruntime-web is timed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundlePageScripts, buildBrowser } from '../../scripts/build-browser.js';
import { findChromium, launchChromium } from '../../scripts/chromium.js';
import { startStaticServer } from '../../scripts/static-server.js';
import { loadModelSpec } from '../../src/cli/common.js';
import { benchInput, timing, type Timing } from '../../src/eval/bench.js';
import { topK } from '../../src/eval/metrics.js';
import { createKernels } from '../../src/kernels/index.js';
import { saveModelFolder } from '../../src/model/folder.js';
import { ViTRunner } from '../../src/model/vit.js';
import type { BenchPageApi } from './browser-page/page.js';
import type { EngineName, EngineSetup } from './browser-page/protocol.js';
import { vitToOnnx } from './onnx.js';
import { benchCommand, modelSpec } from './options.js';

const USAGE = 'usage: npm run bench:browser -- [--model M] [--threads 1,2] [--runs N] [--warmup W] [--pause MS] [--tolerance R] [--json]';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ENGINES: EngineName[] = ['vitprune', 'onnxruntime-web'];

const { values, fail, intOpt } = benchCommand('bench:browser', USAGE, {
  model: { type: 'string', default: 'random:deit_small_patch16_224' },
  threads: { type: 'string', default: '1,2' },
  runs: { type: 'string', default: '20' },
  warmup: { type: 'string', default: '3' },
  pause: { type: 'string', default: '100' },
  tolerance: { type: 'string', default: '1e-3' },
  json: { type: 'boolean', default: false },
} as const);
const threadCounts = values.threads!.split(',').map((t) => intOpt(t.trim(), 'threads', 1));
const runs = intOpt(values.runs!, 'runs', 1);
const warmup = intOpt(values.warmup!, 'warmup', 0);
const pauseMs = intOpt(values.pause!, 'pause', 0);
const tolerance = Number(values.tolerance);
if (!(tolerance > 0)) fail(`--tolerance expects a positive number, got '${values.tolerance}'`);
const json = values.json!;
const log = (line: string): void => {
  if (!json) process.stdout.write(`${line}\n`);
};
const chromium = findChromium() ?? fail('no Chromium found (apt-get install chromium, or set VITPRUNE_CHROMIUM)');

// ---------------------------------------------------------------- set-up: files, page, reference logits

const model = await loadModelSpec(modelSpec(values.model!), { quiet: true });
const cfg = model.config;
const input = benchInput(cfg);
const reference = new ViTRunner(model, await createKernels('wasm')).forward(input).logits;

const work = mkdtempSync(path.join(tmpdir(), 'vitprune-bench-browser-'));
const modelDir = path.join(work, 'model');
saveModelFolder(modelDir, model);
const onnx = vitToOnnx(model);
writeFileSync(path.join(modelDir, 'model.onnx'), onnx.bytes);
const build = await buildBrowser({ outdir: path.join(work, 'dist') });
const pageDir = path.join(work, 'bench');
await bundlePageScripts([path.join(HERE, 'browser-page/page.ts'), path.join(HERE, 'browser-page/bench-worker.ts')], pageDir);
const ortDist = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));

const server = await startStaticServer({
  mounts: [
    { prefix: '/bench/', dir: path.join(HERE, 'browser-page') },
    { prefix: '/bench/', dir: pageDir },
    { prefix: '/browser/', dir: build.libraryDir },
    { prefix: '/ort/', dir: ortDist },
    { prefix: '/model/', dir: modelDir },
  ],
});
const browser = await launchChromium(chromium);
const page = await browser.newPage();
page.setDefaultTimeout(300_000);
const workerUrls: string[] = []; // every worker the page started, nested ones (the engines' thread pools) included
page.on('worker', (worker) => workerUrls.push(worker.url()));
await page.goto(`${server.url}/bench/`);
await page.waitForFunction(() => 'bench' in window);
const browserVersion = browser.version();
const isolated = await page.evaluate(() => crossOriginIsolated);
if (!isolated) fail('the benchmark page is not cross-origin isolated: onnxruntime-web would run on one thread');

type BenchWindow = Window & { bench: BenchPageApi };

interface Contender {
  key: string; // e.g. 'onnxruntime-web/2'
  engine: EngineName;
  threads: number; // asked for
  index: number; // the page's worker
  label: string;
}

/** Starts `engine` at `threads` in the page: its contender, or null when the engine is unavailable (the reason is kept). */
async function startContender(engine: EngineName, threads: number): Promise<Contender | null> {
  const setup: Omit<EngineSetup, 'input'> & { input: number[] } = {
    engine,
    threads,
    modelUrl: `${server.url}/model/`,
    onnxUrl: `${server.url}/model/model.onnx`,
    ortModuleUrl: `${server.url}/ort/ort.wasm.min.mjs`,
    input: Array.from(input),
    inputShape: onnx.inputShape,
    inputName: onnx.inputName,
    outputName: onnx.outputName,
  };
  const { index, answer } = await page.evaluate(
    (s) => (window as unknown as BenchWindow).bench.add({ ...s, input: Float32Array.from(s.input) }),
    setup,
  );
  const key = `${engine}/${threads}`;
  if (answer.type === 'unavailable') {
    unavailable[engine] = answer.reason;
    return null;
  }
  if (answer.type !== 'ready') return fail(`${key}: expected the engine to be ready, got '${answer.type}'`);
  if (!answer.crossOriginIsolated) fail(`${key}: its worker is not cross-origin isolated`);
  if (answer.threads !== threads) fail(`${key}: asked for ${threads} threads, the engine runs ${answer.threads}`);
  return { key, engine, threads, index, label: answer.label };
}

const unavailable: Record<string, string> = {};
const contenders: Contender[] = [];
for (const threads of threadCounts) {
  for (const engine of ENGINES) {
    const contender = await startContender(engine, threads);
    if (contender) contenders.push(contender);
  }
}
if (!contenders.some((c) => c.engine === 'onnxruntime-web')) fail('onnxruntime-web did not start');
/** Workers of the page that are not the benchmark's own: the engines' thread pools. */
const poolWorkers = workerUrls.filter((url) => !url.endsWith('/bench-worker.js')).map((url) => path.basename(new URL(url).pathname));

// ---------------------------------------------------------------- logits agreement

const maxAbsLogit = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const limit = tolerance * maxAbsLogit;
const maxAbsLogitDiff: Record<string, number> = {};
for (const c of contenders) {
  const logits = await page.evaluate((i) => (window as unknown as BenchWindow).bench.logits(i), c.index);
  if (logits.length !== cfg.numClasses) fail(`${c.label} returned ${logits.length} logits, expected ${cfg.numClasses}`);
  maxAbsLogitDiff[c.key] = logits.reduce((m, v, i) => Math.max(m, Math.abs(v - reference[i])), 0);
  if (!(maxAbsLogitDiff[c.key] <= limit)) {
    fail(`LOGITS DISAGREE: ${c.label} differs from vitprune in Node by ${maxAbsLogitDiff[c.key].toExponential(3)} > ${limit.toExponential(3)} `
      + `(${tolerance} × max |logit| ${maxAbsLogit.toPrecision(4)}), top-1 ${topK(Float32Array.from(logits), 1)[0]} vs ${topK(reference, 1)[0]}`);
  }
}

log(`model: ${values.model} (${cfg.architecture}: D ${cfg.dim}, depth ${cfg.depth}, heads ${cfg.heads}), batch 1, input benchInput(cfg)`);
log(`browser: Chromium ${browserVersion}, headless, cross-origin isolated page, one dedicated worker per engine and thread count`);
log(`thread pool workers started: ${poolWorkers.length} (${[...new Set(poolWorkers)].join(', ') || 'none'})`);
log(`logits against vitprune in Node (limit ${limit.toExponential(2)}): ${contenders.map((c) => `${c.key} ${maxAbsLogitDiff[c.key].toExponential(2)}`).join(', ')}`);
for (const [engine, reason] of Object.entries(unavailable)) log(`${engine}: unavailable: ${reason}`);

// ---------------------------------------------------------------- timing

const samples = new Map<string, number[]>(contenders.map((c) => [c.key, []]));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
for (let round = 0; round < warmup + runs; round++) {
  for (let j = 0; j < contenders.length; j++) {
    const c = contenders[(round + j) % contenders.length];
    // A pause lets the previous engine's thread pool stop spinning before the next engine runs.
    await sleep(pauseMs);
    const ms = await page.evaluate((i) => (window as unknown as BenchWindow).bench.run(i), c.index);
    if (round >= warmup) samples.get(c.key)!.push(ms);
  }
}
await browser.close();
await server.close();
rmSync(work, { recursive: true, force: true });

const ms = new Map<string, Timing>(contenders.map((c) => [c.key, timing(samples.get(c.key)!)]));
const median = (engine: EngineName, threads: number): number | null => ms.get(`${engine}/${threads}`)?.median ?? null;
const results = threadCounts.map((threads) => {
  const row: Record<string, unknown> = { threads };
  for (const engine of ENGINES) {
    const t = ms.get(`${engine}/${threads}`);
    row[engine === 'vitprune' ? 'vitprune' : 'onnxruntimeWeb'] = t ? { msPerImage: t } : { unavailable: unavailable[engine] };
  }
  const v = median('vitprune', threads);
  const w = median('onnxruntime-web', threads);
  row.ratios = { vitpruneOverWeb: v !== null && w !== null ? v / w : null };
  return row;
});
const speedup = (engine: EngineName): Record<string, number | null> => {
  const one = median(engine, threadCounts[0]);
  return Object.fromEntries(threadCounts.slice(1).map((t) => {
    const m = median(engine, t);
    return [`${t}over${threadCounts[0]}`, one !== null && m !== null ? one / m : null];
  }));
};

if (json) {
  process.stdout.write(`${JSON.stringify({
    model: values.model,
    browser: `Chromium ${browserVersion}`,
    crossOriginIsolated: isolated,
    runs,
    warmup,
    pauseMs,
    results,
    poolWorkers: poolWorkers.length,
    speedup: { vitprune: speedup('vitprune'), onnxruntimeWeb: speedup('onnxruntime-web') },
    maxAbsLogitDiff,
  }, null, 2)}\n`);
} else {
  log(`timing: ${runs} interleaved rounds after ${warmup} warm-up, ${pauseMs} ms pause before each run, ms/image (median  min  max)`);
  const width = Math.max(...contenders.map((c) => c.label.length));
  for (const c of contenders) {
    const t = ms.get(c.key)!;
    log(`  ${c.label.padEnd(width)}  ${t.median.toFixed(1).padStart(8)} ${t.min.toFixed(1).padStart(8)} ${t.max.toFixed(1).padStart(8)}`);
  }
  for (const row of results) log(`threads ${row.threads}: vitprune / onnxruntime-web = ${(row.ratios as { vitpruneOverWeb: number | null }).vitpruneOverWeb?.toFixed(3) ?? 'n/a'}`);
  log(`speed-up over ${threadCounts[0]} thread(s): ${JSON.stringify({ vitprune: speedup('vitprune'), onnxruntimeWeb: speedup('onnxruntime-web') })}`);
}
