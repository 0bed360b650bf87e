import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { writeCalibrationPngs } from './calibration-pngs.js';
import { runCli as run } from './run-cli.js';
import { createKernels } from '../src/kernels/index.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { loadModelFolder, saveModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel, seededRandom } from '../src/model/random.js';
import type { ViTConfig, ViTModel } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import {
  allocateWidths,
  channelMacs,
  choleskySolve,
  eliminateChannels,
  fitLogitScale,
  fitQkBasis,
  fitQueryMap,
  fitValueBases,
  fitValueBasis,
  pruneChannels,
  refitProjection,
  RefitStatistics,
  selectChannels,
  shrinkConfig,
  similarityWeights,
  symmetricEigen,
  type BlockChannelScores,
  type ChannelPruningOptions,
} from '../src/prune/channels.js';
import { savePrunedModel } from '../src/prune/channels-save.js';
import { modelGemmShapes } from '../src/eval/bench.js';
import { compensateBlocks } from '../src/prune/channels-compensate.js';
import { blockMacs, denseGmacs } from '../src/model/gmacs.js';
import { planPruning } from '../src/prune/registry.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

// A tiny ViT: 32×32 input, patch 8 → 16 patches + CLS, width 24, 3 heads of 8.
const cfg = configFromDims({ dim: 24, depth: 2, heads: 3, imageSize: 32, patchSize: 8, numClasses: 10 });
const model = randomModel(cfg, 11);
const images = Array.from({ length: 8 }, (_, m) =>
  Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * (0.05 + 0.013 * m) + m) + 0.5 * Math.cos(i * 0.011 * (m + 1))),
);
const reference = createReferenceKernels();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-channels-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const prune = (opts: ChannelPruningOptions, m: ViTModel = model) => pruneChannels(m, reference, images.slice(0, 6), opts);

function rows(w: Float32Array, inFeatures: number, first: number, count: number): Float32Array[] {
  return Array.from({ length: count }, (_, r) => w.subarray((first + r) * inFeatures, (first + r + 1) * inFeatures));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Hand count of one dense block (§5.3 step 6): n·D·(2H·qk′ + H·v′) + n²·H·(qk′ + v′) + n·H·v′·D + n·2·D·mlp. */
function handBlockMacs(c: ViTConfig, n: number): number {
  const { dim: D, heads: H, qkDim: qk, vDim: v, mlpDim: mlp } = c;
  return n * D * (2 * H * qk + H * v) + n * n * H * (qk + v) + n * H * v * D + n * 2 * D * mlp;
}

describe('channel pruning of attention', () => {
  it('ratio 0 gives a model whose logits equal the original', () => {
    const result = prune({ ratio: 0 });
    expect(result.model.config.qkDim).toBe(8);
    expect(result.model.config.vDim).toBe(8);
    const dense = new ViTRunner(model, reference);
    const pruned = new ViTRunner(result.model, reference);
    for (const image of images) expect(Array.from(pruned.forward(image).logits)).toEqual(Array.from(dense.forward(image).logits));
    expect(result.gmacsAfter).toBe(result.gmacsBefore);
  });

  it.each(['reconstruction', 'score'] as const)('keeps the same width in every head of every block (%s selection)', (selection) => {
    const result = prune({ ratio: 0.25, selection, qkScore: 'attention-difference' });
    const { qkDim, vDim, heads: H, dim: D } = result.model.config;
    expect([qkDim, vDim]).toEqual([6, 6]);
    for (const [b, blk] of result.model.weights.blocks.entries()) {
      expect(blk.qkv.outFeatures).toBe(2 * H * 6 + H * 6);
      expect(blk.qkv.weight.length).toBe((2 * H * 6 + H * 6) * D);
      expect(blk.proj.inFeatures).toBe(H * 6);
      expect(blk.proj.weight.length).toBe(D * H * 6);
      for (let h = 0; h < H; h++) {
        expect(result.selection.qk[b][h].length).toBe(6);
        expect(result.selection.v[b][h].length).toBe(6);
        expect(new Set(result.selection.qk[b][h]).size).toBe(6);
      }
    }
  });

  it.each(['reconstruction', 'score'] as const)('q and k keep the same channel indices (%s selection)', (selection) => {
    // Without the q/k basis and the query refit, head h's Q rows are γ_h times the original Q rows of the kept
    // indices and its K rows are the original K rows of the same indices.
    const result = prune({ ratio: 0.25, selection, qkBasis: false, queryRefit: false, valueBasis: false });
    const { heads: H, qkDim: d, vDim: dv, dim: D } = cfg;
    for (const [b, blk] of result.model.weights.blocks.entries()) {
      const original = model.weights.blocks[b].qkv;
      const alpha = result.blocks[b].logitScale!;
      expect(alpha).toHaveLength(H);
      for (let h = 0; h < H; h++) {
        const kept = Array.from(result.selection.qk[b][h]);
        const gamma = alpha[h] * Math.sqrt(6 / 8);
        const q = rows(blk.qkv.weight, D, h * 6, 6);
        const k = rows(blk.qkv.weight, D, H * 6 + h * 6, 6);
        kept.forEach((c, i) => {
          expect(Array.from(k[i])).toEqual(Array.from(rows(original.weight, D, H * d + h * d + c, 1)[0]));
          const qOriginal = rows(original.weight, D, h * d + c, 1)[0];
          expect(
            maxAbsDiff(
              q[i],
              qOriginal.map((x) => x * gamma),
            ),
          ).toBeLessThan(1e-6);
          expect(blk.qkv.bias[h * 6 + i]).toBeCloseTo(original.bias[h * d + c] * gamma, 6);
        });
        const keptV = Array.from(result.selection.v[b][h]);
        const v = rows(blk.qkv.weight, D, 2 * H * 6 + h * 6, 6);
        keptV.forEach((c, i) => expect(Array.from(v[i])).toEqual(Array.from(rows(original.weight, D, 2 * H * d + h * dv + c, 1)[0])));
      }
    }
  });

  it('the refit never increases the calibration reconstruction error', () => {
    for (const opts of [{}, { selection: 'score' as const }, { valueBasis: false }, { queryRefit: false, logitScale: false }, { ridge: 10 }]) {
      const result = prune({ ratio: 0.4, ...opts });
      for (const b of result.blocks) {
        expect(b.reconstructionBefore).not.toBeNull();
        expect(b.reconstructionAfter!).toBeLessThanOrEqual(b.reconstructionBefore!);
      }
    }
    const off = prune({ ratio: 0.4, refit: false });
    for (const b of off.blocks) expect(b.reconstructionAfter).toBe(b.reconstructionBefore);
  });

  it('refitProjection: the ridge towards W₀ cannot reconstruct worse than W₀, whatever λ', () => {
    const rand = seededRandom(5);
    const k = 5;
    const D = 4;
    const stats = new RefitStatistics(k, D);
    const z = Float32Array.from({ length: 40 * k }, () => rand() * 2 - 1);
    const y = Float32Array.from({ length: 40 * D }, () => rand() * 2 - 1);
    stats.add(z, y, 40);
    const w0 = Float32Array.from({ length: D * k }, () => rand() - 0.5);
    const b0 = Float32Array.from({ length: D }, () => rand() - 0.5);
    for (const ridge of [0, 1e-6, 1e-2, 1, 100]) {
      const fit = refitProjection(stats, w0, b0, ridge);
      expect(fit.errorAfter).toBeLessThanOrEqual(fit.errorBefore);
    }
    // λ → 0 is ordinary least squares: the residual is orthogonal to the inputs.
    const ols = refitProjection(stats, w0, b0, 0);
    for (let o = 0; o < D; o++) {
      for (let i = 0; i <= k; i++) {
        let dot = 0;
        for (let r = 0; r < 40; r++) {
          let pred = ols.bias[o];
          for (let j = 0; j < k; j++) pred += ols.weight[o * k + j] * z[r * k + j];
          dot += (y[r * D + o] - pred) * (i < k ? z[r * k + i] : 1);
        }
        expect(Math.abs(dot)).toBeLessThan(1e-4);
      }
    }
  });

  it('a pruned model round-trips through save and load bit-exactly', () => {
    const result = prune({ ratio: 0.25 });
    const dir = path.join(tmp, 'pruned');
    savePrunedModel(dir, result.model, { ...result.description, calibration: { images: 6 } });
    const loaded = loadModelFolder(dir);
    expect(loaded.config.qkDim).toBe(6);
    expect(loaded.config.vDim).toBe(6);
    const { labels, descriptions, ...rest } = result.model.config;
    expect(loaded.config).toMatchObject(rest);
    result.model.weights.blocks.forEach((blk, b) => {
      const got = loaded.weights.blocks[b];
      for (const name of ['qkv', 'proj', 'fc1', 'fc2'] as const) {
        expect(Buffer.from(got[name].weight.buffer, got[name].weight.byteOffset, got[name].weight.byteLength)).toEqual(
          Buffer.from(blk[name].weight.buffer, blk[name].weight.byteOffset, blk[name].weight.byteLength),
        );
        expect(Array.from(got[name].bias)).toEqual(Array.from(blk[name].bias));
      }
    });
    const a = new ViTRunner(result.model, reference).forward(images[7]).logits;
    const b = new ViTRunner(loaded, reference).forward(images[7]).logits;
    expect(Array.from(b)).toEqual(Array.from(a));
    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(config.vitprune).toMatchObject({ qkDim: 6, vDim: 6 });
    expect(config.pruned).toMatchObject({
      method: 'attention-channels',
      ratio: 0.25,
      widths: [
        { qkDim: 6, vDim: 6 },
        { qkDim: 6, vDim: 6 },
      ],
      calibration: { images: 6 },
    });
    expect(config.pruned.blocks).toHaveLength(2);
    expect(config.pruned.blocks[0]).toMatchObject({ qk: null, v: null }); // bases, not kept channels
    expect(config.pruned.blocks[0].logitScale).toHaveLength(3);
  });

  it('counts the GMACs of the pruned model as the hand formula', () => {
    const result = prune({ ratio: 0.25 });
    const c = result.model.config;
    const n = 17;
    const hand = (16 * 3 * 8 * 8 * 24 + 24 * 10 + 2 * handBlockMacs(c, n)) / 1e9;
    expect(result.gmacsAfter).toBeCloseTo(hand, 15);
    expect(new ViTRunner(result.model, reference).forward(images[0]).gmacs).toBeCloseTo(hand, 15);

    // DeiT-T with 25 % of the q/k and v channels removed (qk′ = v′ = 48), numbers written out.
    const deit = configFromDims({ dim: 192, depth: 12, heads: 3, qkDim: 48, vDim: 48 });
    const block = 197 * 192 * (2 * 3 * 48 + 3 * 48) + 197 * 197 * 3 * (48 + 48) + 197 * 3 * 48 * 192 + 197 * 2 * 192 * 768;
    expect(blockMacs(deit, { attention: 197, mlp: 197 })).toBe(block);
    expect(denseGmacs(deit)).toBeCloseTo((196 * 768 * 192 + 192 * 1000 + 12 * block) / 1e9, 12);
    expect(denseGmacs(configFromDims({ dim: 192, depth: 12, heads: 3 }))).toBeCloseTo(1.2537, 4);
  });

  it('blocks of different widths: GMACs by the hand formula per block, bit-exact save and load, both backends agree', async () => {
    const scores = prune({ ratio: 0.25, allocator: 'uniform' }).scores;
    // Make block 1's v channels nearly worthless so the greedy allocator takes them there.
    const skewed = scores.map((s, b) => ({ ...s, v: b === 1 ? s.v.map((x) => x * 1e-6) : s.v }));
    const widths = allocateWidths(cfg, skewed, 0.25, 'greedy');
    expect(widths[0]).not.toEqual(widths[1]);
    const selection = selectChannels(cfg, skewed, widths);
    const embedder = new ViTRunner(model, reference);
    const result = compensateBlocks(
      model,
      embedder,
      images.slice(0, 6).map((image) => embedder.embed(image).slice()),
      selection,
      {
        qkBasis: true,
        queryRefit: true,
        valueBasis: true,
        logitScale: true,
        refit: true,
        ridge: 1e-3,
        logitScaleImages: 4,
      },
    );
    const pruned: ViTModel = { config: shrinkConfig(cfg, widths), weights: { ...model.weights, blocks: result.blocks }, source: 'test' };
    expect(pruned.config.blockWidths).toEqual(widths);
    const H = cfg.heads;
    expect(modelGemmShapes(pruned.config, 17).filter((g) => g.name.startsWith('qkv'))).toEqual(
      widths.map((w, b) => ({ name: `qkv (block ${b + 1})`, m: 17, n: 2 * H * w.qkDim + H * w.vDim, k: 24 })),
    );
    const n = 17;
    const hand = (16 * 3 * 8 * 8 * 24 + 24 * 10 + widths.reduce((s, w) => s + handBlockMacs({ ...cfg, ...w }, n), 0)) / 1e9;
    expect(denseGmacs(pruned.config)).toBeCloseTo(hand, 15);
    const ref = new ViTRunner(pruned, reference).forward(images[7]);
    expect(ref.gmacs).toBeCloseTo(hand, 15);

    const dir = path.join(tmp, 'per-block');
    saveModelFolder(dir, pruned);
    const loaded = loadModelFolder(dir);
    expect(loaded.config.blockWidths).toEqual(widths);
    expect(Array.from(new ViTRunner(loaded, reference).forward(images[7]).logits)).toEqual(Array.from(ref.logits));
    const fast = new ViTRunner(loaded, await createKernels('wasm')).forward(images[7]);
    expect(maxAbsDiff(fast.logits, ref.logits)).toBeLessThanOrEqual(1e-4);
    // A config whose per-block widths do not fit the model is refused, naming the field.
    const configFile = path.join(dir, 'config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    writeFileSync(configFile, JSON.stringify({ ...config, vitprune: { ...config.vitprune, blockVDims: [widths[0].vDim] } }));
    expect(() => loadModelFolder(dir)).toThrow(/"blockVDims" to list 2 widths/);
    writeFileSync(configFile, JSON.stringify(config));
    // Token pruning runs on it too.
    const tome = await planPruning(loaded.config, { method: 'tome', settings: { r: 2 } });
    expect(new ViTRunner(loaded, reference).forward(images[7], tome.hooks(0)).gmacs).toBeLessThan(hand);
  });

  it('a pruned model runs on the reference and wasm backends, which agree to 1e-4', async () => {
    const wasm = await createKernels('wasm');
    for (const ratio of [0.25, 0.4, 0.6]) {
      // widths 6, 5 and 3: also widths that are not a multiple of the SIMD width
      const result = prune({ ratio });
      const ref = new ViTRunner(result.model, reference);
      const fast = new ViTRunner(result.model, wasm);
      for (const image of images.slice(5)) expect(maxAbsDiff(fast.forward(image).logits, ref.forward(image).logits)).toBeLessThanOrEqual(1e-4);
    }
  });

  it('pruning on the wasm backend gives the model pruning on the reference backend gives, to rounding', async () => {
    const wasm = await createKernels('wasm');
    const a = prune({ ratio: 0.25 });
    const b = pruneChannels(model, wasm, images.slice(0, 6), { ratio: 0.25 });
    expect(b.selection.qk).toEqual(a.selection.qk);
    const la = new ViTRunner(a.model, reference).forward(images[7]).logits;
    const lb = new ViTRunner(b.model, reference).forward(images[7]).logits;
    expect(maxAbsDiff(la, lb)).toBeLessThan(1e-3);
  });

  it('reweighting brings the pruned model closer to the original on the calibration images', () => {
    const dense = new ViTRunner(model, reference);
    const error = (m: ViTModel) => {
      const runner = new ViTRunner(m, reference);
      let sum = 0;
      for (const image of images.slice(0, 6)) {
        const a = dense.forward(image).logits;
        const b = runner.forward(image).logits;
        for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
      }
      return sum;
    };
    const plain = error(prune({ ratio: 0.4, selection: 'score', queryRefit: false, valueBasis: false, logitScale: false, refit: false }).model);
    const full = error(prune({ ratio: 0.4 }).model);
    expect(full).toBeLessThan(plain);
  });
});

describe('channel pruning: the fits', () => {
  it('fitLogitScale recovers the temperature of a softmax', () => {
    const rand = seededRandom(2);
    const n = 12;
    const logits: Float32Array[] = [];
    let targetDot = 0;
    let targetNegEntropy = 0;
    for (let image = 0; image < 3; image++) {
      const s = Float32Array.from({ length: n * n }, () => rand() * 4 - 2);
      for (let i = 0; i < n; i++) {
        const row = Array.from(s.subarray(i * n, (i + 1) * n), (x) => Math.exp(1.7 * x));
        const z = row.reduce((a, b) => a + b, 0);
        row.forEach((e, j) => {
          const p = e / z;
          targetDot += p * s[i * n + j];
          targetNegEntropy += p * Math.log(p);
        });
      }
      logits.push(s);
    }
    const fit = fitLogitScale({ logits, rowLength: [n, n, n], targetDot, targetNegEntropy, rows: 3 * n });
    expect(fit.alpha).toBeCloseTo(1.7, 4);
    expect(fit.klAfter).toBeLessThan(1e-8);
    expect(fit.klBefore).toBeGreaterThan(fit.klAfter);
  });

  it('fitQueryMap reproduces the logits exactly when the dropped keys are combinations of the kept ones', () => {
    const rand = seededRandom(3);
    const d = 4;
    const keys = Array.from({ length: 30 }, () => {
      const a = rand() - 0.5;
      const b = rand() - 0.5;
      const c = rand() - 0.5;
      return [a, b, c, 2 * a - b]; // channel 3 = 2·k0 − k1
    });
    const gram = new Float64Array(d * d);
    for (const k of keys) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) gram[i * d + j] += k[i] * k[j];
    const A = fitQueryMap(gram, d, Int32Array.from([0, 1, 2]), 0);
    const q = [0.3, -1.2, 0.7, 2.0];
    const mapped = [0, 1, 2].map((r) => q.reduce((s, qc, c) => s + A[r * d + c] * qc, 0));
    for (const k of keys) {
      const full = q.reduce((s, qc, c) => s + qc * k[c], 0);
      const pruned = mapped[0] * k[0] + mapped[1] * k[1] + mapped[2] * k[2];
      expect(pruned).toBeCloseTo(full, 8);
    }
  });

  it('fitValueBasis loses nothing when the head outputs have rank r', () => {
    const rand = seededRandom(4);
    const v = 5;
    const D = 3;
    const r = 2;
    const mix = Array.from({ length: r * v }, () => rand() - 0.5); // z = u·mix, u ∈ ℝ²
    const zs = Array.from({ length: 50 }, () => {
      const u = [rand() - 0.5, rand() - 0.5];
      return Array.from({ length: v }, (_, c) => u[0] * mix[c] + u[1] * mix[v + c]);
    });
    const mean = Array.from({ length: v }, (_, c) => zs.reduce((s, z) => s + z[c], 0) / zs.length);
    const cov = new Float64Array(v * v);
    for (const z of zs) for (let i = 0; i < v; i++) for (let j = 0; j < v; j++) cov[i * v + j] += ((z[i] - mean[i]) * (z[j] - mean[j])) / zs.length;
    const W = Float64Array.from({ length: D * v }, () => rand() - 0.5);
    const { basis, proj } = fitValueBasis(cov, v, W, D, r, 1e-12);
    for (const z of zs) {
      const zc = z.map((x, c) => x - mean[c]);
      const feature = Array.from({ length: r }, (_, k) => zc.reduce((s, x, c) => s + basis[k * v + c] * x, 0));
      for (let o = 0; o < D; o++) {
        const want = zc.reduce((s, x, c) => s + W[o * v + c] * x, 0);
        const got = feature.reduce((s, f, k) => s + proj[o * r + k] * f, 0);
        expect(got).toBeCloseTo(want, 5);
      }
    }
  });

  /** Σ_i Σ_j (q_i·k_j − (A·q_i)·(B·k_j))² over rows of q [n, d] and centred keys k [n, d]. */
  function logitError(qs: number[][], ks: number[][], A: ArrayLike<number>, B: ArrayLike<number>, r: number): number {
    const d = qs[0].length;
    const map = (M: ArrayLike<number>, x: number[]) => Array.from({ length: r }, (_, i) => x.reduce((s, xc, c) => s + M[i * d + c] * xc, 0));
    let err = 0;
    for (const q of qs) {
      const q2 = map(A, q);
      for (const k of ks) {
        const full = q.reduce((s, qc, c) => s + qc * k[c], 0);
        err += (full - map(B, k).reduce((s, x, i) => s + x * q2[i], 0)) ** 2;
      }
    }
    return err;
  }
  const gramOf = (xs: number[][]) => {
    const d = xs[0].length;
    const g = new Float64Array(d * d);
    for (const x of xs) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) g[i * d + j] += x[i] * x[j];
    return g;
  };
  const centred = (xs: number[][]) => {
    const mean = xs[0].map((_, c) => xs.reduce((s, x) => s + x[c], 0) / xs.length);
    return xs.map((x) => x.map((v, c) => v - mean[c]));
  };

  it('fitQkBasis reproduces the logits exactly when the queries span r dimensions', () => {
    const rand = seededRandom(12);
    const d = 5;
    const r = 2;
    const dirs = Array.from({ length: r }, () => Array.from({ length: d }, () => rand() - 0.5));
    const qs = Array.from({ length: 20 }, () => {
      const u = [rand() - 0.5, rand() - 0.5];
      return dirs[0].map((x, c) => u[0] * x + u[1] * dirs[1][c]);
    });
    const ks = centred(Array.from({ length: 25 }, () => Array.from({ length: d }, () => rand() - 0.5)));
    const { query, key } = fitQkBasis(gramOf(qs), gramOf(ks), d, r, 1e-12);
    expect(logitError(qs, ks, query, key, r)).toBeLessThan(1e-16 * logitError(qs, ks, new Float64Array(r * d), new Float64Array(r * d), r) + 1e-18);
    // At full width it is the identity on the logits.
    const full = fitQkBasis(gramOf(qs), gramOf(ks), d, d, 1e-12);
    expect(logitError(qs, ks, full.query, full.key, d)).toBeLessThan(1e-18);
  });

  it('fitQkBasis loses no more logit energy than any choice of kept channels with the query refit', () => {
    const rand = seededRandom(13);
    const d = 6;
    const r = 3;
    const mixing = Array.from({ length: d * d }, () => rand() - 0.5); // correlated channels
    const sample = () => {
      const u = Array.from({ length: d }, () => (rand() - 0.5) * (1 + 3 * rand()));
      return Array.from({ length: d }, (_, c) => u.reduce((s, x, t) => s + x * mixing[t * d + c], 0));
    };
    const qs = Array.from({ length: 30 }, sample);
    const ks = centred(Array.from({ length: 30 }, sample));
    const { query, key } = fitQkBasis(gramOf(qs), gramOf(ks), d, r, 1e-12);
    const basisError = logitError(qs, ks, query, key, r);
    for (const kept of [
      [0, 1, 2],
      [3, 4, 5],
      [0, 2, 4],
      [1, 3, 5],
    ]) {
      const A = fitQueryMap(gramOf(ks), d, Int32Array.from(kept), 1e-12);
      const B = new Float64Array(r * d);
      kept.forEach((c, i) => (B[i * d + c] = 1));
      expect(basisError).toBeLessThanOrEqual(logitError(qs, ks, A, B, r) * (1 + 1e-9));
    }
  });

  it('fitValueBases: fitting the heads jointly loses no more of the attention output than fitting each alone', () => {
    const rand = seededRandom(14);
    const H = 3;
    const v = 4;
    const D = 5;
    const r = 2;
    const Z = H * v;
    // Correlated head outputs: z = u·M with u ∈ ℝ⁶, so heads share directions.
    const M = Array.from({ length: 6 * Z }, () => rand() - 0.5);
    const zs = centred(
      Array.from({ length: 200 }, () => {
        const u = Array.from({ length: 6 }, () => rand() - 0.5);
        return Array.from({ length: Z }, (_, c) => u.reduce((s, x, t) => s + x * M[t * Z + c], 0));
      }),
    );
    const cov = gramOf(zs).map((x) => x / zs.length);
    const W = Float64Array.from({ length: D * Z }, () => rand() - 0.5);
    // E‖Σ_h (W_h − C_h·B_h)·z_h‖²
    const loss = (fits: { basis: Float64Array; proj: Float64Array }[]) => {
      let e = 0;
      for (const z of zs) {
        for (let o = 0; o < D; o++) {
          let diff = 0;
          for (let h = 0; h < H; h++) {
            for (let c = 0; c < v; c++) {
              let cb = 0;
              for (let k = 0; k < r; k++) cb += fits[h].proj[o * r + k] * fits[h].basis[k * v + c];
              diff += (W[o * Z + h * v + c] - cb) * z[h * v + c];
            }
          }
          e += diff * diff;
        }
      }
      return e / zs.length;
    };
    const headW = (h: number) => Float64Array.from({ length: D * v }, (_, i) => W[Math.floor(i / v) * Z + h * v + (i % v)]);
    const headCov = (h: number) => Float64Array.from({ length: v * v }, (_, i) => cov[(h * v + Math.floor(i / v)) * Z + h * v + (i % v)]);
    const alone = Array.from({ length: H }, (_, h) => fitValueBasis(headCov(h), v, headW(h), D, r, 1e-9));
    const joint = fitValueBases(cov, W, D, H, v, r, 1e-9);
    expect(joint.every((f) => f.basis.length === r * v && f.proj.length === D * r)).toBe(true);
    expect(loss(joint)).toBeLessThan(loss(alone));
    expect(loss(fitValueBases(cov, W, D, H, v, r, 1e-9, 0))).toBeCloseTo(loss(alone), 10);
  });

  it('symmetricEigen and choleskySolve', () => {
    const rand = seededRandom(6);
    const m = 6;
    const B = Array.from({ length: m * m }, () => rand() - 0.5);
    const A = new Float64Array(m * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) for (let t = 0; t < m; t++) A[i * m + j] += B[i * m + t] * B[j * m + t];
    const { values, vectors } = symmetricEigen(A, m);
    for (let i = 1; i < m; i++) expect(values[i]).toBeLessThanOrEqual(values[i - 1]);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        let sum = 0;
        for (let k = 0; k < m; k++) sum += values[k] * vectors[k * m + i] * vectors[k * m + j];
        expect(sum).toBeCloseTo(A[i * m + j], 10);
      }
    }
    const x = choleskySolve(
      Float64Array.from(A, (a, i) => a + (i % (m + 1) === 0 ? 1 : 0)),
      m,
      Float64Array.from([1, 2, 3, 4, 5, 6]),
      1,
    );
    for (let i = 0; i < m; i++) {
      let row = x[i];
      for (let j = 0; j < m; j++) row += A[i * m + j] * x[j];
      expect(row).toBeCloseTo(i + 1, 9);
    }
  });

  it('eliminateChannels removes a channel the others predict before any other', () => {
    const rand = seededRandom(8);
    const m = 4;
    const xs = Array.from({ length: 40 }, () => {
      const a = rand() - 0.5;
      const b = rand() - 0.5;
      const c = rand() - 0.5;
      return [a, b, a + b, c]; // channel 2 = channel 0 + channel 1
    });
    const gram = new Float64Array(m * m);
    for (const x of xs) for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) gram[i * m + j] += x[i] * x[j];
    const identity = Float64Array.from({ length: m * m }, (_, i) => (i % (m + 1) === 0 ? 1 : 0));
    const [kept] = eliminateChannels(gram, m, identity, m, null, [Int32Array.from([0, 1, 2, 3])], 1, 1e-9);
    // any of channels 0, 1, 2 is predicted by the other two; channel 3 by none
    expect(Array.from(kept)).toHaveLength(3);
    expect(Array.from(kept)).toContain(3);
  });

  it('similarity weights: a channel duplicated within its head scores 0, an orthogonal one 1', () => {
    // Gram of 3 channels: c0 and c1 identical, c2 orthogonal to both.
    const gram = Float64Array.from([2, 2, 0, 2, 2, 0, 0, 0, 5]);
    expect(Array.from(similarityWeights(gram, 1, 3))).toEqual([0, 0, 1]);
  });

  it('allocators: uniform keeps round((1 − p)·d); greedy saves at least as many MACs, at least one channel per head', () => {
    const c = configFromDims({ dim: 24, depth: 2, heads: 3 });
    const rand = seededRandom(9);
    // Scores are compared as shares of their block's total: per head, two q/k channels carry
    // almost all of the q/k score, while the v score is spread evenly.
    const scores: BlockChannelScores[] = Array.from({ length: 2 }, () => ({
      qk: Float64Array.from({ length: 24 }, (_, i) => (i % 8 < 2 ? 1 : 0.001 * rand())),
      v: Float64Array.from({ length: 24 }, () => 1 + 0.1 * rand()),
      similarity: new Float64Array(24).fill(1),
    }));
    expect(allocateWidths(c, scores, 0.25, 'uniform')).toEqual([
      { qkDim: 6, vDim: 6 },
      { qkDim: 6, vDim: 6 },
    ]);
    const macs = channelMacs(c);
    const saving = (ws: { qkDim: number; vDim: number }[]) => ws.reduce((s, w) => s + (8 - w.qkDim) * macs.qk + (8 - w.vDim) * macs.v, 0);
    const greedy = allocateWidths(c, scores, 0.25, 'greedy');
    expect(saving(greedy)).toBeGreaterThanOrEqual(2 * (2 * macs.qk + 2 * macs.v));
    expect(greedy).toEqual([
      { qkDim: 4, vDim: 8 },
      { qkDim: 4, vDim: 8 },
    ]); // the q/k channels that carry nothing go first
    expect(allocateWidths(c, scores, 0.99, 'greedy').every((w) => w.qkDim >= 1 && w.vDim >= 1)).toBe(true);

    // Across blocks: block 1's v channels carry almost nothing next to one channel per head, so
    // block 1 loses v channels while block 0 keeps its own.
    const skewed: BlockChannelScores[] = [
      { ...scores[0], qk: new Float64Array(24).fill(1), v: new Float64Array(24).fill(1) },
      { ...scores[1], qk: new Float64Array(24).fill(1), v: Float64Array.from({ length: 24 }, (_, i) => (i % 8 === 0 ? 1 : 1e-4)) },
    ];
    const across = allocateWidths(c, skewed, 0.25, 'greedy');
    expect(across[1].vDim).toBeLessThan(across[0].vDim);
    expect(saving(across)).toBeGreaterThanOrEqual(2 * (2 * macs.qk + 2 * macs.v));
  });
});

describe('vitprune prune-channels', () => {
  const modelDir = path.join(tmp, 'model');
  const calib = path.join(tmp, 'calib');
  saveModelFolder(modelDir, model);
  writeCalibrationPngs(calib, 4);

  it('writes a smaller model folder that loads like any model, and a JSON summary', async () => {
    const out = path.join(tmp, 'cli-out');
    const { code, stdout, stderr } = await run(
      'prune-channels',
      '--model',
      modelDir,
      '--backend',
      'reference',
      '--calib',
      calib,
      '--ratio',
      '0.25',
      '--split',
      'even',
      '--out',
      out,
      '--json',
    );
    expect(stderr).toContain('pruned blocks');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.calibrationImages).toBe(2);
    expect(report.widths).toEqual([
      { block: 0, qkDim: 6, vDim: 6 },
      { block: 1, qkDim: 6, vDim: 6 },
    ]);
    expect(report.gmacs.after).toBeLessThan(report.gmacs.before);
    expect(report.reconstruction.meanAfter).toBeLessThanOrEqual(report.reconstruction.meanBefore);
    const loaded = loadModelFolder(out);
    expect(loaded.config.qkDim).toBe(6);
    expect(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).pruned.calibration).toMatchObject({ split: 'even', images: 2 });
    const classified = await run('classify', '--model', out, '--backend', 'reference', path.join(calib, 'img1.png'));
    expect(classified.code).toBe(0);

    // eval --dense: the pruned model measured against the original, and the original against itself.
    const labels = path.join(tmp, 'labels.csv');
    writeFileSync(labels, 'file,class_index\n' + [0, 1, 2, 3].map((i) => `img${i}.png,${i % 2}`).join('\n') + '\n');
    const evalArgs = ['eval', '--backend', 'reference', '--images', calib, '--labels', labels, '--json', '--quiet'];
    const r1 = await run(...evalArgs, '--model', out, '--dense', modelDir);
    expect(r1.stderr).toBe('');
    const vsOriginal = JSON.parse(r1.stdout);
    expect(vsOriginal).toMatchObject({ images: 4, denseModel: modelDir, method: null });
    expect(vsOriginal.gmacs).toBeCloseTo(report.gmacs.after, 10);
    expect(vsOriginal.dense.gmacs).toBeCloseTo(report.gmacs.before, 10);
    expect(vsOriginal.kl).toBeGreaterThan(0);
    const vsItself = JSON.parse((await run(...evalArgs, '--model', modelDir, '--dense', modelDir)).stdout);
    expect(vsItself).toMatchObject({ agreement: 1, kl: 0, top1Loss: 0 });
  });

  it('refuses bad options with a one-line reason', async () => {
    const bad = await run('prune-channels', '--model', modelDir, '--calib', calib, '--ratio', '1', '--out', path.join(tmp, 'x'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--ratio expects a fraction in [0, 1)');
    const noOut = await run('prune-channels', '--model', modelDir, '--calib', calib, '--ratio', '0.2');
    expect(noOut.stderr).toContain('--out');
    const allocator = await run('prune-channels', '--model', modelDir, '--calib', calib, '--ratio', '0.2', '--out', path.join(tmp, 'y'), '--allocator', 'best');
    expect(allocator.stderr).toContain('--allocator expects one of uniform, greedy');
  });
});

describeWithData('channel pruning of DeiT-Tiny', () => {
  it('25 % of the channels: the pruned model runs on both backends and they agree to 1e-4', async () => {
    const deit = loadModelFolder(path.join(SHARED_DATA, 'deit-tiny'));
    const wasm = await createKernels('wasm');
    const calibration = Array.from({ length: 2 }, (_, m) => Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * (0.003 + 0.001 * m)) * 1.5));
    const result = pruneChannels(deit, wasm, calibration, { ratio: 0.25, logitScaleImages: 1 });
    expect([result.model.config.qkDim, result.model.config.vDim]).toEqual([48, 48]);
    const image = Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.cos(i * 0.0021));
    const a = new ViTRunner(result.model, reference).forward(image).logits;
    const b = new ViTRunner(result.model, wasm).forward(image).logits;
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-4);
  }, 120_000);
});
