import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm.js';
import type { BlockState } from '../src/model/hooks.js';
import { configFromDims, seededRandom } from '../src/model/random.js';
import type { ViTConfig } from '../src/model/types.js';
import { prefixTokens, qkvLayout } from '../src/model/types.js';
import { mctfFuse, MCTF_DEFAULTS } from '../src/prune/mctf.js';
import { expm1NonPositive, mergeKernels, REFERENCE_MERGE_KERNELS, type MergeKernels } from '../src/prune/merge-kernels.js';
import { pitomeMerge } from '../src/prune/pitome.js';
import { tomeMerge } from '../src/prune/tome.js';

// The wasm merge kernels (assembly/merge.ts) against their TypeScript oracles, to the bit, on
// random inputs with the cases that break a careless port: zero rows, repeated rows (ties),
// negative zeros, odd counts, and ELU arguments over the whole range of expm1.

const bits = (a: ArrayLike<number>) => Array.from(a, (v) => (Object.is(v, -0) ? '-0' : String(v)));

/** How many float32 values lie between a and b (float32 values of the same sign), plus one; 0 when equal. */
function float32UlpsApart(a: number, b: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat32(0, a);
  view.setFloat32(4, b);
  return Math.abs(view.getInt32(0) - view.getInt32(4));
}

/** Random float32 values in [−1, 1), with some rows zero, some repeated and some −0. */
function rows(seed: number, count: number, c: number): Float32Array {
  const rand = seededRandom(seed);
  const x = Float32Array.from({ length: count * c }, () => rand() * 2 - 1);
  for (let i = 0; i < count; i++) {
    const pick = rand();
    if (pick < 0.08) x.fill(0, i * c, (i + 1) * c);
    else if (pick < 0.12) x.fill(-0, i * c, (i + 1) * c);
    else if (pick < 0.25 && i > 0) x.copyWithin(i * c, (i - 1) * c, i * c);
  }
  return x;
}

describe.each(['relaxed', 'simd'] as const)('merge kernels on the wasm-%s build', (variant) => {
  let wasm: WasmKernels;
  let fast: MergeKernels;
  beforeAll(async () => {
    wasm = await createWasmKernels({ variant });
    fast = mergeKernels(wasm);
  });
  const f64 = (values: ArrayLike<number>) => {
    const f = wasm.alloc(2 * values.length + 2);
    const out = new Float64Array(f.buffer, f.byteOffset, values.length);
    out.set(values);
    return out;
  };
  const i32 = (values: ArrayLike<number>) => {
    const f = wasm.alloc(values.length + 1);
    const out = new Int32Array(f.buffer, f.byteOffset, values.length);
    out.set(values);
    return out;
  };
  const f32 = (values: ArrayLike<number>) => {
    const out = wasm.alloc(values.length + 1).subarray(0, values.length);
    out.set(values);
    return out;
  };

  it("cosines (even/odd and pairwise), row and column maxima, rankings, MCTF's affinity, head-mean keys: bit-identical (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 }), fc.integer({ min: 1, max: 41 }), fc.integer({ min: 1, max: 19 }), (seed, t, c) => {
        const metric = rows(seed, t, c);
        const nA = Math.ceil(t / 2);
        const nB = Math.floor(t / 2);
        const expected = new Float64Array(nA * nB);
        REFERENCE_MERGE_KERNELS.evenOddCosines(metric, t, c, expected);
        const actual = f64(new Float64Array(nA * nB));
        fast.evenOddCosines(f32(metric), t, c, actual);
        expect(bits(actual)).toEqual(bits(expected));

        const first = seed % Math.min(3, t);
        const n = t - first;
        const pairs = new Float64Array(n * n);
        REFERENCE_MERGE_KERNELS.pairwiseCosines(metric, first, n, c, pairs);
        const pairsWasm = f64(new Float64Array(n * n));
        fast.pairwiseCosines(f32(metric), first, n, c, pairsWasm);
        const upper = (m: Float64Array) => Array.from({ length: n }, (_, i) => bits(m.subarray(i * n + i, (i + 1) * n)));
        expect(upper(pairsWasm)).toEqual(upper(pairs));

        for (const [firstRow, firstColumn] of [
          [0, 0],
          [1, 0],
          [1, 1],
        ]) {
          const best = new Float64Array(nA);
          const partner = new Int32Array(nA);
          REFERENCE_MERGE_KERNELS.rowArgmax(expected, nA, nB, firstRow, firstColumn, best, partner);
          const bestWasm = f64(new Float64Array(nA));
          const partnerWasm = i32(new Int32Array(nA));
          fast.rowArgmax(actual, nA, nB, firstRow, firstColumn, bestWasm, partnerWasm);
          expect(bits(bestWasm)).toEqual(bits(best));
          expect(Array.from(partnerWasm)).toEqual(Array.from(partner));
        }

        const pick = seededRandom(seed + 5);
        const candidates = Int32Array.from(Array.from({ length: nA }, (_, i) => i).filter(() => pick() < 0.7));
        for (const firstColumn of [0, 1]) {
          const best = new Float64Array(nB);
          const partner = new Int32Array(nB);
          REFERENCE_MERGE_KERNELS.columnArgmax(expected, nA, nB, candidates, candidates.length, firstColumn, best, partner);
          const bestWasm = f64(new Float64Array(nB + 1));
          const partnerWasm = i32(new Int32Array(nB + 1));
          fast.columnArgmax(actual, nA, nB, i32(candidates), candidates.length, firstColumn, bestWasm, partnerWasm);
          expect(bits(bestWasm.subarray(0, nB))).toEqual(bits(best));
          expect(Array.from(partnerWasm.subarray(0, nB))).toEqual(Array.from(partner));
        }

        // Maxima over special values: ties, ±0 (equal, the first one kept), −∞ and NaN (never taken).
        const special = Float64Array.from({ length: nA * nB }, () => [-Infinity, 0, -0, Number.NaN, 0.5, pick()][Math.floor(pick() * 6)]);
        const specialWasm = f64(special); // read, never written, by the maxima
        for (const firstColumn of [0, 1]) {
          const best = new Float64Array(nA);
          const partner = new Int32Array(nA);
          REFERENCE_MERGE_KERNELS.rowArgmax(special, nA, nB, 1, firstColumn, best, partner);
          const bestWasm = f64(new Float64Array(nA));
          const partnerWasm = i32(new Int32Array(nA));
          fast.rowArgmax(specialWasm, nA, nB, 1, firstColumn, bestWasm, partnerWasm);
          expect(bits(bestWasm)).toEqual(bits(best));
          expect(Array.from(partnerWasm)).toEqual(Array.from(partner));
          const columnBest = new Float64Array(nB);
          const columnPartner = new Int32Array(nB);
          REFERENCE_MERGE_KERNELS.columnArgmax(special, nA, nB, candidates, candidates.length, firstColumn, columnBest, columnPartner);
          const columnBestWasm = f64(new Float64Array(nB));
          const columnPartnerWasm = i32(new Int32Array(nB));
          fast.columnArgmax(specialWasm, nA, nB, i32(candidates), candidates.length, firstColumn, columnBestWasm, columnPartnerWasm);
          expect(bits(columnBestWasm)).toEqual(bits(columnBest));
          expect(Array.from(columnPartnerWasm)).toEqual(Array.from(columnPartner));
        }

        const info = Float64Array.from({ length: t }, () => pick());
        const specialAffinity = special.map((v, e) => (e % 7 === 3 ? Infinity : v));
        const specialAffinityWasm = f64(specialAffinity); // a copy: both kernels work in place
        REFERENCE_MERGE_KERNELS.mctfAffinity(specialAffinity, nA, nB, 1, info, info);
        fast.mctfAffinity(specialAffinityWasm, nA, nB, 1, f64(info), f64(info));
        expect(bits(specialAffinityWasm)).toEqual(bits(specialAffinity));

        const values = Float64Array.from({ length: t }, () => [-Infinity, 0.5, pick(), -pick()][Math.floor(pick() * 4)]); // ties and −∞
        const indices = Int32Array.from(Array.from({ length: t }, (_, i) => i).filter(() => pick() < 0.8)).reverse();
        const ranking = indices.slice();
        REFERENCE_MERGE_KERNELS.rankDescending(values, ranking, ranking.length);
        const rankingWasm = i32(indices);
        fast.rankDescending(f64(values), rankingWasm, indices.length);
        expect(Array.from(rankingWasm)).toEqual(Array.from(ranking));

        for (const tauSim of [1, 0, 0.5]) {
          const rand = seededRandom(seed + 3);
          const info = Float64Array.from({ length: t }, () => rand() ** 3);
          const size = Float64Array.from({ length: t }, () => (rand() < 0.5 ? 1 : rand()));
          const affinity = expected.slice();
          REFERENCE_MERGE_KERNELS.mctfAffinity(affinity, nA, nB, tauSim, info, size);
          const affinityWasm = f64(expected);
          fast.mctfAffinity(affinityWasm, nA, nB, tauSim, f64(info), f64(size));
          expect(bits(affinityWasm)).toEqual(bits(affinity));
        }

        const heads = 1 + (seed % 4);
        const cfg = { heads, qkDim: c, vDim: 1 + (seed % 5) } as ViTConfig;
        const qkv = rows(seed + 1, t, qkvLayout(cfg).stride);
        const keys = new Float32Array(t * c);
        REFERENCE_MERGE_KERNELS.headMeanKeys(qkv, cfg, t, keys);
        const keysWasm = f32(new Float32Array(t * c));
        fast.headMeanKeys(f32(qkv), cfg, t, keysWasm);
        expect(bits(keysWasm)).toEqual(bits(keys));
      }),
      { numRuns: 150 },
    );
  });

  it('column maxima with no columns write nothing, whatever the first column', () => {
    const best = f64([7]);
    const partner = i32([7]);
    fast.columnArgmax(f64([]), 0, 0, i32([]), 0, 1, best.subarray(0, 0), partner.subarray(0, 0));
    expect([best[0], partner[0]]).toEqual([7, 7]);
  });

  it('pooling a group of one row: its row, bit for bit, at extreme weights and values (where the kernel skips the division)', () => {
    const values = [0, -0, 1e-45, -3e-39, 1.17549435e-38, 0.1, -7.3, 3.4e38, -3.4028234663852886e38, 1 / 3];
    const D = values.length;
    const x = Float32Array.from(values);
    const weights = [2 ** -500, 2 ** -501, 2 ** 500, 2 ** 501, 1e-300, 0.3, 1 / 3, 0.0001, 5, 1e300];
    for (const w of weights) {
      const expected = new Float32Array(D);
      REFERENCE_MERGE_KERNELS.poolRows(x, D, Int32Array.of(0), Int32Array.of(0), Float64Array.of(w), 1, 1, new Float64Array(1), expected);
      const actual = f32(new Float32Array(D));
      fast.poolRows(f32(x), D, i32([0]), i32([0]), f64([w]), 1, 1, f64(new Float64Array(1)), actual);
      expect(bits(actual), `weight ${w}`).toEqual(bits(expected));
      if (w >= 2 ** -500 && w <= 2 ** 500) expect(Array.from(actual)).toEqual(Array.from(x, (v) => v + 0)); // the row itself (−0 as +0)
    }
  });

  it('weighted pooling, attention received and the one-step-ahead correction: bit-identical (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 13 }), (seed, t, D) => {
        const rand = seededRandom(seed);
        const x = rows(seed, t, D);
        const outRows = 1 + Math.floor(rand() * t);
        const m = t + Math.floor(rand() * 4); // entries: positions may repeat
        const positions = Int32Array.from({ length: m }, () => Math.floor(rand() * t));
        const rowOf = Int32Array.from({ length: m }, (_, e) => (e < outRows ? e : Math.floor(rand() * outRows)));
        const weights = Float64Array.from({ length: m }, () => (rand() < 0.5 ? Math.fround(1 + Math.floor(rand() * 5)) : rand() * 0.01));
        const total = new Float64Array(outRows);
        const out = new Float32Array(outRows * D);
        REFERENCE_MERGE_KERNELS.poolRows(x, D, positions, rowOf, weights, m, outRows, total, out);
        const totalWasm = f64(new Float64Array(outRows));
        const outWasm = f32(new Float32Array(outRows * D));
        fast.poolRows(f32(x), D, i32(positions), i32(rowOf), f64(weights), m, outRows, totalWasm, outWasm);
        expect(bits(totalWasm)).toEqual(bits(total));
        expect(bits(outWasm)).toEqual(bits(out));

        const heads = 1 + (seed % 3);
        const probs = Float32Array.from({ length: heads * t * t }, () => rand() / t);
        const received = new Float64Array(t);
        REFERENCE_MERGE_KERNELS.attentionReceived(probs, heads, t, received);
        const receivedWasm = f64(new Float64Array(t));
        fast.attentionReceived(f32(probs), heads, t, receivedWasm);
        expect(bits(receivedWasm)).toEqual(bits(received));

        const v = 1 + (seed % 37); // below and above the kernel's blocks of 16
        const groups = 1 + Math.floor(rand() * t);
        const tokenRow = Int32Array.from({ length: t }, (_, q) => (q < groups ? q : Math.floor(rand() * groups)));
        const fused = Int32Array.from(Array.from({ length: t }, (_, q) => q).filter(() => rand() < 0.4));
        const share = Float64Array.from({ length: t }, () => rand());
        const delta = Float32Array.from({ length: fused.length * heads * v }, () => rand() * 2 - 1);
        const correction = Float32Array.from({ length: groups * heads * v }, () => rand() - 0.5); // added to
        const correctionWasm = f32(correction);
        REFERENCE_MERGE_KERNELS.fusedAttentionCorrection(probs, heads, t, fused, fused.length, tokenRow, share, groups, delta, v, correction);
        fast.fusedAttentionCorrection(f32(probs), heads, t, i32(fused), fused.length, i32(tokenRow), f64(share), groups, f32(delta), v, correctionWasm);
        expect(bits(correctionWasm)).toEqual(bits(correction));
      }),
      { numRuns: 150 },
    );
  });

  it("PiToMe's energy, expm1 over its whole range included: bit-identical (property)", () => {
    const value = fc.oneof(
      fc.double({ min: -1, max: 1, noNaN: true }),
      fc.double({ min: -800, max: 800, noNaN: true }),
      fc.double({ min: -1e-6, max: 1e-6, noNaN: true }),
      fc.constantFrom(0, -0, -Infinity, Infinity, NaN, -0.34657359027997264, -1.0397207708399179, 709.782712893384, 1e-300),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(value, { minLength: 144, maxLength: 144 }),
        fc.double({ min: -2, max: 2, noNaN: true }),
        fc.constantFrom(1, 0, 0.5, 2),
        (n, values, margin, alpha) => {
          const cosines = new Float64Array(n * n);
          for (let i = 0; i < n; i++) for (let j = i; j < n; j++) cosines[i * n + j] = cosines[j * n + i] = values[i * 12 + j];
          const energy = new Float64Array(n);
          REFERENCE_MERGE_KERNELS.pitomeEnergy(cosines, n, margin, alpha, energy);
          const energyWasm = f64(new Float64Array(n));
          fast.pitomeEnergy(f64(cosines), n, margin, alpha, energyWasm);
          expect(bits(energyWasm)).toEqual(bits(energy));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('expm1 (one-token energies, margin 0, α 1): the bits of expm1NonPositive on 200 000 arguments over its ranges of reduction, within a float32 ulp of Math.expm1', () => {
    const rand = seededRandom(7);
    const cosine = f64([0]);
    const energy = f64([0]);
    const scales = [1e-9, 0.34, 1.04, 3, 14, 40, 800];
    const wrong: number[] = [];
    let worstUlps = 0;
    for (let k = 0; k < 200_000; k++) {
      const z = -rand() * scales[k % scales.length] * (k % 11 === 0 ? -1 : 1);
      cosine[0] = z;
      fast.pitomeEnergy(cosine, 1, 0, 1, energy);
      const expected = z > 0 ? z : expm1NonPositive(Math.fround(z));
      if (!Object.is(energy[0], expected)) wrong.push(z);
      if (z <= 0) worstUlps = Math.max(worstUlps, float32UlpsApart(expected, Math.fround(Math.expm1(Math.fround(z)))));
    }
    expect(wrong).toEqual([]);
    expect(worstUlps).toBeLessThanOrEqual(1);
    expect(worstUlps).toBeGreaterThan(0); // not Math.expm1 itself
  });

  it('ToMe, PiToMe and MCTF steps on a block: the same merged tokens, sizes and ids on both implementations (property)', () => {
    const problem = fc.record({
      seed: fc.integer({ min: 1, max: 2 ** 30 }),
      heads: fc.integer({ min: 1, max: 4 }),
      distilled: fc.boolean(),
      patches: fc.integer({ min: 12, max: 40 }),
      r: fc.integer({ min: 1, max: 8 }),
      sized: fc.boolean(),
    });
    fc.assert(
      fc.property(problem, ({ seed, heads, distilled, patches, r, sized }) => {
        const cfg = configFromDims({ depth: 2, dim: 8 * heads, heads, numClasses: 3, imageSize: 8 * Math.ceil(Math.sqrt(patches)), patchSize: 8, distilled });
        const n = Math.min(patches, cfg.imageSize ** 2 / 64) + prefixTokens(cfg);
        const rand = seededRandom(seed);
        const stride = qkvLayout(cfg).stride;
        const base = {
          config: cfg,
          model: cfg,
          block: 1,
          n,
          x: rows(seed, n, cfg.dim),
          probs: Float32Array.from({ length: heads * n * n }, () => rand() / n),
          attentionTokens: n,
          qkv: rows(seed + 2, n, stride),
          attnOut: new Float32Array(0),
          sizes: sized ? Float32Array.from({ length: n }, () => 1 + Math.floor(rand() * 3)) : null,
          tokenIds: Int32Array.from({ length: n }, (_, i) => i),
        };
        const oracleState: BlockState = { ...base, kernels: createReferenceKernels() };
        const wasmState: BlockState = { ...base, x: wasm.upload(base.x), probs: wasm.upload(base.probs), qkv: wasm.upload(base.qkv), kernels: wasm };
        const same = (a: unknown, b: unknown) => {
          const pick = (o: unknown) => {
            const t = o as { n: number; x: Float32Array; sizes: Float32Array; tokenIds: Int32Array };
            return { n: t.n, x: bits(t.x.subarray(0, t.n * cfg.dim)), sizes: bits(t.sizes), ids: Array.from(t.tokenIds) };
          };
          expect(pick(b)).toEqual(pick(a));
        };
        same(tomeMerge(oracleState, r), tomeMerge(wasmState, r));
        same(pitomeMerge(oracleState, r, 0.9 - 0.1 * (seed % 8), 1), pitomeMerge(wasmState, r, 0.9 - 0.1 * (seed % 8), 1));
        const settings = { ...MCTF_DEFAULTS, bidirectional: seed % 2 === 0 };
        const fuse = (state: BlockState) => {
          const kernels = mergeKernels(state.kernels);
          return mctfFuse(
            cfg,
            state.x,
            n,
            state.probs,
            state.sizes,
            state.tokenIds,
            Math.min(r, Math.floor((n - prefixTokens(cfg)) / 2)),
            settings,
            kernels,
            kernels.workspace(state.model),
          );
        };
        const expected = fuse(oracleState);
        const actual = fuse(wasmState);
        same({ ...expected, n: expected.tokenIds.length }, { ...actual, n: actual.tokenIds.length });
        expect(Array.from(actual.matching.sources)).toEqual(Array.from(expected.matching.sources));
        expect(bits(actual.weights)).toEqual(bits(expected.weights));
      }),
      { numRuns: 60 },
    );
  });
});
