import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { configFromDims, randomModel, seededRandom } from '../src/model/random.js';
import type { ViTConfig } from '../src/model/types.js';
import { ViTRunner, type ForwardResult } from '../src/model/vit.js';
import type { BlockState, ForwardHooks } from '../src/model/hooks.js';
import { qkvLayout } from '../src/model/types.js';
import { EVIT_BLOCKS, FUSED_TOKEN_ID, clsAttentiveness, evitHooks, evitReduce, evitTokens, fuseTokens, keepRateKnob } from '../src/prune/evit.js';
import { denseGmacs, modelGmacs } from '../src/model/gmacs.js';
import { solveBudget } from '../src/prune/budget.js';
import { calibrateLtpQuantiles, ltpHooks, ltpImportance, ltpRamp, ltpRampKnob, thresholdKeep } from '../src/prune/ltp.js';
import { calibrationRun } from '../src/prune/method.js';
import { randomDropHooks, randomDropTokens, randomSurvivors } from '../src/prune/random.js';
import { bipartiteSoftMatching, mergeWeightedAverage, tomeHooks, tomeKnobs, tomeMerge, tomeRates, tomeTokens } from '../src/prune/tome.js';

const deitT = configFromDims({ dim: 192, depth: 12, heads: 3 });
const deitS = configFromDims({ dim: 384, depth: 12, heads: 6 });

// A tiny ViT: 32×32 input, patch 4 → 64 patches + CLS = 65 tokens, width 24, 3 heads, 4 blocks.
const tiny = configFromDims({ dim: 24, depth: 4, heads: 3, imageSize: 32, patchSize: 4, numClasses: 10 });
const tinyDistilled = configFromDims({ dim: 24, depth: 4, heads: 3, imageSize: 32, patchSize: 4, numClasses: 10, distilled: true });
const kernels = createReferenceKernels();
const runner = new ViTRunner(randomModel(tiny, 3), kernels);
const distilledRunner = new ViTRunner(randomModel(tinyDistilled, 5), kernels);

function image(seed: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: 3 * 32 * 32 }, () => rand() * 4 - 2);
}
const images = [1, 2, 3, 4, 5, 6].map(image);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Run, and check the counted GMACs are those of the executed token counts. */
function run(r: ViTRunner, input: Float32Array, hooks: ForwardHooks): ForwardResult {
  const result = r.forward(input, hooks);
  expect(result.gmacs).toBe(modelGmacs(r.config, result.tokens));
  return result;
}

/** A hand-made block state (only the fields the pure reducers read). */
function blockState(cfg: ViTConfig, n: number, x: Float32Array, probs: Float32Array): BlockState {
  return {
    config: cfg,
    model: cfg,
    block: 0,
    n,
    x,
    probs,
    attentionTokens: n,
    qkv: new Float32Array(0),
    attnOut: new Float32Array(0),
    sizes: null,
    tokenIds: Int32Array.from({ length: n }, (_, i) => i),
    kernels,
  };
}

describe('ToMe (docs/algorithms.md §3)', () => {
  // §3.6: keys t0 (1,0) [CLS], t1 (0,1), t2 (1,1), t3 (0.1,1), t4 (1,0.1), t5 (−1,0); x_i = i.
  const keys = Float32Array.from([1, 0, 0, 1, 1, 1, 0.1, 1, 1, 0.1, -1, 0]);
  const x = Float32Array.from([0, 1, 2, 3, 4, 5]);

  it('worked example, r = 1: t2 merges into t3', () => {
    const m = bipartiteSoftMatching(keys, 6, 2, 1, 1);
    expect(Array.from(m.sources)).toEqual([2]);
    expect(Array.from(m.destinations)).toEqual([3]);
    expect(Array.from(m.order)).toEqual([0, 4, 1, 3, 5]);
    const merged = mergeWeightedAverage(m, x, 1, null);
    expect(Array.from(merged.x)).toEqual([0, 4, 1, 2.5, 5]);
    expect(Array.from(merged.sizes)).toEqual([1, 1, 1, 2, 1]);
  });

  it('worked example, r = 2: t2 and t4 both merge into t3', () => {
    const m = bipartiteSoftMatching(keys, 6, 2, 2, 1);
    expect(Array.from(m.sources)).toEqual([2, 4]);
    expect(Array.from(m.destinations)).toEqual([3, 3]);
    const merged = mergeWeightedAverage(m, x, 1, null);
    expect(Array.from(m.order)).toEqual([0, 1, 3, 5]);
    expect(Array.from(merged.x)).toEqual([0, 1, 3, 5]);
    expect(Array.from(merged.sizes)).toEqual([1, 1, 3, 1]);
  });

  it('worked example through a block state: head-averaged keys from qkv, merged token keeps the destination id', () => {
    const cfg = configFromDims({ dim: 4, depth: 1, heads: 2, numClasses: 2 }); // qk = v = 2 per head
    const { stride, keyOffset } = qkvLayout(cfg);
    const qkv = new Float32Array(6 * stride);
    for (let i = 0; i < 6; i++) {
      for (let c = 0; c < 2; c++) {
        const offset = c === 0 ? 0.5 : -0.3; // the heads differ, their mean is the §3.6 key
        qkv[i * stride + keyOffset(0) + c] = keys[i * 2 + c] + offset;
        qkv[i * stride + keyOffset(1) + c] = keys[i * 2 + c] - offset;
      }
    }
    const state = {
      ...blockState(
        cfg,
        6,
        Float32Array.from({ length: 24 }, (_, j) => Math.floor(j / 4)),
        new Float32Array(0),
      ),
      qkv,
    };
    const r = tomeMerge({ ...state, tokenIds: Int32Array.from([0, 11, 12, 13, 14, 15]) }, 1);
    expect(r && r.kind).toBe('replace');
    if (r && r.kind === 'replace') {
      expect(r.n).toBe(5);
      expect(Array.from(r.tokenIds)).toEqual([0, 14, 11, 13, 15]);
      expect(Array.from(r.sizes!)).toEqual([1, 1, 1, 2, 1]);
      expect(Array.from(r.x.subarray(12, 16))).toEqual([2.5, 2.5, 2.5, 2.5]);
    }
    expect(tomeMerge(state, 0)).toBeUndefined();
  });

  it('merges size-weighted, caps r, protects CLS and a distillation token', () => {
    const m = bipartiteSoftMatching(keys, 6, 2, 9, 1);
    expect(m.sources.length).toBe(2); // ⌊(6 − 1)/2⌋
    const sizes = Float32Array.from([1, 1, 2, 1, 1, 1]);
    const weighted = mergeWeightedAverage(bipartiteSoftMatching(keys, 6, 2, 1, 1), x, 1, sizes);
    expect(maxAbsDiff(weighted.x, [0, 4, 1, (2 * 2 + 3) / 3, 5])).toBeLessThan(1e-6);
    expect(Array.from(weighted.sizes)).toEqual([1, 1, 1, 3, 1]);
    // Distilled: t1 is DIST (no destination), output starts CLS, DIST.
    const d = bipartiteSoftMatching(keys, 6, 2, 2, 2);
    expect(Array.from(d.destinations)).not.toContain(1);
    expect(Array.from(d.order.subarray(0, 2))).toEqual([0, 1]);
    expect(d.sources.length).toBe(2);
  });

  it('schedules: constant, ramp (ToMe parse_r), padded list', () => {
    expect(tomeRates(12, 13)).toEqual(Array(12).fill(13));
    expect(tomeRates(12, { r: 8, inflection: 0 })).toEqual(Array(12).fill(8));
    expect(tomeRates(12, { r: 8, inflection: -1 })).toEqual([16, 14, 13, 11, 10, 8, 7, 5, 4, 2, 1, 0]);
    expect(tomeRates(12, [3, 2])).toEqual([3, 2, ...Array(10).fill(0)]);
    expect(() => tomeRates(12, 1.5)).toThrow(/integer/);
  });

  it('DeiT-S r = 13: 197 → 184 → … → 41; r = 16: the cap bites in the last block (final 11)', () => {
    const t13 = tomeTokens(deitS, 13);
    expect(t13.map((t) => t.attention)).toEqual(Array.from({ length: 12 }, (_, l) => 197 - 13 * l));
    expect(t13.map((t) => t.mlp)).toEqual(Array.from({ length: 12 }, (_, l) => 184 - 13 * l));
    expect(t13[11].mlp).toBe(41);
    const t16 = tomeTokens(deitS, 16);
    expect(t16[11]).toEqual({ attention: 21, mlp: 11 });
    expect(modelGmacs(deitS, t13).toFixed(4)).toBe('2.7027');
    // The independent implementation's DeiT-T figures (oracle-results.md).
    expect([11, 10, 4].map((r) => modelGmacs(deitT, tomeTokens(deitT, r)).toFixed(4))).toEqual(['0.8073', '0.8459', '1.0859']);
  });

  it('adds ln(size) to the logits of merged tokens in the next block (proportional attention)', () => {
    const { stride, queryOffset, keyOffset } = qkvLayout(tiny);
    let checked = false;
    const merge = tomeHooks(20);
    run(runner, images[0], {
      afterAttention(s) {
        if (s.block === 1) {
          // P[h, q, k] = softmax_k(q·k/√d + ln s_k), from the block's own queries and keys.
          const sizes = s.sizes!;
          expect(Math.max(...sizes)).toBeGreaterThanOrEqual(2);
          const n = s.n;
          let err = 0;
          let errWithoutSizes = 0;
          for (let h = 0; h < tiny.heads; h++) {
            for (let q = 0; q < n; q++) {
              const logits = Array.from({ length: n }, (_, k) => {
                let dot = 0;
                for (let c = 0; c < tiny.qkDim; c++) dot += s.qkv[q * stride + queryOffset(h) + c] * s.qkv[k * stride + keyOffset(h) + c];
                return dot / Math.sqrt(tiny.qkDim);
              });
              const softmax = (l: number[]) => {
                const e = l.map((v) => Math.exp(v - Math.max(...l)));
                const z = e.reduce((a, b) => a + b);
                return e.map((v) => v / z);
              };
              const p = s.probs.subarray((h * n + q) * n, (h * n + q + 1) * n);
              err = Math.max(err, maxAbsDiff(p, softmax(logits.map((l, k) => l + Math.log(sizes[k])))));
              errWithoutSizes = Math.max(errWithoutSizes, maxAbsDiff(p, softmax(logits)));
            }
          }
          expect(err).toBeLessThan(1e-5);
          expect(errWithoutSizes).toBeGreaterThan(1e-3);
          checked = true;
        }
        return merge.afterAttention!(s);
      },
    });
    expect(checked).toBe(true);
  });

  it('runs in the forward pass with the trajectory of tomeTokens; merged tokens keep the destination id', () => {
    for (const schedule of [5, { r: 6, inflection: -1 }, [30, 2, 0, 9]] as const) {
      const hooks = tomeHooks(schedule);
      const ids: number[][] = [];
      const r = run(runner, images[1], { afterAttention: hooks.afterAttention, afterBlock: (s) => void ids.push(Array.from(s.tokenIds)) });
      expect(r.tokens).toEqual(tomeTokens(tiny, schedule));
      for (const block of ids) {
        expect(block[0]).toBe(0);
        expect(new Set(block).size).toBe(block.length);
      }
    }
    const d = tomeHooks(12);
    const dr = run(distilledRunner, images[2], {
      afterAttention: d.afterAttention,
      afterBlock: (s) => {
        expect(Array.from(s.tokenIds.subarray(0, 2))).toEqual([0, 1]);
      },
    });
    expect(dr.tokens).toEqual(tomeTokens(tinyDistilled, 12));
  });

  it('solves a GMACs budget within 1 % on DeiT-T and DeiT-S', async () => {
    const solve = (cfg: ViTConfig, fraction: number) => solveBudget(denseGmacs(cfg), fraction, tomeKnobs(cfg));
    for (const cfg of [deitT, deitS]) {
      for (const fraction of [0.45, 0.6, 0.7, 0.8, 0.9]) {
        const s = await solve(cfg, fraction);
        expect(Math.abs(s.fraction / fraction - 1)).toBeLessThanOrEqual(0.01);
        expect(s.gmacs).toBe(modelGmacs(cfg, tomeTokens(cfg, s.settings)));
      }
    }
    expect((await solve(deitT, 0.644)).settings).toBe(11);
    await expect(solve(deitT, 0.05)).rejects.toThrow(/within 1 %/);
  });
});

describe('EViT and top-k (docs/algorithms.md §6.1)', () => {
  it('DeiT-S ρ = 0.7 with fusion: 197 / 140 / 100 / 72; top-k: 197 / 139 / 98 / 69', () => {
    const fused = evitTokens(deitS, { keepRate: 0.7, fuse: true });
    expect(fused.map((t) => t.attention)).toEqual([197, 197, 197, 197, 140, 140, 140, 100, 100, 100, 72, 72]);
    expect(fused[3].mlp).toBe(140);
    expect(modelGmacs(deitS, fused).toFixed(3)).toBe('3.029');
    const topk = evitTokens(deitS, { keepRate: 0.7, fuse: false });
    expect(topk.map((t) => t.mlp)).toEqual([197, 197, 197, 139, 139, 139, 98, 98, 98, 69, 69, 69]);
    expect(modelGmacs(deitS, topk).toFixed(3)).toBe('2.997');
    expect(modelGmacs(deitT, evitTokens(deitT, { keepRate: 0.705, fuse: false })).toFixed(4)).toBe('0.8179'); // oracle-results.md
    expect(EVIT_BLOCKS).toEqual([3, 6, 9]);
  });

  it('keeps CLS and the most attended tokens in order, fusing the rest unnormalised: Σ a_j·x_j', () => {
    const cfg = configFromDims({ dim: 2, depth: 1, heads: 2, numClasses: 2 });
    const n = 5;
    // CLS query rows of the two heads; the head mean a = [0.1, 0.3, 0.05, 0.4, 0.15].
    const probs = new Float32Array(2 * n * n);
    probs.set([0.2, 0.2, 0.1, 0.3, 0.2], 0);
    probs.set([0.0, 0.4, 0.0, 0.5, 0.1], n * n);
    const a = clsAttentiveness(probs, 2, n);
    expect(Array.from(a).map((v) => +v.toFixed(6))).toEqual([0.1, 0.3, 0.05, 0.4, 0.15]);
    const x = Float32Array.from([9, 9, 1, 2, 3, 4, 5, 6, 7, 8]); // [5, 2]
    // k = ⌈0.5·4⌉ = 2 → keep tokens 1 and 3; fuse 2 and 4: 0.05·(3, 4) + 0.15·(7, 8) = (1.2, 1.4).
    const r = evitReduce(blockState(cfg, n, x, probs), 0.5, true);
    expect(r && r.kind).toBe('replace');
    if (r && r.kind === 'replace') {
      expect(r.n).toBe(4);
      expect(Array.from(r.tokenIds)).toEqual([0, 1, 3, FUSED_TOKEN_ID]);
      expect(maxAbsDiff(r.x, [9, 9, 1, 2, 5, 6, 1.2, 1.4])).toBeLessThan(1e-6);
      expect(r.sizes).toBeNull();
    }
    expect(Array.from(fuseTokens(x, 2, a, [2, 4]))).toEqual(Array.from(Float32Array.from([1.2, 1.4])));
    const k = evitReduce(blockState(cfg, n, x, probs), 0.5, false);
    expect(k).toEqual({ kind: 'keep', indices: Int32Array.from([0, 1, 3]) });
    expect(evitReduce(blockState(cfg, n, x, probs), 1, true)).toBeUndefined();
  });

  it('runs in the forward pass with the trajectory of evitTokens; a fused token is reduced like any other', () => {
    for (const fuse of [true, false]) {
      const options = { keepRate: 0.6, fuse, blocks: [0, 1, 3] };
      let fusedSeen = 0;
      const r = run(runner, images[3], {
        ...evitHooks(options),
        afterBlock: (s) => void (fusedSeen += s.tokenIds.filter((id) => id === FUSED_TOKEN_ID).length),
      });
      expect(r.tokens).toEqual(evitTokens(tiny, options));
      expect(r.tokens.map((t) => t.mlp)).toEqual(fuse ? [1 + 39 + 1, 1 + 24 + 1, 26, 1 + 15 + 1] : [40, 25, 25, 16]);
      expect(fusedSeen > 0).toBe(fuse);
    }
  });

  it('solves a GMACs budget within 1 % on DeiT-T and DeiT-S', async () => {
    const solve = (cfg: ViTConfig, fraction: number, fuse: boolean) => solveBudget(denseGmacs(cfg), fraction, [keepRateKnob(cfg, fuse)]);
    for (const cfg of [deitT, deitS]) {
      for (const fuse of [true, false]) {
        for (const fraction of [0.5, 0.65, 0.8, 0.9]) {
          const s = await solve(cfg, fraction, fuse);
          expect(Math.abs(s.fraction / fraction - 1)).toBeLessThanOrEqual(0.01);
          expect(s.gmacs).toBe(modelGmacs(cfg, evitTokens(cfg, { keepRate: s.settings, fuse })));
        }
      }
    }
    expect((await solve(deitS, 3.029 / denseGmacs(deitS), true)).settings).toBe(0.7);
  });
});

describe('LTP-style thresholds (docs/algorithms.md §4)', () => {
  it('mean importance is exactly 1/n for any row-stochastic attention', () => {
    const stochastic = fc
      .record({ heads: fc.integer({ min: 1, max: 4 }), n: fc.integer({ min: 1, max: 24 }), seed: fc.integer() })
      .map(({ heads, n, seed }) => {
        const rand = seededRandom(seed);
        const probs = new Float32Array(heads * n * n);
        for (let row = 0; row < heads * n; row++) {
          const w = Array.from({ length: n }, () => rand() ** 3);
          const z = w.reduce((a, b) => a + b) || 1;
          w.forEach((v, k) => (probs[row * n + k] = z === 1 && v === 0 ? 1 / n : v / z));
        }
        return { heads, n, probs };
      });
    fc.assert(
      fc.property(stochastic, ({ heads, n, probs }) => {
        const s = ltpImportance(probs, heads, n);
        const mean = s.reduce((a, b) => a + b) / n;
        expect(Math.abs(mean * n - 1)).toBeLessThan(1e-6);
      }),
    );
    run(runner, images[0], {
      afterAttention(st) {
        const s = ltpImportance(st.probs, tiny.heads, st.n);
        expect(Math.abs(s.reduce((a, b) => a + b) - 1)).toBeLessThan(1e-6);
      },
    });
  });

  it('prunes exactly the tokens whose score is below the threshold, never CLS', () => {
    // One head, 4 queries; column sums / 4 = scores [0.05, 0.4, 0.2, 0.35].
    const probs = Float32Array.from([0.1, 0.5, 0.1, 0.3, 0.0, 0.4, 0.3, 0.3, 0.1, 0.3, 0.2, 0.4, 0.0, 0.4, 0.2, 0.4]);
    const s = ltpImportance(probs, 1, 4);
    expect(Array.from(s).map((v) => +v.toFixed(6))).toEqual([0.05, 0.4, 0.2, 0.35]);
    expect(Array.from(thresholdKeep(s, 4, 1, 0.3, 'absolute'))).toEqual([0, 1, 3]);
    expect(Array.from(thresholdKeep(s, 4, 1, 0.35, 'absolute'))).toEqual([0, 1, 3]); // s ≥ θ is kept
    expect(Array.from(thresholdKeep(s, 4, 1, 1.5, 'mean'))).toEqual([0, 1]); // n·s = [0.2, 1.6, 0.8, 1.4]
    expect(Array.from(thresholdKeep(s, 4, 1, 0, 'mean'))).toEqual([0, 1, 2, 3]);
  });

  it('in the forward pass, each block runs its MLP on the tokens at or above its threshold', () => {
    const thresholds = ltpRamp(tiny.depth, 2);
    expect(thresholds.theta).toEqual([0, 0.5, 1, 1.5]);
    const hooks = ltpHooks(thresholds);
    for (const input of images.slice(0, 3)) {
      const expected: number[] = [];
      const r = run(runner, input, {
        afterAttention(s) {
          const scores = ltpImportance(s.probs, tiny.heads, s.n);
          expected.push(1 + scores.filter((v, i) => i > 0 && s.n * v >= thresholds.theta[s.block]).length);
          return hooks.afterAttention!(s);
        },
      });
      expect(r.tokens.map((t) => t.mlp)).toEqual(expected);
      expect(r.tokens.slice(1).map((t) => t.attention)).toEqual(expected.slice(0, -1));
      expect(r.tokens[3].mlp).toBeLessThan(65);
    }
  });

  it('quantile calibration hits the keep fraction of every block on the calibration images', async () => {
    const keep = [1, 0.8, 0.7, 0.5];
    for (const unit of ['absolute', 'mean'] as const) {
      const thresholds = await calibrateLtpQuantiles(tiny, calibrationRun(runner, images), keep, unit);
      expect(thresholds.theta[0]).toBe(0);
      const alive = [0, 0, 0, 0];
      const kept = [0, 0, 0, 0];
      for (const input of images) {
        run(runner, input, ltpHooks(thresholds)).tokens.forEach((t, l) => {
          alive[l] += t.attention - 1;
          kept[l] += t.mlp - 1;
        });
      }
      keep.forEach((k, l) => expect(Math.abs(kept[l] / alive[l] - k)).toBeLessThanOrEqual(0.5 / alive[l]));
    }
  });

  it('ramp calibration hits a mean-GMACs budget on the calibration images', async () => {
    const calibration = calibrationRun(runner, images.slice(0, 4));
    const solve = (fraction: number) => solveBudget(denseGmacs(tiny), fraction, [ltpRampKnob(tiny, calibration)]);
    const s = await solve(0.75);
    expect(Math.abs(s.fraction / 0.75 - 1)).toBeLessThanOrEqual(0.01);
    expect(await calibration(ltpHooks(s.settings.thresholds))).toBe(s.gmacs);
    await expect(solve(0.01)).rejects.toThrow(/within 1 % .* on the calibration images/);
  });
});

describe('random drop', () => {
  it('is seeded and reproducible, keeps the prefix and the order', () => {
    const a = randomSurvivors(65, 1, 20, seededRandom(9));
    expect(Array.from(randomSurvivors(65, 1, 20, seededRandom(9)))).toEqual(Array.from(a));
    expect(Array.from(randomSurvivors(65, 1, 20, seededRandom(10)))).not.toEqual(Array.from(a));
    expect(a.length).toBe(45);
    expect(a[0]).toBe(0);
    expect(Array.from(a)).toEqual(Array.from(a).sort((p, q) => p - q));
    const d = randomSurvivors(10, 2, 8, seededRandom(1));
    expect(Array.from(d)).toEqual([0, 1]);
  });

  it('runs in the forward pass with the trajectory of randomDropTokens, the same for the same seed', () => {
    const steps = [
      { afterBlock: 0, remove: 16 },
      { afterBlock: 2, remove: 20 },
    ];
    expect(randomDropTokens(tiny, steps).map((t) => t.attention)).toEqual([65, 49, 49, 29]);
    const ids = (seed: number) => {
      const seen: number[][] = [];
      const hooks = randomDropHooks(steps, seed);
      const r = run(runner, images[4], {
        afterBlock: (s) => {
          const reduction = hooks.afterBlock!(s);
          if (reduction && reduction.kind === 'keep') seen.push(Array.from(reduction.indices, (i) => s.tokenIds[i]));
          return reduction;
        },
      });
      expect(r.tokens).toEqual(randomDropTokens(tiny, steps));
      return { seen, logits: Array.from(r.logits) };
    };
    const first = ids(42);
    expect(ids(42)).toEqual(first);
    expect(ids(43).seen).not.toEqual(first.seen);
    expect(first.seen.every((kept) => kept[0] === 0)).toBe(true);
    const distilled = run(distilledRunner, images[4], randomDropHooks(steps, 1));
    expect(distilled.tokens).toEqual(randomDropTokens(tinyDistilled, steps));
    expect(() => randomDropTokens(tiny, [{ afterBlock: 0, remove: 65 }])).toThrow(/at most the 64/);
  });
});
