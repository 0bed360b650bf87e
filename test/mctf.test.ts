import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configFromDims } from '../src/model/random.js';
import type { ViTConfig } from '../src/model/types.js';
import type { BlockState, ForwardHooks } from '../src/model/hooks.js';
import { denseGmacs, modelGmacs } from '../src/model/gmacs.js';
import {
  mctf,
  mctfCappedR,
  mctfExecutedTokens,
  resolveMctfSettings,
  mctfFuse,
  mctfGmacs,
  mctfHooks,
  mctfRates,
  mctfTokens,
  outputRows,
  poolTokens,
} from '../src/prune/mctf.js';
import { attentionReceived, mctfMatching, mctfScores } from '../src/prune/mctf-matching.js';
import { ScheduleError } from '../src/errors.js';
import { planPruning } from '../src/prune/registry.js';
import { deitS, deitT, maxAbsDiff, tiny, tinyDistilled, tinyDistilledRunner, tinyImage, tinyModel, tinyRunner } from './tiny-vit.js';

// Worked example: five tokens, A = {0 (CLS), 2, 4}, B = {1, 3}.
//   metric x0 (1,0), x1 (0,1), x2 (0,1), x3 (1,1), x4 (0.6,0.8)
//   attention received ā = (0.5, 0.1, 0.1, 0.2, 0.05) → ι = min ā / ā = (0.1, 0.5, 0.5, 0.25, 1)
//   sizes s = (1, 1, 1, 1, 2) → σ = min s / s = (1, 1, 1, 1, 0.5)
// With τ = 1, 1, 1:  W_sim = (cos + 1)/2:  (2,1) 1, (2,3) 0.853553, (4,1) 0.9, (4,3) 0.994975
//   W = W_sim·ι_a·ι_b·σ_a·σ_b:  (2,1) 0.25, (2,3) 0.106694, (4,1) 0.225, (4,3) 0.124372
// r = 2, bidirectional: r₁ = r₂ = 1. Step 1: best(2) = 0.25 at 1, best(4) = 0.225 at 1 → 2 fuses into 1.
//   Step 2 (unfused A = {0, 4}, CLS excluded): best(1) = W(4,1) = 0.225, best(3) = 0.124372 → 1
//   fuses into 4, carrying 2. Output [0, 4, 3]; group {1, 2, 4} pooled with w = ā·s = 0.1, 0.1, 0.1:
//   (0.1·(0,1) + 0.1·(0,1) + 0.1·(0.6,0.8)) / 0.3 = (0.2, 0.933333), size 1 + 1 + 2 = 4
//   (size weights alone would give (0.3, 0.9)).
// Similarity alone (τ_info = τ_size = 0) fuses 2 into 1 and then 3 into 4 (0.994975 > 0.9).
const metric = Float32Array.from([1, 0, 0, 1, 0, 1, 1, 1, 0.6, 0.8]);
const received = [0.5, 0.1, 0.1, 0.2, 0.05];
const sizes = Float32Array.from([1, 1, 1, 1, 2]);
const allOne = { tauSim: 1, tauInfo: 1, tauSize: 1 };
const paper = { tauSim: 1, tauInfo: 20, tauSize: 40 };
const similarityOnly = { tauSim: 1, tauInfo: 0, tauSize: 0 };

/**
 * The paper's one-step-ahead attention, written out: columns of a group summed, rows pooled with
 * the fusion weights. P'_h[g', g] = Σ_{q→g'} w_q Σ_{k→g} P_h[q, k] / Σ_{q→g'} w_q.   probs [H, t, t] → [H, rows, rows]
 */
function fusedAttention(probs: Float32Array, heads: number, t: number, weights: ArrayLike<number>, rowOf: Int32Array, rows: number): Float64Array {
  const out = new Float64Array(heads * rows * rows);
  const total = new Float64Array(rows);
  for (let q = 0; q < t; q++) total[rowOf[q]] += weights[q];
  for (let h = 0; h < heads; h++) {
    for (let q = 0; q < t; q++) {
      for (let k = 0; k < t; k++) out[(h * rows + rowOf[q]) * rows + rowOf[k]] += (weights[q] * probs[(h * t + q) * t + k]) / total[rowOf[q]];
    }
  }
  return out;
}

describe('MCTF multi-criteria matching (worked example)', () => {
  it('scores multiply similarity, informativeness and size, each tempered by its τ', () => {
    const rows = (W: Float64Array) => [Array.from(W.subarray(2, 4)), Array.from(W.subarray(4, 6))]; // A tokens 2 and 4
    const close = (W: Float64Array, expected: number[][]) => rows(W).forEach((r, i) => r.forEach((v, j) => expect(v).toBeCloseTo(expected[i][j], 6)));
    close(mctfScores(metric, 5, 2, received, sizes, allOne), [
      [0.25, 0.106694],
      [0.225, 0.124372],
    ]);
    close(mctfScores(metric, 5, 2, received, sizes, similarityOnly), [
      [1, 0.853553],
      [0.9, 0.994975],
    ]);
    // τ_info 20, τ_size 40 (numpy): the criteria bend the scores only slightly.
    close(mctfScores(metric, 5, 2, received, sizes, paper), [
      [0.933033, 0.769265],
      [0.854408, 0.912396],
    ]);
  });

  it('bidirectional r = 2: 2 → 1, then 1 (carrying 2) → 4; output [0, 4, 3]', () => {
    const m = mctfMatching(mctfScores(metric, 5, 2, received, sizes, allOne), 5, 2, 1, true);
    expect(Array.from(m.sources)).toEqual([2, 1]);
    expect(Array.from(m.destinations)).toEqual([4, 4]);
    expect(Array.from(m.order)).toEqual([0, 4, 3]);
    const rowOf = outputRows(m, 5);
    expect(Array.from(rowOf)).toEqual([0, 1, 1, 2, 1]);
    const out = new Float32Array(3 * 2);
    const pooledSizes = poolTokens(
      metric,
      2,
      received.map((a, k) => a * sizes[k]),
      sizes,
      rowOf,
      3,
      out,
    );
    expect(Array.from(out).map((v) => +v.toFixed(6))).toEqual([1, 0, 0.2, 0.933333, 1, 1]);
    expect(Array.from(pooledSizes)).toEqual([1, 4, 1]);
  });

  it('similarity alone fuses 2 → 1 and 3 → 4; one direction sends both 2 and 4 into 1 and keeps B by position', () => {
    const sim = mctfMatching(mctfScores(metric, 5, 2, received, sizes, similarityOnly), 5, 2, 1, true);
    expect([Array.from(sim.sources), Array.from(sim.destinations), Array.from(sim.order)]).toEqual([
      [2, 3],
      [1, 4],
      [0, 4, 1],
    ]);
    const oneWay = mctfMatching(mctfScores(metric, 5, 2, received, sizes, allOne), 5, 2, 1, false);
    expect([Array.from(oneWay.sources), Array.from(oneWay.destinations), Array.from(oneWay.order)]).toEqual([
      [2, 4],
      [1, 1],
      [0, 1, 3],
    ]);
  });

  it('mctfFuse from an attention map: weights ā·s, where ā is the attention each token receives', () => {
    // Every query row ∝ ā (normalised to sum 1: the ratios, hence ι and the pooling, are those above).
    const cfg = configFromDims({ dim: 2, depth: 1, heads: 1 });
    const row = received.map((a) => a / 0.95);
    const probs = Float32Array.from({ length: 25 }, (_, i) => row[i % 5]);
    const f = mctfFuse(cfg, metric, 5, probs, sizes, Int32Array.from([0, 11, 12, 13, 14]), 2, { ...allOne, bidirectional: true });
    expect(Array.from(f.x).map((v) => +v.toFixed(6))).toEqual([1, 0, 0.2, 0.933333, 1, 1]);
    expect(Array.from(f.sizes)).toEqual([1, 4, 1]);
    expect(Array.from(f.tokenIds)).toEqual([0, 14, 13]);
  });

  it('attention received: mean over heads and queries of each key column', () => {
    // H = 2, n = 2: head 0 rows (0.6, 0.4), (0.2, 0.8); head 1 rows (1, 0), (0.5, 0.5) → column means 0.575, 0.425.
    const a = attentionReceived(Float32Array.from([0.6, 0.4, 0.2, 0.8, 1, 0, 0.5, 0.5]), 2, 2);
    expect(Array.from(a).map((v) => +v.toFixed(6))).toEqual([0.575, 0.425]);
  });

  it('one-step-ahead attention (the written-out reference below): columns of a group summed, rows pooled with the fusion weights', () => {
    // H = 1, t = 3, tokens 1 and 2 fused into row 1 with weights 1 and 3:
    //   columns summed: (0.5, 0.5), (0.2, 0.8), (0.1, 0.9); row 1 = (1·(0.2, 0.8) + 3·(0.1, 0.9)) / 4 = (0.125, 0.875).
    const P = Float32Array.from([0.5, 0.3, 0.2, 0.2, 0.6, 0.2, 0.1, 0.1, 0.8]);
    const fused = fusedAttention(P, 1, 3, [1, 1, 3], Int32Array.from([0, 1, 1]), 2);
    expect(Array.from(fused).map((v) => +v.toFixed(6))).toEqual([0.5, 0.5, 0.125, 0.875]);
  });

  it('never fuses CLS, keeps a distillation token at row 1, and pools convex combinations whose sizes add up', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 6, max: 30 }),
        fc.integer({ min: 1, max: 2 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1 << 30 }),
        (t, prefix, bidirectional, seed) => {
          let state = seed;
          const rand = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
          const c = 3;
          const x = Float32Array.from({ length: t * c }, () => rand() * 2 - 1);
          const attention = Array.from({ length: t }, () => 0.01 + rand());
          const s = Float32Array.from({ length: t }, () => 1 + Math.floor(rand() * 4));
          const r = Math.floor(rand() * (Math.floor((t - prefix) / 2) + 1));
          const m = mctfMatching(mctfScores(x, t, c, attention, s, paper), t, r, prefix, bidirectional);
          expect(m.order.length).toBe(t - r);
          expect(new Set([...m.order, ...m.sources]).size).toBe(t);
          for (let p = 0; p < prefix; p++) expect(m.order[p]).toBe(p);
          const survivors = new Set(m.order);
          m.destinations.forEach((d) => expect(survivors.has(d)).toBe(true));
          for (let p = 0; p < prefix; p++) expect(Array.from(m.destinations)).not.toContain(p);
          const rowOf = outputRows(m, t);
          const out = new Float32Array((t - r) * c);
          const pooled = poolTokens(
            x,
            c,
            attention.map((a, k) => a * s[k]),
            s,
            rowOf,
            t - r,
            out,
          );
          expect(pooled.reduce((a, b) => a + b)).toBe(s.reduce((a, b) => a + b));
          for (let g = 0; g < t - r; g++) {
            for (let d = 0; d < c; d++) {
              const members = Array.from({ length: t }, (_, k) => k)
                .filter((k) => rowOf[k] === g)
                .map((k) => x[k * c + d]);
              expect(out[g * c + d]).toBeGreaterThanOrEqual(Math.min(...members) - 1e-6);
              expect(out[g * c + d]).toBeLessThanOrEqual(Math.max(...members) + 1e-6);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('MCTF schedule and GMACs', () => {
  it('spreads a fractional r over blocks 2…12 by rounding the running total', () => {
    expect(mctfRates(12, { r: 12.6 })).toEqual([0, 13, 12, 13, 12, 13, 13, 12, 13, 12, 13, 13]);
    expect(mctfRates(12, { r: 4.55 })).toEqual([0, 5, 4, 5, 4, 5, 4, 5, 4, 5, 5, 4]);
    expect(mctfRates(12, { r: 16 })).toEqual([0, ...Array(11).fill(16)]);
    expect(mctfRates(12, { r: 3, layers: [0, 5], oneStepAhead: false })).toEqual([3, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0]);
  });

  it('caps r at ⌊(t − prefix)/2⌋ and at t − 10 tokens left', () => {
    expect([mctfCappedR(16, 197, 1), mctfCappedR(16, 20, 1), mctfCappedR(16, 12, 1), mctfCappedR(4, 9, 1)]).toEqual([16, 9, 2, 0]);
  });

  it('counts Q, K and QKᵀ on the tokens before fusion, the rest after it: the oracle table’s ratios on DeiT-T', () => {
    const ratio = (s: Parameters<typeof mctfGmacs>[1]) => (mctfGmacs(deitT, s) / denseGmacs(deitT)).toFixed(3);
    expect([ratio({ r: 12.6 }), ratio({ r: 4.55 }), ratio({ r: 14.5, oneStepAhead: false }), ratio({ r: 5, oneStepAhead: false })]).toEqual([
      '0.644',
      '0.866',
      '0.646',
      '0.873',
    ]);
    const tokens = mctfTokens(deitT, { r: 12.6 });
    expect(tokens[0]).toEqual({ attention: 197, values: 197, mlp: 197 });
    expect(tokens[1]).toEqual({ attention: 197, values: 184, mlp: 184 });
    expect(tokens[11].mlp).toBe(197 - 139);
  });

  it('the registry counts what the forward pass executes: one-step-ahead r 12.6 runs 0.654 × dense on DeiT-T, where the method counts 0.644', async () => {
    const executed = (s: Parameters<typeof mctfExecutedTokens>[1]) => (modelGmacs(deitT, mctfExecutedTokens(deitT, s)) / denseGmacs(deitT)).toFixed(3);
    expect([executed({ r: 12.6 }), executed({ r: 4.55 }), executed({ r: 14.5, oneStepAhead: false })]).toEqual(['0.654', '0.870', '0.646']);
    const settings = { r: 12.6, layers: null, tauSim: 1, tauInfo: 20, tauSize: 40 };
    expect(((await mctf.plan(deitT, { settings })).gmacs! / denseGmacs(deitT)).toFixed(3)).toBe('0.654');
    const planned = await mctf.plan(deitT, { budget: 0.65 });
    expect(Math.abs(planned.gmacs! / denseGmacs(deitT) / 0.65 - 1)).toBeLessThanOrEqual(0.01);
    expect((planned.settings as { r: number }).r).toBeGreaterThan(12); // ≈ 12.9: more fusion than the count alone would need
  });

  it('plans a GMACs budget within 1 % on DeiT-T and DeiT-S, with r on a 0.01 grid (planPruning, the one solver)', async () => {
    for (const cfg of [deitT, deitS]) {
      for (const f of [0.62, 0.7, 0.87, 0.95]) {
        for (const oneStepAhead of [true, false]) {
          const plan = await planPruning(cfg, { method: 'mctf', budget: f, options: { 'one-step-ahead': oneStepAhead } });
          const { r } = plan.settings as { r: number };
          expect(Math.abs(plan.gmacs! / denseGmacs(cfg) / f - 1)).toBeLessThanOrEqual(0.01);
          expect(Math.round(r * 100)).toBeCloseTo(r * 100, 9);
          expect(plan.gmacs).toBe(modelGmacs(cfg, mctfExecutedTokens(cfg, { r, oneStepAhead })));
        }
      }
    }
    await expect(planPruning(deitT, { method: 'mctf', budget: 0.05 })).rejects.toThrow(ScheduleError);
  });

  it('fuses in the listed blocks, the first one included (its input is the embedding), in increasing order', () => {
    expect(mctfTokens(tinyModel.config, { r: 4, layers: [0, 1] }).map((t) => t.mlp)).toEqual([61, 57, 57, 57, 57, 57]);
    const result = tinyRunner.forward(tinyImage(4), mctfHooks({ r: 4, layers: [0, 1] }));
    expect(result.tokens).toEqual(mctfExecutedTokens(tinyModel.config, { r: 4, layers: [0, 1] }));
    expect(() => resolveMctfSettings(tinyModel.config.depth, { layers: [2, 1] })).toThrow(/increasing/);
    expect(() => resolveMctfSettings(tinyModel.config.depth, { layers: [0, 9] })).toThrow(ScheduleError);
  });
});

/** LN(x)·γ + β per row, in float64.  x [rows, D] */
function layerNorm(x: ArrayLike<number>, rows: number, D: number, gamma: Float32Array, beta: Float32Array, eps: number): Float64Array {
  const out = new Float64Array(rows * D);
  for (let i = 0; i < rows; i++) {
    let mean = 0;
    for (let d = 0; d < D; d++) mean += x[i * D + d] / D;
    let variance = 0;
    for (let d = 0; d < D; d++) variance += (x[i * D + d] - mean) ** 2 / D;
    for (let d = 0; d < D; d++) out[i * D + d] = ((x[i * D + d] - mean) / Math.sqrt(variance + eps)) * gamma[d] + beta[d];
  }
  return out;
}

/** The block's attention sublayer on fused tokens, written out: x' + proj(P' · V(LN1(x'))). */
function expectedOneStepAhead(cfg: ViTConfig, block: number, xFused: Float32Array, rows: number, P: Float64Array): Float64Array {
  const w = tinyModel.weights.blocks[block];
  const { dim: D, heads: H, qkDim, vDim } = cfg;
  const normed = layerNorm(xFused, rows, D, w.norm1.weight, w.norm1.bias, cfg.eps);
  const values = new Float64Array(rows * H * vDim); // V rows of qkv follow Q and K
  for (let i = 0; i < rows; i++) {
    for (let o = 0; o < H * vDim; o++) {
      const row = 2 * H * qkDim + o;
      let sum = w.qkv.bias[row];
      for (let d = 0; d < D; d++) sum += normed[i * D + d] * w.qkv.weight[row * D + d];
      values[i * H * vDim + o] = sum;
    }
  }
  const attended = new Float64Array(rows * H * vDim);
  for (let h = 0; h < H; h++) {
    for (let q = 0; q < rows; q++) {
      for (let k = 0; k < rows; k++) {
        for (let c = 0; c < vDim; c++) attended[q * H * vDim + h * vDim + c] += P[(h * rows + q) * rows + k] * values[k * H * vDim + h * vDim + c];
      }
    }
  }
  const out = new Float64Array(rows * D);
  for (let i = 0; i < rows; i++) {
    for (let o = 0; o < D; o++) {
      let sum = w.proj.bias[o];
      for (let c = 0; c < H * vDim; c++) sum += attended[i * H * vDim + c] * w.proj.weight[o * H * vDim + c];
      out[i * D + o] = xFused[i * D + o] + sum;
    }
  }
  return out;
}

describe('MCTF in the forward pass', () => {
  it('one-step-ahead: fuses the block input and attends with the fused attention, from the block’s own weights', () => {
    const settings = { r: 6 };
    const hooks = mctfHooks(settings);
    let expected: Float64Array | null = null;
    let checked = 0;
    const wrapped: ForwardHooks = {
      beforeProjection(state) {
        const input = Float32Array.from(state.x.subarray(0, state.n * tiny.dim)); // the block's input: nothing projected yet
        const result = hooks.beforeProjection!(state);
        if (result && result.kind === 'replace') {
          const f = mctfFuse(state.config, input, state.n, state.probs, state.sizes, state.tokenIds, mctfRates(tiny.depth, settings)[state.block], {
            ...paper,
            bidirectional: true,
          });
          const rows = f.tokenIds.length;
          expected = expectedOneStepAhead(state.config, state.block, f.x, rows, fusedAttention(state.probs, tiny.heads, state.n, f.weights, f.rowOf, rows));
          expect(Array.from(result.tokenIds)).toEqual(Array.from(f.tokenIds));
        }
        return result;
      },
      afterAttention(state) {
        // the runner has projected the fused attention output: x' + proj(o')
        if (expected) expect(maxAbsDiff(state.x.subarray(0, state.n * tiny.dim), expected)).toBeLessThan(1e-4);
        if (expected) checked++;
        expected = null;
      },
    };
    const r = tinyRunner.forward(tinyImage(1), wrapped);
    expect(checked).toBe(tiny.depth - 1);
    expect(r.tokens).toEqual(mctfExecutedTokens(tiny, settings));
  });

  it('keeps CLS (and DIST) unfused and sizes summing to the tokens represented, in both placements', () => {
    for (const oneStepAhead of [true, false]) {
      for (const [runner, cfg] of [
        [tinyRunner, tiny],
        [tinyDistilledRunner, tinyDistilled],
      ] as const) {
        const settings = { r: 7.5, oneStepAhead };
        const hooks = mctfHooks(settings);
        const seen: BlockState[] = [];
        const total = 64 + (cfg.distilled ? 2 : 1);
        const check = (s: BlockState) => {
          expect(s.tokenIds[0]).toBe(0);
          if (cfg.distilled) expect(s.tokenIds[1]).toBe(1);
          const sz = s.sizes ?? new Float32Array(s.n).fill(1);
          expect(sz[0]).toBe(1);
          expect(sz.reduce((a, b) => a + b)).toBe(total);
          expect(new Set(s.tokenIds).size).toBe(s.n);
          seen.push(s);
        };
        const result = runner.forward(tinyImage(2), {
          beforeProjection: (s) => hooks.beforeProjection?.(s),
          afterBlock: (s) => {
            check(s);
            return hooks.afterBlock?.(s);
          },
        });
        expect(result.tokens).toEqual(mctfExecutedTokens(cfg, settings));
        expect(seen.length).toBe(cfg.depth);
      }
    }
  });

  it('fuses nothing where r caps to 0, and the logits are then the dense ones', () => {
    const input = tinyImage(3);
    const dense = tinyRunner.forward(input);
    const none = tinyRunner.forward(input, mctfHooks({ r: 0 }));
    expect(maxAbsDiff(none.logits, dense.logits)).toBe(0);
  });
});
