import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { readBundle } from '../src/oracle/bundle.js';
import { encodePng, testPattern } from './image-writers.js';
import { runCli as run } from './run-cli.js';

// Learned LTP thresholds (vitprune learn-ltp) wherever a method is chosen: --method ltp --thresholds
// FILE through cli/pruning.ts and the registry.

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
    writeFileSync(path.join(images, `img${i}.png`), encodePng({ width: 64 + 8 * i, height: 64, colorType: 2, bitDepth: 8, samples: testPattern(64 + 8 * i, 64) }));
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
    expect(report.schedule).toEqual({ theta, unit: 'mean' });
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
    expect(readBundle(bundle).manifest.method).toEqual({ name: 'ltp', settings: { theta, unit: 'mean' } });
  });

  it('refuses, in one line, thresholds of another model or depth, bare settings, and other methods', async () => {
    const otherModel = editedThresholds('other-model.json', (f) => (f.model = 'deit_small_patch16_224'));
    const otherDepth = editedThresholds('other-depth.json', (f) => (f.theta = [0, 0.5, 0.5]));
    const bare = editedThresholds('bare.json', (f) => {
      for (const key of Object.keys(f)) if (key !== 'theta' && key !== 'unit') delete f[key];
    });
    const cases: [string[], RegExp][] = [
      [['--method', 'ltp', '--thresholds', otherModel], new RegExp(`other-model.json: thresholds learned for deit_small_patch16_224, the model is ${cfg.architecture}`)],
      [['--method', 'ltp', '--thresholds', otherDepth], /other-depth.json: expected one threshold per block \(12\), found 3/],
      [['--method', 'ltp', '--thresholds', bare], /--thresholds expects a thresholds file of vitprune learn-ltp .* without "model"; bare settings go to --schedule/],
      [['--method', 'ltp', '--thresholds', path.join(tmp, 'missing.json')], /cannot read --thresholds file '.*missing.json': ENOENT/],
      [['--method', 'tome', '--thresholds', learned], /--method tome takes --budget, --gmacs, --schedule, --r, not --thresholds/],
      [['--method', 'ltp', '--budget', '0.8', '--thresholds', learned], /--method ltp needs exactly one of --budget, --gmacs, --schedule, --thresholds; found --budget, --thresholds/],
    ];
    for (const [flags, message] of cases) {
      const r = await run(...evalArgs, ...flags);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
