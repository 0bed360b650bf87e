import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createReference64Kernels, createReferenceKernels, gelu } from '../src/kernels/reference.js';
import type { Kernels } from '../src/kernels/types.js';
import { createWasmKernels } from '../src/kernels/wasm.js';
import { configFromDims, randomModel, seededRandom } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';

// reference64 is the float64 oracle of trace bundles. First: it really keeps float64 (values
// float32 cannot hold survive every kernel). Then the float32 paths — the f32 reference and both
// wasm builds — are held to it on random shapes, element by element, within bounds that scale
// with the length K of each sum: f32 rounding in a sum of K terms t_k grows like ε·√K·‖t‖₂
// (ε = 2⁻²⁴), plus one rounding of the result.

const EPS = 2 ** -24;
const SMALLEST_NORMAL = 2 ** -126;

/**
 * GELU is approximated by the wasm build (assembly/gelu.ts: absolute error ≤ 2.5e-7, and
 * relative ≈ 6e-6 near 0 where its rational's leading coefficient is 0.5000032): the error a
 * GELU evaluation may add at pre-activation z, on top of the roundings.
 */
function geluApproximation(z: number): number {
  return Math.min(2.5e-7, 1e-5 * Math.abs(z));
}
const oracle = createReference64Kernels();

/** `length` floats in [-magnitude, magnitude), float32 values, from a seeded generator. */
function randomFloats(length: number, rand: () => number, magnitude = 1): Float32Array {
  return Float32Array.from({ length }, () => magnitude * (2 * rand() - 1));
}

/** Fails at the element with the largest error relative to its own tolerance, if that exceeds 1. */
function expectWithin(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: ArrayLike<number>, what: string): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstRatio = 1;
  for (let i = 0; i < actual.length; i++) {
    const ratio = Math.abs(actual[i] - expected[i]) / tolerance[i];
    if (!(ratio <= worstRatio)) {
      worst = i;
      worstRatio = ratio;
    }
  }
  if (worst >= 0)
    expect.fail(`${what}[${worst}] = ${actual[worst]}, expected ${expected[worst]} ± ${tolerance[worst]} (${worstRatio.toFixed(1)}× the tolerance)`);
}

/** The oracle's result of `run` on buffers of the oracle (float64 copies of the inputs). */
function onOracle(length: number, run: (out: Float64Array) => void): Float64Array {
  const out = oracle.alloc(length);
  run(out);
  return out;
}

describe('reference64 keeps float64', () => {
  it('allocates float64 buffers and keeps sums float32 would round', () => {
    expect(oracle.name).toBe('reference64');
    expect(oracle.alloc(3)).toBeInstanceOf(Float64Array);
    const tiny = 2 ** -30; // 1 + 2⁻³⁰ is 1 in float32
    const lin = oracle.prepareLinear({ weight: Float32Array.from([1, 1]), bias: Float32Array.from([0]), outFeatures: 1, inFeatures: 2 });
    const out = oracle.alloc(1);
    oracle.linear(oracle.upload(Float32Array.from([1, tiny])), 1, lin, out);
    expect(out[0]).toBe(1 + tiny);
    oracle.linearAdd(oracle.upload(Float32Array.from([tiny, 0])), 1, lin, out);
    expect(out[0]).toBe(1 + 2 * tiny);
  });

  it('runs a whole model: observed tensors are float64, logits within float32 rounding of the f32 reference', () => {
    const cfg = configFromDims({ dim: 24, depth: 3, heads: 3, imageSize: 16, patchSize: 4, numClasses: 10 }, 'tiny');
    const model = randomModel(cfg, 11);
    const input = randomFloats(3 * 16 * 16, seededRandom(5), 2);
    let notFloat32 = 0;
    const logits64 = new ViTRunner(model, oracle).forward(input, {
      observe(block, name, data) {
        expect(data).toBeInstanceOf(Float64Array);
        if (name === 'attn.probs') for (const p of data) if (Math.fround(p) !== p) notFloat32++;
      },
    });
    expect(notFloat32).toBeGreaterThan(0);
    const logits32 = new ViTRunner(model, createReferenceKernels()).forward(input).logits;
    const scale = Math.max(...Array.from(logits32, Math.abs));
    for (let i = 0; i < cfg.numClasses; i++) expect(Math.abs(logits32[i] - logits64.logits[i])).toBeLessThan(1e-5 * scale);
  });
});

const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

const BACKENDS: [string, () => Promise<Kernels>][] = [
  ['reference', async () => createReferenceKernels()],
  ['wasm-relaxed', () => createWasmKernels({ variant: 'relaxed' })],
  ['wasm-simd', () => createWasmKernels({ variant: 'simd' })],
];

describe.each(BACKENDS)('%s kernels against reference64, tolerances scaled to K', (_, create) => {
  describe.each(['linear', 'linearAdd', 'linearGelu'] as const)('%s', (op) => {
    it('within 4ε·√K·‖x_t·w_t‖₂ (+ one rounding) of the float64 result', async () => {
      const kernels = await create();
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 40 }),
          fc.integer({ min: 1, max: 40 }),
          fc.integer({ min: 1, max: 1536 }),
          fc.constantFrom(0.01, 1, 10),
          seed,
          (m, n, k, magnitude, s) => {
            const rand = seededRandom(s);
            const lin = { weight: randomFloats(n * k, rand, magnitude), bias: randomFloats(n, rand, magnitude), outFeatures: n, inFeatures: k };
            const x = randomFloats(m * k, rand, magnitude);
            const initial = randomFloats(m * n, rand, magnitude * magnitude * Math.sqrt(k));
            const expected = onOracle(m * n, (out) => {
              out.set(initial);
              oracle[op](oracle.upload(x), m, oracle.prepareLinear(lin), out);
            });
            const out = kernels.upload(initial);
            kernels[op](kernels.upload(x), m, kernels.prepareLinear(lin), out);

            const tolerance = new Float64Array(m * n);
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < n; j++) {
                let z = lin.bias[j]; // the pre-activation
                let squares = lin.bias[j] ** 2;
                for (let t = 0; t < k; t++) {
                  z += x[i * k + t] * lin.weight[j * k + t];
                  squares += (x[i * k + t] * lin.weight[j * k + t]) ** 2;
                }
                const accumulated = op === 'linearAdd' ? Math.abs(initial[i * n + j]) : 0;
                const sum = 4 * EPS * Math.sqrt(k) * Math.sqrt(squares);
                // GELU's slope is at most 1.13
                const activation = op === 'linearGelu' ? 0.13 * sum + geluApproximation(z) : 0;
                tolerance[i * n + j] = sum + activation + 2 * EPS * (Math.abs(expected[i * n + j]) + accumulated) + SMALLEST_NORMAL;
              }
            }
            expectWithin(out, expected, tolerance, op);
          },
        ),
        {
          numRuns: 40,
          examples: [
            [4, 8, 1, 1, 2],
            [3, 13, 129, 1, 5],
            [2, 12, 768, 10, 6],
          ],
        },
      );
    });
  });

  it('layerNorm within 8ε·√d·max|x|/σ·|γ| (+ one rounding), also with a large mean', async () => {
    const kernels = await create();
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 1100 }), fc.constantFrom(0, 3, -20), seed, (m, d, offset, s) => {
        const rand = seededRandom(s);
        const x = Float32Array.from(randomFloats(m * d, rand), (v) => v + offset);
        const gamma = randomFloats(d, rand, 2);
        const beta = randomFloats(d, rand);
        const eps = 1e-6;
        const expected = onOracle(m * d, (out) => oracle.layerNorm(oracle.upload(x), m, d, oracle.upload(gamma), oracle.upload(beta), eps, out));
        const out = kernels.alloc(m * d);
        kernels.layerNorm(kernels.upload(x), m, d, kernels.upload(gamma), kernels.upload(beta), eps, out);

        const tolerance = new Float64Array(m * d);
        for (let r = 0; r < m; r++) {
          const row = Array.from(x.subarray(r * d, (r + 1) * d));
          const mean = row.reduce((a, v) => a + v, 0) / d;
          const sigma = Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / d + eps);
          const condition = Math.max(...row.map(Math.abs)) / sigma;
          for (let j = 0; j < d; j++)
            tolerance[r * d + j] =
              8 * EPS * Math.sqrt(d) * condition * Math.abs(gamma[j]) + 2 * EPS * (Math.abs(expected[r * d + j]) + Math.abs(beta[j])) + SMALLEST_NORMAL;
        }
        expectWithin(out, expected, tolerance, 'layerNorm');
      }),
      { numRuns: 60 },
    );
  });

  it('softmax within ε·p·(8√K + 4|x − max|) of the float64 probabilities', async () => {
    const kernels = await create();
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 400 }), fc.constantFrom(0.1, 5, 30), seed, (rows, cols, magnitude, s) => {
        const x = randomFloats(rows * cols, seededRandom(s), magnitude);
        const expected = onOracle(rows * cols, (out) => {
          out.set(x);
          oracle.softmax(out, rows, cols);
        });
        const buffer = kernels.upload(x);
        kernels.softmax(buffer, rows, cols);
        const tolerance = softmaxTolerance(x, expected, rows, cols, () => 0);
        expectWithin(buffer, expected, tolerance, 'softmax');
      }),
      { numRuns: 150 },
    );
  });

  it('gelu within 4ε·(|GELU(x)| + |x|) of the float64 GELU, plus the wasm approximation', async () => {
    const kernels = await create();
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.float({ noNaN: true, noDefaultInfinity: true }), fc.float({ min: -12, max: 12, noNaN: true })), { minLength: 1, maxLength: 70 }),
        (values) => {
          const x = Float32Array.from(values);
          const expected = Float64Array.from(x, gelu);
          const buffer = kernels.upload(x);
          kernels.gelu(buffer, x.length);
          const tolerance = Float64Array.from(x, (v, i) => 4 * EPS * (Math.abs(expected[i]) + Math.abs(v)) + geluApproximation(v) + 2 ** -149);
          expectWithin(buffer, expected, tolerance, 'gelu');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('attention: probabilities and outputs within the logit errors (K = qkDim) carried through softmax and P·V (K = n)', async () => {
    const kernels = await create();
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 72 }),
        fc.integer({ min: 1, max: 72 }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        fc.constantFrom(0.5, 2),
        fc.boolean(),
        seed,
        (n, heads, qkDim, vDim, scale, magnitude, withSizes, s) => {
          const rand = seededRandom(s);
          const stride = 2 * heads * qkDim + heads * vDim;
          const qkv = randomFloats(n * stride, rand, magnitude);
          const logSizes = withSizes ? Float32Array.from({ length: n }, () => Math.log(1 + 10 * rand())) : null;
          const probs64 = oracle.alloc(heads * n * n);
          const out64 = onOracle(n * heads * vDim, (out) =>
            oracle.attention(oracle.upload(qkv), n, heads, qkDim, vDim, scale, logSizes && oracle.upload(logSizes), probs64, out),
          );
          const probs = kernels.alloc(heads * n * n);
          const out = kernels.alloc(n * heads * vDim);
          kernels.attention(kernels.upload(qkv), n, heads, qkDim, vDim, scale, logSizes && kernels.upload(logSizes), probs, out);

          const probsTolerance = new Float64Array(heads * n * n);
          const outTolerance = new Float64Array(n * heads * vDim);
          for (let h = 0; h < heads; h++) {
            // logits l[q, k] = scale·Q_h[q]·K_h[k] (+ log size), and the bound on each one's f32 error
            const logits = new Float64Array(n * n);
            const logitError = new Float64Array(n * n);
            for (let q = 0; q < n; q++) {
              for (let k = 0; k < n; k++) {
                let dot = 0;
                let squares = 0;
                for (let c = 0; c < qkDim; c++) {
                  const t = qkv[q * stride + h * qkDim + c] * qkv[k * stride + (heads + h) * qkDim + c];
                  dot += t;
                  squares += t * t;
                }
                logits[q * n + k] = scale * dot + (logSizes ? logSizes[k] : 0);
                logitError[q * n + k] = 4 * EPS * Math.sqrt(qkDim) * scale * Math.sqrt(squares) + 2 * EPS * Math.abs(logits[q * n + k]);
              }
            }
            const p = probs64.subarray(h * n * n, (h + 1) * n * n);
            // an error δ_k in every logit of a row moves p_k by at most p_k·(δ_k + max δ)
            const tolerance = softmaxTolerance(logits, p, n, n, (q) => 2 * Math.max(...logitError.subarray(q * n, (q + 1) * n)));
            probsTolerance.set(tolerance, h * n * n);
            for (let q = 0; q < n; q++) {
              for (let c = 0; c < vDim; c++) {
                let carried = 0;
                let squares = 0;
                for (let k = 0; k < n; k++) {
                  const v = qkv[k * stride + 2 * heads * qkDim + h * vDim + c];
                  carried += tolerance[q * n + k] * Math.abs(v);
                  squares += (p[q * n + k] * v) ** 2;
                }
                const i = q * heads * vDim + h * vDim + c;
                outTolerance[i] = carried + 4 * EPS * Math.sqrt(n) * Math.sqrt(squares) + 2 * EPS * Math.abs(out64[i]) + SMALLEST_NORMAL;
              }
            }
          }
          expectWithin(probs, probs64, probsTolerance, 'probs');
          expectWithin(out, out64, outTolerance, 'out');
        },
      ),
      {
        numRuns: 40,
        examples: [
          [120, 2, 64, 64, 0.125, 2, true, 5],
          [1, 1, 1, 1, 1, 0.5, false, 6],
        ],
      },
    );
  });
});

/**
 * Bounds on softmax's f32 errors, row by row of x [rows, cols] with float64 result p: exp of
 * x − max (rounding ∝ |x − max|), a sum of K = cols terms, a division; plus `inputError(row)`
 * times p for errors already in the row's inputs.
 */
function softmaxTolerance(x: ArrayLike<number>, p: ArrayLike<number>, rows: number, cols: number, inputError: (row: number) => number): Float64Array {
  const tolerance = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[r * cols + c]);
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      tolerance[i] = p[i] * (EPS * (8 * Math.sqrt(cols) + 4 * Math.abs(x[i] - max)) + inputError(r)) + SMALLEST_NORMAL;
    }
  }
  return tolerance;
}
