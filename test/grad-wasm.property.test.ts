import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ChannelGates } from '../src/grad/channel-gates.js';
import { distillationLoss } from '../src/grad/distillation.js';
import { createReferenceGradKernels } from '../src/grad/reference.js';
import { SoftMaskedViT } from '../src/grad/soft-vit.js';
import type { GradKernels, Tensor } from '../src/grad/types.js';
import { createWasmGradKernels } from '../src/grad/wasm.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { createWasmKernels } from '../src/kernels/wasm.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { expectGradient, randomFloat64, uniform } from './grad-check.js';

// The wasm gradient kernels (float32) against the float64 reference ones, which the finite-
// difference checks validate. Float32 bounds, relative to the gradient's scale (grad-check.ts):
// 1e-5·√K for one product or row operation over K terms, 2e-3 for the whole model's gradients
// (a dozen layers of float32 rounding, amplified where softmaxes are sharp).

const reference = createReferenceGradKernels('float64');
const seed = fc.integer({ min: 0, max: 2 ** 32 - 1 });

/** `data` in a buffer of kernels `k`. */
function put(k: GradKernels, data: ArrayLike<number>): Tensor {
  return k.upload(data);
}

/**
 * max_j Σ_h,i P_hij·(|dP_hij| + Σ_k P_hik·|dP_hik|): the size of the terms of ∂L/∂keyBias_j =
 * Σ_h,i P_hij·(dP_hij − Σ_k P_hik·dP_hik). They cancel (for n = 2 the two components are equal and
 * opposite and can be 1e-4 of the terms), so float32 rounding is judged against them.
 */
function keyBiasTermScale(probs: ArrayLike<number>, dProbs: ArrayLike<number>, heads: number, n: number): number {
  const columns = new Float64Array(n);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      const row = (h * n + i) * n;
      let rowDot = 0;
      for (let k = 0; k < n; k++) rowDot += probs[row + k] * Math.abs(dProbs[row + k]);
      for (let j = 0; j < n; j++) columns[j] += probs[row + j] * (Math.abs(dProbs[row + j]) + rowDot);
    }
  }
  return Math.max(...columns);
}

describe.each(['relaxed', 'simd'] as const)('wasm-%s gradient kernels match the float64 reference', (variant) => {
  let k: GradKernels;
  beforeAll(async () => {
    k = createWasmGradKernels(await createWasmKernels({ variant }));
  });

  it('linearBackward (set and accumulate) on any shape', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 300 }),
        fc.boolean(),
        seed,
        (m, o, i, accumulate, s) => {
          const next = uniform(s);
          const lin = { weight: Float32Array.from(randomFloat64(o * i, next)), bias: Float32Array.from(randomFloat64(o, next)), outFeatures: o, inFeatures: i };
          const dy = Float32Array.from(randomFloat64(m * o, next));
          const initial = Float32Array.from(randomFloat64(m * i, next));
          const expected = put(reference, initial);
          reference.linearBackward(dy, m, reference.prepareLinear(lin), expected, accumulate);
          const dx = put(k, initial);
          k.linearBackward(put(k, dy), m, k.prepareLinear(lin), dx, accumulate);
          expectGradient(dx, expected, 1e-5 * Math.sqrt(o), 'linear dx');
        },
      ),
      { numRuns: 40 },
    );
  });

  // d ≥ 16: on rows of a few values the gradient is a near-total cancellation of O(|dy|) terms (for
  // d = 2, x̂ = ±1 whatever x), which float32 cannot resolve; float64 checks the algebra for every d.
  it('layerNormBackward accumulates on any m, d ≥ 16 (tails of 1–3 values included)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 16, max: 400 }), fc.constantFrom(0, 5), seed, (m, d, offset, s) => {
        const next = uniform(s);
        const norm = { weight: Float32Array.from(randomFloat64(d, next, 0.5, 1)), bias: Float32Array.from(randomFloat64(d, next)) };
        const x = Float32Array.from(randomFloat64(m * d, next, 2, offset));
        const dy = Float32Array.from(randomFloat64(m * d, next));
        const initial = Float32Array.from(randomFloat64(m * d, next));
        const expected = put(reference, initial);
        reference.layerNormBackward(x, m, d, reference.prepareNorm(norm), 1e-6, dy, expected);
        const dx = put(k, initial);
        k.layerNormBackward(put(k, x), m, d, k.prepareNorm(norm), 1e-6, put(k, dy), dx);
        // float32 centring of values around `offset` (σ ≈ 1) rounds at the scale of the offset
        expectGradient(dx, expected, 1e-5 * Math.sqrt(d) * (1 + offset), 'layerNorm dx');
      }),
      { numRuns: 60 },
    );
  });

  it('geluBackward within 3e-7 of GELU′ (relative to max(1, |x|)), in place too', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.constantFrom(1, 4, 12), seed, (length, magnitude, s) => {
        const next = uniform(s);
        const x = Float32Array.from(randomFloat64(length, next, magnitude));
        const ones = new Float32Array(length).fill(1);
        const expected = reference.alloc(length);
        reference.geluBackward(x, ones, length, expected);
        const dx = put(k, ones);
        k.geluBackward(put(k, x), dx, length, dx);
        for (let i = 0; i < length; i++) expect(Math.abs(dx[i] - expected[i])).toBeLessThan(3e-7 * Math.max(1, Math.abs(x[i])));
      }),
      { numRuns: 60, examples: [[4, 1, 0]] },
    );
  });

  it('attentionBackward on any n (edge tiles), heads and widths, with and without a key bias', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 70 }),
        fc.boolean(),
        seed,
        (n, heads, qkDim, vDim, biased, s) => {
          const next = uniform(s);
          const width = 2 * heads * qkDim + heads * vDim;
          const scale = 1 / Math.sqrt(qkDim);
          const qkv = Float32Array.from(randomFloat64(n * width, next));
          const keyBias = biased ? Float32Array.from(randomFloat64(n, next, 3, -3)) : null;
          const dOut = Float32Array.from(randomFloat64(n * heads * vDim, next));
          const dProbs = Float32Array.from(randomFloat64(heads * n * n, next, 0.1));
          // the same float32 P on both sides: the check is of the backward only
          const probs = k.alloc(heads * n * n);
          k.attention(put(k, qkv), n, heads, qkDim, vDim, scale, keyBias && put(k, keyBias), probs, k.alloc(n * heads * vDim));
          const expected = reference.alloc(n * width);
          const expectedBias = reference.alloc(n);
          reference.attentionBackward(qkv, n, heads, qkDim, vDim, scale, put(reference, probs), dOut, put(reference, dProbs), expected, expectedBias);
          const dqkv = k.alloc(n * width);
          const dKeyBias = k.alloc(n);
          k.attentionBackward(put(k, qkv), n, heads, qkDim, vDim, scale, probs, put(k, dOut), put(k, dProbs), dqkv, biased ? dKeyBias : null);
          expectGradient(dqkv, expected, 1e-5 * Math.sqrt(n * Math.max(qkDim, vDim)), 'attention dqkv');
          if (biased) expectGradient(dKeyBias, expectedBias, 1e-5 * Math.sqrt(n * heads), 'attention dKeyBias', keyBiasTermScale(probs, dProbs, heads, n));
        },
      ),
      {
        numRuns: 50,
        examples: [
          [197, 3, 64, 64, true, 1],
          [1, 1, 1, 1, false, 2],
          [2, 1, 7, 55, true, 3610189960], // dKeyBias cancels to 1e-4 of its terms (CI, stop 20)
        ],
      },
    );
  });

  it('the whole soft-masked model: logits, soft token counts and gradients (θ, gates, embedded tokens)', () => {
    fc.assert(
      fc.property(fc.constantFrom<'mean' | 'absolute'>('mean', 'absolute'), fc.boolean(), seed, (unit, distilled, s) => {
        const next = uniform(s);
        const model = randomModel(configFromDims({ dim: 48, depth: 4, heads: 3, imageSize: 48, patchSize: 8, numClasses: 30, distilled }), s);
        const cfg = model.config;
        const input = Float32Array.from({ length: 3 * 48 * 48 }, () => next());
        const embedded = new ViTRunner(model, createReferenceKernels()).embed(input);
        const mean = unit === 'mean' ? 1 : 1 / (cfg.distilled ? 38 : 37);
        const pruning = {
          thresholds: [null, ...[0.7, 0.9, 1.1].map((t) => ({ theta: t * mean, temperature: 0.2 * mean, unit }))],
          gates: Array.from({ length: cfg.depth }, (_, b): ChannelGates | null =>
            b % 2 ? null : { qk: randomFloat64(cfg.dim, next, 0.5, 0.5), v: randomFloat64(cfg.dim, next, 0.5, 0.5) },
          ),
        };
        const counts = Array.from({ length: cfg.depth }, () => ({ attention: 1e-3 * next(), mlp: 1e-3 * next() }));
        const run = (kernels: GradKernels) => {
          const soft = new SoftMaskedViT(model, kernels);
          const teacher = soft.forward(embedded).logits;
          const result = soft.forward(embedded, pruning);
          const grads = soft.backward(distillationLoss(teacher, result.logits).dLogits, counts);
          return { result, grads: { ...grads, embedded: Float64Array.from(grads.embedded) } };
        };
        const want = run(reference);
        const got = run(k);
        expectGradient(got.result.logits, want.result.logits, 1e-4, 'logits');
        expectGradient(
          got.result.tokens.map((t) => t.mlp),
          want.result.tokens.map((t) => t.mlp),
          1e-4,
          'soft token counts',
        );
        expectGradient(got.grads.theta, want.grads.theta, 2e-3, 'dθ');
        expectGradient(got.grads.embedded, want.grads.embedded, 2e-3, 'd embedded');
        got.grads.gates.forEach((g, b) => {
          if (!g) return;
          expectGradient(g.qk!, want.grads.gates[b]!.qk!, 2e-3, `block ${b} d g_qk`);
          expectGradient(g.v!, want.grads.gates[b]!.v!, 2e-3, `block ${b} d g_v`);
        });
      }),
      { numRuns: 6 },
    );
  });
});
