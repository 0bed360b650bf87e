import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configFromDims } from '../src/model/random.js';
import type { BlockState } from '../src/model/hooks.js';
import { denseGmacs, modelGmacs } from '../src/model/gmacs.js';
import { pptHooks, pptImportance, pptReduce, pptTokens, unbiasedVariance, type PptDecision } from '../src/prune/ppt.js';
import { ScheduleError } from '../src/errors.js';
import { planPruning } from '../src/prune/registry.js';
import { tomeMerge } from '../src/prune/tome.js';
import { deitS, deitT, handState, tiny, tinyImage, tinyRunner } from './tiny-vit.js';

// Worked example: H = 2 heads of width 1, CLS + 4 patches.
//   CLS attention rows: head 0 (0.2, 0.1, 0.3, 0.2, 0.2), head 1 (0.4, 0.2, 0.1, 0.1, 0.2)
//   → Σ_h P_h[0, j] for patches 1…4: 0.3, 0.4, 0.3, 0.4
//   values (all heads): v1 (1, 0), v2 (0, 2), v3 (1, 0), v4 (0.3, 0.4) → ‖v‖ = 1, 2, 1, 0.5
//   s = 0.3, 0.8, 0.3, 0.2 (Σ 1.6) → ŝ = 0.1875, 0.5, 0.1875, 0.125; mean 0.25
//   unbiased variance = (0.0625² + 0.25² + 0.0625² + 0.125²) / 3 = 0.0859375 / 3 = 0.028645833…
//   threshold 0.02 → prune r = 1: keep CLS, then by decreasing ŝ: 2, 1, 3 (1 before 3: tie, lower
//   position first); 4 goes. Threshold 0.03 → pool (a ToMe step).
const cfg = configFromDims({ dim: 2, depth: 1, heads: 2 });
const n = 5;
const probs = new Float32Array(2 * n * n);
probs.set([0.2, 0.1, 0.3, 0.2, 0.2], 0);
probs.set([0.4, 0.2, 0.1, 0.1, 0.2], n * n);
const values = [
  [0, 0],
  [1, 0],
  [0, 2],
  [1, 0],
  [0.3, 0.4],
];
const keys = [
  [1, 0],
  [0, 1],
  [1, 1],
  [0.1, 1],
  [1, 0.1],
]; // per token, both heads (used by the pooling branch)
// qkv row: Q (2 heads × 1), K (2 × 1), V (2 × 1)
const qkv = Float32Array.from(values.flatMap((v, i) => [0, 0, ...keys[i], ...v]));
const state = handState(cfg, n, { probs, qkv, x: Float32Array.from({ length: n * 2 }, (_, i) => i), tokenIds: Int32Array.from([0, 21, 22, 23, 24]) });

describe('PPT importance and decision (worked example)', () => {
  it('ŝ = CLS attention summed over heads × value norm, normalised over the patches; unbiased variance', () => {
    const s = pptImportance(probs, qkv, cfg, n);
    expect(Array.from(s.subarray(1)).map((v) => +v.toFixed(6))).toEqual([0.1875, 0.5, 0.1875, 0.125]);
    expect(unbiasedVariance(s, 1, n)).toBeCloseTo(0.0859375 / 3, 8);
  });

  it('prunes the least important when the variance reaches the threshold, keeping them by decreasing ŝ', () => {
    const step = pptReduce(state, 1, 0.02)!;
    expect(step.decision.pruned).toBe(true);
    expect(step.reduction).toEqual({ kind: 'keep', indices: Int32Array.from([0, 2, 1, 3]) });
    expect(Array.from(step.decision.removed)).toEqual([24]);
    const two = pptReduce(state, 2, 0.02)!;
    expect(two.reduction).toEqual({ kind: 'keep', indices: Int32Array.from([0, 2, 1]) });
  });

  it('pools by one ToMe step below the threshold', () => {
    const step = pptReduce(state, 1, 0.03)!;
    expect(step.decision.pruned).toBe(false);
    expect(step.reduction).toEqual(tomeMerge(state, 1));
    expect(step.decision.removed.length).toBe(1);
  });

  it('caps r at ⌊(t − prefix)/2⌋ and does nothing at r = 0', () => {
    expect(pptReduce(state, 9, 0)!.reduction).toEqual({ kind: 'keep', indices: Int32Array.from([0, 2, 1]) });
    expect(pptReduce(state, 0, 0)).toBeNull();
  });

  it('prunes the same tokens whatever the order of the patches (permutation invariance)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1 << 30 }), fc.integer({ min: 1, max: 3 }), (seed, r) => {
        let s = seed;
        const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
        const m = 8; // patches
        const t = m + 1;
        const cls = Array.from({ length: 2 }, () => Array.from({ length: t }, () => rand()));
        const v = Array.from({ length: t }, () => [rand(), rand()]);
        const build = (perm: number[]): BlockState => {
          const p = new Float32Array(2 * t * t);
          cls.forEach((row, h) => perm.forEach((src, j) => (p[h * t * t + j] = row[src])));
          const q = Float32Array.from(perm.flatMap((src) => [0, 0, 0, 0, ...v[src]]));
          return handState(cfg, t, { probs: p, qkv: q, tokenIds: Int32Array.from(perm) });
        };
        const identity = Array.from({ length: t }, (_, i) => i);
        const shuffled = [0, ...identity.slice(1).sort(() => rand() - 0.5)];
        const removed = (st: BlockState) => Array.from(pptReduce(st, r, 0)!.decision.removed).sort();
        expect(removed(build(shuffled))).toEqual(removed(build(identity)));
      }),
      { numRuns: 100 },
    );
  });
});

describe('PPT schedule and forward pass', () => {
  it('reduces at blocks 4, 7, 10 (pp_loc_list 3 6 9): the oracle table’s GMACs on DeiT-T', () => {
    const ratio = (r: number) => (modelGmacs(deitT, pptTokens(deitT, { r })) / denseGmacs(deitT)).toFixed(3);
    expect([ratio(48), ratio(17)]).toEqual(['0.648', '0.870']);
    const t = pptTokens(deitT, { r: 48 });
    expect(t.slice(2, 5)).toEqual([
      { attention: 197, mlp: 197 },
      { attention: 197, mlp: 149 },
      { attention: 149, mlp: 149 },
    ]);
    expect(t[11]).toEqual({ attention: 53, mlp: 53 });
  });

  it('runs with the token counts of pptTokens in both branches, CLS first, sizes of the survivors kept', () => {
    for (const threshold of [0, Infinity]) {
      const settings = { r: 9, blocks: [1, 3, 4], threshold };
      const decisions: PptDecision[] = [];
      const hooks = pptHooks(settings, { onLayer: (d) => decisions.push(d) });
      const totals: number[] = [];
      const r = tinyRunner.forward(tinyImage(4), {
        afterAttention: hooks.afterAttention,
        afterBlock(s) {
          expect(s.tokenIds[0]).toBe(0);
          totals.push((s.sizes ?? new Float32Array(s.n).fill(1)).reduce((a, b) => a + b));
        },
      });
      expect(r.tokens).toEqual(pptTokens(tiny, settings));
      expect(decisions.map((d) => d.pruned)).toEqual([true, true, true].map(() => threshold === 0));
      // Pooling keeps every token represented; pruning drops 9 tokens of size 1 at block 2, then tokens
      // whose sizes stay 1 (nothing was merged).
      expect(totals).toEqual(threshold === 0 ? [65, 56, 56, 47, 38, 38] : Array(6).fill(65));
    }
  });

  it('plans a GMACs budget within 1 % on DeiT-T and DeiT-S (planPruning, the one solver)', async () => {
    for (const c of [deitT, deitS]) {
      for (const f of [0.62, 0.7, 0.78, 0.87, 0.95]) {
        const plan = await planPruning(c, { method: 'ppt', budget: f });
        expect(Math.abs(plan.gmacs! / denseGmacs(c) / f - 1)).toBeLessThanOrEqual(0.01);
        expect(plan.gmacs).toBe(modelGmacs(c, pptTokens(c, plan.settings as { r: number | number[] })));
      }
    }
    await expect(planPruning(deitT, { method: 'ppt', budget: 0.3 })).rejects.toThrow(ScheduleError);
  });

  it('checks its settings', () => {
    expect(() => pptTokens(deitT, { blocks: [3, 12] })).toThrow(ScheduleError);
    expect(() => pptTokens(deitT, { r: [10, 20] })).toThrow(/one r per listed block/);
    expect(() => pptTokens(deitT, { r: 1.5 })).toThrow(/integer/);
  });
});
