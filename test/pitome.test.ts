import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configFromDims } from '../src/model/random.js';
import type { BlockState } from '../src/model/hooks.js';
import { denseGmacs, modelGmacs } from '../src/model/gmacs.js';
import { pitomeEnergy, pitomeHooks, pitomeMargins, pitomeMatching, pitomeMerge, pitomeTokens } from '../src/prune/pitome.js';
import { ScheduleError } from '../src/errors.js';
import { planPruning } from '../src/prune/registry.js';
import { tomeTokens, type TomeSchedule } from '../src/prune/tome.js';
import { deitT, handState, tiny, tinyDistilled, tinyDistilledRunner, tinyImage, tinyRunner } from './tiny-vit.js';

// Worked example: CLS + four tokens whose keys are unit vectors at 0°, 10°, 20°, 90° (tokens 1…4).
//   cosines: 1–2 0.984808, 1–3 0.939693, 2–3 0.984808, 1–4 0, 2–4 0.173648, 3–4 0.342020
//   margin 0.5, α = 1: E_i = ¼ Σ_j ELU(cos − 0.5), self included (ELU(0.5) = 0.5):
//   E1 = ¼ (0.5 + 0.484808 + 0.439693 + (e^−0.5 − 1)) = 0.257758
//   E2 = ¼ (0.484808 + 0.5 + 0.484808 + (e^−0.326352 − 1)) = 0.297792
//   E3 = ¼ (0.439693 + 0.484808 + 0.5 + (e^−0.157980 − 1)) = 0.319592
//   E4 = ¼ ((e^−0.5 − 1) + (e^−0.326352 − 1) + (e^−0.157980 − 1) + 0.5) = −0.079513
//   rank 3, 2, 1, 4. r = 1: A = {3}, B = {2}: 3 merges into 2; 1 and 4 are protected → [CLS, 1, 4, 2].
//   r = 2: A = {3, 1}, B = {2, 4}: both merge into 2 (cos 0.984808 over 0.342020 and 0) → [CLS, 2, 4].
// (ToMe on the same keys, A = {2, 4}, B = {1, 3}, merges 2 into 1; the isolated token 4 is a candidate
// there at every r, while PiToMe never offers it as long as its energy is the lowest.)
const deg = [0, 0, 10, 20, 90]; // token 0 (CLS) is not a metric row PiToMe reads
const metric = Float32Array.from(deg.flatMap((d) => [Math.cos((d * Math.PI) / 180), Math.sin((d * Math.PI) / 180)]));

describe('PiToMe energy and matching (worked example)', () => {
  it('energy E_i = mean_j ELU(cos − m) over the non-prefix tokens', () => {
    const { energy } = pitomeEnergy(metric, 5, 2, 1, 0.5, 1);
    expect(Array.from(energy).map((e) => +e.toFixed(6))).toEqual([0.257758, 0.297792, 0.319592, -0.079513]);
  });

  it('merges the 2r highest-energy tokens, alternately split, and protects the rest', () => {
    const one = pitomeMatching(metric, 5, 2, 1, 1, 0.5, 1);
    expect([Array.from(one.sources), Array.from(one.destinations), Array.from(one.order)]).toEqual([[3], [2], [0, 1, 4, 2]]);
    const two = pitomeMatching(metric, 5, 2, 2, 1, 0.5, 1);
    expect([Array.from(two.sources), Array.from(two.destinations), Array.from(two.order)]).toEqual([
      [3, 1],
      [2, 2],
      [0, 2, 4],
    ]);
  });

  it('merges size-weighted through a block state (head-mean keys from qkv); merged tokens keep the destination id', () => {
    const cfg = configFromDims({ dim: 2, depth: 1, heads: 1 });
    // qkv rows: Q (2), K (2), V (2); x_i = (i, 10 i); sizes 1, 1, 3, 1, 1
    const qkv = Float32Array.from(deg.flatMap((_, i) => [0, 0, metric[2 * i], metric[2 * i + 1], 0, 0]));
    const st = handState(cfg, 5, {
      qkv,
      x: Float32Array.from(deg.flatMap((_, i) => [i, 10 * i])),
      sizes: Float32Array.from([1, 1, 3, 1, 1]),
      tokenIds: Int32Array.from([0, 11, 12, 13, 14]),
    });
    const r = pitomeMerge(st, 1, 0.5, 1);
    expect(r).toEqual({
      kind: 'replace',
      n: 4,
      x: Float32Array.from([0, 0, 1, 10, 4, 40, 2.25, 22.5]),
      sizes: Float32Array.from([1, 1, 1, 4]),
      tokenIds: Int32Array.from([0, 11, 14, 12]),
    });
  });

  it('chooses the same merges whatever the order of the non-prefix tokens (permutation invariance)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1 << 30 }), fc.integer({ min: 1, max: 4 }), fc.double({ min: -0.2, max: 0.9, noNaN: true }), (seed, r, margin) => {
        let s = seed;
        const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
        const t = 11;
        const rows = Array.from({ length: t }, () => [rand() - 0.5, rand() - 0.5, rand() - 0.5]);
        const groups = (perm: number[]) => {
          const m = pitomeMatching(Float32Array.from(perm.flatMap((p) => rows[p])), t, 3, r, 1, margin, 1);
          const pairs = Array.from(m.sources, (a, i) => `${perm[a]}→${perm[m.destinations[i]]}`).sort();
          return { pairs, order: Array.from(m.order, (p) => perm[p]) };
        };
        const identity = Array.from({ length: t }, (_, i) => i);
        const shuffled = [0, ...identity.slice(1).sort(() => rand() - 0.5)];
        expect(groups(shuffled)).toEqual(groups(identity));
      }),
      { numRuns: 100 },
    );
  });
});

describe('PiToMe schedule and forward pass', () => {
  it('margin 0.9 − 0.8·l/L by default; constants and per-block lists too', () => {
    const m = pitomeMargins(12, { start: 0.9, slope: 0.8 });
    expect(m[0]).toBe(0.9);
    expect(m[11]).toBeCloseTo(0.9 - (0.8 * 11) / 12, 12);
    expect(pitomeMargins(3, 0.5)).toEqual([0.5, 0.5, 0.5]);
    expect(() => pitomeMargins(3, [0.5, 0.4])).toThrow(ScheduleError);
  });

  it('runs with ToMe’s token counts, CLS (and DIST) never merged, sizes summing to the tokens represented', () => {
    for (const [runner, cfg] of [
      [tinyRunner, tiny],
      [tinyDistilledRunner, tinyDistilled],
    ] as const) {
      const hooks = pitomeHooks({ r: 9 });
      const total = 64 + (cfg.distilled ? 2 : 1);
      const r = runner.forward(tinyImage(5), {
        afterAttention: hooks.afterAttention,
        afterBlock(s: BlockState) {
          expect(s.tokenIds[0]).toBe(0);
          if (cfg.distilled) expect(s.tokenIds[1]).toBe(1);
          expect(s.sizes![0]).toBe(1);
          expect(s.sizes!.reduce((a, b) => a + b)).toBe(total);
        },
      });
      expect(r.tokens).toEqual(tomeTokens(cfg, 9));
      expect(pitomeTokens(cfg, 9)).toEqual(tomeTokens(cfg, 9));
    }
  });

  it('the oracle table’s GMACs on DeiT-T, and budgets within 1 %', async () => {
    const ratio = (r: number) => (modelGmacs(deitT, pitomeTokens(deitT, r)) / denseGmacs(deitT)).toFixed(3);
    expect([ratio(11), ratio(4)]).toEqual(['0.644', '0.866']);
    for (const f of [0.62, 0.7, 0.87]) {
      const plan = await planPruning(deitT, { method: 'pitome', budget: f });
      expect(Math.abs(plan.gmacs! / denseGmacs(deitT) / f - 1)).toBeLessThanOrEqual(0.01);
      expect(plan.gmacs).toBe(modelGmacs(deitT, pitomeTokens(deitT, (plan.settings as { r: TomeSchedule }).r)));
    }
  });
});
