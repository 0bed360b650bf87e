import type { Kernels } from '../kernels/types.js';
import { seededRandom } from '../model/random.js';
import type { ViTConfig } from '../model/types.js';
import { blockConfig } from '../model/types.js';
import type { ViTRunner } from '../model/vit.js';
import type { ForwardHooks } from '../model/hooks.js';
import { median } from './metrics.js';

export interface Timing {
  median: number;
  min: number;
  max: number;
}

export function timing(samples: number[]): Timing {
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples) };
}

export interface GemmShape {
  name: string; // which layer, e.g. "qkv"
  m: number; // rows (tokens)
  n: number; // output features
  k: number; // input features
}

/** The distinct GEMM shapes of one dense forward pass (qkv and proj once per distinct block width, named by their blocks). */
export function modelGemmShapes(cfg: ViTConfig, tokens: number): GemmShape[] {
  const { dim: D, heads: H, mlpDim } = cfg;
  const patches = (cfg.imageSize / cfg.patchSize) ** 2;
  const widths = new Map<string, { qkDim: number; vDim: number; blocks: number[] }>();
  for (let b = 0; b < cfg.depth; b++) {
    const { qkDim, vDim } = blockConfig(cfg, b);
    const key = `${qkDim}/${vDim}`;
    if (!widths.has(key)) widths.set(key, { qkDim, vDim, blocks: [] });
    widths.get(key)!.blocks.push(b + 1);
  }
  const attention = [...widths.values()].flatMap(({ qkDim, vDim, blocks }) => {
    const which = widths.size === 1 ? '' : ` (block${blocks.length > 1 ? 's' : ''} ${blocks.join(',')})`;
    return [
      { name: `qkv${which}`, m: tokens, n: 2 * H * qkDim + H * vDim, k: D },
      { name: `proj${which}`, m: tokens, n: D, k: H * vDim },
    ];
  });
  return [
    { name: 'patch_embed', m: patches, n: D, k: cfg.inChannels * cfg.patchSize ** 2 },
    ...attention,
    { name: 'fc1', m: tokens, n: mlpDim, k: D },
    { name: 'fc2', m: tokens, n: D, k: mlpDim },
  ];
}

function randomArray(length: number, rand: () => number): Float32Array {
  return Float32Array.from({ length }, () => rand() * 2 - 1);
}

/** GFLOP/s (2·m·n·k per call) of `kernels.linear` on one shape: median over `runs` after warm-up. */
export function benchGemm(kernels: Kernels, shape: GemmShape, runs: number): number {
  const rand = seededRandom(shape.m * 31 + shape.n * 7 + shape.k);
  const w = kernels.prepareLinear({
    weight: randomArray(shape.n * shape.k, rand),
    bias: randomArray(shape.n, rand),
    outFeatures: shape.n,
    inFeatures: shape.k,
  });
  const x = kernels.upload(randomArray(shape.m * shape.k, rand));
  const out = kernels.alloc(shape.m * shape.n);
  // Repeat each timed sample until it lasts ≥ 5 ms so timer resolution does not matter.
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) kernels.linear(x, shape.m, w, out);
    if (performance.now() - t0 >= 5) break;
    reps *= 2;
  }
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) kernels.linear(x, shape.m, w, out);
    samples.push((performance.now() - t0) / reps);
  }
  return (2 * shape.m * shape.n * shape.k) / (median(samples) * 1e6);
}

export interface ForwardBench {
  runner: ViTRunner;
  hooks?: () => ForwardHooks;
}

/**
 * ms/image of several runners on the same input, interleaved (run i of every runner before
 * run i + 1 of any) so machine noise hits them alike; `warmup` untimed runs first.
 */
export function benchForward(entries: ForwardBench[], input: Float32Array, runs: number, warmup = 3): { ms: Timing; gmacs: number }[] {
  const samples = entries.map(() => [] as number[]);
  const gmacs = entries.map(() => 0);
  for (let i = 0; i < warmup + runs; i++) {
    entries.forEach((e, j) => {
      const t0 = performance.now();
      const r = e.runner.forward(input, e.hooks?.());
      const ms = performance.now() - t0;
      gmacs[j] = r.gmacs;
      if (i >= warmup) samples[j].push(ms);
    });
  }
  return entries.map((_, j) => ({ ms: timing(samples[j]), gmacs: gmacs[j] }));
}

/** A deterministic input image tensor [C, S, S] with the statistics of a normalised photo. */
export function benchInput(cfg: ViTConfig): Float32Array {
  return randomArray(cfg.inChannels * cfg.imageSize * cfg.imageSize, seededRandom(2024));
}
