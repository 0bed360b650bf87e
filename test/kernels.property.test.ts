import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { createReferenceKernels, gelu } from '../src/kernels/reference.js';
import type { Kernels } from '../src/kernels/types.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm.js';
import { zeroTPruneKernels } from '../src/prune/zero-tprune-kernels.js';

// Both wasm builds against the reference kernels on random shapes and values. Large arrays are
// filled from a seeded generator (fast-check draws the seed, shapes and magnitudes), so a failing
// case shrinks to small shapes and replays exactly. Tolerances scale with the length K of the
// sums involved: f32 accumulation errors grow like √K times the magnitude of the terms.

const reference = createReferenceKernels();
const oracle = zeroTPruneKernels(reference);

/** Uniform floats in [-1, 1) from a 32-bit seed (mulberry32). */
function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

function randomArray(length: number, next: () => number, magnitude = 1, offset = 0): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = offset + magnitude * next();
  return a;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Fails with the worst element when |actual − expected| > tolerance anywhere. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstError = 0;
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    if (!(error <= worstError)) {
      // also catches NaN
      worst = i;
      worstError = error;
    }
  }
  if (worst >= 0 && !(worstError <= tolerance)) {
    expect.fail(`${what}[${worst}] = ${actual[worst]}, expected ${expected[worst]} (error ${worstError} > ${tolerance})`);
  }
}

const GUARD = 8; // floats checked on each side of an output
const SENTINEL = 12345.5;

/**
 * A `length`-float buffer of the backend starting `misalign` floats past a 16-byte boundary,
 * between guard floats that a kernel must not touch.
 */
function guardedBuffer(kernels: Kernels, data: Float32Array, misalign: number): Float32Array {
  const whole = kernels.alloc(misalign + GUARD + data.length + GUARD);
  whole.fill(SENTINEL);
  const buf = whole.subarray(misalign + GUARD, misalign + GUARD + data.length);
  buf.set(data);
  return buf;
}

function expectGuardsIntact(buf: Float32Array): void {
  const around = new Float32Array(buf.buffer, buf.byteOffset - 4 * GUARD, buf.length + 2 * GUARD);
  for (let i = 0; i < GUARD; i++) {
    expect(around[i]).toBe(SENTINEL);
    expect(around[GUARD + buf.length + i]).toBe(SENTINEL);
  }
}

const seed = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const misalign = fc.integer({ min: 0, max: 3 });

describe.each(['relaxed', 'simd'] as const)('wasm-%s kernels match the reference', (variant) => {
  let kernels: WasmKernels;
  beforeEach(async () => {
    kernels = await createWasmKernels({ variant }); // a fresh memory per test
  });

  it('picks the requested build', () => {
    expect(kernels.variant).toBe(variant);
    expect(kernels.name).toBe(`wasm-${variant}`);
  });

  describe.each(['linear', 'linearAdd', 'linearGelu'] as const)('%s', (op) => {
    it('matches on any M, N, K (edge tiles included), within 1e-5·√K·scale', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 200 }), // m
          fc.integer({ min: 1, max: 100 }), // n
          fc.integer({ min: 1, max: 1536 }), // k
          fc.constantFrom(0.01, 1, 10), // magnitude of x and W (of the bias: its square)
          seed,
          misalign,
          (m, n, k, magnitude, s, shift) => {
            const next = uniform(s);
            const lin = {
              weight: randomArray(n * k, next, magnitude),
              bias: randomArray(n, next, magnitude * magnitude),
              outFeatures: n,
              inFeatures: k,
            };
            const x = randomArray(m * k, next, magnitude);
            const initial = randomArray(m * n, next, magnitude * magnitude * Math.sqrt(k));
            const expected = Float32Array.from(initial);
            reference[op](x, m, reference.prepareLinear(lin), expected);

            const out = guardedBuffer(kernels, initial, shift);
            kernels[op](guardedBuffer(kernels, x, (shift + 1) % 4), m, kernels.prepareLinear(lin), out);
            const scale = magnitude * magnitude;
            expectClose(out, expected, 1e-5 * Math.sqrt(k) * scale + 1e-6 * maxAbs(expected), op);
            expectGuardsIntact(out);
          },
        ),
        {
          numRuns: 60,
          // DeiT-S-like rows; 1 column; K at and around the 128-product chunks of the sums, the
          // 12- and 8-column panels and the 3- and 4-row tiles (full, partial and edge)
          examples: [
            [197, 100, 384, 1, 1, 0],
            [4, 8, 1, 1, 2, 0],
            [1, 1, 1536, 10, 3, 1],
            [5, 24, 128, 1, 4, 2],
            [3, 13, 129, 1, 5, 3],
            [2, 12, 257, 10, 6, 1],
            [7, 36, 768, 0.01, 7, 0],
          ],
        },
      );
    });
  });

  it('layerNorm matches on any m, d (also with a large mean)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }), // m
        fc.integer({ min: 1, max: 1100 }), // d
        fc.constantFrom(0, 3, -20), // offset of the values: mean ≠ 0 tests the centring
        fc.constantFrom(1e-6, 1e-5), // eps
        seed,
        misalign,
        (m, d, offset, eps, s, shift) => {
          const next = uniform(s);
          const x = randomArray(m * d, next, 1, offset);
          const gamma = randomArray(d, next, 2);
          const beta = randomArray(d, next);
          const expected = new Float32Array(m * d);
          reference.layerNorm(x, m, d, gamma, beta, eps, expected);

          const out = guardedBuffer(kernels, new Float32Array(m * d), shift);
          kernels.layerNorm(kernels.upload(x), m, d, kernels.upload(gamma), kernels.upload(beta), eps, out);
          // f32 rounding of the mean and of x − mean is ≈ 2⁻²⁴·|x|·√d, amplified by 1/std of the row
          let condition = 0; // max over rows of max|x| / √(var + eps)
          for (let r = 0; r < m; r++) {
            const row = x.subarray(r * d, (r + 1) * d);
            const mean = row.reduce((a, v) => a + v, 0) / d;
            const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / d;
            condition = Math.max(condition, maxAbs(row) / Math.sqrt(variance + eps));
          }
          const tolerance = 4e-7 * condition * Math.sqrt(d) * maxAbs(gamma) + 1e-6 * maxAbs(beta);
          expectClose(out, expected, tolerance, 'layerNorm');
          expectGuardsIntact(out);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('im2col copies the same values as the reference for any channels, patch size and grid; nothing outside the output', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }), // channels
        fc.integer({ min: 1, max: 11 }), // patch size (below, at and above a 16-byte row)
        fc.integer({ min: 1, max: 5 }), // patches per side
        seed,
        misalign,
        (C, P, side, s, shift) => {
          const S = P * side;
          const image = randomArray(C * S * S, uniform(s));
          const expected = new Float32Array(C * S * S);
          reference.im2col(image, C, S, P, expected);
          const out = guardedBuffer(kernels, new Float32Array(C * S * S), shift);
          kernels.im2col(guardedBuffer(kernels, image, (shift + 1) % 4), C, S, P, out);
          expect(Array.from(out)).toEqual(Array.from(expected));
          expectGuardsIntact(out);
          // the reference is the definition: out[p, (c, y, x)] = image[c, py·P + y, px·P + x]
          const p = Math.floor(s % (side * side));
          const [c, y, x] = [s % C, s % P, Math.floor(s / 8) % P];
          const [py, px] = [Math.floor(p / side), p % side];
          expect(expected[p * C * P * P + (c * P + y) * P + x]).toBe(image[c * S * S + (py * P + y) * S + px * P + x]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('softmax matches on any rows, cols and rows sum to 1', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }), // rows
        fc.integer({ min: 1, max: 300 }), // cols
        fc.constantFrom(0.1, 5, 100), // logit magnitude
        seed,
        misalign,
        (rows, cols, magnitude, s, shift) => {
          const x = randomArray(rows * cols, uniform(s), magnitude);
          const expected = Float32Array.from(x);
          reference.softmax(expected, rows, cols);

          const buf = guardedBuffer(kernels, x, shift);
          kernels.softmax(buf, rows, cols);
          expectClose(buf, expected, 1e-6, 'softmax');
          expectGuardsIntact(buf);
          for (let r = 0; r < rows; r++) {
            let sum = 0;
            for (let c = 0; c < cols; c++) sum += buf[r * cols + c];
            expect(Math.abs(sum - 1)).toBeLessThanOrEqual(2e-6);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gelu is within 1e-6 of the float64 GELU for any finite float (any length)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.float({ noNaN: true, noDefaultInfinity: true }), fc.float({ min: -12, max: 12, noNaN: true })), { maxLength: 70 }),
        misalign,
        (values, shift) => {
          const x = Float32Array.from(values);
          const buf = guardedBuffer(kernels, x, shift);
          kernels.gelu(buf, x.length);
          expectClose(buf, Array.from(x, gelu), 1e-6, 'gelu');
          expectGuardsIntact(buf);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('gelu is within 1e-6 of the float64 GELU on a dense sweep of [-12, 12] and at large |x|', () => {
    const sweep = Float32Array.from({ length: 240_001 }, (_, i) => (i - 120_000) * 1e-4);
    const large = Float32Array.from([1e3, -1e3, 3e38, -3e38, 87.5, -87.5, 6.5, -6.5, 1e-30, -1e-30]);
    for (const x of [sweep, large]) {
      const buf = kernels.upload(x);
      kernels.gelu(buf, x.length);
      expectClose(buf, Array.from(x, gelu), 1e-6, 'gelu');
    }
  });

  it('attention matches for n = 1…200, any head widths, with and without logSizes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }), // n
        fc.integer({ min: 1, max: 3 }), // heads
        fc.integer({ min: 1, max: 72 }), // qkDim
        fc.integer({ min: 1, max: 72 }), // vDim
        fc.double({ min: 0.05, max: 1, noNaN: true }), // scale
        fc.constantFrom(0.5, 2), // magnitude of q, k, v
        fc.boolean(), // with logSizes
        seed,
        (n, heads, qkDim, vDim, scale, magnitude, withSizes, s) => {
          const next = uniform(s);
          const stride = 2 * heads * qkDim + heads * vDim;
          const qkv = randomArray(n * stride, next, magnitude);
          const logSizes = withSizes ? Float32Array.from({ length: n }, () => Math.log(1 + 10 * (next() + 1))) : null;
          const expectedProbs = new Float32Array(heads * n * n);
          const expectedOut = new Float32Array(n * heads * vDim);
          reference.attention(qkv, n, heads, qkDim, vDim, scale, logSizes, expectedProbs, expectedOut);

          const probs = guardedBuffer(kernels, new Float32Array(heads * n * n), 0);
          const out = guardedBuffer(kernels, new Float32Array(n * heads * vDim), 1);
          kernels.attention(kernels.upload(qkv), n, heads, qkDim, vDim, scale, logSizes && kernels.upload(logSizes), probs, out);
          // a logit error δ moves a probability by at most ≈ δ; δ ≈ 1e-6·√qkDim·scale·magnitude²
          const logitTolerance = 1e-6 * Math.sqrt(qkDim) * scale * magnitude * magnitude;
          expectClose(probs, expectedProbs, 1e-6 + logitTolerance, 'probs');
          expectClose(out, expectedOut, (1e-6 + logitTolerance) * Math.sqrt(n) * magnitude, 'out');
          expectGuardsIntact(probs);
          expectGuardsIntact(out);
        },
      ),
      {
        numRuns: 80,
        examples: [
          [197, 2, 64, 64, 0.125, 2, true, 5],
          [1, 1, 1, 1, 1, 0.5, false, 6],
        ],
      },
    );
  });

  // ---- Zero-TPrune's kernels (prune/zero-tprune-kernels.ts): bit-identical to the TypeScript oracles, on any shape ----

  it('restrictGraph is bit-identical for any n, subset and row masses (zero rows → uniform)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }), // n
        fc.double({ min: 0, max: 1, noNaN: true }), // share of tokens alive
        fc.constantFrom(0, 0.2), // share of rows set to zero
        seed,
        misalign,
        (n, share, zeroRows, s, shift) => {
          const next = uniform(s);
          const P = stochastic(n, next);
          for (let q = 0; q < n; q++) if (next() * 0.5 + 0.5 < zeroRows) P.fill(0, q * n, (q + 1) * n);
          const alive = Int32Array.from(subset(n, share, next));
          const c = alive.length;
          const expected = new Float32Array(c * c);
          oracle.restrictGraph(P, n, alive, c, expected);

          const out = guardedBuffer(kernels, new Float32Array(c * c), shift);
          const wasmAlive = zeroTPruneKernels(kernels).allocInt32(c);
          wasmAlive.set(alive);
          zeroTPruneKernels(kernels).restrictGraph(guardedBuffer(kernels, P, (shift + 1) % 4), n, wasmAlive, c, out);
          expectBitIdentical(out, expected, 'restrictGraph');
          expectGuardsIntact(out);
        },
      ),
      {
        numRuns: 150,
        examples: [
          [197, 0.87, 0, 1, 0],
          [1, 1, 0, 2, 1],
          [5, 1, 0.2, 3, 3],
        ],
      },
    );
  });

  it('weightedPageRank is bit-identical for any n, iterations, start and tolerance', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }), // n
        fc.integer({ min: 0, max: 35 }), // iterations
        fc.constantFrom(0, 1e-9, 1e-4), // tolerance
        fc.boolean(), // a signed start (not a distribution)
        seed,
        (n, iterations, tolerance, signed, s) => {
          const next = uniform(s);
          const P = stochastic(n, next);
          const start = Float64Array.from({ length: n }, () => (signed ? next() : next() * 0.5 + 0.5) / n);
          const expected = Float64Array.from(start);
          const steps = oracle.weightedPageRank(P, n, expected, iterations, new Float64Array(n), tolerance);

          const sBuf = zeroTPruneKernels(kernels).allocFloat64(n);
          sBuf.set(start);
          const scratch = zeroTPruneKernels(kernels).allocFloat64(n);
          expect(zeroTPruneKernels(kernels).weightedPageRank(kernels.upload(P), n, sBuf, iterations, scratch, tolerance)).toBe(steps);
          expectBitIdentical(sBuf, expected, 'weightedPageRank');
        },
      ),
      {
        numRuns: 150,
        examples: [
          [171, 30, 0, false, 1],
          [1, 3, 0, false, 2],
          [197, 50, 1e-9, false, 3],
        ],
      },
    );
  });

  it('maxCosine is bit-identical for any m, |B|, width, row layout and zero rows; writes only A entries of best', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 120 }), // m
        fc.double({ min: 0, max: 1, noNaN: true }), // |B| share of m
        fc.integer({ min: 1, max: 400 }), // dim
        fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constant(384)), // row padding: stride = dim + pad
        fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant(192)), // offset of the first row
        fc.boolean(), // some zero rows
        seed,
        (m, bShare, dim, pad, offset, zeros, s) => {
          const next = uniform(s);
          const tokens = m + 3; // a few tokens outside `order`
          const stride = dim + pad;
          const features = randomArray(offset + tokens * stride, next);
          if (zeros) for (let t = 0; t < tokens; t += 3) features.fill(0, offset + t * stride, offset + t * stride + dim);
          const order = Int32Array.from(shuffled(tokens, next).slice(0, m));
          const bCount = Math.min(m, Math.round(bShare * m));
          const expected = new Float64Array(tokens).fill(-7);
          oracle.maxCosine(features, offset, stride, dim, order, m, bCount, new Float64Array((m + 4) * dim), expected);

          const best = zeroTPruneKernels(kernels).allocFloat64(tokens);
          best.fill(-7);
          const wasmOrder = zeroTPruneKernels(kernels).allocInt32(m);
          wasmOrder.set(order);
          zeroTPruneKernels(kernels).maxCosine(
            kernels.upload(features),
            offset,
            stride,
            dim,
            wasmOrder,
            m,
            bCount,
            zeroTPruneKernels(kernels).allocFloat64((m + 4) * dim),
            best,
          );
          expectBitIdentical(best, expected, 'maxCosine');
        },
      ),
      // DeiT-T's keys inside qkv rows (dim 192, stride 576, offset 192), m = 196; |B| = 0 (max over nothing)
      {
        numRuns: 120,
        examples: [
          [196, 0.5, 192, 384, 192, false, 1],
          [151, 0.5, 384, 384, 192, true, 2],
          [3, 0, 5, 0, 0, true, 3],
        ],
      },
    );
  });
});

/** A [n, n] row-stochastic float32 matrix (softmax of random logits, like attention). */
function stochastic(n: number, next: () => number): Float32Array {
  const P = randomArray(n * n, next, 4);
  reference.softmax(P, n, n);
  return P;
}

/** Ascending indices of a random subset of 0..n−1 of about share·n (at least one). */
function subset(n: number, share: number, next: () => number): number[] {
  const picked = Array.from({ length: n }, (_, i) => i).filter(() => next() * 0.5 + 0.5 < share);
  return picked.length ? picked : [0];
}

function shuffled(n: number, next: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor((next() * 0.5 + 0.5) * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Fails at the first element whose bits differ (Object.is: also tells 0 from −0, NaN equals NaN). */
function expectBitIdentical(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) expect.fail(`${what}[${i}] = ${actual[i]}, expected exactly ${expected[i]}`);
  }
}
