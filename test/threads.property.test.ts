import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../src/kernels/types.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm.js';
import { seededRandom } from '../src/model/random.js';

// Every forward-pass kernel gives the same bits on 2, 3 and 4 threads as on one, for random
// shapes large enough to be split over the threads (each case checks that the pool ran jobs).
// Shapes are drawn around the chunk boundaries: rows not a multiple of the 12-row tiles, columns
// not a multiple of the 12- or 8-column panels, one row, one column.

const THREADED_TIMEOUT = 120_000;

/** Uniform floats in [−magnitude, magnitude). */
function randomArray(length: number, next: () => number, magnitude = 1): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = magnitude * (2 * next() - 1);
  return a;
}

/** Fails at the first element whose bits differ. */
function expectSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  const a = new Uint32Array(Float32Array.from(actual).buffer);
  const e = new Uint32Array(Float32Array.from(expected).buffer);
  expect(a.length).toBe(e.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) expect.fail(`${what}[${i}] = ${actual[i]}, on one thread ${expected[i]}`);
  }
}

const seed = fc.integer({ min: 0, max: 2 ** 32 - 1 });

describe.each(['relaxed', 'simd'] as const)('wasm-%s: threads give the bits of one thread', (variant) => {
  let single: WasmKernels;
  const threaded: WasmKernels[] = [];
  beforeAll(async () => {
    single = await createWasmKernels({ variant });
    for (const threads of [2, 3, 4]) threaded.push(await createWasmKernels({ variant, threads }));
  }, THREADED_TIMEOUT);
  afterAll(async () => {
    await Promise.all(threaded.map((k) => k.dispose()));
  });

  /** Runs `compute` on one thread and on each pool; every output must have the bits of one thread's, and every pool must have run jobs. */
  function check(compute: (kernels: Kernels) => Float32Array[], what: string): void {
    const expected = compute(single);
    for (const kernels of threaded) {
      const jobs = kernels.pool!.jobs;
      const outputs = compute(kernels);
      expect(kernels.pool!.jobs, `${what} ran on ${kernels.threads} threads`).toBeGreaterThan(jobs);
      outputs.forEach((out, i) => expectSameBits(out, expected[i], `${what} (${kernels.threads} threads) output ${i}`));
    }
  }

  describe.each(['linear', 'linearAdd', 'linearGelu'] as const)('%s', (op) => {
    it(
      'on any M, N, K',
      () => {
        fc.assert(
          fc.property(
            fc.integer({ min: 1, max: 260 }), // m
            fc.integer({ min: 1, max: 700 }), // n
            fc.integer({ min: 16, max: 800 }), // k
            seed,
            (m, n, k, s) => {
              fc.pre(m * n * k >= 4 << 17); // enough work to be split over two threads or more
              const next = seededRandom(s);
              const lin = { weight: randomArray(n * k, next), bias: randomArray(n, next), outFeatures: n, inFeatures: k };
              const x = randomArray(m * k, next);
              const initial = randomArray(m * n, next, 5);
              check((kernels) => {
                const w = kernels.prepareLinear(lin);
                const xBuf = kernels.upload(x);
                const out = kernels.upload(initial);
                kernels[op](xBuf, m, w, out);
                const result = Float32Array.from(out);
                kernels.free(out);
                kernels.free(xBuf);
                kernels.releaseLinear(w);
                return [result];
              }, op);
            },
          ),
          {
            numRuns: 25,
            examples: [
              [197, 576, 192, 1],
              [1, 1000, 768, 2],
              [197, 13, 1536, 3],
              [50, 37, 384, 4],
              [13, 384, 1536, 5],
            ],
          },
        );
      },
      THREADED_TIMEOUT,
    );
  });

  it(
    'layerNorm on any m, d',
    () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 1, max: 800 }), seed, (m, d, s) => {
          fc.pre(m * d >= 4 << 13);
          const next = seededRandom(s);
          const x = randomArray(m * d, next, 3);
          const gamma = randomArray(d, next);
          const beta = randomArray(d, next);
          check((kernels) => {
            const out = kernels.alloc(m * d);
            kernels.layerNorm(kernels.upload(x), m, d, kernels.upload(gamma), kernels.upload(beta), 1e-6, out);
            return [Float32Array.from(out)];
          }, 'layerNorm');
        }),
        {
          numRuns: 25,
          examples: [
            [197, 384, 1],
            [1, 40_000, 2],
          ],
        },
      );
    },
    THREADED_TIMEOUT,
  );

  it(
    'softmax on any rows, cols',
    () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 600 }), seed, (rows, cols, s) => {
          fc.pre(rows * cols >= 4 << 13);
          const x = randomArray(rows * cols, seededRandom(s), 20);
          check((kernels) => {
            const buf = kernels.upload(x);
            kernels.softmax(buf, rows, cols);
            return [Float32Array.from(buf)];
          }, 'softmax');
        }),
        { numRuns: 25 },
      );
    },
    THREADED_TIMEOUT,
  );

  it(
    'gelu on any length',
    () => {
      fc.assert(
        fc.property(fc.integer({ min: 4 << 13, max: 300_000 }), seed, (length, s) => {
          const x = randomArray(length, seededRandom(s), 6);
          check((kernels) => {
            const buf = kernels.upload(x);
            kernels.gelu(buf, length);
            return [Float32Array.from(buf)];
          }, 'gelu');
        }),
        { numRuns: 25 },
      );
    },
    THREADED_TIMEOUT,
  );

  it(
    'attention on any n, heads and head widths, with and without token sizes',
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 260 }), // n
          fc.integer({ min: 1, max: 6 }), // heads
          fc.integer({ min: 1, max: 80 }), // qkDim
          fc.integer({ min: 1, max: 80 }), // vDim
          fc.boolean(), // logSizes
          seed,
          (n, heads, qkDim, vDim, withSizes, s) => {
            fc.pre(heads * n * n * (qkDim + vDim) >= 4 << 17);
            const next = seededRandom(s);
            const qkv = randomArray(n * (2 * heads * qkDim + heads * vDim), next, 2);
            const logSizes = withSizes ? Float32Array.from({ length: n }, () => Math.log(1 + 3 * next())) : null;
            check((kernels) => {
              const probs = kernels.alloc(heads * n * n);
              const out = kernels.alloc(n * heads * vDim);
              kernels.attention(kernels.upload(qkv), n, heads, qkDim, vDim, 1 / Math.sqrt(qkDim), logSizes && kernels.upload(logSizes), probs, out);
              return [Float32Array.from(probs), Float32Array.from(out)];
            }, 'attention');
          },
        ),
        {
          numRuns: 25,
          examples: [
            [197, 3, 64, 64, false, 1],
            [197, 6, 64, 64, true, 2],
            [61, 3, 16, 9, true, 3],
            [250, 1, 7, 80, false, 4],
          ],
        },
      );
    },
    THREADED_TIMEOUT,
  );

  it(
    'every worker takes chunks (within 500 jobs)',
    () => {
      for (const kernels of threaded) {
        const pool = kernels.pool!;
        const before = pool.chunksPerThread();
        const w = kernels.prepareLinear({ weight: new Float32Array(768 * 192).fill(0.25), bias: new Float32Array(768), outFeatures: 768, inFeatures: 192 });
        const x = kernels.alloc(197 * 192);
        const out = kernels.alloc(197 * 768);
        const tookPart = () => pool.chunksPerThread().every((c, slot) => c > before[slot]);
        for (let job = 0; job < 500 && !tookPart(); job++) kernels.linear(x, 197, w, out);
        expect(tookPart(), `chunks per thread on ${kernels.threads} threads: ${pool.chunksPerThread().join(', ')}`).toBe(true);
      }
    },
    THREADED_TIMEOUT,
  );
});
