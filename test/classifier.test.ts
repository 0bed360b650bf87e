import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Classifier, loadClassifier, ModelFormatError, ScheduleError, UsageError } from '../src/index.js';
import { decodeImage } from '../src/image/decode.js';
import { preprocess } from '../src/image/preprocess.js';
import { modelFolderFiles } from '../src/model/load.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { WasmKernels } from '../src/kernels/wasm.js';
import { planPruning } from '../src/prune/registry.js';
import { encodePng, testPattern } from './image-writers.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures');

// A 12-block model (64×64 input) given as the bytes of its folder, and a PNG.
const cfg = configFromDims({ dim: 24, depth: 12, heads: 2, imageSize: 64, patchSize: 8, numClasses: 10 });
cfg.preprocess = { ...cfg.preprocess, inputSize: 64, cropPct: 1 };
cfg.descriptions = cfg.labels.map((l) => `class ${l}`);
const model = randomModel(cfg, 9);
const files = modelFolderFiles(model);
const png = encodePng({ width: 80, height: 64, colorType: 2, bitDepth: 8, samples: testPattern(80, 64) });

describe('loadClassifier and classify', () => {
  it('from bytes: the top-K classes best first, as the runner computes them', async () => {
    const classifier = await loadClassifier({ config: files['config.json'], weights: files['model.safetensors'] }, { backend: 'reference' });
    expect(classifier).toBeInstanceOf(Classifier);
    expect(classifier.backend).toBe('reference');
    const predictions = await classifier.classify(png, { topK: 3 });
    const logits = new ViTRunner(model, createReferenceKernels()).forward(preprocess(decodeImage(png, 'png'), cfg.preprocess)).logits;
    const best = Array.from(logits.keys())
      .sort((a, b) => logits[b] - logits[a])
      .slice(0, 3);
    expect(predictions.map((p) => p.index)).toEqual(best);
    expect(predictions[0]).toEqual({ index: best[0], label: cfg.labels[best[0]], description: `class ${best[0]}`, score: expect.any(Number) });
    expect(predictions[0].score).toBeGreaterThanOrEqual(predictions[1].score);
    expect(await classifier.classify(decodeImage(png, 'png'), { topK: 3 })).toEqual(predictions); // a decoded image: the same
    expect(await classifier.classify(png)).toHaveLength(5);
  });

  it('from a folder, transformers layout included, as the folder loader reads it', async () => {
    const timm = await loadClassifier(path.join(FIXTURES, 'tiny-timm'), { backend: 'reference' });
    const bytes = (name: string) => readFileSync(path.join(FIXTURES, 'tiny-transformers', name));
    const transformers = await loadClassifier(
      { config: bytes('config.json'), weights: bytes('model.safetensors'), preprocessorConfig: bytes('preprocessor_config.json') },
      { backend: 'reference' },
    );
    const image = encodePng({ width: 8, height: 8, colorType: 2, bitDepth: 8, samples: testPattern(8, 8) });
    expect((await transformers.classify(image, { topK: 3 })).map((p) => p.index)).toEqual((await timm.classify(image, { topK: 3 })).map((p) => p.index));
    await expect(loadClassifier({ config: bytes('config.json'), weights: bytes('model.safetensors') })).rejects.toThrow(ModelFormatError);
  });

  it("prune: the method's plan on the classifier's own runner; calibration for ltp; errors; dispose", async () => {
    const classifier = await loadClassifier({ config: files['config.json'], weights: files['model.safetensors'] }, { backend: 'reference' });
    const prune = { method: 'tome', budget: 0.7 };
    const pruned = await classifier.classify(png, { topK: 10, prune });
    const plan = await planPruning(cfg, prune);
    const runner = new ViTRunner(model, createReferenceKernels());
    const logits = runner.forward(preprocess(decodeImage(png, 'png'), cfg.preprocess), plan.hooks(0)).logits;
    expect(pruned.map((p) => p.index)).toEqual(Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]));
    // A budget without a method runs auto: the method measured best at that budget.
    const auto = await planPruning(cfg, { method: 'auto', budget: 0.65 });
    const autoLogits = runner.forward(preprocess(decodeImage(png, 'png'), cfg.preprocess), auto.hooks(0)).logits;
    expect((await classifier.classify(png, { topK: 10, prune: { budget: 0.65 } })).map((p) => p.index)).toEqual(
      Array.from(autoLogits.keys())
        .sort((a, b) => autoLogits[b] - autoLogits[a])
        .slice(0, 10),
    );
    const calibration = [png, decodeImage(png, 'png')];
    expect(await classifier.classify(png, { prune: { method: 'ltp', budget: 0.8, calibration } })).toHaveLength(5);
    await expect(classifier.classify(png, { prune: { method: 'ltp', budget: 0.8 } })).rejects.toThrow(/calibrat/);
    await expect(classifier.classify(png, { prune: { method: 'tome', budget: 0.01 } })).rejects.toThrow(ScheduleError);
    await expect(classifier.classify(png, { topK: 0 })).rejects.toThrow(UsageError);
    await classifier.dispose();
    await expect(classifier.classify(png)).rejects.toThrow(/disposed/);
  });

  it('threads: the wasm backend on 2 threads gives the scores of 1, and dispose ends its workers', async () => {
    const source = { config: files['config.json'], weights: files['model.safetensors'] };
    const [single, threaded] = [await loadClassifier(source, { threads: 1 }), await loadClassifier(source, { threads: 2 })];
    expect([single.threads, threaded.threads]).toEqual([1, 2]);
    const prune = { method: 'zero-tprune', budget: 0.7 };
    expect(await threaded.classify(png, { topK: 10, prune })).toEqual(await single.classify(png, { topK: 10, prune }));
    const { pool } = (threaded as unknown as { runner: ViTRunner }).runner.kernels as WasmKernels; // the private runner's kernels
    expect(pool!.liveThreads()).toBe(2);
    await threaded.dispose();
    expect(pool!.liveThreads()).toBe(1); // the caller's thread only
    await single.dispose();
  });

  it('trace and forward: the run classify makes, recorded; the forward pass alone on a preprocessed input', async () => {
    const classifier = await loadClassifier({ config: files['config.json'], weights: files['model.safetensors'] }, { backend: 'reference' });
    const prune = { method: 'topk', keep: 0.5 };
    const traced = await classifier.trace(png, { prune });
    const predictions = await classifier.classify(png, { topK: 10, prune });
    expect(Array.from(traced.logits.keys()).sort((a, b) => traced.logits[b] - traced.logits[a])).toEqual(predictions.map((p) => p.index));
    expect(traced.crop).toMatchObject({ width: 64, height: 64 });
    expect(traced.stages.length).toBeGreaterThan(0);
    expect(traced.kept.length).toBeLessThan(64);
    const dense = await classifier.trace(png);
    expect(dense.stages).toEqual([]);
    expect(dense.gmacs).toBeGreaterThan(traced.gmacs);
    const input = preprocess(decodeImage(png, 'png'), cfg.preprocess);
    expect(await classifier.forward(input)).toEqual(dense.logits);
    await expect(classifier.forward(new Float32Array(5))).rejects.toThrow(/expected a Float32Array of 3×64×64 = 12288 values .*found 5/);
    await classifier.dispose();
    await expect(classifier.trace(png)).rejects.toThrow(/trace: this classifier was disposed/);
  });
});
