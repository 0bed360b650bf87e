import { describe, expect, it } from 'vitest';
import { createKernels } from '../src/kernels/index.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { Kernels } from '../src/kernels/types.js';
import type { ForwardHooks, TraceTensorName } from '../src/model/hooks.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { pruneChannels } from '../src/prune/channels.js';
import { evitHooks } from '../src/prune/evit.js';

// A tiny ViT: 32×32 input, patch 8 → 16 patches + CLS, width 24, 3 heads of 8, MLP 96.
const cfg = configFromDims({ dim: 24, depth: 3, heads: 3, imageSize: 32, patchSize: 8, numClasses: 10 });
const model = randomModel(cfg, 5);
const image = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.011));

interface Seen {
  block: number;
  name: TraceTensorName;
  shape: number[];
  data: Float32Array;
}

function observeAll(runner: ViTRunner, hooks: ForwardHooks = {}): { seen: Seen[]; logits: Float32Array } {
  const seen: Seen[] = [];
  const { logits } = runner.forward(image, {
    ...hooks,
    observe: (block, name, data, shape) => {
      expect(data.length).toBe(shape.reduce((a, b) => a * b, 1));
      seen.push({ block, name, shape: [...shape], data: data.slice() });
    },
  });
  return { seen, logits };
}

const BLOCK_TENSORS: TraceTensorName[] = ['ln1', 'qkv', 'attn.probs', 'attn.out', 'x.attn', 'ln2', 'mlp.hidden', 'x.mlp'];

describe('observe: every intermediate tensor of the forward pass', () => {
  it('shows the documented tensors in order, with their shapes, and changes no result', async () => {
    for (const kernels of [createReferenceKernels(), await createKernels('wasm')]) {
      const runner = new ViTRunner(model, kernels);
      const plain = runner.forward(image);
      const { seen, logits } = observeAll(runner);
      expect(Array.from(logits)).toEqual(Array.from(plain.logits));
      const n = 17;
      const perBlock = (b: number) => BLOCK_TENSORS.map((name) => ({ block: b, name }));
      expect(seen.map(({ block, name }) => ({ block, name }))).toEqual([
        { block: -1, name: 'embed' },
        ...perBlock(0),
        ...perBlock(1),
        ...perBlock(2),
        { block: 3, name: 'final.norm' },
        { block: 3, name: 'logits' },
      ]);
      const shapes = Object.fromEntries(seen.filter((s) => s.block === 1).map((s) => [s.name, s.shape]));
      expect(shapes).toEqual({
        ln1: [n, 24],
        qkv: [n, 72],
        'attn.probs': [3, n, n],
        'attn.out': [n, 24],
        'x.attn': [n, 24],
        ln2: [n, 24],
        'mlp.hidden': [n, 96],
        'x.mlp': [n, 24],
      });
      expect(seen.at(-2)!.shape).toEqual([1, 24]);
      expect(Array.from(seen.at(-1)!.data)).toEqual(Array.from(plain.logits));
    }
  });

  it('shows what the hooks see: x.attn and x.mlp are the states of afterAttention and afterBlock', () => {
    const runner = new ViTRunner(model, createReferenceKernels());
    const states: Record<string, Float32Array> = {};
    const { seen } = observeAll(runner, {
      afterAttention(s) {
        states[`${s.block} x.attn`] = s.x.slice();
      },
      afterBlock(s) {
        states[`${s.block} x.mlp`] = s.x.slice();
      },
    });
    for (const s of seen.filter((t) => t.name === 'x.attn' || t.name === 'x.mlp')) {
      expect(Array.from(s.data)).toEqual(Array.from(states[`${s.block} ${s.name}`]));
    }
  });

  it("shapes follow the tokens alive: a reduction after block 2's attention shrinks its MLP tensors", () => {
    const runner = new ViTRunner(model, createReferenceKernels());
    const { seen } = observeAll(runner, evitHooks({ keepRate: 0.5, fuse: false, blocks: [1] }));
    const shape = (block: number, name: TraceTensorName) => seen.find((s) => s.block === block && s.name === name)!.shape;
    expect(shape(1, 'x.attn')).toEqual([17, 24]);
    expect(shape(1, 'ln2')).toEqual([9, 24]); // CLS + ⌈0.5·16⌉
    expect(shape(2, 'attn.probs')).toEqual([3, 9, 9]);
  });
});

/** Reference kernels that record the size of every weight prepared and of every buffer uploaded on them. */
function recording(): { kernels: Kernels; prepared: number[]; uploaded: number[] } {
  const inner = createReferenceKernels();
  const prepared: number[] = [];
  const uploaded: number[] = [];
  const kernels: Kernels = {
    ...inner,
    prepareLinear(lin) {
      prepared.push(lin.weight.length);
      return inner.prepareLinear(lin);
    },
    upload(data) {
      uploaded.push(data.length);
      return inner.upload(data);
    },
  };
  return { kernels, prepared, uploaded };
}

describe("channel pruning runs the model's own blocks", () => {
  it("prepares the model once, plus only each pruned block's smaller qkv and proj", () => {
    const images = Array.from({ length: 4 }, (_, m) => image.map((v, i) => v + Math.sin(i * 0.1 + m)));
    const pruning = recording();
    const result = pruneChannels(model, pruning.kernels, images, { ratio: 0.25 });
    const runner = recording();
    expect(new ViTRunner(model, runner.kernels).blocks).toHaveLength(3);
    const prunedAttention = result.model.weights.blocks.flatMap((b) => [b.qkv.weight.length, b.proj.weight.length]);
    expect(prunedAttention[0]).toBeLessThan(model.weights.blocks[0].qkv.weight.length);
    expect(pruning.prepared).toEqual([...runner.prepared, ...prunedAttention]);
    expect(pruning.uploaded).toEqual(runner.uploaded);
  });
});
