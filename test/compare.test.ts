import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareMethods, reportMarkdown } from '../src/eval/compare.js';
import { comparePlotSpecs, renderSvg, svgToPng } from '../src/eval/plots.js';
import { createKernels } from '../src/kernels/index.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { encodePng, testPattern } from './image-writers.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-compare-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('compare', () => {
  // A 12-block model small enough to run every method quickly: 64×64 input, 64 patches.
  const cfg = configFromDims({ dim: 24, depth: 12, heads: 2, imageSize: 64, patchSize: 8, numClasses: 10 });
  cfg.preprocess = { ...cfg.preprocess, inputSize: 64 };
  const model = randomModel(cfg, 9);
  const images = [0, 1, 2, 3].map((i) => {
    const file = path.join(tmp, `img${i}.png`);
    writeFileSync(file, encodePng({ width: 40 + 8 * i, height: 36, colorType: 2, bitDepth: 8, samples: testPattern(40 + 8 * i, 36) }));
    return { file, label: i };
  });

  it('runs every method at every budget against the same dense run, within 1 % of each budget', async () => {
    const runner = new ViTRunner(model, await createKernels('reference'));
    const calibration = images.map(() => Float32Array.from({ length: 3 * 64 * 64 }, (_, j) => Math.sin(j)));
    const report = await compareMethods(model, runner, images, {
      modelName: 'tiny',
      methods: ['zero-tprune', 'tome', 'evit', 'topk', 'ltp', 'random'],
      budgets: [0.9, 0.7],
      calibration,
      progress: false,
    });
    expect(report.images).toBe(4);
    expect(report.results.map((r) => `${r.method}@${r.budget}`)).toEqual(
      [0.9, 0.7].flatMap((b) => ['zero-tprune', 'tome', 'evit', 'topk', 'ltp', 'random'].map((m) => `${m}@${b}`)),
    );
    for (const r of report.results) {
      expect(r.agreement).toBeGreaterThanOrEqual(0);
      expect(r.agreement).toBeLessThanOrEqual(1);
      expect(r.kl).toBeGreaterThanOrEqual(0);
      // LTP's budget holds on its calibration images, not exactly on these: allow more slack there.
      expect(Math.abs(r.gmacs / report.dense.gmacs / r.budget - 1)).toBeLessThanOrEqual(r.method === 'ltp' ? 0.15 : 0.011);
    }
    const md = reportMarkdown(report);
    expect(md.split('\n').filter((l) => l.startsWith('| ')).length).toBe(2 + 12);

    const specs = comparePlotSpecs(report);
    const svg = await renderSvg(specs.accuracy);
    expect(svg).toMatch(/^<svg/);
    const png = await svgToPng(svg);
    expect(Array.from(png.subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]); // "PNG"
  });
});
