/**
 * A fingerprint of everything the engine computes on real data, to prove that a change of
 * structure changes no result: for DeiT-Tiny and ViT-Tiny (../shared/data), the golden inputs
 * (on the wasm and the reference backends) and the dev images (wasm) run dense and through every
 * token method at two GMACs budgets. Per run and input it records a hash of the logits' bytes, a
 * hash of the token ids alive after every block (the golden inputs: the ids themselves) and the
 * executed GMACs; per run, the settings the method chose and the aggregate `eval --json` reports.
 * Besides: LTP's calibrated settings at every budget compare and the README use, and DeiT-Tiny's
 * attention channels pruned by 25 % (uniform and greedy allocation, 8 calibration images): a hash
 * of the model written, and the wasm memory the pruning took (`memory`, expected to change).
 *
 *   npx tsx scripts/fingerprint.ts --out /tmp/fingerprint.json [--data DIR] [--images N] [--threads N]
 *
 * `--threads` runs the wasm backend on that many threads (default 1); the output must not depend
 * on it (`memory` aside).
 *
 * The output is derived from the shared data: keep it out of the repository.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { labelImages, listImages, spreadSample } from '../src/eval/dataset.js';
import { agreementWithDense, evaluateVariants, type Variant } from '../src/eval/evaluate.js';
import { loadImageTensor } from '../src/image/file.js';
import { createKernels, type Backend } from '../src/kernels/index.js';
import type { WasmKernels } from '../src/kernels/wasm.js';
import { loadModelFolder } from '../src/model/folder.js';
import { readSafetensors } from '../src/model/safetensors-file.js';
import type { ViTModel } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import type { BlockState, ForwardHooks, TokenReduction } from '../src/model/hooks.js';
import { pruneChannels } from '../src/prune/channels.js';
import { savePrunedModel } from '../src/prune/channels-save.js';
import { calibrationRun } from '../src/prune/method.js';
import { planPruning } from '../src/prune/registry.js';

const MODELS = ['deit-tiny', 'vit-tiny'];
const METHODS = ['zero-tprune', 'tome', 'mctf', 'ppt', 'pitome', 'evit', 'topk', 'ltp', 'random'];
const BUDGETS = [0.87, 0.7];
const CALIBRATION_IMAGES = 128; // compare's default --calib-samples, spread over the dev images
const LTP_BUDGETS = [0.95, 0.87, 0.78, 0.7, 0.65, 0.653, 0.62];
const CHANNEL_IMAGES = 8;

/** One way of running a model: dense or a method at a budget, with the settings it chose. */
interface Run {
  name: string;
  settings: unknown;
  hooks: (imageIndex: number) => ForwardHooks;
}

/** The runs of one model. Only this function depends on how methods are planned. */
async function plannedRuns(model: ViTModel, runner: ViTRunner, calibration: Float32Array[]): Promise<Run[]> {
  const runs: Run[] = [{ name: 'dense', settings: null, hooks: () => ({}) }];
  for (const budget of BUDGETS) {
    for (const method of METHODS) {
      const name = `${method}@${budget}`;
      const plan = await planPruning(model.config, { method, budget }, { calibration: calibrationRun(runner, calibration) });
      // As the solvers before the registry reported them: LTP its settings, the others their schedule and its GMACs.
      const settings = method === 'ltp' ? plan.settings : { schedule: plan.settings, gmacs: plan.gmacs };
      runs.push({ name, settings, hooks: (i) => plan.hooks(i) });
    }
  }
  return runs;
}

/** LTP's settings calibrated for `budget`. Depends on how methods are planned, as plannedRuns. */
async function ltpSettings(model: ViTModel, runner: ViTRunner, calibration: Float32Array[], budget: number): Promise<unknown> {
  return (await planPruning(model.config, { method: 'ltp', budget }, { calibration: calibrationRun(runner, calibration) })).settings;
}

/** DeiT-Tiny's attention channels pruned by 25 % on fresh wasm kernels: the model written and the wasm memory used. */
async function channelPruning(
  model: ViTModel,
  inputs: Float32Array[],
  allocator: 'uniform' | 'greedy',
  threads: number,
): Promise<{ model: unknown; memory: number }> {
  const kernels = (await createKernels('wasm', { threads })) as WasmKernels;
  const result = pruneChannels(model, kernels, inputs, { ratio: 0.25, allocator });
  const memory = kernels.memory.buffer.byteLength;
  await kernels.dispose();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vitprune-fingerprint-'));
  try {
    savePrunedModel(path.join(dir, 'model'), result.model, { ...result.description, source: 'deit-tiny' });
    const file = (name: string) => readFileSync(path.join(dir, 'model', name));
    return { model: { weights: hash(file('model.safetensors')), config: hash(file('config.json')) }, memory };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `inner` plus a record of the token ids alive after every block (after its reductions). */
function recordingTokens(inner: ForwardHooks, blocks: number[][]): ForwardHooks {
  const idsAfter = (state: BlockState, r: TokenReduction | void): number[] => {
    if (!r) return Array.from(state.tokenIds);
    if (r.kind === 'keep') return Array.from(r.indices, (i) => state.tokenIds[i]);
    return Array.from(r.tokenIds.subarray(0, r.n));
  };
  return {
    ...(inner.afterAttention && { afterAttention: (state: BlockState) => inner.afterAttention!.call(inner, state) }),
    afterBlock(state) {
      const r = inner.afterBlock?.call(inner, state);
      blocks.push(idsAfter(state, r));
      return r;
    },
  };
}

function hash(bytes: ArrayBufferView): string {
  return createHash('sha256')
    .update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    .digest('hex')
    .slice(0, 24);
}

function hashTokens(blocks: number[][]): string {
  return hash(Int32Array.from(blocks.flatMap((ids) => [ids.length, ...ids])));
}

async function goldenRuns(model: ViTModel, backend: Backend, runs: Run[], inputs: Float32Array[], threads: number): Promise<Record<string, unknown>> {
  const runner = new ViTRunner(model, await createKernels(backend, { threads }));
  const out: Record<string, unknown> = {};
  for (const run of runs) {
    out[run.name] = inputs.map((input, i) => {
      const blocks: number[][] = [];
      const { logits, gmacs } = runner.forward(input, recordingTokens(run.hooks(i), blocks));
      return { logits: hash(logits), gmacs, tokens: blocks.map((ids) => ids.join(' ')) };
    });
  }
  await runner.kernels.dispose();
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' }, data: { type: 'string' }, images: { type: 'string' }, threads: { type: 'string' } } });
  if (!values.out) throw new Error('usage: tsx scripts/fingerprint.ts --out FILE [--data DIR] [--images N] [--threads N]');
  const threads = Number(values.threads ?? 1);
  const data = path.resolve(values.data ?? path.join(import.meta.dirname, '../../shared/data'));
  const imagesDir = path.join(data, 'imagenet-sample/images');
  const files = listImages(imagesDir).slice(0, values.images ? Number(values.images) : undefined);
  const result: Record<string, unknown> = { budgets: BUDGETS, methods: METHODS, images: files.length };

  for (const name of MODELS) {
    const t0 = performance.now();
    const model = loadModelFolder(path.join(data, name));
    const runner = new ViTRunner(model, await createKernels('wasm', { threads }));
    const calibration = spreadSample(listImages(imagesDir), CALIBRATION_IMAGES).map((f) => loadImageTensor(f, model.config.preprocess));
    const runs = await plannedRuns(model, runner, calibration);

    const golden = readSafetensors(path.join(data, name, 'golden_reference.safetensors')).tensors;
    const goldenInputs = [0, 1, 2].map((i) => golden.get(`sample${i}.input`)!.data);

    const tokens = runs.map(() => [] as number[][][]); // [run][image][block] ids
    const variants: Variant[] = runs.map((run, r) => ({
      name: run.name,
      hooks: (i) => {
        const blocks: number[][] = [];
        tokens[r][i] = blocks;
        return recordingTokens(run.hooks(i), blocks);
      },
    }));
    const images = labelImages(files, model.config.labels);
    const results = await evaluateVariants(runner, images, variants, { progress: false });
    const dense = results[0];
    const dev = Object.fromEntries(
      runs.map((run, r) => {
        const e = results[r];
        return [
          run.name,
          {
            settings: run.settings,
            eval: {
              top1: e.top1,
              top5: e.top5,
              gmacs: e.gmacs,
              ...(r > 0 && { ...agreementWithDense(dense, e), gmacsFraction: e.gmacs / dense.gmacs }),
            },
            images: e.images.map((im, i) => ({ file: im.file, logits: hash(im.logits), tokens: hashTokens(tokens[r][i]), gmacs: im.gmacs })),
          },
        ];
      }),
    );
    const ltp: Record<string, unknown> = {};
    for (const budget of LTP_BUDGETS) {
      ltp[budget] = runs.find((run) => run.name === `ltp@${budget}`)?.settings ?? (await ltpSettings(model, runner, calibration, budget));
    }
    result[name] = {
      dev,
      ltp,
      golden: {
        wasm: await goldenRuns(model, 'wasm', runs, goldenInputs, threads),
        reference: await goldenRuns(model, 'reference', runs, goldenInputs, threads),
      },
    };
    if (name === 'deit-tiny') {
      const inputs = calibration.slice(0, CHANNEL_IMAGES);
      const uniform = await channelPruning(model, inputs, 'uniform', threads);
      const greedy = await channelPruning(model, inputs, 'greedy', threads);
      result.channels = { uniform: uniform.model, greedy: greedy.model };
      result.memory = { uniform: uniform.memory, greedy: greedy.memory };
    }
    await runner.kernels.dispose();
    process.stderr.write(
      `${name}: ${runs.length} runs × ${files.length} images on ${threads} thread(s) in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`,
    );
  }
  writeFileSync(values.out, `${JSON.stringify(result, null, 1)}\n`);
}

await main();
