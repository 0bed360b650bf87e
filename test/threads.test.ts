import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ThreadPoolError } from '../src/errors.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm.js';
import { loadModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { readSafetensors } from '../src/model/safetensors-file.js';
import type { ViTModel } from '../src/model/types.js';
import { ViTRunner, type ForwardResult } from '../src/model/vit.js';
import type { ForwardHooks } from '../src/model/hooks.js';
import { mctfHooks } from '../src/prune/mctf.js';
import { pitomeHooks } from '../src/prune/pitome.js';
import { pptHooks } from '../src/prune/ppt.js';
import { planPruning, TOKEN_METHODS } from '../src/prune/registry.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

// Worker threads: whole models give the bits of one thread; a dead worker or a trapping kernel
// gives a ThreadPoolError, never a hang, and the pool works afterwards; the process exits with
// its workers alive; dispose ends them. Every test here has a timeout.

const TIMEOUT = 120_000;
const PROJECT_ROOT = path.resolve(import.meta.dirname, '..');

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(Float32Array.from(a).buffer);
  const y = new Uint32Array(Float32Array.from(b).buffer);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Resolves when `condition` holds, polling with the event loop free; rejects after `ms`. */
async function eventually(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Every method, as a maker of per-image hooks for one runner (MCTF's hooks hold weights prepared
 * on the backend of the runner that first uses them: one hooks object per runner): the registry's
 * methods whose token counts are fixed at 0.65× GMACs, MCTF, PPT and PiToMe with their defaults.
 * (LTP's counts are per image: it needs calibration.)
 */
const PRUNING: { name: string; hooksFor(model: ViTModel): Promise<((image: number) => ForwardHooks) | null> }[] = [
  { name: 'dense', hooksFor: async () => null },
  ...TOKEN_METHODS.filter((method) => method.counts === 'fixed').map((method) => ({
    name: method.name,
    hooksFor: async (model: ViTModel) => {
      const plan = await method.plan(model.config, { budget: 0.65 });
      return (image: number) => plan.hooks(image);
    },
  })),
  {
    name: 'mctf',
    hooksFor: async () => {
      const hooks = mctfHooks();
      return () => hooks;
    },
  },
  { name: 'ppt', hooksFor: async () => () => pptHooks() },
  { name: 'pitome', hooksFor: async () => () => pitomeHooks({ r: 8 }) },
];

describeWithData('golden inputs: logits on 2 and 3 threads are bit-identical to 1 thread', () => {
  let model: ViTModel;
  let inputs: Float32Array[];
  const kernels: WasmKernels[] = [];
  beforeAll(async () => {
    const dir = path.join(SHARED_DATA, 'deit-tiny');
    model = loadModelFolder(dir);
    const golden = readSafetensors(path.join(dir, 'golden_reference.safetensors')).tensors;
    inputs = [0, 1, 2].map((s) => golden.get(`sample${s}.input`)!.data);
    for (const threads of [1, 2, 3]) kernels.push(await createWasmKernels({ threads }));
  }, TIMEOUT);
  afterAll(() => Promise.all(kernels.map((k) => k.dispose())));

  it.each(PRUNING)(
    'DeiT-Tiny, $name',
    async ({ hooksFor }) => {
      const results: ForwardResult[][] = [];
      for (const k of kernels) {
        using runner = new ViTRunner(model, k);
        const hooks = await hooksFor(model);
        const jobs = k.pool?.jobs ?? 0;
        results.push(inputs.map((input, i) => runner.forward(input, hooks?.(i))));
        if (k.pool) expect(k.pool.jobs, `${k.threads} threads ran jobs`).toBeGreaterThan(jobs);
      }
      const [single, ...threaded] = results;
      threaded.forEach((outputs, t) =>
        outputs.forEach((r: ForwardResult, i) => {
          expect(sameBits(r.logits, single[i].logits), `sample ${i}, ${t + 2} threads: logits`).toBe(true);
          expect(r.tokens).toEqual(single[i].tokens);
          expect(r.gmacs).toBe(single[i].gmacs);
        }),
      );
    },
    TIMEOUT,
  );
});

describe('faults and lifecycle', () => {
  it(
    'a worker terminated mid-run fails that job with ThreadPoolError, and the pool goes on and restarts it',
    async () => {
      const kernels = await createWasmKernels({ threads: 2 });
      const single = await createWasmKernels();
      try {
        // Long chunks (≈ 10–50 ms each), so the worker dies inside one.
        const m = 3000,
          n = 1024,
          k = 1024;
        const lin = { weight: Float32Array.from({ length: n * k }, (_, i) => Math.sin(i) / 32), bias: new Float32Array(n), outFeatures: n, inFeatures: k };
        const x = Float32Array.from({ length: m * k }, (_, i) => Math.cos(i));
        const run = (kk: WasmKernels): Float32Array => {
          const w = kk.prepareLinear(lin);
          const xBuf = kk.upload(x);
          const out = kk.alloc(m * n);
          try {
            kk.linear(xBuf, m, w, out);
            return Float32Array.from(out);
          } finally {
            kk.free(out);
            kk.free(xBuf);
            kk.releaseLinear(w);
          }
        };
        const expected = run(single);
        await eventually(() => kernels.pool!.liveThreads() === 2, 20_000, 'the worker is ready');
        kernels.pool!.killWorkerWhileBusy(1);
        let failure: unknown;
        for (let attempt = 0; attempt < 5 && !failure; attempt++) {
          try {
            run(kernels);
          } catch (error) {
            failure = error;
          }
        }
        expect(failure).toBeInstanceOf(ThreadPoolError);
        expect((failure as Error).message).toMatch(/^linear: worker 1 died: .* while running a chunk/);
        // Right away (the dead worker not restarted yet) and once it is back: the bits of one thread.
        expect(sameBits(run(kernels), expected)).toBe(true);
        await eventually(() => kernels.pool!.liveThreads() === 2, 20_000, 'the worker is restarted');
        const jobs = kernels.pool!.jobs;
        expect(sameBits(run(kernels), expected)).toBe(true);
        expect(kernels.pool!.jobs).toBe(jobs + 1);
      } finally {
        await kernels.dispose();
      }
    },
    TIMEOUT,
  );

  it(
    'a kernel that traps fails with ThreadPoolError, and the pool works afterwards',
    async () => {
      const kernels = await createWasmKernels({ threads: 2, checks: false });
      try {
        const n = 64,
          k = 64,
          m = 256;
        const w = kernels.prepareLinear({ weight: new Float32Array(n * k).fill(0.5), bias: new Float32Array(n), outFeatures: n, inFeatures: k });
        const out = kernels.alloc(m * n);
        // With checks off, a view of another buffer is taken by its byte offset: 64 MiB, past the end of the wasm memory.
        const outside = new Float32Array(new ArrayBuffer(65 << 20), 64 << 20, m * k);
        await eventually(() => kernels.pool!.liveThreads() === 2, 20_000, 'the worker is ready');
        expect(() => kernels.linear(outside, m, w, out)).toThrow(ThreadPoolError);
        expect(() => kernels.linear(outside, m, w, out)).toThrow(/out of bounds/);
        const x = kernels.upload(new Float32Array(m * k).fill(1));
        kernels.linear(x, m, w, out);
        expect(out.every((v) => v === 32)).toBe(true);
        await eventually(() => kernels.pool!.liveThreads() === 2, 20_000, 'a trapped worker is restarted');
        out.fill(0);
        kernels.linear(x, m, w, out);
        expect(out.every((v) => v === 32)).toBe(true);
      } finally {
        await kernels.dispose();
      }
    },
    TIMEOUT,
  );

  it(
    'dispose ends the workers; the kernels refuse to run on threads afterwards',
    async () => {
      const kernels = await createWasmKernels({ threads: 3 });
      await eventually(() => kernels.pool!.liveThreads() === 3, 20_000, 'the workers are ready');
      await kernels.dispose();
      expect(kernels.pool!.liveThreads()).toBe(1);
      const w = kernels.prepareLinear({ weight: new Float32Array(256 * 256), bias: new Float32Array(256), outFeatures: 256, inFeatures: 256 });
      expect(() => kernels.linear(kernels.alloc(256 * 256), 256, w, kernels.alloc(256 * 256))).toThrow(/disposed/);
      await kernels.dispose(); // twice is harmless
    },
    TIMEOUT,
  );

  it(
    'the process exits on its own with its workers alive (no dispose)',
    async () => {
      const script = [
        `import { createWasmKernels } from ${JSON.stringify(path.join(PROJECT_ROOT, 'src/kernels/wasm.ts'))};`,
        'const k = await createWasmKernels({ threads: 3 });',
        'const w = k.prepareLinear({ weight: new Float32Array(512 * 512).fill(0.01), bias: new Float32Array(512), outFeatures: 512, inFeatures: 512 });',
        'k.linear(k.alloc(200 * 512), 200, w, k.alloc(200 * 512));',
        'console.log(`jobs ${k.pool.jobs}`);',
      ].join('\n');
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: PROJECT_ROOT,
        timeout: 30_000,
      });
      expect(stdout.trim()).toBe('jobs 1');
    },
    TIMEOUT,
  );

  it(
    'many concurrent callers on one model queue and all get the answer of one thread',
    async () => {
      const cfg = configFromDims({ dim: 192, depth: 12, heads: 3, imageSize: 64, patchSize: 8, numClasses: 10 });
      const model = randomModel(cfg, 9);
      const kernels = await createWasmKernels({ threads: 2 });
      const single = await createWasmKernels();
      try {
        using runner = new ViTRunner(model, kernels);
        using reference = new ViTRunner(model, single);
        const plan = await planPruning(cfg, { method: 'zero-tprune', keep: 0.7 });
        const inputs = Array.from({ length: 4 }, (_, s) => Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * (s + 1))));
        const expected = inputs.map((input, i) => reference.forward(input, i % 2 ? plan.hooks(i) : undefined).logits);
        const calls = Array.from({ length: 24 }, async (_, c) => {
          await new Promise((resolve) => setTimeout(resolve, c % 3));
          const i = c % inputs.length;
          return { i, logits: runner.forward(inputs[i], i % 2 ? plan.hooks(i) : undefined).logits };
        });
        for (const { i, logits } of await Promise.all(calls)) expect(sameBits(logits, expected[i])).toBe(true);
      } finally {
        await kernels.dispose();
      }
    },
    TIMEOUT,
  );
});
