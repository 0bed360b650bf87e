import { describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { modelGmacs } from '../src/model/gmacs.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import type { BlockState } from '../src/model/hooks.js';

// A tiny ViT: 32×32 input, patch 8 → 16 patches + CLS, width 24, 3 heads of 8.
const cfg = configFromDims({ dim: 24, depth: 3, heads: 3, imageSize: 32, patchSize: 8, numClasses: 10 });
const model = randomModel(cfg, 7);
const image = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.011));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('ViT forward pass with hooks', () => {
  const runner = new ViTRunner(model, createReferenceKernels());
  const dense = runner.forward(image);

  it('is deterministic and counts dense GMACs', () => {
    const again = runner.forward(image);
    expect(Array.from(again.logits)).toEqual(Array.from(dense.logits));
    expect(dense.tokens).toEqual(Array.from({ length: 3 }, () => ({ attention: 17, mlp: 17 })));
    expect(dense.gmacs).toBe(modelGmacs(cfg, dense.tokens));
  });

  it('exposes per block the residual stream, attention probabilities and qkv of every token', () => {
    const seen: number[] = [];
    runner.forward(image, {
      afterAttention: (s: BlockState) => {
        expect(s.n).toBe(17);
        expect(s.probs.length).toBe(3 * 17 * 17);
        for (let row = 0; row < 3 * 17; row++) {
          const sum = s.probs.subarray(row * 17, row * 17 + 17).reduce((a, b) => a + b, 0);
          expect(sum).toBeCloseTo(1, 5);
        }
      },
      afterBlock: (s) => {
        seen.push(s.block);
        expect(s.x.length).toBe(17 * 24);
        expect(s.qkv.length).toBe(17 * 72);
        expect(Array.from(s.tokenIds)).toEqual(Array.from({ length: 17 }, (_, i) => i));
      },
    });
    expect(seen).toEqual([0, 1, 2]);
  });

  it('keeping every token changes nothing', () => {
    const all = Array.from({ length: 17 }, (_, i) => i);
    const r = runner.forward(image, { afterAttention: () => ({ kind: 'keep', indices: all }), afterBlock: () => ({ kind: 'keep', indices: all }) });
    expect(Array.from(r.logits)).toEqual(Array.from(dense.logits));
  });

  it('dropping patch tokens after the last block leaves the CLS logits unchanged', () => {
    const r = runner.forward(image, { afterBlock: (s) => (s.block === 2 ? { kind: 'keep', indices: [0, 5, 9] } : undefined) });
    expect(Array.from(r.logits)).toEqual(Array.from(dense.logits));
  });

  it('permuting patch tokens between blocks leaves the logits unchanged (attention is permutation-equivariant)', () => {
    const perm = [0, ...Array.from({ length: 16 }, (_, i) => 16 - i)];
    const r = runner.forward(image, { afterBlock: (s) => (s.block === 0 ? { kind: 'keep', indices: perm } : undefined) });
    expect(maxAbsDiff(r.logits, dense.logits)).toBeLessThan(1e-5);
  });

  it('pruning shortens later blocks, tracks token ids, and counts the executed GMACs', () => {
    let idsAfter: number[] = [];
    const r = runner.forward(image, {
      afterAttention: (s) => (s.block === 1 ? { kind: 'keep', indices: [0, 2, 4, 6, 8, 10] } : undefined),
      afterBlock: (s) => {
        if (s.block === 1) idsAfter = Array.from(s.tokenIds);
        return s.block === 0 ? { kind: 'keep', indices: Array.from({ length: 13 }, (_, i) => i) } : undefined;
      },
    });
    expect(r.tokens).toEqual([
      { attention: 17, mlp: 17 },
      { attention: 13, mlp: 6 },
      { attention: 6, mlp: 6 },
    ]);
    expect(idsAfter).toEqual([0, 2, 4, 6, 8, 10]);
    expect(r.gmacs).toBe(modelGmacs(cfg, r.tokens));
    expect(maxAbsDiff(r.logits, dense.logits)).toBeGreaterThan(0);
  });

  it('a token of size 2 under proportional attention equals the token present twice', () => {
    const D = cfg.dim;
    // After block 0, drop token 16. Variant A: tokens 0…15 plus a copy of token 3, all size 1.
    const dup = runner.forward(image, {
      afterBlock: (s) => {
        if (s.block !== 0) return;
        const x = new Float32Array(17 * D);
        x.set(s.x.subarray(0, 16 * D));
        x.set(s.x.subarray(3 * D, 4 * D), 16 * D);
        return { kind: 'replace', n: 17, x, sizes: null, tokenIds: Int32Array.from([...s.tokenIds.subarray(0, 16), 3]) };
      },
    });
    // Variant B: tokens 0…15, token 3 with size 2.
    const sized = runner.forward(image, {
      afterBlock: (s) => {
        if (s.block !== 0) return;
        const sizes = new Float32Array(16).fill(1);
        sizes[3] = 2;
        return { kind: 'replace', n: 16, x: s.x.slice(0, 16 * D), sizes, tokenIds: s.tokenIds.slice(0, 16) };
      },
    });
    expect(maxAbsDiff(dup.logits, sized.logits)).toBeLessThan(1e-5);
  });

  it('rejects a reduction that drops the CLS token', () => {
    expect(() => runner.forward(image, { afterBlock: () => ({ kind: 'keep', indices: [1, 2] }) })).toThrow(/prefix token 0/);
  });

  it('before the projection, a reduction replaces the tokens and their attention output together: the block then projects only those', () => {
    const D = cfg.dim;
    const width = cfg.heads * cfg.vDim;
    // keep the first 9 tokens, given as a replacement of x and attnOut: the same as keeping them after the projection
    const replaceFirst = (s: BlockState) => ({
      kind: 'replace' as const,
      n: 9,
      x: s.x.slice(0, 9 * D),
      attnOut: s.attnOut.slice(0, 9 * width),
      sizes: null,
      tokenIds: s.tokenIds.slice(0, 9),
    });
    const before = runner.forward(image, { beforeProjection: (s) => (s.block === 1 ? replaceFirst(s) : undefined) });
    const after = runner.forward(image, { afterAttention: (s) => (s.block === 1 ? { kind: 'keep', indices: [...Array(9).keys()] } : undefined) });
    expect(maxAbsDiff(before.logits, after.logits)).toBe(0);
    expect(before.tokens[1]).toEqual({ attention: 17, projection: 9, mlp: 9 });
    expect(before.gmacs).toBeLessThan(after.gmacs);
    expect(before.gmacs).toBe(modelGmacs(cfg, before.tokens));
    expect(() => runner.forward(image, { beforeProjection: () => ({ kind: 'keep', indices: [0, 1] }) })).toThrow(
      /must replace the tokens and their attention output/,
    );
    expect(() => runner.forward(image, { afterAttention: (s) => replaceFirst(s) })).toThrow(/cannot replace the attention output/);
  });

  it('distilled models average the CLS and distillation heads', () => {
    const dcfg = configFromDims({ dim: 24, depth: 2, heads: 3, imageSize: 32, patchSize: 8, numClasses: 10, distilled: true });
    const dmodel = randomModel(dcfg, 11);
    const k = createReferenceKernels();
    let last = new Float32Array(0);
    const r = new ViTRunner(dmodel, k).forward(image, { afterBlock: (s) => void (last = s.x.slice(0, 2 * 24)) });
    expect(r.tokens[0].attention).toBe(18);
    // By hand: LN over both prefix rows, head on row 0 (CLS), head_dist on row 1 (DIST), mean.
    const w = dmodel.weights;
    const normed = new Float32Array(2 * 24);
    k.layerNorm(last, 2, 24, w.norm.weight, w.norm.bias, dcfg.eps, normed);
    const cls = new Float32Array(10);
    const dist = new Float32Array(10);
    k.linear(normed, 1, k.prepareLinear(w.head), cls);
    k.linear(normed.subarray(24), 1, k.prepareLinear(w.headDist!), dist);
    expect(
      maxAbsDiff(
        r.logits,
        cls.map((v, i) => (v + dist[i]) / 2),
      ),
    ).toBeLessThan(1e-6);
    expect(maxAbsDiff(cls, dist)).toBeGreaterThan(1e-3);
  });
});
