import { describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { ViTRunner, type ObservedTensor } from '../src/model/vit.js';
import { evitHooks } from '../src/prune/evit.js';

// ForwardHooks.observe: every intermediate tensor, in computation order, with its shape, and
// values equal to what the other hooks and the result see.

const cfg = configFromDims({ dim: 12, depth: 2, heads: 3, imageSize: 8, patchSize: 2, mlpDim: 20, numClasses: 5, distilled: true }, 'tiny');
const model = randomModel(cfg, 7);
const input = Float32Array.from({ length: 3 * 8 * 8 }, (_, i) => Math.sin(i * 0.7));

describe('ForwardHooks.observe', () => {
  it('sees every tensor once, in order, with shapes that follow the tokens alive', () => {
    const runner = new ViTRunner(model, createReferenceKernels());
    const seen: [number, ObservedTensor, number[]][] = [];
    const pruning = evitHooks({ keepRate: 0.5, fuse: false, blocks: [0] });
    runner.forward(input, { ...pruning, observe: (block, name, data, shape) => {
      expect(data.length).toBe(shape.reduce((a, b) => a * b, 1));
      seen.push([block, name, [...shape]]);
    } });
    const n0 = 2 + 16; // CLS, DIST, 16 patches
    const n1 = 2 + 8; // top-k keeps ⌈0.5·16⌉ patches inside block 0
    const block = (b: number, nAttention: number, nMlp: number): [number, ObservedTensor, number[]][] => [
      [b, 'ln1', [nAttention, 12]], [b, 'qkv', [nAttention, 36]], [b, 'attn.probs', [3, nAttention, nAttention]], [b, 'attn.out', [nAttention, 12]],
      [b, 'x.attn', [nAttention, 12]], [b, 'ln2', [nMlp, 12]], [b, 'mlp.hidden', [nMlp, 20]], [b, 'x.mlp', [nMlp, 12]],
    ];
    expect(seen).toEqual([
      [-1, 'embed', [n0, 12]], ...block(0, n0, n1), ...block(1, n1, n1), [2, 'final.norm', [2, 12]], [2, 'logits', [5]],
    ]);
  });

  it('shows the values the block hooks and the result see', () => {
    const runner = new ViTRunner(model, createReferenceKernels());
    const observed = new Map<string, Float32Array>();
    const afterBlock: Float32Array[] = [];
    const probs: Float32Array[] = [];
    const { logits } = runner.forward(input, {
      observe: (block, name, data) => observed.set(`${block}.${name}`, data.slice()),
      afterBlock: (state) => {
        afterBlock.push(state.x.slice());
        probs.push(state.probs.slice());
      },
    });
    expect(observed.get('0.x.mlp')).toEqual(afterBlock[0]);
    expect(observed.get('1.x.mlp')).toEqual(afterBlock[1]);
    expect(observed.get('1.attn.probs')).toEqual(probs[1]);
    expect(observed.get('2.logits')).toEqual(logits);
  });
});
