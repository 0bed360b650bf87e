import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKernels, type Backend } from '../src/kernels/index.js';
import { topK } from '../src/eval/metrics.js';
import { loadModelFolder } from '../src/model/folder.js';
import { readSafetensors } from '../src/model/safetensors-file.js';
import { ViTRunner } from '../src/model/vit.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('fixtures: the tiny random model in both layouts against its stored golden outputs', () => {
  const golden = readSafetensors(path.join(FIXTURES, 'tiny-golden.safetensors')).tensors;
  const tensor = (name: string) => golden.get(name)!.data;

  it('timm layout, reference path: every block and the logits', async () => {
    const model = loadModelFolder(path.join(FIXTURES, 'tiny-timm'));
    const runner = new ViTRunner(model, await createKernels('reference'));
    const { dim: D, heads: H } = model.config;
    const n = runner.maxTokens;
    const { logits } = runner.forward(tensor('input'), {
      afterBlock: (s) => {
        expect(maxAbsDiff(s.x, tensor('hidden_states').subarray(s.block * n * D, (s.block + 1) * n * D))).toBeLessThan(1e-6);
        expect(maxAbsDiff(s.probs, tensor('attention').subarray(s.block * H * n * n, (s.block + 1) * H * n * n))).toBeLessThan(1e-6);
      },
    });
    expect(maxAbsDiff(logits, tensor('logits'))).toBeLessThan(1e-6);
  });

  it('transformers layout gives the same logits (its LayerNorm eps is 1e-12 instead of 1e-6)', async () => {
    const model = loadModelFolder(path.join(FIXTURES, 'tiny-transformers'));
    expect(model.config.layout).toBe('transformers');
    const { logits } = new ViTRunner(model, await createKernels('reference')).forward(tensor('input'));
    expect(maxAbsDiff(logits, tensor('logits'))).toBeLessThan(1e-4);
  });
});

/**
 * Acceptance: against the independent float64 implementation's golden references, feeding the
 * stored input tensors: logits, every block's hidden states and CLS attention rows within 1e-3,
 * identical top-5 order, for all 3 samples of both models.
 */
function goldenSuite(backend: Backend): void {
  for (const name of ['deit-tiny', 'vit-tiny']) {
    describeWithData(`golden reference ${name} (${backend} backend)`, () => {
      const dir = path.join(SHARED_DATA, name);
      for (const sample of [0, 1, 2]) {
        it(`sample${sample}: hidden states, CLS attention, logits and top-5`, async () => {
          const model = loadModelFolder(dir);
          const golden = readSafetensors(path.join(dir, 'golden_reference.safetensors')).tensors;
          const g = (t: string) => golden.get(`sample${sample}.${t}`)!.data;
          const runner = new ViTRunner(model, await createKernels(backend));
          const { dim: D, heads: H } = model.config;
          const n = runner.maxTokens;
          let worstHidden = 0;
          let worstAttention = 0;
          const { logits } = runner.forward(g('input'), {
            afterBlock: (s) => {
              worstHidden = Math.max(worstHidden, maxAbsDiff(s.x, g('hidden_states').subarray(s.block * n * D, (s.block + 1) * n * D)));
              for (let h = 0; h < H; h++) {
                const clsRow = s.probs.subarray(h * n * n, h * n * n + n); // query 0 of head h
                const expected = g('cls_attention').subarray((s.block * H + h) * n, (s.block * H + h + 1) * n);
                worstAttention = Math.max(worstAttention, maxAbsDiff(clsRow, expected));
              }
            },
          });
          expect(worstHidden).toBeLessThanOrEqual(1e-3);
          expect(worstAttention).toBeLessThanOrEqual(1e-3);
          expect(maxAbsDiff(logits, g('logits'))).toBeLessThanOrEqual(1e-3);
          expect(topK(logits, 5)).toEqual(topK(g('logits'), 5));
        });
      }
    });
  }
}

for (const backend of ['reference', 'wasm', 'wasm-simd'] as const) goldenSuite(backend);
