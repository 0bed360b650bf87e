/**
 * Thread scaling of single kernels, robust to a shared machine: each kernel of DeiT-S (197
 * tokens) runs many times on 1 and on T threads, alternating call by call, and the speed-up is
 * given at several quantiles of the call times. The fast quantiles are the calls that found the
 * cores free; the median is what a loaded machine gives. Also the share of chunks each thread ran.
 *
 *   npx tsx bench/threads-kernels.ts [--threads 2] [--calls 400]
 */
import { parseArgs } from 'node:util';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm.js';
import { seededRandom } from '../src/model/random.js';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '2' }, calls: { type: 'string', default: '400' } } });
const threads = Number(values.threads);
const calls = Number(values.calls);
const QUANTILES = [0.1, 0.25, 0.5];

function random(length: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  return Float32Array.from({ length }, () => next() * 2 - 1);
}

interface Case {
  label: string;
  /** Sets up the buffers on one backend; returns the timed call. */
  setup(kernels: WasmKernels): () => void;
}

function gemmCase(label: string, m: number, k: number, n: number): Case {
  return {
    label: `${label} ${m}×${k}·${k}×${n}`,
    setup(kernels) {
      const w = kernels.prepareLinear({ weight: random(n * k, 1).map((v) => v / Math.sqrt(k)), bias: random(n, 2), outFeatures: n, inFeatures: k });
      const x = kernels.upload(random(m * k, 3));
      const out = kernels.alloc(m * n);
      return () => kernels.linearGelu(x, m, w, out);
    },
  };
}

const attentionCase: Case = {
  label: 'attention n 197, 6 heads of 64',
  setup(kernels) {
    const n = 197,
      heads = 6,
      d = 64;
    const qkv = kernels.upload(random(n * 3 * heads * d, 4));
    const probs = kernels.alloc(heads * n * n);
    const out = kernels.alloc(n * heads * d);
    return () => kernels.attention(qkv, n, heads, d, d, 1 / 8, null, probs, out);
  },
};

const layerNormCase: Case = {
  label: 'layerNorm 197×384',
  setup(kernels) {
    const x = kernels.upload(random(197 * 384, 5));
    const gamma = kernels.upload(random(384, 6));
    const beta = kernels.upload(random(384, 7));
    const out = kernels.alloc(197 * 384);
    return () => kernels.layerNorm(x, 197, 384, gamma, beta, 1e-6, out);
  },
};

const cases = [gemmCase('qkv', 197, 384, 1152), gemmCase('fc1', 197, 384, 1536), gemmCase('fc2', 197, 1536, 384), attentionCase, layerNormCase];
const single = await createWasmKernels();
const pooled = await createWasmKernels({ threads });
const quantile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))];

process.stdout.write(
  `speed-up of ${threads} threads over 1 at quantiles ${QUANTILES.join(', ')} of ${calls} alternating calls (ms on 1 thread at the median)\n`,
);
for (const c of cases) {
  const runs = [c.setup(single), c.setup(pooled)];
  const times: number[][] = [[], []];
  for (let i = 0; i < calls; i++) {
    runs.forEach((run, j) => {
      const start = performance.now();
      run();
      times[j].push(performance.now() - start);
    });
  }
  const ratios = QUANTILES.map((p) => (quantile(times[0], p) / quantile(times[1], p)).toFixed(2));
  process.stdout.write(`  ${c.label.padEnd(32)} ${ratios.map((r) => `${r}×`).join('  ')}   (${quantile(times[0], 0.5).toFixed(3)} ms)\n`);
}
process.stdout.write(`chunks run per thread: ${pooled.pool!.chunksPerThread().join(' / ')}\n`);
await pooled.dispose();
