import fc from 'fast-check';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKernels } from '../src/kernels/index.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { Kernels } from '../src/kernels/types.js';
import { createWasmKernels } from '../src/kernels/wasm.js';
import { loadModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel, seededRandom } from '../src/model/random.js';
import { readSafetensors } from '../src/model/safetensors-file.js';
import type { ViTConfig, ViTModel } from '../src/model/types.js';
import { prefixTokens, qkvLayout } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import type { BlockState } from '../src/model/hooks.js';
import { denseGmacs, modelGmacs } from '../src/model/gmacs.js';
import { ScheduleError } from '../src/errors.js';
import { solveBudget } from '../src/prune/budget.js';
import {
  keepRatioKnob,
  keepRatioSchedule,
  parseSchedule,
  scheduleFromJson,
  scheduleGmacs,
  scheduleToJson,
  scheduleTokens,
  validateSchedule,
  type PruneSchedule,
} from '../src/prune/schedule.js';
import { aggregateHeads, initialScores, restrictGraph, meanOneVariance, varianceHeadFilter, weightedPageRank } from '../src/prune/wpr.js';
import {
  bestMatch,
  partitionByImportance,
  similarityPrune,
  tokenImportance,
  resolveZeroTPruneOptions,
  ZERO_TPRUNE_ABLATIONS,
  zeroTPruneHooks,
  zeroTPruneLayer,
  ZeroTPruneScratch,
  type ZeroTPruneOptions,
  type ZeroTPruneRecord,
} from '../src/prune/zero-tprune.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

const reference = createReferenceKernels();
const deitT = configFromDims({ dim: 192, depth: 12, heads: 3 });
const deitS = configFromDims({ dim: 384, depth: 12, heads: 6 });

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, digits = 6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i], digits);
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

/** [heads, n, n] row-stochastic: softmax of random logits, like attention. */
function randomAttention(rand: () => number, heads: number, n: number, spread = 3): Float32Array {
  const p = new Float32Array(heads * n * n);
  for (let row = 0; row < heads * n; row++) {
    const logits = Array.from({ length: n }, () => (rand() * 2 - 1) * spread);
    const z = sum(logits.map(Math.exp));
    for (let k = 0; k < n; k++) p[row * n + k] = Math.exp(logits[k]) / z;
  }
  return p;
}

/** A BlockState carrying given attention and keys [n, H·qk] (queries, values and x are zero). */
function blockState(cfg: ViTConfig, n: number, probs: Float32Array, keys: Float32Array, block = 0): BlockState {
  const layout = qkvLayout(cfg);
  const width = cfg.heads * cfg.qkDim;
  const qkv = new Float32Array(n * layout.stride);
  for (let i = 0; i < n; i++) qkv.set(keys.subarray(i * width, (i + 1) * width), i * layout.stride + layout.keyOffset(0));
  return {
    config: cfg,
    model: cfg,
    block,
    n,
    x: new Float32Array(n * cfg.dim),
    probs,
    attentionTokens: n,
    qkv,
    attnOut: new Float32Array(0),
    sizes: null,
    tokenIds: Int32Array.from({ length: n }, (_, i) => i),
    kernels: reference,
  };
}

/** The state with patch positions moved by `perm` (perm[i] = new position of token i; prefix fixed). */
function permuteState(s: BlockState, perm: number[]): BlockState {
  const { n } = s;
  const H = s.config.heads;
  const probs = new Float32Array(s.probs.length);
  for (let h = 0; h < H; h++) {
    for (let q = 0; q < n; q++) for (let k = 0; k < n; k++) probs[h * n * n + perm[q] * n + perm[k]] = s.probs[h * n * n + q * n + k];
  }
  const stride = qkvLayout(s.config).stride;
  const qkv = new Float32Array(s.qkv.length);
  for (let i = 0; i < n; i++) qkv.set(s.qkv.subarray(i * stride, (i + 1) * stride), perm[i] * stride);
  return { ...s, probs, qkv };
}

// Models for the property tests: 8×8 patches (up to 65 / 66 tokens), head width 4.
const small = (heads: number, distilled: boolean) =>
  configFromDims({ dim: 4 * heads, depth: 12, heads, imageSize: 64, patchSize: 8, numClasses: 10, distilled });

/** A random pruning problem: config, state, and a feasible (rS, rI). */
const problem = fc
  .record({
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
    heads: fc.integer({ min: 1, max: 4 }),
    distilled: fc.boolean(),
    patches: fc.integer({ min: 2, max: 40 }),
    sShare: fc.double({ min: 0, max: 1, noNaN: true }),
    iShare: fc.double({ min: 0, max: 1, noNaN: true }),
    block: fc.integer({ min: 0, max: 11 }),
  })
  .map(({ seed, heads, distilled, patches, sShare, iShare, block }) => {
    const cfg = small(heads, distilled);
    const n = prefixTokens(cfg) + patches;
    const rand = seededRandom(seed);
    const probs = randomAttention(rand, heads, n);
    const keys = Float32Array.from({ length: n * heads * cfg.qkDim }, () => rand() * 2 - 1);
    const rS = Math.floor(sShare * Math.floor(patches / 2));
    const rI = Math.floor(iShare * (patches - rS));
    return { cfg, n, rS, rI, state: blockState(cfg, n, probs, keys, block), seed };
  });

describe('Weighted Page Rank (docs/algorithms.md §1.12)', () => {
  const P = Float32Array.from([0.5, 0.3, 0.2, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6]);

  it('uniform start: iterates 1, 2, 3 and the limit, mass 1', () => {
    const s = new Float64Array(3);
    const next = new Float64Array(3);
    initialScores('uniform', 3, 1, s);
    const expected = [
      [0.266667, 0.433333, 0.3],
      [0.236667, 0.486667, 0.276667],
      [0.222333, 0.515667, 0.262],
    ];
    for (const e of expected) {
      expect(weightedPageRank(P, 3, s, 1, next)).toBe(1);
      expectClose(s, e);
      expect(sum(s)).toBeCloseTo(1, 6);
    }
    // P holds float32 values whose rows sum to 1 + 1.5e-8: compare the limit's shape.
    weightedPageRank(P, 3, s, 100, next);
    expectClose(
      s.map((v) => v / sum(s)),
      [0.206897, 0.551724, 0.241379],
    );
  });

  it('CLS-boost start and one iteration', () => {
    const s = new Float64Array(3);
    initialScores('cls-boost', 3, 1, s);
    expectClose(s, [0.464102, 0.267949, 0.267949]);
    weightedPageRank(P, 3, s, 1, new Float64Array(3));
    expectClose(s, [0.312436, 0.40718, 0.280385]);
  });

  it('CLS-boost for DeiT: CLS ≈ 0.0668, patches ≈ 0.00476; a distillation token is boosted too', () => {
    const s = new Float64Array(198);
    initialScores('cls-boost', 197, 1, s);
    expect(s[0]).toBeCloseTo(0.0668, 4);
    expect(s[1]).toBeCloseTo(0.00476, 5);
    expect(sum(s.subarray(0, 197))).toBeCloseTo(1, 12);
    initialScores('cls-boost', 198, 2, s);
    expect(s[1]).toBe(s[0]);
    expect(s[0] / s[2]).toBeCloseTo(Math.sqrt(198), 10);
    expect(sum(s)).toBeCloseTo(1, 12);
  });

  it('a sub-graph keeps the rows and columns of the survivors, rows re-normalised', () => {
    const n = 6;
    const P = randomAttention(seededRandom(4), 1, n);
    const alive = Int32Array.from([0, 2, 3, 5]);
    const sub = new Float32Array(16);
    restrictGraph(P, n, alive, 4, sub);
    for (let q = 0; q < 4; q++) {
      const rowSum = sum(Array.from(alive, (k) => P[alive[q] * n + k]));
      for (let k = 0; k < 4; k++) expect(sub[q * 4 + k]).toBeCloseTo(P[alive[q] * n + alive[k]] / rowSum, 7);
    }
  });

  it('stops early once ‖Δs‖₁ < tolerance', () => {
    const s = new Float64Array(3);
    initialScores('uniform', 3, 1, s);
    const steps = weightedPageRank(P, 3, s, 1000, new Float64Array(3), 1e-7);
    expect(steps).toBeGreaterThan(10);
    expect(steps).toBeLessThan(1000);
    expectClose(s, [0.206897, 0.551724, 0.241379]);
  });

  it('preserves total mass (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 }), fc.integer({ min: 2, max: 30 }), fc.integer({ min: 1, max: 40 }), (seed, n, iterations) => {
        const rand = seededRandom(seed);
        const A = randomAttention(rand, 1, n);
        const s = Float64Array.from({ length: n }, () => rand());
        const mass = sum(s);
        weightedPageRank(A, n, s, iterations, new Float64Array(n));
        expect(Math.abs(sum(s) / mass - 1)).toBeLessThan(1e-5); // rows sum to 1 up to float32 rounding
      }),
      { numRuns: 50 },
    );
  });

  it('converges to the stationary distribution from either start (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 }), fc.integer({ min: 2, max: 25 }), (seed, n) => {
        const A = randomAttention(seededRandom(seed), 1, n, 2);
        const pi = stationary(A, n);
        for (const init of ['uniform', 'cls-boost'] as const) {
          const s = new Float64Array(n);
          initialScores(init, n, 1, s);
          weightedPageRank(A, n, s, 300, new Float64Array(n));
          const mass = sum(s);
          for (let i = 0; i < n; i++) expect(Math.abs(s[i] / mass - pi[i])).toBeLessThan(1e-7);
        }
      }),
      { numRuns: 30 },
    );
  });
});

/** Direct solve of πᵀ(P − I) = 0, Σ π = 1 (Gaussian elimination with partial pivoting, float64). */
function stationary(P: Float32Array, n: number): number[] {
  // Rows 0..n−2: Σ_q (P[q, k] − δ_qk) π_q = 0 for k < n−1; last row: Σ π = 1.
  const M = Array.from({ length: n }, (_, k) => [
    ...Array.from({ length: n }, (_, q) => (k === n - 1 ? 1 : P[q * n + k] - (q === k ? 1 : 0))),
    k === n - 1 ? 1 : 0,
  ]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[pivot][c])) pivot = r;
    [M[c], M[pivot]] = [M[pivot], M[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  return M.map((row, i) => row[n] / row[i]);
}

describe('EIR and VHF (docs/algorithms.md §1.12)', () => {
  const scores = Float64Array.from([0.25, 0.25, 0.25, 0.25, 0.1, 0.2, 0.3, 0.4, 0.7, 0.1, 0.1, 0.1]); // [3 heads, 4 tokens]

  it('mean-1 variances 0, 0.2, 1.08', () => {
    expectClose(
      [0, 1, 2].map((h) => meanOneVariance(scores, 4 * h, 4 * h + 4)),
      [0, 0.2, 1.08],
      12,
    );
  });

  it('with VHF only head 2 is valid and the aggregate is its scores', () => {
    const valid = new Uint8Array(3);
    expect(varianceHeadFilter(scores, 3, 4, 0, 4, [0.01, 0.7], valid)).toBe(1);
    expect(Array.from(valid)).toEqual([0, 1, 0]);
    const out = new Float64Array(4);
    aggregateHeads(scores, 3, 4, 4, valid, 'rms', out);
    expectClose(out, [0.1, 0.2, 0.3, 0.4], 12);
  });

  it('without VHF the RMS over all heads', () => {
    const out = new Float64Array(4);
    aggregateHeads(scores, 3, 4, 4, Uint8Array.from([1, 1, 1]), 'rms', out);
    expectClose(out, [0.433013, 0.193649, 0.232737, 0.278388]);
    aggregateHeads(scores, 3, 4, 4, Uint8Array.from([1, 1, 1]), 'mean', out);
    expectClose(out, [0.35, 0.183333, 0.216667, 0.25]);
  });

  it('falls back to all heads when none is inside the window', () => {
    const valid = new Uint8Array(3);
    expect(varianceHeadFilter(scores, 3, 4, 0, 4, [5, 6], valid)).toBe(0);
    expect(Array.from(valid)).toEqual([1, 1, 1]);
  });

  it('reads the variance over patch tokens only (from `start`)', () => {
    // Head 2 without its first token is uniform: variance 0, outside the window.
    const valid = new Uint8Array(3);
    varianceHeadFilter(scores, 3, 4, 1, 4, [0.01, 0.7], valid);
    expect(Array.from(valid)).toEqual([0, 1, 0]);
    expect(meanOneVariance(scores, 9, 12)).toBeCloseTo(0, 20);
  });
});

describe('S-stage (docs/algorithms.md §1.12)', () => {
  // CLS (position 0) and patch tokens t1…t6 at positions 1…6, 2-D keys.
  const keys = Float32Array.from([0, 0, 1, 0, 0, 1, 1, 1, 0.9, 0.1, -1, 0.2, 0.2, 1]);
  const features = { data: keys, offset: 0, stride: 2, dim: 2 };
  const importance = Float64Array.from([1, 0.3, 0.05, 0.2, 0.08, 0.25, 0.12]);

  it('partitions by importance: B = {t1, t5, t3}, A = {t6, t4, t2}; best matches', () => {
    const scratch = new ZeroTPruneScratch(7, 1, 2);
    expect(partitionByImportance(importance, 7, 1, scratch.order)).toBe(3);
    expect(Array.from(scratch.order.subarray(0, 6))).toEqual([1, 5, 3, 6, 4, 2]);
    bestMatch(features, scratch.order, 6, 3, new Float32Array(6 * 2), scratch.best);
    expectClose([scratch.best[6], scratch.best[4], scratch.best[2]], [0.83205, 0.993884, 0.707107]);
  });

  it('r_S = 1 drops t4; r_S = 2 drops t4 and t6', () => {
    const scratch = new ZeroTPruneScratch(7, 1, 2);
    expect(Array.from(similarityPrune(features, importance, 7, 1, 1, scratch))).toEqual([4]);
    expect(Array.from(similarityPrune(features, importance, 7, 1, 2, scratch))).toEqual([4, 6]);
  });

  it('head-mean keys equal the concatenated keys in cosine when all heads agree', () => {
    const cfg = small(3, false);
    const rand = seededRandom(5);
    const n = 21;
    const oneHead = Array.from({ length: n * 4 }, () => rand() * 2 - 1);
    const keys = Float32Array.from({ length: n * 12 }, (_, i) => oneHead[Math.floor(i / 12) * 4 + (i % 4)]);
    const state = blockState(cfg, n, randomAttention(rand, 3, n), keys);
    const a = zeroTPruneLayer(state, 6, 3, { similarity: 'keys' });
    const b = zeroTPruneLayer(state, 6, 3, { similarity: 'head-mean-keys' });
    expect(Array.from(b.droppedS)).toEqual(Array.from(a.droppedS));
    expect(Array.from(b.keep)).toEqual(Array.from(a.keep));
  });
});

describe('Zero-TPrune pruning layer', () => {
  const optionSets: Partial<ZeroTPruneOptions>[] = [
    ...Object.values(ZERO_TPRUNE_ABLATIONS),
    { init: 'uniform' },
    { similarity: 'head-mean-keys', vhfWindow: [0, 0.05] },
    { tolerance: 1e-6, iterations: Array(12).fill(50) },
  ];

  it('keeps the prefix tokens and n − r_S − r_I tokens in order; the stages drop disjoint patch tokens (property)', () => {
    fc.assert(
      fc.property(problem, fc.constantFrom(...optionSets), ({ cfg, n, rS, rI, state }, options) => {
        const r = zeroTPruneLayer(state, rS, rI, options);
        const prefix = prefixTokens(cfg);
        expect(r.keep.length).toBe(n - rS - rI);
        expect(Array.from(r.keep.subarray(0, prefix))).toEqual(Array.from({ length: prefix }, (_, i) => i));
        const withS = resolveZeroTPruneOptions(options).useSStage;
        expect(r.droppedS.length).toBe(withS ? rS : 0);
        expect(r.droppedI.length).toBe(withS ? rI : rS + rI);
        const all = [...r.keep, ...r.droppedS, ...r.droppedI].sort((a, b) => a - b);
        expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
        for (let i = 1; i < r.keep.length; i++) expect(r.keep[i]).toBeGreaterThan(r.keep[i - 1]);
      }),
      { numRuns: 60 },
    );
  });

  it('permuting the patch tokens permutes the scores and the kept set (property)', () => {
    fc.assert(
      fc.property(problem, ({ cfg, n, rS, rI, state, seed }) => {
        const prefix = prefixTokens(cfg);
        const rand = seededRandom(seed + 1);
        const perm = Array.from({ length: n }, (_, i) => i);
        for (let i = n - 1; i > prefix; i--) {
          const j = prefix + Math.floor(rand() * (i - prefix + 1));
          [perm[i], perm[j]] = [perm[j], perm[i]];
        }
        const moved = permuteState(state, perm);
        const mapped = (a: Int32Array) => Array.from(a, (i) => perm[i]).sort((x, y) => x - y);

        const o = resolveZeroTPruneOptions();
        const identity = Int32Array.from({ length: n }, (_, i) => i);
        const scratchA = ZeroTPruneScratch.forModel(cfg);
        const scratchB = ZeroTPruneScratch.forModel(cfg);
        tokenImportance(state.probs, cfg.heads, n, identity, n, prefix, 5, o, scratchA);
        tokenImportance(moved.probs, cfg.heads, n, identity, n, prefix, 5, o, scratchB);
        for (let i = 0; i < n; i++) expect(scratchB.importance[perm[i]]).toBeCloseTo(scratchA.importance[i], 12);

        const a = zeroTPruneLayer(state, rS, rI);
        const b = zeroTPruneLayer(moved, rS, rI);
        expect(Array.from(b.keep)).toEqual(mapped(a.keep));
        expect(Array.from(b.droppedS)).toEqual(mapped(a.droppedS));
        expect(Array.from(b.droppedI)).toEqual(mapped(a.droppedI));
      }),
      { numRuns: 40 },
    );
  });

  it('reports the share of heads inside the VHF window per stage', () => {
    const cfg = small(4, false);
    const rand = seededRandom(9);
    const n = 33;
    const state = blockState(
      cfg,
      n,
      randomAttention(rand, 4, n),
      Float32Array.from({ length: n * 16 }, () => rand()),
    );
    expect(zeroTPruneLayer(state, 0, 0).headsKept).toEqual({ preRank: null, importance: null });
    const r = zeroTPruneLayer(state, 4, 4);
    for (const f of [r.headsKept.preRank!, r.headsKept.importance!]) expect(f * 4).toBe(Math.round(f * 4));
    expect(zeroTPruneLayer(state, 4, 4, { useVHF: false }).headsKept).toEqual({ preRank: 1, importance: 1 });
    expect(zeroTPruneLayer(state, 0, 4, { vhfWindow: [100, 200] }).headsKept).toEqual({ preRank: null, importance: 0 });
  });

  it('rejects infeasible counts and attention over a different token set', () => {
    const cfg = small(2, false);
    const rand = seededRandom(3);
    const state = blockState(
      cfg,
      11,
      randomAttention(rand, 2, 11),
      Float32Array.from({ length: 11 * 8 }, () => rand()),
    );
    expect(() => zeroTPruneLayer(state, 6, 0)).toThrow(/at most 5 of 10/);
    expect(() => zeroTPruneLayer(state, 5, 6)).toThrow(/at most 10 removals/);
    expect(() => zeroTPruneLayer({ ...state, n: 10 }, 1, 1)).toThrow(/attention over 11/);
  });
});

describe.each(['relaxed', 'simd'] as const)('Zero-TPrune on the wasm-%s kernels', (variant) => {
  let wasm: Kernels;
  beforeAll(async () => {
    wasm = await createWasmKernels({ variant });
  });

  it('is bit-identical to the TypeScript oracle: kept, dropped, head shares and every score (property)', () => {
    const optionSets: Partial<ZeroTPruneOptions>[] = [
      {},
      ...Object.values(ZERO_TPRUNE_ABLATIONS),
      { init: 'uniform' },
      { similarity: 'head-mean-keys', vhfWindow: [0, 0.05] },
      { tolerance: 1e-6, iterations: Array(12).fill(50) },
    ];
    fc.assert(
      fc.property(problem, fc.constantFrom(...optionSets), ({ cfg, n, rS, rI, state }, options) => {
        const oracle = ZeroTPruneScratch.forModel(cfg); // reference kernels = the functions of wpr.ts
        const fast = ZeroTPruneScratch.forModel(cfg, wasm);
        const expected = zeroTPruneLayer(state, rS, rI, options, oracle);
        const onWasm: BlockState = { ...state, probs: wasm.upload(state.probs), qkv: wasm.upload(state.qkv), kernels: wasm };
        const actual = zeroTPruneLayer(onWasm, rS, rI, options, fast);
        expect(Array.from(actual.keep)).toEqual(Array.from(expected.keep));
        expect(Array.from(actual.droppedS)).toEqual(Array.from(expected.droppedS));
        expect(Array.from(actual.droppedI)).toEqual(Array.from(expected.droppedI));
        expect(actual.headsKept).toEqual(expected.headsKept);
        // the last stage's scores and S-stage matches, to the bit
        expect(Array.from(fast.importance.subarray(0, n))).toEqual(Array.from(oracle.importance.subarray(0, n)));
        expect(Array.from(fast.scores)).toEqual(Array.from(oracle.scores));
        const groupA = Array.from(expected.droppedS);
        expect(groupA.map((i) => fast.best[i])).toEqual(groupA.map((i) => oracle.best[i]));
      }),
      { numRuns: 80 },
    );
  });
});

/**
 * On real images the backends must agree on every pruning decision. The pruning kernels are
 * bit-identical to the oracle (above); what differs between backends is the forward pass itself
 * (f32 GEMMs with other summation orders, FMA in the relaxed build: attention probabilities
 * differ by ≈ 1e-7), and on these inputs that never flips a ranking at a cut.
 */
describeWithData('Zero-TPrune on the golden DeiT-Tiny inputs', () => {
  const dir = path.join(SHARED_DATA, 'deit-tiny');
  let model: ViTModel;
  let golden: Map<string, { data: Float32Array }>;
  let schedule: ReturnType<typeof keepRatioSchedule>;
  beforeAll(() => {
    model = loadModelFolder(dir);
    golden = readSafetensors(path.join(dir, 'golden_reference.safetensors')).tensors;
    schedule = keepRatioSchedule(model.config, 0.735);
  });
  const input = (sample: number) => golden.get(`sample${sample}.input`)!.data;
  const ids = (records: ZeroTPruneRecord[]) => records.map((r) => ({ after: r.after, droppedS: Array.from(r.droppedS), droppedI: Array.from(r.droppedI) }));

  for (const sample of [0, 1, 2]) {
    it(`sample${sample}, ρ = 0.735: the reference, wasm and wasm-simd backends drop identical token ids at every pruning layer`, async () => {
      const dropped = [];
      for (const backend of ['reference', 'wasm', 'wasm-simd'] as const) {
        const records: ZeroTPruneRecord[] = [];
        new ViTRunner(model, await createKernels(backend)).forward(input(sample), zeroTPruneHooks(schedule, { onLayer: (r) => records.push(r) }));
        expect(records.map((r) => r.after)).toEqual([3, 6, 9]);
        dropped.push(ids(records));
      }
      expect(dropped[1]).toEqual(dropped[0]);
      expect(dropped[2]).toEqual(dropped[0]);
    });
  }

  it('on the wasm backend, the kernels keep what the TypeScript oracle keeps on the same states (3 samples, ρ = 0.5 / 0.735 / 0.915)', async () => {
    const runner = new ViTRunner(model, await createKernels('wasm'));
    const oracle = ZeroTPruneScratch.forModel(model.config);
    let layers = 0;
    for (const rho of [0.5, 0.735, 0.915]) {
      const sched = keepRatioSchedule(model.config, rho);
      const steps = new Map(sched.steps.map((st) => [st.after, st]));
      for (const sample of [0, 1, 2]) {
        const hooks = zeroTPruneHooks(sched);
        runner.forward(input(sample), {
          afterBlock(state) {
            const step = steps.get(state.block + 1);
            const expected = step && Array.from(zeroTPruneLayer(state, step.rS, step.rI, {}, oracle).keep);
            const r = hooks.afterBlock!(state);
            if (step) {
              layers++;
              expect(r && r.kind === 'keep' && Array.from(r.indices)).toEqual(expected);
            }
            return r;
          },
        });
      }
    }
    expect(layers).toBe(27);
  });
});

describe('Zero-TPrune hooks on a tiny model', () => {
  // 32×32 input, patch 8 → 16 patches; width 24, 3 heads of 8; 4 blocks.
  const image = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.011));

  for (const distilled of [false, true]) {
    it(`runs the scheduled token counts and counts their GMACs${distilled ? ' (distilled)' : ''}`, () => {
      const cfg = configFromDims({ dim: 24, depth: 4, heads: 3, imageSize: 32, patchSize: 8, numClasses: 10, distilled });
      const prefix = prefixTokens(cfg);
      const runner = new ViTRunner(randomModel(cfg, 7), createReferenceKernels());
      const schedule = keepRatioSchedule(cfg, 0.7, { after: [1, 2, 3] });
      expect(schedule.steps).toEqual([
        { after: 1, rS: 2, rI: 2 },
        { after: 2, rS: 1, rI: 2 },
        { after: 3, rS: 1, rI: 1 },
      ]);

      const records: ZeroTPruneRecord[] = [];
      const result = runner.forward(image, zeroTPruneHooks(schedule, { onLayer: (r) => records.push(r) }));
      const expected = scheduleTokens(cfg, schedule);
      expect(result.tokens).toEqual(expected);
      expect(expected.map((t) => t.attention - prefix)).toEqual([16, 12, 9, 7]);
      expect(result.gmacs).toBe(modelGmacs(cfg, expected));
      expect(result.gmacs).toBe(scheduleGmacs(cfg, schedule));

      expect(records.map((r) => [r.after, r.tokensIn, r.droppedS.length, r.droppedI.length])).toEqual([
        [1, prefix + 16, 2, 2],
        [2, prefix + 12, 1, 2],
        [3, prefix + 9, 1, 1],
      ]);
      const droppedIds = records.flatMap((r) => [...r.droppedS, ...r.droppedI]);
      expect(new Set(droppedIds).size).toBe(9);
      for (const id of droppedIds) expect(id).toBeGreaterThanOrEqual(prefix);
      expect(Number.isFinite(result.logits[0])).toBe(true);
    });
  }

  it('validates the schedule against the model on first use', () => {
    const cfg = configFromDims({ dim: 24, depth: 4, heads: 3, imageSize: 32, patchSize: 8, numClasses: 10 });
    const runner = new ViTRunner(randomModel(cfg, 7), createReferenceKernels());
    expect(() => runner.forward(image, zeroTPruneHooks({ steps: [{ after: 5, rS: 1, rI: 1 }] }))).toThrow(ScheduleError);
  });
});

describe('schedules', () => {
  it('keep-ratio preset: DeiT-S ρ = 0.7 runs 197 / 139 / 98 / 69 tokens, S-stage ⌊r/2⌋', () => {
    const s = keepRatioSchedule(deitS, 0.7);
    expect(s.steps).toEqual([
      { after: 3, rS: 29, rI: 29 },
      { after: 6, rS: 20, rI: 21 },
      { after: 9, rS: 14, rI: 15 },
    ]);
    expect([...new Set(scheduleTokens(deitS, s).map((t) => t.attention))]).toEqual([197, 139, 98, 69]);
    expect(keepRatioSchedule(deitS, 0.7, { sSplit: 0 }).steps.map((x) => x.rS)).toEqual([0, 0, 0]);
    expect(keepRatioSchedule(deitS, 0.2, { sSplit: 1 }).steps[0]).toEqual({ after: 3, rS: 98, rI: 58 }); // capped at |A|
  });

  it('GMACs of the oracle settings: DeiT-T ρ = 0.735 / 0.915, DeiT-S ρ = 0.8 / 0.75 / 0.7', () => {
    for (const [rho, gmacs, fraction] of [
      [0.735, '0.8239', '0.657'],
      [0.915, '1.0936', '0.872'],
    ] as const) {
      const g = scheduleGmacs(deitT, keepRatioSchedule(deitT, rho));
      expect(g.toFixed(4)).toBe(gmacs);
      expect((g / denseGmacs(deitT)).toFixed(3)).toBe(fraction);
    }
    expect([0.8, 0.75, 0.7].map((rho) => scheduleGmacs(deitS, keepRatioSchedule(deitS, rho)).toFixed(3))).toEqual(['3.366', '3.121', '2.895']);
  });

  it('solves ρ for a GMACs budget within 1 %', async () => {
    const solve = (cfg: ViTConfig, fraction: number) => solveBudget(denseGmacs(cfg), fraction, [keepRatioKnob(cfg)]);
    for (const fraction of [0.657, 0.872, 0.5]) {
      const s = await solve(deitT, fraction);
      expect(Math.abs(s.fraction / fraction - 1)).toBeLessThanOrEqual(0.01);
      expect(s.gmacs).toBe(scheduleGmacs(deitT, keepRatioSchedule(deitT, s.position)));
    }
    const three = await solve(deitS, 3.0 / denseGmacs(deitS));
    expect(Math.abs(three.gmacs / 3 - 1)).toBeLessThanOrEqual(0.01);
    expect(three.position).toBeGreaterThan(0.7);
    expect(three.position).toBeLessThan(0.75);
    expect((await solve(deitT, 1)).position).toBe(1);
    await expect(solve(deitT, 0.05)).rejects.toThrow(/within 1 % of 0\.05 × dense \(0\.0627 GMACs\), found at best 0\.\d+/);
    await expect(solve(deitT, 1.5)).rejects.toThrow(ScheduleError);
  });

  it('JSON round trip', () => {
    const s = keepRatioSchedule(deitS, 0.75);
    expect(parseSchedule(scheduleToJson(s))).toEqual(s);
    expect(parseSchedule('{"steps": []}')).toEqual({ steps: [] });
  });

  it('JSON errors say what was expected and what was found', () => {
    const bad: [string, RegExp][] = [
      ['{"steps": [', /f\.json: expected JSON, found a syntax error/],
      ['[1]', /f\.json: expected an object \{ "steps": \[\.\.\.\] \}, found an array/],
      ['{"step": []}', /unexpected key "step" \(expected only "steps"\)/],
      ['{"steps": 3}', /"steps": expected an array, found 3/],
      ['{"steps": [7]}', /steps\[0\]: expected an object \{ "after", "rS", "rI" \}, found 7/],
      ['{"steps": [{"after": 3, "rS": 1, "rI": 1, "rs": 2}]}', /steps\[0\]: unexpected key "rs"/],
      ['{"steps": [{"after": 3, "rS": -3, "rI": 1}]}', /steps\[0\]\.rS: expected an integer ≥ 0, found -3/],
      ['{"steps": [{"after": 3, "rS": 1}]}', /steps\[0\]\.rI: expected an integer ≥ 0, found nothing/],
      ['{"steps": [{"after": 0, "rS": 1, "rI": 1}]}', /steps\[0\]\.after: expected an integer ≥ 1, found 0/],
      ['{"steps": [{"after": 3, "rS": 1.5, "rI": 1}]}', /steps\[0\]\.rS: expected an integer ≥ 0, found 1\.5/],
      [
        '{"steps": [{"after": 6, "rS": 1, "rI": 1}, {"after": 6, "rS": 1, "rI": 1}]}',
        /steps\[1\]\.after: expected a block after 6 \(steps in increasing order\), found 6/,
      ],
    ];
    for (const [text, message] of bad) expect(() => parseSchedule(text, 'f.json')).toThrow(message);
    expect(() => scheduleFromJson(null)).toThrow(ScheduleError);
  });

  it('a schedule must fit the model', () => {
    const check = (steps: PruneSchedule['steps']) => () => validateSchedule(deitT, { steps });
    expect(check([{ after: 13, rS: 1, rI: 1 }])).toThrow(/expected a block in 1\.\.12 \(the model has 12 blocks/);
    expect(check([{ after: 3, rS: 99, rI: 0 }])).toThrow(/at most ⌊196\/2⌋ = 98 .* found rS = 99/);
    expect(
      check([
        { after: 3, rS: 90, rI: 100 },
        { after: 4, rS: 0, rI: 7 },
      ]),
    ).toThrow(/step 1 \(after block 4\): expected rS \+ rI ≤ 6 patch tokens alive, found 7/);
    expect(() =>
      scheduleTokens(deitT, {
        steps: [
          { after: 2, rS: 0, rI: 0 },
          { after: 1, rS: 0, rI: 0 },
        ],
      }),
    ).toThrow(/expected a block in 3\.\.12/);
  });
});
