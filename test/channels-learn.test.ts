import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelFolder, saveModelFolder } from '../src/model/folder.js';
import { writeCalibrationPngs } from './calibration-pngs.js';
import { runCli as run } from './run-cli.js';
import { distillationLoss } from '../src/grad/distillation.js';
import { createReferenceGradKernels } from '../src/grad/reference.js';
import { SoftMaskedViT } from '../src/grad/soft-vit.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import type { ViTConfig, ViTModel } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import { featureLoss, foldLearnedChannels, holdConstraint, learnChannelPruning, type ChannelLearnCheckpoint } from '../src/prune/channels-learn.js';
import { LearnedChannelParameters, sigmoid, type LearnedSelection } from '../src/prune/channels-learn-params.js';
import { expectGradient, finiteDifferences, sampleIndices, uniform } from './grad-check.js';

// Learned channel pruning (issue 17): the gradients of the gate logits, logit scales and proj
// correction match central finite differences in float64; the folded smaller model is the gated
// model with hard gates; learning finds a planted set of channels that contribute nothing.

const reference32 = createReferenceKernels();
const reference64 = createReferenceGradKernels('float64');
const seed = fc.integer({ min: 0, max: 2 ** 32 - 1 });

/** 12×12 images in 4×4 patches (9 patches + prefix), 3 blocks of width 8, 2 heads of 4 channels, 7 classes. */
function tinyModel(distilled: boolean, s: number): ViTModel {
  return randomModel(configFromDims({ dim: 8, depth: 3, heads: 2, imageSize: 12, patchSize: 4, numClasses: 7, distilled }), s);
}

function randomImage(cfg: ViTConfig, next: () => number): Float32Array {
  return Float32Array.from({ length: cfg.inChannels * cfg.imageSize * cfg.imageSize }, () => next());
}

/** Parameters with random gate logits, logit scales and proj correction. */
function randomParameters(cfg: ViTConfig, next: () => number): LearnedChannelParameters {
  const params = new LearnedChannelParameters(cfg, 2, true);
  params.phi.forEach((_, i) => (params.phi[i] = next()));
  params.psi.forEach((_, i) => (params.psi[i] = 0.3 * next()));
  params.proj.forEach((_, i) => (params.proj[i] = 0.3 * next()));
  return params;
}

/** Per block and head, `keep` random channels of `width`, or (unequal) a random count ≥ 1, padded to the block's widest head. */
function randomSelection(cfg: ViTConfig, next: () => number, equal: boolean): LearnedSelection {
  const pick = (width: number, count: number) => {
    const order = Array.from({ length: width }, (_, c) => c).sort(() => next());
    return { kept: order.slice(0, count), rest: order.slice(count) };
  };
  const selection: LearnedSelection = { widths: [], qk: [], v: [], qkActive: [], vActive: [] };
  for (let b = 0; b < cfg.depth; b++) {
    const part = (width: number) => {
      const counts = Array.from({ length: cfg.heads }, () => (equal ? 3 : 1 + Math.floor(((next() + 1) / 2) * (width - 0.01))));
      const widest = Math.max(...counts);
      const heads = counts.map((count) => {
        const { kept, rest } = pick(width, count);
        const all = [...kept, ...rest.slice(0, widest - count)].sort((x, y) => x - y);
        return { indices: Int32Array.from(all), active: all.map((c) => kept.includes(c)) };
      });
      return { widest, heads };
    };
    const qk = part(cfg.qkDim);
    const v = part(cfg.vDim);
    selection.widths.push({ qkDim: qk.widest, vDim: v.widest });
    selection.qk.push(qk.heads.map((h) => h.indices));
    selection.qkActive.push(qk.heads.map((h) => h.active));
    selection.v.push(v.heads.map((h) => h.indices));
    selection.vActive.push(v.heads.map((h) => h.active));
  }
  return selection;
}

describe('learned channel pruning: gradients', () => {
  it('of the gate logits, logit scales and proj correction are those of central finite differences (float64; KL + block-output term)', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.constantFrom(0.3, 1, 3), fc.boolean(), seed, (distilled, tau, hard, s) => {
        const model = tinyModel(distilled, s);
        const cfg = model.config;
        const next = uniform(s);
        const runner = new ViTRunner(model, reference32);
        const soft = new SoftMaskedViT(model, reference64);
        const embedded = Float64Array.from(runner.embed(randomImage(cfg, next)));
        const teacher = soft.forward(embedded).logits;
        const params = randomParameters(cfg, next);
        const selection = hard ? randomSelection(cfg, next, true) : null;
        const temperature = hard ? null : tau;
        // KL + the block-output term against random targets x̂ (featureLoss, weight 0.1 per block)
        const targets = Array.from({ length: cfg.depth }, () => Float64Array.from({ length: soft.tokens * cfg.dim }, () => next()));
        const outputs = () => Array.from({ length: cfg.depth }, (_, b) => Float64Array.from(b + 1 < cfg.depth ? soft['tape'][b + 1].input : soft['output']));
        const loss = () => {
          const logits = soft.forward(embedded, { gates: params.gates(temperature, selection), proj: params.corrections }).logits;
          return distillationLoss(teacher, logits).loss + outputs().reduce((sum, x, b) => sum + featureLoss(x, targets[b], 0.1, new Float64Array(x.length)), 0);
        };

        const gates = params.gates(temperature, selection);
        const result = soft.forward(embedded, { gates, proj: params.corrections });
        const grads = params.zeroGradients();
        const features = (b: number, output: ArrayLike<number>, dOutput: { [i: number]: number }) => void featureLoss(output, targets[b], 0.1, dOutput);
        params.addGradients(gates, temperature, soft.backward(distillationLoss(teacher, result.logits).dLogits, undefined, features), grads);
        if (hard) expect(grads.phi.every((g) => g === 0)).toBe(true);
        else expectGradient(grads.phi, finiteDifferences(loss, params.phi), 1e-4, 'dφ');
        expectGradient(grads.psi, finiteDifferences(loss, params.psi), 1e-4, 'dψ');
        const some = sampleIndices(params.proj.length, 60);
        expectGradient(
          some.map((i) => grads.proj[i]),
          finiteDifferences(loss, params.proj, some),
          1e-4,
          'd proj correction',
        );
      }),
      { numRuns: 25 },
    );
  });
});

describe('learned channel pruning: the folded model', () => {
  it('has the logits of the gated model with hard gates (≤ 1e-5), heads of one width or padded', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), seed, (distilled, equal, s) => {
        const model = tinyModel(distilled, s);
        const cfg = model.config;
        const next = uniform(s);
        const params = randomParameters(cfg, next);
        const selection = randomSelection(cfg, next, equal);
        const folded = foldLearnedChannels(model, selection, params.logitScales(), params.corrections);
        expect(folded.weights.blocks.map((blk) => blk.qkv.outFeatures)).toEqual(selection.widths.map((w) => cfg.heads * (2 * w.qkDim + w.vDim)));

        const runner = new ViTRunner(model, reference32);
        const input = randomImage(cfg, next);
        const gated = new SoftMaskedViT(model, reference64).forward(runner.embed(input), {
          gates: params.gates(null, selection),
          proj: params.corrections,
        }).logits;
        const logits = new ViTRunner(folded, reference32).forward(input).logits;
        const scale = Math.max(1, ...gated.map(Math.abs));
        expect(Math.max(...logits.map((l, i) => Math.abs(l - gated[i])))).toBeLessThanOrEqual(1e-5 * scale);
      }),
      { numRuns: 40 },
    );
  });
});

describe('learned channel pruning: learning', () => {
  it('holds each group at its kept count', () => {
    const next = uniform(3);
    const phi = Float64Array.from({ length: 12 }, () => 3 * next());
    holdConstraint(
      phi,
      [
        { offset: 0, length: 8, keep: 6 },
        { offset: 8, length: 4, keep: 1 },
      ],
      0.5,
    );
    const kept = (from: number, to: number) => Array.from(phi.subarray(from, to)).reduce((s, p) => s + sigmoid(p / 0.5), 0);
    expect(kept(0, 8)).toBeCloseTo(6, 6);
    expect(kept(8, 12)).toBeCloseTo(1, 6);
  });

  /**
   * 16 wide, 2 heads of 8 channels; in every block and head 2 q/k channels have zero query rows
   * (they add nothing to the logits) and 2 v channels zero value rows (query and key weights ×4, so
   * that attention is far from uniform and the other q/k channels matter): removing 25 % should
   * remove exactly those, found from equal gates (init 'uniform'), by the gates alone (no reweight
   * module: on this random model its Adam steps, sized for DeiT, are large and make the KL noisy).
   */
  function plantedModel(): { model: ViTModel; planted: { qk: number[][]; v: number[][] } } {
    const cfg = configFromDims({ dim: 16, depth: 2, heads: 2, imageSize: 12, patchSize: 4, numClasses: 10 });
    const model = randomModel(cfg, 11);
    const d = cfg.qkDim;
    const planted = {
      qk: [
        [1, 6],
        [2, 5],
      ],
      v: [
        [0, 3],
        [4, 7],
      ],
    };
    for (const blk of model.weights.blocks) {
      blk.qkv.weight.subarray(0, 2 * cfg.heads * d * cfg.dim).forEach((w, i, qk) => (qk[i] = 4 * w)); // sharper attention: q/k channels matter
      const zeroRow = (row: number) => {
        blk.qkv.weight.fill(0, row * cfg.dim, (row + 1) * cfg.dim);
        blk.qkv.bias[row] = 0;
      };
      planted.qk.forEach((channels, h) => channels.forEach((c) => zeroRow(h * d + c)));
      planted.v.forEach((channels, h) => channels.forEach((c) => zeroRow(2 * cfg.heads * d + h * cfg.vDim + c)));
    }
    return { model, planted };
  }

  it('finds a planted set of channels that contribute nothing, and the folded model keeps the dense logits', async () => {
    const { model, planted } = plantedModel();
    const cfg = model.config;
    const next = uniform(5);
    const inputs = Array.from({ length: 16 }, () => randomImage(cfg, next));
    const runner = new ViTRunner(model, reference32);
    const checkpoints: ChannelLearnCheckpoint[] = [];
    const result = await learnChannelPruning(model, runner, new SoftMaskedViT(model, reference64), inputs, {
      ratio: 0.25,
      epochs: 20,
      batchSize: 16,
      init: 'uniform',
      reweight: false,
      onCheckpoint: (c) => checkpoints.push(c),
    });
    const removed = (channels: Int32Array[], width: number) =>
      channels.map((kept) => Array.from({ length: width }, (_, c) => c).filter((c) => !kept.includes(c)));
    result.selection.qk.forEach((heads) => expect(removed(heads, cfg.qkDim)).toEqual(planted.qk));
    result.selection.v.forEach((heads) => expect(removed(heads, cfg.vDim)).toEqual(planted.v));
    expect(result.model.config.qkDim).toBe(6);
    expect(result.gmacsAfter).toBeLessThan(result.gmacsBefore);
    expect(result.hard.agreement).toBe(1);
    expect(checkpoints.map((c) => `${c.stage} ${c.epochsDone}`)).toEqual(Array.from({ length: 20 }, (_, e) => `learning ${e + 1}`));
  });

  it('resumes from a checkpoint to the same result as an uninterrupted run', async () => {
    const { model } = plantedModel();
    const next = uniform(9);
    const inputs = Array.from({ length: 6 }, () => randomImage(model.config, next));
    const learn = (extra: object) =>
      learnChannelPruning(model, new ViTRunner(model, reference32), new SoftMaskedViT(model, reference64), inputs, {
        ratio: 0.25,
        epochs: 2,
        batchSize: 3,
        init: 'uniform',
        ...extra,
      });
    const checkpoints: ChannelLearnCheckpoint[] = [];
    const whole = await learn({ onCheckpoint: (c: ChannelLearnCheckpoint) => checkpoints.push(JSON.parse(JSON.stringify(c)) as ChannelLearnCheckpoint) });
    const resumed = await learn({ resume: checkpoints[0] });
    expect(resumed.logitScales).toEqual(whole.logitScales);
    expect(Array.from(resumed.model.weights.blocks[1].proj.weight)).toEqual(Array.from(whole.model.weights.blocks[1].proj.weight));
    await expect(learn({ resume: { ...checkpoints[0], fingerprint: 'other' } })).rejects.toThrow(/another run/);
  });

  it('trains the reweight module alone of an already pruned model against a dense teacher (ratio 0, epochs 0)', async () => {
    const { model } = plantedModel();
    const cfg = model.config;
    const student = foldLearnedChannels(
      model,
      randomSelection(cfg, uniform(2), true),
      [
        [1, 1],
        [1, 1],
      ],
      [null, null],
    );
    const next = uniform(4);
    const inputs = Array.from({ length: 8 }, () => randomImage(cfg, next));
    const teacher = new ViTRunner(model, reference32);
    const result = await learnChannelPruning(student, new ViTRunner(student, reference32), new SoftMaskedViT(student, reference64), inputs, {
      ratio: 0,
      epochs: 0,
      finetuneEpochs: 6,
      batchSize: 8,
      init: 'uniform',
      teacher,
      learningRates: { gates: 0.1, logitScale: 0.01, proj: 1e-2 },
    });
    expect(result.model.config.qkDim).toBe(student.config.qkDim);
    expect(result.selection.qk.flat().every((kept) => kept.length === student.config.qkDim)).toBe(true);
    const kls = result.epochs.map((e) => e.kl);
    expect(kls.length).toBe(6);
    expect(kls[5]).toBeLessThan(kls[0]);
  });
});

describe('vitprune prune-channels --learn', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-channels-learn-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes a smaller model folder (scores or calibrated init) and removes its checkpoint when done', async () => {
    const cfg = configFromDims({ dim: 16, depth: 2, heads: 2, imageSize: 32, patchSize: 8, numClasses: 10 });
    const modelDir = path.join(tmp, 'model');
    saveModelFolder(modelDir, randomModel(cfg, 3));
    const calib = path.join(tmp, 'calib');
    writeCalibrationPngs(calib, 4);
    const learn = ['prune-channels', '--model', modelDir, '--calib', calib, '--ratio', '0.25', '--learn'];
    for (const init of ['scores', 'calibrated']) {
      const out = path.join(tmp, `out-${init}`);
      const { code, stdout, stderr } = await run(
        ...learn,
        '--backend',
        'reference',
        '--init',
        init,
        '--epochs',
        '1',
        '--finetune-epochs',
        '1',
        '--batch',
        '2',
        '--out',
        out,
        '--json',
      );
      expect(stderr).toContain('finetuning epoch 1/');
      expect(code).toBe(0);
      const report = JSON.parse(stdout);
      expect(report.widths).toEqual([
        { block: 0, qkDim: 6, vDim: 6 },
        { block: 1, qkDim: 6, vDim: 6 },
      ]);
      expect(report.gmacs.after).toBeLessThan(report.gmacs.before);
      expect(loadModelFolder(out).config.qkDim).toBe(6);
      const pruned = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).pruned;
      expect(pruned).toMatchObject({ method: 'attention-channels-learned', init, calibration: { images: 4 } });
      expect(existsSync(`${out}.checkpoint.json`)).toBe(false);
    }
    const bad = await run(...learn, '--init', 'random', '--out', path.join(tmp, 'x'));
    expect(bad.stderr).toContain('--init expects one of scores, uniform, calibrated');
    // 0 fine-tuning epochs is a documented setting (no reweight training after the gates); below it, the bound
    const noFinetune = path.join(tmp, 'out-no-finetune');
    const zero = await run(...learn, '--backend', 'reference', '--epochs', '1', '--finetune-epochs', '0', '--batch', '2', '--out', noFinetune, '--json');
    expect(zero.code).toBe(0);
    expect(zero.stderr).not.toContain('finetuning epoch');
    const negative = await run(...learn, '--finetune-epochs=-1', '--out', path.join(tmp, 'y'));
    expect(negative.stderr).toContain("--finetune-epochs expects an integer ≥ 0, got '-1'");
    const noEpochs = await run(...learn, '--epochs', '0', '--out', path.join(tmp, 'z'));
    expect(noEpochs.stderr).toContain("--epochs expects a positive integer, got '0'");
  });
});
