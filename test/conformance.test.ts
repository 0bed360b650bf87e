import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKernels, createWasmKernels, type Backend, type Kernels, type WasmKernels } from '../src/kernels/index.js';
import { describeDivergence } from '../src/oracle/check.js';
import { TENSOR_KINDS, type TensorKind } from '../src/oracle/format.js';
import { TRACE_METHODS } from '../src/oracle/methods.js';
import { checkSuite, readSuite } from '../src/oracle/suite.js';

// The conformance suite (fixtures/conformance, `npm run conformance`): reference64 still writes
// every stored bundle bit for bit (the fixtures are not stale), and our float32 backends pass
// every case through the checker with the default tolerances, exactly as a port would; the wasm
// backends on 2 threads too, as `createKernels` makes them (the suite's tiny models are below
// every split threshold: the caller's thread runs them) and with every call split, so that the
// workers run the kernels. Threaded tests have a timeout and dispose their workers.

const SUITE = path.resolve(import.meta.dirname, '../fixtures/conformance');
const suite = readSuite(SUITE);

const THREADED_TIMEOUT = 60_000;

/** Every case of the suite traced on `kernels` (a backend's name: new kernels) and checked against its bundle; failures described. */
async function runSuite(kernels: Backend | Kernels, tolerances?: Partial<Record<TensorKind, number>>): Promise<string[]> {
  const failures: string[] = [];
  for (const { suiteCase, model, report } of checkSuite(SUITE, typeof kernels === 'string' ? await createKernels(kernels) : kernels, { tolerances })) {
    if (report.missing.length || report.extra.length)
      failures.push(`${suiteCase.name}: tensors missing ${report.missing.join(', ')}; extra ${report.extra.join(', ')}`);
    if (!report.ok)
      failures.push(
        `${suiteCase.name}: ${report.firstDivergence ? describeDivergence(report.firstDivergence, model.config.depth) : report.manifestDifferences.join('; ')}`,
      );
  }
  return failures;
}

describe('conformance suite', () => {
  it('covers every model layout, 2 inputs × dense + 9 methods × 2 settings, and the tie cases', () => {
    expect(
      Object.values(suite.models)
        .map((m) => m.layout)
        .sort(),
    ).toEqual(['timm', 'timm', 'timm', 'timm', 'transformers']);
    const methods = new Set(suite.cases.map((c) => `${c.method}-${c.setting}`));
    for (const m of TRACE_METHODS) for (const s of [1, 2]) expect(methods).toContain(`${m}-${s}`);
    expect(TRACE_METHODS).toHaveLength(9);
    expect(suite.cases.filter((c) => !c.ties)).toHaveLength(5 * 2 * 19);
    expect(suite.cases.filter((c) => c.ties).map((c) => c.method)).toEqual(['topk', 'tome']);
  });

  it('reference64 reproduces every stored bundle exactly (regenerate with npm run conformance after a deliberate change)', async () => {
    const exact = Object.fromEntries(TENSOR_KINDS.map((k) => [k, 0]));
    expect(await runSuite('reference64', exact)).toEqual([]);
  });

  for (const backend of ['reference', 'wasm', 'wasm-simd'] as const) {
    it(`the ${backend} backend passes every case with the default tolerances`, async () => {
      expect(await runSuite(backend)).toEqual([]);
    });
  }

  for (const backend of ['wasm', 'wasm-simd'] as const) {
    it(
      `the ${backend} backend on 2 threads passes every case`,
      async () => {
        const kernels = (await createKernels(backend, { threads: 2 })) as WasmKernels;
        try {
          expect(kernels.threads).toBe(2);
          expect(await runSuite(kernels)).toEqual([]);
        } finally {
          await kernels.dispose();
        }
      },
      THREADED_TIMEOUT,
    );

    it(
      `the ${backend} backend on 2 threads, every call split over the workers, passes every case`,
      async () => {
        const kernels = await createWasmKernels({ variant: backend === 'wasm' ? 'auto' : 'simd', threads: 2, splitSmallCalls: true });
        try {
          expect(await runSuite(kernels)).toEqual([]);
          expect(kernels.pool!.jobs, 'jobs the pool ran').toBeGreaterThan(1000);
        } finally {
          await kernels.dispose();
        }
      },
      THREADED_TIMEOUT,
    );
  }
});
