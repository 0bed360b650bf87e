import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChannelGates } from '../src/grad/channel-gates.js';
import { distillationLoss } from '../src/grad/distillation.js';
import { createReferenceGradKernels } from '../src/grad/reference.js';
import { SoftMaskedViT, type SoftPruning } from '../src/grad/soft-vit.js';
import type { ScoreUnit } from '../src/grad/token-masks.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import type { ViTConfig, ViTModel } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import type { BlockTokens } from '../src/model/gmacs.js';
import { ltpHooks } from '../src/prune/ltp.js';
import { dot, expectGradient, finiteDifferences, randomFloat64, sampleIndices, uniform } from './grad-check.js';

// The whole soft-masked model (soft-vit.ts) on tiny random ViTs: it is the dense forward when
// nothing is pruned, the hard LTP forward when masks are 0/1, and its gradients match central
// finite differences in float64 (relative error ≤ 1e-4) for thresholds, channel gates and the
// embedded tokens, under a loss of KL to the dense model plus a weighted sum of soft token counts.

type Variant = 'plain' | 'distilled' | 'channel-pruned';

/** 12×12 images in 4×4 patches: 9 patches + prefix tokens, 3 blocks of width 8 with 2 heads, 7 classes. */
function tinyModel(variant: Variant, seed: number): ViTModel {
  const cfg: ViTConfig = configFromDims({ dim: 8, depth: 3, heads: 2, imageSize: 12, patchSize: 4, numClasses: 7, distilled: variant === 'distilled' });
  if (variant === 'channel-pruned')
    cfg.blockWidths = [
      { qkDim: 4, vDim: 4 },
      { qkDim: 2, vDim: 3 },
      { qkDim: 3, vDim: 1 },
    ];
  return randomModel(cfg, seed);
}

function randomImage(cfg: ViTConfig, next: () => number): Float32Array {
  return Float32Array.from({ length: cfg.inChannels * cfg.imageSize * cfg.imageSize }, () => next());
}

const reference32 = createReferenceKernels();
const reference64 = createReferenceGradKernels('float64');
const seed = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const variant = fc.constantFrom<Variant>('plain', 'distilled', 'channel-pruned');
const unit = fc.constantFrom<ScoreUnit>('mean', 'absolute');

/** θ per block in the unit's scale: block 0 never prunes; the others around the mean score. */
function thresholdsAround(cfg: ViTConfig, n: number, u: ScoreUnit, next: () => number): number[] {
  const mean = u === 'mean' ? 1 : 1 / n;
  return Array.from({ length: cfg.depth }, (_, b) => (b === 0 ? NaN : mean * (0.6 + (0.6 * (next() + 1)) / 2)));
}

function pruningOf(theta: ArrayLike<number>, temperature: number, u: ScoreUnit, gates?: (ChannelGates | null)[]): SoftPruning {
  return {
    thresholds: Array.from(theta, (t) => (Number.isNaN(t) ? null : { theta: t, temperature, unit: u })),
    gates,
  };
}

describe('the soft-masked ViT', () => {
  it('is the dense forward when nothing is pruned', () => {
    fc.assert(
      fc.property(variant, seed, (v, s) => {
        const model = tinyModel(v, s);
        const runner = new ViTRunner(model, reference32);
        const soft = new SoftMaskedViT(model, reference64);
        const input = randomImage(model.config, uniform(s));
        const dense = runner.forward(input);
        const result = soft.forward(runner.embed(input));
        const scale = Math.max(...dense.logits.map(Math.abs));
        expect(Math.max(...result.logits.map((l, i) => Math.abs(l - dense.logits[i])))).toBeLessThan(1e-5 * scale);
        expect(result.tokens).toEqual(dense.tokens);
      }),
      { numRuns: 15 },
    );
  });

  it('is the hard LTP forward (ltpHooks) when the masks are 0 or 1 (T = 1e-12)', () => {
    fc.assert(
      fc.property(variant, unit, seed, (v, u, s) => {
        const model = tinyModel(v, s);
        const next = uniform(s);
        const runner = new ViTRunner(model, reference32);
        const soft = new SoftMaskedViT(model, reference64);
        const input = randomImage(model.config, next);
        const n = soft.tokens;
        const theta = thresholdsAround(model.config, n, u, next);
        const hard = runner.forward(input, ltpHooks({ theta: theta.map((t) => (Number.isNaN(t) ? 0 : t)), unit: u }));
        const result = soft.forward(runner.embed(input), pruningOf(theta, 1e-12, u));
        const scale = Math.max(...hard.logits.map(Math.abs));
        expect(Math.max(...result.logits.map((l, i) => Math.abs(l - hard.logits[i])))).toBeLessThan(1e-5 * scale);
        expect(result.tokens.map((t) => ({ attention: Math.round(t.attention), mlp: Math.round(t.mlp) }))).toEqual(hard.tokens);
        result.tokens.forEach((t) => expect(t.mlp - Math.round(t.mlp)).toBeCloseTo(0, 9));
      }),
      { numRuns: 30 },
    );
  });

  it('has the gradients of central finite differences (θ, gates, embedded tokens; KL + token-count loss)', () => {
    fc.assert(
      fc.property(variant, unit, fc.constantFrom(0.03, 0.3, 3), fc.boolean(), seed, (v, u, temperature, gated, s) => {
        const model = tinyModel(v, s);
        const cfg = model.config;
        const next = uniform(s);
        const runner = new ViTRunner(model, reference32);
        const soft = new SoftMaskedViT(model, reference64);
        const n = soft.tokens;
        const embedded = Float64Array.from(runner.embed(randomImage(cfg, next)));
        const teacher = soft.forward(embedded).logits;
        const thresholdScale = temperature < 0.1 ? 1 : 0.1; // cold masks: spread θ so some saturate at 0 and 1
        const theta = thresholdsAround(cfg, n, u, () => next() * (1 + thresholdScale));
        const gates: (ChannelGates | null)[] | undefined = gated
          ? Array.from({ length: cfg.depth }, (_, b) => {
              const { qkDim, vDim } = cfg.blockWidths?.[b] ?? cfg;
              return b === 1 ? null : { qk: randomFloat64(cfg.heads * qkDim, next, 0.5, 0.5), v: randomFloat64(cfg.heads * vDim, next, 0.5, 0.5) };
            })
          : undefined;
        const countWeights: BlockTokens[] = Array.from({ length: cfg.depth }, () => ({ attention: 0.01 * next(), mlp: 0.01 * next() }));
        const loss = () => {
          const r = soft.forward(embedded, pruningOf(theta, temperature, u, gates));
          return (
            distillationLoss(teacher, r.logits).loss +
            r.tokens.reduce((sum, t, b) => sum + dot([countWeights[b].attention, countWeights[b].mlp], [t.attention, t.mlp]), 0)
          );
        };

        const result = soft.forward(embedded, pruningOf(theta, temperature, u, gates));
        const grads = soft.backward(distillationLoss(teacher, result.logits).dLogits, countWeights);
        const pruningBlocks = theta.flatMap((t, b) => (Number.isNaN(t) ? [] : [b]));
        expectGradient(
          pruningBlocks.map((b) => grads.theta[b]),
          finiteDifferences(loss, theta, pruningBlocks),
          1e-4,
          'dθ',
        );
        expect(grads.theta[0]).toBe(0);
        const some = sampleIndices(embedded.length, 40);
        expectGradient(
          some.map((i) => grads.embedded[i]),
          finiteDifferences(loss, embedded, some),
          1e-4,
          'd embedded',
        );
        gates?.forEach((g, b) => {
          if (!g) return expect(grads.gates[b]).toBeNull();
          expectGradient(grads.gates[b]!.qk!, finiteDifferences(loss, g.qk!), 1e-4, `block ${b} d g_qk`);
          expectGradient(grads.gates[b]!.v!, finiteDifferences(loss, g.v!), 1e-4, `block ${b} d g_v`);
        });
      }),
      { numRuns: 40 },
    );
  });
});
