import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareMethods, LEARNED_METHOD } from '../src/eval/compare.js';
import { createKernels } from '../src/kernels/index.js';
import { saveModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { readBundle } from '../src/oracle/bundle.js';
import { encodePng, testPattern } from './image-writers.js';
import { runCli as run } from './run-cli.js';

// Learned LTP thresholds (vitprune learn-ltp) wherever a method is chosen: --method ltp --thresholds
// FILE through cli/pruning.ts and the registry, and compare's ltp-learned.

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-ltp-thresholds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A 12-block model small enough to learn on: 64×64 input, patch 8 → 64 patches.
const cfg = configFromDims({ dim: 24, depth: 12, heads: 2, imageSize: 64, patchSize: 8, numClasses: 10 });
cfg.preprocess = { ...cfg.preprocess, inputSize: 64, cropPct: 1 };
const model = randomModel(cfg, 9);
const modelDir = path.join(tmp, 'model');
const images = path.join(tmp, 'images');
const labels = path.join(tmp, 'labels.csv');
const learned = path.join(tmp, 'learned-even.json'); // learned on the even images
const common = ['--model', modelDir, '--backend', 'reference', '--quiet'];

beforeAll(async () => {
  saveModelFolder(modelDir, model);
  mkdirSync(images);
  for (let i = 0; i < 6; i++) {
    writeFileSync(
      path.join(images, `img${i}.png`),
      encodePng({ width: 64 + 8 * i, height: 64, colorType: 2, bitDepth: 8, samples: testPattern(64 + 8 * i, 64) }),
    );
  }
  writeFileSync(labels, `file,class_index\n${[0, 1, 2, 3, 4, 5].map((i) => `img${i}.png,${i}\n`).join('')}`);
  const r = await run('learn-ltp', ...common, '--calib', images, '--split', 'even', '--budget', '0.8', '--epochs', '1', '--out', learned);
  expect(r.code, r.stderr).toBe(0);
});

/** A thresholds file like learned's, changed by `edit`, written next to it. */
function editedThresholds(name: string, edit: (file: Record<string, unknown>) => void): string {
  const file = JSON.parse(readFileSync(learned, 'utf8'));
  edit(file);
  const out = path.join(tmp, name);
  writeFileSync(out, JSON.stringify(file));
  return out;
}

describe('--method ltp --thresholds FILE', () => {
  const evalArgs = ['eval', ...common, '--images', images, '--labels', labels, '--json'];

  it('runs the learned thresholds in eval (as --schedule does), classify, visualize and trace', async () => {
    const { theta } = JSON.parse(readFileSync(learned, 'utf8'));
    const evaluated = await run(...evalArgs, '--method', 'ltp', '--thresholds', learned);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const report = JSON.parse(evaluated.stdout);
    expect(report.schedule).toEqual({ theta, unit: 'mean', placement: 'pre-mlp' });
    expect(report.gmacs).toBeLessThan(report.dense.gmacs);
    const bySchedule = await run(...evalArgs, '--method', 'ltp', '--schedule', learned);
    expect(JSON.parse(bySchedule.stdout)).toMatchObject({ gmacs: report.gmacs, agreement: report.agreement, kl: report.kl });

    const image = path.join(images, 'img1.png');
    const classified = await run('classify', ...common, image, '--method', 'ltp', '--thresholds', learned, '--json');
    expect(classified.code, classified.stderr).toBe(0);
    const visualized = await run('visualize', ...common, image, '--method', 'ltp', '--thresholds', learned, '--out', path.join(tmp, 'ltp.png'), '--json');
    expect(visualized.code, visualized.stderr).toBe(0);
    expect(JSON.parse(visualized.stdout).kept.length).toBeLessThan(64);
    const bundle = path.join(tmp, 'trace');
    const traced = await run('trace', ...common, image, '--method', 'ltp', '--thresholds', learned, '--out', bundle, '--json');
    expect(traced.code, traced.stderr).toBe(0);
    expect(readBundle(bundle).manifest.method).toEqual({ name: 'ltp', settings: { theta, unit: 'mean', placement: 'pre-mlp' } });
  });

  it('refuses, in one line, thresholds of another model or depth, bare settings, and other methods', async () => {
    const otherModel = editedThresholds('other-model.json', (f) => (f.model = 'deit_small_patch16_224'));
    const otherDepth = editedThresholds('other-depth.json', (f) => (f.theta = [0, 0.5, 0.5]));
    const bare = editedThresholds('bare.json', (f) => {
      for (const key of Object.keys(f)) if (key !== 'theta' && key !== 'unit') delete f[key];
    });
    const cases: [string[], RegExp][] = [
      [
        ['--method', 'ltp', '--thresholds', otherModel],
        new RegExp(`other-model.json: thresholds learned for deit_small_patch16_224, the model is ${cfg.architecture}`),
      ],
      [['--method', 'ltp', '--thresholds', otherDepth], /other-depth.json: expected one threshold per block \(12\), found 3/],
      [
        ['--method', 'ltp', '--thresholds', bare],
        /--thresholds expects a thresholds file of vitprune learn-ltp .* without "model"; bare settings go to --schedule/,
      ],
      [['--method', 'ltp', '--thresholds', path.join(tmp, 'missing.json')], /cannot read --thresholds file '.*missing.json': ENOENT/],
      [['--method', 'tome', '--thresholds', learned], /--method tome takes --budget, --gmacs, --schedule, --r, not --thresholds/],
      [
        ['--method', 'ltp', '--budget', '0.8', '--thresholds', learned],
        /--method ltp needs exactly one of --budget, --gmacs, --schedule, --thresholds; found --budget, --thresholds/,
      ],
    ];
    for (const [flags, message] of cases) {
      const r = await run(...evalArgs, ...flags);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('compare --methods ltp-learned', () => {
  const compareArgs = ['compare', ...common, '--images', images, '--labels', labels, '--budgets', '0.8', '--json'];

  it('reports learned LTP beside the others from --thresholds files learned on the images it does not evaluate', async () => {
    const r = await run(...compareArgs, '--split', 'odd', '--methods', 'topk,ltp-learned', '--thresholds', learned);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.images).toBe(3);
    const row = report.results.find((x: { method: string }) => x.method === LEARNED_METHOD);
    expect(row).toMatchObject({ budget: 0.8, schedule: { theta: JSON.parse(readFileSync(learned, 'utf8')).theta, unit: 'mean', file: learned } });
    expect(report.results.map((x: { method: string }) => x.method)).toEqual(['topk', LEARNED_METHOD]);
  });

  it('learns on the calibration half at budgets without a file, never on the evaluated images', async () => {
    const r = await run(...compareArgs, '--split', 'even', '--methods', 'ltp-learned');
    expect(r.code, r.stderr).toBe(0);
    const row = JSON.parse(r.stdout).results[0];
    expect(row.method).toBe(LEARNED_METHOD);
    expect(row.schedule.learned.images).toBe(3); // the odd half
    expect(Math.abs(row.schedule.learned.fraction / 0.8 - 1)).toBeLessThanOrEqual(0.01);
  });

  it('refuses thresholds learned on the evaluated images, or learning on them, and files for other budgets', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--split', 'even', '--thresholds', learned],
        /--thresholds: .*learned-even.json was learned on 3 of the images compare evaluates: evaluate others \(--split\)/,
      ],
      [['--thresholds', learned], /learned-even.json was learned on 3 of the images compare evaluates/],
      [
        ['--methods', 'ltp-learned'],
        /compare: ltp-learned learns on calibration images it is not evaluated on, but 6 of the 6 are evaluated: give --split even\|odd/,
      ],
      [
        ['--split', 'odd', '--budgets', '0.7', '--thresholds', learned],
        /--thresholds: .*learned-even.json was learned for 0.8 × dense GMACs, not one of --budgets 0.7/,
      ],
    ];
    for (const [flags, message] of cases) {
      const r = await run(...compareArgs, ...flags);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });

  it('compareMethods runs a given thresholds file and learns where none is given', async () => {
    const runner = new ViTRunner(model, await createKernels('reference'));
    const evaluated = [1, 3].map((i) => ({ file: path.join(images, `img${i}.png`), label: i }));
    const calibration = [0, 2, 4].map((i) => Float32Array.from({ length: 3 * 64 * 64 }, (_, j) => Math.sin(i + j)));
    const thresholds = JSON.parse(readFileSync(learned, 'utf8'));
    const report = await compareMethods(model, runner, evaluated, {
      modelName: 'tiny',
      methods: [LEARNED_METHOD],
      budgets: [0.8, 0.9],
      learned: [{ budget: 0.8, thresholds, file: learned }],
      calibration,
      progress: false,
    });
    expect(report.results.map((x) => [x.budget, Object.keys(x.schedule as object).sort()])).toEqual([
      [0.8, ['file', 'placement', 'theta', 'unit']],
      [0.9, ['learned', 'placement', 'theta', 'unit']],
    ]);
    await expect(compareMethods(model, runner, evaluated, { modelName: 'tiny', methods: [LEARNED_METHOD], budgets: [0.9], progress: false })).rejects.toThrow(
      /ltp-learned at 0.9 needs a thresholds file learned for that budget, or calibration images to learn on/,
    );
  });
});
