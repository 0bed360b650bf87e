import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReferenceGradKernels } from '../src/grad/reference.js';
import { SoftMaskedViT } from '../src/grad/soft-vit.js';
import { klDivergence } from '../src/eval/metrics.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { loadModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel, seededRandom } from '../src/model/random.js';
import type { ViTModel } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import { denseGmacs, modelGmacs } from '../src/model/gmacs.js';
import { geometricKeepSchedule } from '../src/prune/ltp-keep-schedule.js';
import { learnLtpThresholds, type LtpLearnResult } from '../src/prune/ltp-learn.js';
import { ltpThresholdsToJson, parseLtpThresholds } from '../src/prune/ltp-thresholds.js';
import { ltpHooks, type LtpThresholds } from '../src/prune/ltp.js';
import { encodePng } from './image-writers.js';
import { runCli as run } from './run-cli.js';

/**
 * A tiny model where LTP's scores matter: 3 blocks of width 16, 64 patches; queries and keys
 * scaled ×3 (sharp, uneven attention, so mean-attention scores spread out) and the head ×20
 * (logits of a trained model's scale, so pruning moves the KL).
 */
function tinyModel(): ViTModel {
  const model = randomModel(configFromDims({ dim: 16, depth: 3, heads: 2, imageSize: 32, patchSize: 4, numClasses: 10 }), 3);
  model.weights.head.weight.forEach((w, i, a) => (a[i] = 20 * w));
  for (const block of model.weights.blocks) block.qkv.weight.forEach((w, i, a) => (a[i] = i < 2 * 16 * 16 ? 3 * w : w));
  return model;
}

const model = tinyModel();
const cfg = model.config;
const runner = new ViTRunner(model, createReferenceKernels());
const random = seededRandom(7);
const inputs = Array.from({ length: 40 }, () => Float32Array.from({ length: 3 * 32 * 32 }, () => 2 * random() - 1));
const teachers = inputs.map((input) => runner.forward(input).logits);

/** Hard thresholds on the inputs: mean KL to the dense model and GMACs fraction. */
function hard(theta: number[]): { kl: number; fraction: number } {
  const hooks = ltpHooks({ theta, unit: 'mean' });
  let kl = 0;
  let gmacs = 0;
  inputs.forEach((input, i) => {
    const r = runner.forward(input, hooks);
    kl += klDivergence(teachers[i], r.logits);
    gmacs += r.gmacs;
  });
  return { kl: kl / inputs.length, fraction: gmacs / inputs.length / denseGmacs(cfg) };
}

describe('learned LTP thresholds', () => {
  // Budget 0.9: within reach of the last block alone, where pruning is free (only its MLP is
  // saved, and the logits read the CLS token). Learning starts from θ = 0.8 at blocks 2 and 3,
  // which prunes at block 2 and costs KL.
  const budget = 0.9;
  const initial: LtpThresholds = { theta: [0, 0.8, 0.8], unit: 'mean' };
  let learned: LtpLearnResult;
  beforeAll(async () => {
    const soft = new SoftMaskedViT(model, createReferenceGradKernels('float64'));
    learned = await learnLtpThresholds(runner, soft, inputs, { budget, initial, epochs: 20, batchSize: 8, learningRate: 0.1 });
  });

  it('finds the best thresholds of an exhaustive search along the budget', () => {
    // For θ₂ on a grid, the θ₃ that meets the budget (bisected), and the KL there.
    const curve = Array.from({ length: 11 }, (_, i) => {
      const theta2 = 0.1 * i;
      let lo = 0;
      let hi = 20;
      for (let step = 0; step < 12; step++) {
        const mid = (lo + hi) / 2;
        if (hard([0, theta2, mid]).fraction > budget) lo = mid;
        else hi = mid;
      }
      return { theta2, theta3: hi, ...hard([0, theta2, hi]) };
    });
    const best = curve.reduce((a, b) => (b.kl < a.kl && Math.abs(b.fraction / budget - 1) <= 0.01 ? b : a));
    expect(best.kl).toBeLessThan(1e-6); // the search finds the free pruning: nothing before the last block
    expect(hard(initial.theta).kl).toBeGreaterThan(0.3); // where learning starts is far from it
    expect(learned.hard.kl).toBeLessThan(1e-3);
    expect(learned.thresholds.theta[1]).toBeLessThan(curve.find((c) => c.kl > 1e-3)!.theta2); // block 2 prunes (almost) nothing
    expect(learned.thresholds.theta[2] / best.theta3).toBeCloseTo(1, 1);
  });

  it('keeps the start when learning does not lower its hard KL', async () => {
    expect(learned.kept).toBe('learned');
    // From the free pruning itself (only the last block prunes: KL ≈ 0), learning cannot do better.
    const start: LtpThresholds = { theta: [0, 0, learned.thresholds.theta[2]], unit: 'mean' };
    const soft = new SoftMaskedViT(model, createReferenceGradKernels('float64'));
    const again = await learnLtpThresholds(runner, soft, inputs, { budget, initial: start, epochs: 2, batchSize: 8, learningRate: 0.5 });
    expect(again.kept).toBe('start');
    expect(again.thresholds.theta[1]).toBe(0);
    expect(again.thresholds.theta[2] / start.theta[2]).toBeCloseTo(again.scale, 12);
    expect(again.hard.kl).toBeLessThanOrEqual(again.initial.hard.kl);
  });

  it('decreases the loss', () => {
    const kl = learned.epochs.map((e) => e.kl);
    expect(kl[kl.length - 1]).toBeLessThan(0.01 * kl[0]);
    expect(learned.hard.kl).toBeLessThan(0.01 * learned.initial.hard.kl);
  });

  it('meets the budget with the hard thresholds (within 1 %), as ltpHooks runs them', () => {
    expect(Math.abs(learned.hard.fraction / budget - 1)).toBeLessThanOrEqual(0.01);
    const check = hard(learned.thresholds.theta);
    expect(check.fraction).toBeCloseTo(learned.hard.fraction, 12);
    expect(learned.epochs.at(-1)!.softFraction / budget).toBeCloseTo(1, 1);
  });

  it('refuses bad inputs with clean errors', async () => {
    const soft = new SoftMaskedViT(model, createReferenceGradKernels('float64'));
    const learn = (options: Parameters<typeof learnLtpThresholds>[3], images = inputs.slice(0, 2)) => learnLtpThresholds(runner, soft, images, options);
    await expect(learn({ budget: 1.2 })).rejects.toThrow(/budget in \(0, 1\).*found 1.2/);
    await expect(learn({ budget: 0.9 }, [])).rejects.toThrow(/at least one calibration image/);
    await expect(learn({ budget: 0.9, epochs: 0 })).rejects.toThrow(/epochs: expected a positive integer, found 0/);
    await expect(learn({ budget: 0.9, temperature: { start: 0, end: 0.1 } })).rejects.toThrow(/temperatures and a learning rate > 0/);
    await expect(learn({ budget: 0.9, initial: { theta: [0, 1], unit: 'mean' } })).rejects.toThrow(/one per block \(3\), found 2/);
    await expect(learn({ budget: 0.9, initial: { theta: [0, 0, 0], unit: 'mean' } })).rejects.toThrow(/at least one block that prunes/);
  });
});

describe('the start of learning', () => {
  it('is the calibrated thresholds (quantiles or ramp) with the lower hard KL on the calibration images', async () => {
    const soft = new SoftMaskedViT(model, createReferenceGradKernels('float64'));
    const result = await learnLtpThresholds(runner, soft, inputs, { budget: 0.8, epochs: 1, batchSize: 20 });
    expect(result.starts.map((s) => s.method)).toEqual(['quantiles', 'ramp']);
    for (const s of result.starts) {
      const check = hard(s.thresholds.theta);
      expect(s.hard.kl).toBeCloseTo(check.kl, 12);
      expect(Math.abs(check.fraction / 0.8 - 1)).toBeLessThan(0.05); // both calibrated to the budget
    }
    expect(result.initial.hard.kl).toBe(Math.min(...result.starts.map((s) => s.hard.kl)));
    expect(result.starts[0].hard.kl).not.toBe(result.starts[1].hard.kl); // a real choice
    expect(result.initial.thresholds.theta[0]).toBe(0); // block 1 never prunes
  });
});

describe('geometricKeepSchedule', () => {
  it('keeps the same share per block from the second, at the budget, and refuses budgets out of reach', () => {
    const deitT = configFromDims({ dim: 192, depth: 12, heads: 3 });
    const keep = geometricKeepSchedule(deitT, 0.7);
    expect(keep[0]).toBe(1);
    expect(new Set(keep.slice(1)).size).toBe(1);
    const k = keep[1];
    const tokens = keep.map((_, l) => ({ attention: 1 + 196 * k ** Math.max(l - 1, 0), mlp: 1 + 196 * k ** l }));
    expect(modelGmacs(deitT, tokens) / denseGmacs(deitT)).toBeCloseTo(0.7, 9);
    expect(geometricKeepSchedule(deitT, 0.9)[1]).toBeGreaterThan(k);
    expect(() => geometricKeepSchedule(deitT, 0.05)).toThrow(/expected at least 0\.1\d+ × dense/);
    expect(() => geometricKeepSchedule(deitT, 1)).toThrow(/in \(0, 1\), found 1/);
  });
});

describe('thresholds.json', () => {
  const file = { theta: [0, 0.5, 2], unit: 'mean' as const, model: cfg.architecture, budget: 0.7, learning: { epochs: 3 } };

  it('round-trips and checks the model', () => {
    expect(parseLtpThresholds(ltpThresholdsToJson(file), 'f.json', cfg)).toEqual(file);
    expect(() => parseLtpThresholds(ltpThresholdsToJson({ ...file, model: 'deit_small' }), 'f.json', cfg)).toThrow(
      /f.json: thresholds learned for deit_small, the model is synthetic/,
    );
    expect(() => parseLtpThresholds(ltpThresholdsToJson({ ...file, theta: [0, 1] }), 'f.json', cfg)).toThrow(/one threshold per block \(3\), found 2/);
  });

  it.each([
    ['{', /f.json: expected LTP thresholds as JSON, found a syntax error/],
    ['[1]', /expected an object/],
    ['{"theta":[0,-1],"unit":"mean","model":"m","budget":0.5}', /"theta": expected an array of finite numbers ≥ 0/],
    ['{"theta":[0,1],"unit":"mean","model":"m","budget":0.5,"thetas":[]}', /unexpected key "thetas"/],
    ['{"theta":[0,1],"unit":"relative","model":"m","budget":0.5}', /"unit": expected "mean" or "absolute", found "relative"/],
    ['{"theta":[0,1],"unit":"mean","budget":0.5}', /"model": expected the architecture/],
    ['{"theta":[0,1],"unit":"mean","model":"m","budget":7}', /"budget": expected a GMACs fraction in \(0, 1\], found 7/],
  ])('refuses %s', (text, message) => {
    expect(() => parseLtpThresholds(text, 'f.json', cfg)).toThrow(message);
  });
});

describe('vitprune learn-ltp', () => {
  const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'tiny-timm'); // 8×8 input, patch 4: 2×2 patches, 2 blocks
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-learn-ltp-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const calib = path.join(tmp, 'calib');
  beforeAll(() => {
    mkdirSync(calib);
    const pixels = seededRandom(3);
    for (let i = 0; i < 6; i++) {
      const samples = Uint8Array.from({ length: 12 * 10 * 3 }, () => Math.floor(256 * pixels()));
      writeFileSync(path.join(calib, `image${i}.png`), encodePng({ width: 12, height: 10, colorType: 2, bitDepth: 8, samples }));
    }
  });

  it('learns, writes thresholds.json that parses for the model, and reports as JSON', async () => {
    const out = path.join(tmp, 'thresholds.json');
    const r = await run(
      'learn-ltp',
      '--model',
      FIXTURE,
      '--backend',
      'reference',
      '--calib',
      calib,
      '--budget',
      '0.9',
      '--epochs',
      '2',
      '--batch',
      '3',
      '--out',
      out,
      '--json',
      '--quiet',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.calibration.images).toBe(6);
    expect(Math.abs(report.calibration.fraction / 0.9 - 1)).toBeLessThanOrEqual(0.01);
    const written = parseLtpThresholds(readFileSync(out, 'utf8'), out, loadModelFolder(FIXTURE).config);
    expect(written.theta).toEqual(report.thresholds.theta);
    expect(written.budget).toBe(0.9);
    expect(written.unit).toBe('mean');
    expect((written.learning as { history: unknown[] }).history).toHaveLength(2);
  });

  it('shows progress on stderr without --json and --quiet', async () => {
    const r = await run(
      'learn-ltp',
      '--model',
      FIXTURE,
      '--backend',
      'reference',
      '--calib',
      calib,
      '--split',
      'even',
      '--budget',
      '0.9',
      '--epochs',
      '1',
      '--out',
      path.join(tmp, 't2.json'),
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/learn-ltp \(forward \+ backward\) \[#+\] 100% 3\/3/);
    expect(r.stdout).toMatch(/^(learned|written) +: .*agreement .* on 3 calibration images\ncalibrated \((quantiles|ramp)\) *: /m);
    // The fixture's start already has KL 0 there: learning cannot lower it, and the command says so.
    expect(r.stdout).toMatch(/^written +: .*\n.*\nlearning did not lower the start's KL on the calibration images: the start's thresholds are written\n/m);
  });

  it.each([
    [['--budget', '0.9', '--out', 'x.json'], /needs --calib DIR/],
    [['--calib', 'DIR', '--budget', '0.9'], /needs --out FILE/],
    [['--calib', 'DIR', '--out', 'x.json'], /needs --budget F/],
    [['--calib', 'DIR', '--out', 'x.json', '--budget', '1.5'], /--budget expects a fraction in \(0, 1\).*'1.5'/],
    [['--calib', 'DIR', '--out', 'x.json', '--budget', '0.9', '--temperature', '0.3'], /--temperature expects T0:T1 with both > 0, got '0.3'/],
    [['--calib', 'DIR', '--out', 'x.json', '--budget', '0.9', '--epochs', '0'], /--epochs expects a positive integer, got '0'/],
    [['--calib', 'DIR', '--out', 'x.json', '--budget', '0.9', '--lr', '0'], /--lr expects a number > 0, got '0'/],
    [['--calib', '/nonexistent', '--out', 'x.json', '--budget', '0.9'], /cannot read image folder '\/nonexistent'/],
  ])('refuses %j with one line', async (args, message) => {
    const r = await run('learn-ltp', '--model', FIXTURE, ...args.map((a) => (a === 'DIR' ? calib : a)));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
