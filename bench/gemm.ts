/**
 * Micro-benchmark of the wasm backend, single thread: GFLOP/s of the packed GEMM on the linear
 * layers of DeiT-S and DeiT-Ti (197 tokens), each with the epilogue the model uses (qkv: store,
 * proj and fc2: + residual, fc1: + GELU), the standalone GELU kernel, and one attention call
 * (n = 197; DeiT-S H = 6, DeiT-Ti H = 3, d = 64). Both builds; every measurement alternates
 * between the builds run by run (interleaved), so machine noise hits them alike.
 *   npx tsx bench/gemm.ts [--runs 30] [--variant relaxed|simd|both]
 */
import { parseArgs } from 'node:util';
import { createWasmKernels, type WasmKernels, type WasmVariant } from '../src/kernels/wasm.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '30' }, variant: { type: 'string', default: 'both' } },
});
const runs = Number(values.runs);
const warmupMs = 200;

function random(length: number): Float32Array {
  return Float32Array.from({ length }, () => Math.random() * 2 - 1);
}

type Op = 'linear' | 'linearAdd' | 'linearGelu';
interface Case {
  label: string;
  flops: number;
  /** Sets up the buffers on one backend; returns the timed call and an untimed reset before each call. */
  setup(kernels: WasmKernels): { call: () => void; reset?: () => void };
}

function gemmCase(label: string, op: Op, m: number, k: number, n: number): Case {
  const weight = random(n * k),
    bias = random(n),
    x = random(m * k);
  return {
    label: `${label} ${m}×${k}·${k}×${n}`,
    flops: 2 * m * k * n,
    setup(kernels) {
      const w = kernels.prepareLinear({ weight, bias, outFeatures: n, inFeatures: k });
      const input = kernels.upload(x);
      const out = kernels.alloc(m * n);
      return { call: () => kernels[op](input, m, w, out) };
    },
  };
}

function attentionCase(label: string, n: number, heads: number, d: number): Case {
  const qkv = random(n * 3 * heads * d);
  return {
    label: `${label} attention n=${n} H=${heads} d=${d}`,
    flops: heads * 2 * (2 * n * n * d), // Q·Kᵀ and P·V
    setup(kernels) {
      const q = kernels.upload(qkv);
      const probs = kernels.alloc(heads * n * n);
      const out = kernels.alloc(n * heads * d);
      return { call: () => kernels.attention(q, n, heads, d, d, 1 / Math.sqrt(d), null, probs, out) };
    },
  };
}

function geluCase(label: string, length: number): Case {
  const x = random(length).map((v) => 4 * v);
  return {
    label: `${label} gelu ${length} floats`,
    flops: 0,
    setup(kernels) {
      // fresh inputs each time: GELU applied over and over drives negative values into denormals
      const buf = kernels.upload(x);
      return { call: () => kernels.gelu(buf, length), reset: () => buf.set(x) };
    },
  };
}

const T = 197;
const cases: Case[] = [
  gemmCase('DeiT-S qkv ', 'linear', T, 384, 1152),
  gemmCase('DeiT-S proj', 'linearAdd', T, 384, 384),
  gemmCase('DeiT-S fc1 ', 'linearGelu', T, 384, 1536),
  gemmCase('DeiT-S fc2 ', 'linearAdd', T, 1536, 384),
  gemmCase('DeiT-Ti qkv ', 'linear', T, 192, 576),
  gemmCase('DeiT-Ti proj', 'linearAdd', T, 192, 192),
  gemmCase('DeiT-Ti fc1 ', 'linearGelu', T, 192, 768),
  gemmCase('DeiT-Ti fc2 ', 'linearAdd', T, 768, 192),
  attentionCase('DeiT-S ', T, 6, 64),
  attentionCase('DeiT-Ti', T, 3, 64),
  geluCase('DeiT-S fc1', T * 1536),
];

const variants: WasmVariant[] = values.variant === 'both' ? ['relaxed', 'simd'] : [values.variant as WasmVariant];
const backends = await Promise.all(variants.map((variant) => createWasmKernels({ variant, checks: false })));
console.log(`single thread; median of ${runs} runs per build, builds interleaved run by run, after ${warmupMs} ms warm-up each`);
for (const c of cases) {
  const calls = backends.map((kernels) => c.setup(kernels));
  for (const { call, reset } of calls) {
    const start = performance.now();
    while (performance.now() - start < warmupMs) {
      reset?.();
      call();
    }
  }
  const samples = calls.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    calls.forEach(({ call, reset }, j) => {
      reset?.();
      const start = performance.now();
      call();
      samples[j].push(performance.now() - start);
    });
  }
  const cells = backends.map((kernels, j) => {
    const ms = samples[j].sort((a, b) => a - b)[samples[j].length >> 1];
    const rate = c.flops ? ` ${(c.flops / (ms * 1e6)).toFixed(1).padStart(5)} GFLOP/s` : '';
    return `${kernels.name} ${ms.toFixed(3).padStart(7)} ms${rate}`;
  });
  console.log(`${c.label.padEnd(38)} ${cells.join('   ')}`);
}
