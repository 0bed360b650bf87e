/**
 * The oracle's figures (docs/porting.md), every one measured here:
 *   1. the largest error, relative to max|expected|, per tensor kind and backend against
 *      reference64: on the conformance suite (our float32 backends, wasm on 2 threads also with
 *      every call split over the workers, and the numpy port when python3 with numpy is there)
 *      and on DeiT-Tiny dev images (dense, top-k, ToMe, Zero-TPrune, MCTF, PPT, PiToMe at
 *      0.7 × dense GMACs), over the tensors before any decision differs;
 *   2. a DeiT-Tiny bundle: size on disk and time to record and write it (median of --runs);
 *   3. `check` of two DeiT-Tiny bundles (reference64 vs wasm): in process, and as the command
 *      from dist/ (run `npm run build` first), median of --runs.
 *
 *   npx tsx bench/oracle.ts [--images N] [--runs N] [--model DIR]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { median } from '../src/eval/metrics.js';
import { loadImageTensor } from '../src/image/file.js';
import { createKernels, createWasmKernels, type Kernels } from '../src/kernels/index.js';
import { loadModelFolder } from '../src/model/folder.js';
import { ViTRunner } from '../src/model/vit.js';
import { readBundle, writeBundle } from '../src/oracle/bundle.js';
import { checkBundles, type CheckReport } from '../src/oracle/check.js';
import { isIntegerKind, TENSOR_KINDS } from '../src/oracle/format.js';
import { traceMethodFromPlan, type TraceMethod } from '../src/oracle/methods.js';
import { checkSuite, readSuite } from '../src/oracle/suite.js';
import { recordTrace } from '../src/oracle/trace.js';
import { planPruning } from '../src/prune/registry.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
    model: { type: 'string', default: path.resolve(import.meta.dirname, '../../shared/data/deit-tiny') },
  },
});
const ROOT = path.resolve(import.meta.dirname, '..');
const SUITE = path.join(ROOT, 'fixtures/conformance');
const IMAGES = path.resolve(values.model!, '../imagenet-sample/images');
const BUDGET = 0.7;
/** The float32 backends compared with reference64, by column; `split`: every call split over the workers (the suite's tiny models are below every split threshold). */
const BACKENDS: { column: string; make: () => Promise<Kernels>; suiteOnly?: boolean }[] = [
  { column: 'reference', make: () => createKernels('reference') },
  { column: 'wasm', make: () => createKernels('wasm') },
  { column: 'wasm-simd', make: () => createKernels('wasm-simd') },
  { column: 'wasm, 2 threads', make: () => createKernels('wasm', { threads: 2 }) },
  { column: 'wasm-simd, 2 threads', make: () => createKernels('wasm-simd', { threads: 2 }) },
  { column: 'wasm, 2 threads, split', make: () => createWasmKernels({ threads: 2, splitSmallCalls: true }), suiteOnly: true },
  { column: 'wasm-simd, 2 threads, split', make: () => createWasmKernels({ variant: 'simd', threads: 2, splitSmallCalls: true }), suiteOnly: true },
];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-bench-oracle-'));
const FLOAT_KINDS = TENSOR_KINDS.filter((k) => !isIntegerKind(k));

/**
 * Per kind: the largest relative error over the tensors compared before any decision (integer
 * tensor) differs, and the largest share of its tensor's tolerance an error took.
 */
class ErrorTable {
  readonly worst = new Map<string, Map<string, { error: number; share: number }>>(); // column → kind → worst
  readonly flips = new Map<string, number>(); // column → runs whose decisions differed somewhere
  readonly failures = new Map<string, number>(); // column → runs failing the default tolerances before any flip

  add(column: string, report: CheckReport): void {
    const kinds = this.worst.get(column) ?? new Map<string, { error: number; share: number }>();
    this.worst.set(column, kinds);
    let failed = false;
    for (const t of report.tensors) {
      if (t.status === 'missing') continue;
      const float = t.kind !== 'other' && !isIntegerKind(t.kind);
      if (t.status !== 'ok' && (!float || t.status !== 'differs')) {
        this.flips.set(column, (this.flips.get(column) ?? 0) + 1);
        break;
      }
      if (float) {
        const worst = kinds.get(t.kind) ?? { error: 0, share: 0 };
        kinds.set(t.kind, { error: Math.max(worst.error, t.relativeError!), share: Math.max(worst.share, t.tolerance ? t.relativeError! / t.tolerance : 0) });
      }
      failed ||= t.status === 'differs';
    }
    if (failed) this.failures.set(column, (this.failures.get(column) ?? 0) + 1);
  }

  markdown(): string {
    const columns = [...this.worst.keys()];
    const rows = [`| kind | ${columns.join(' | ')} |`, `|---|${columns.map(() => '---:|').join('')}`];
    for (const kind of FLOAT_KINDS) {
      if (!columns.some((c) => this.worst.get(c)!.has(kind))) continue;
      const cell = (c: string) => {
        const worst = this.worst.get(c)!.get(kind);
        return worst ? `${worst.error.toExponential(1)} (${worst.share.toFixed(2)})` : '—';
      };
      rows.push(`| ${kind} | ${columns.map(cell).join(' | ')} |`);
    }
    rows.push(`| runs with a decision flip | ${columns.map((c) => this.flips.get(c) ?? 0).join(' | ')} |`);
    rows.push(`| runs failing a tolerance before it | ${columns.map((c) => this.failures.get(c) ?? 0).join(' | ')} |`);
    return rows.join('\n');
  }
}

function suiteErrors(): Promise<ErrorTable> {
  return (async () => {
    const table = new ErrorTable();
    for (const backend of BACKENDS) {
      const kernels = await backend.make();
      for (const { report } of checkSuite(SUITE, kernels)) table.add(backend.column, report);
      await kernels.dispose();
    }
    if (spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0) {
      const cases = readSuite(SUITE).cases.filter((c) => c.method === 'dense' || c.method === 'topk');
      const variants = [
        ['numpy float64', '--dtype', 'float64'],
        ['numpy float32', '--dtype', 'float32'],
        ['numpy, float16 softmax (broken)', '--break', 'softmax-f16'],
      ];
      for (const [column, ...options] of variants) {
        const out = path.join(tmp, column.replace(/\W+/g, '-'));
        spawnSync('python3', [path.join(ROOT, 'examples/numpy-port/port.py'), ...cases.map((c) => path.join(SUITE, c.dir)), '--out', out, ...options]);
        for (const c of cases)
          table.add(`${column} (dense, top-k)`, checkBundles(readBundle(path.join(SUITE, c.dir)), readBundle(path.join(out, path.basename(c.dir)))));
      }
    }
    return table;
  })();
}

async function deitErrors(files: string[]): Promise<ErrorTable> {
  const model = loadModelFolder(values.model!);
  const cfg = model.config;
  const oracle = new ViTRunner(model, await createKernels('reference64'));
  const backends = BACKENDS.filter((b) => !b.suiteOnly);
  const kernels = await Promise.all(backends.map((b) => b.make()));
  const runners = kernels.map((k) => new ViTRunner(model, k));
  const plans = await Promise.all(['topk', 'tome', 'zero-tprune', 'mctf', 'ppt', 'pitome'].map((method) => planPruning(cfg, { method, budget: BUDGET })));
  const methods: (TraceMethod | null)[] = [null, ...plans.map((plan) => traceMethodFromPlan(cfg, plan))];
  const table = new ErrorTable();
  for (const file of files) {
    const input = loadImageTensor(file, cfg.preprocess);
    for (const method of methods) {
      const request = { input, inputSource: { source: 'tensor' as const, description: file }, method, modelSource: values.model! };
      const expected = recordTrace(oracle, model, request);
      runners.forEach((runner, i) => table.add(backends[i].column, checkBundles(expected, recordTrace(runner, model, request))));
    }
    process.stderr.write(`  ${path.basename(file)} done\n`);
  }
  await Promise.all(kernels.map((k) => k.dispose()));
  return table;
}

/** Median seconds of `runs` calls of `f`. */
function timed(runs: number, f: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    f();
    times.push((performance.now() - start) / 1000);
  }
  return median(times);
}

function folderBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, f) => sum + statSync(path.join(dir, f)).size, 0);
}

async function bundleFigures(file: string, runs: number): Promise<string[]> {
  const model = loadModelFolder(values.model!);
  const input = loadImageTensor(file, model.config.preprocess);
  const lines = ['| backend | tensors | size on disk | record (forward + copies) | write |', '|---|---:|---:|---:|---:|'];
  const dirs: Record<string, string> = {};
  for (const backend of ['reference64', 'wasm'] as const) {
    const runner = new ViTRunner(model, await createKernels(backend));
    const request = { input, inputSource: { source: 'tensor' as const, description: path.basename(file) }, method: null, modelSource: values.model! };
    let bundle = recordTrace(runner, model, request);
    const record = timed(runs, () => (bundle = recordTrace(runner, model, request)));
    dirs[backend] = path.join(tmp, backend);
    const write = timed(runs, () => writeBundle(dirs[backend], bundle));
    lines.push(
      `| ${runner.kernels.name} | ${bundle.tensors.size} | ${(folderBytes(dirs[backend]) / 1e6).toFixed(1)} MB | ${record.toFixed(2)} s | ${write.toFixed(2)} s |`,
    );
  }
  const inProcess = timed(runs, () => checkBundles(readBundle(dirs.reference64), readBundle(dirs.wasm)));
  lines.push('', `check of the two (read both + compare), in process: ${inProcess.toFixed(2)} s`);
  const cli = path.join(ROOT, 'dist/cli/main.js');
  if (existsSync(cli)) {
    const command = timed(runs, () => spawnSync(process.execPath, [cli, 'check', dirs.reference64, dirs.wasm], { stdio: 'ignore' }));
    lines.push(`\`node dist/cli/main.js check\` of the two, wall time: ${command.toFixed(2)} s`);
  }
  return lines;
}

const runs = Number(values.runs);
const files = existsSync(IMAGES)
  ? readdirSync(IMAGES)
      .filter((f) => f.endsWith('.JPEG'))
      .sort()
      .slice(0, Number(values.images))
      .map((f) => path.join(IMAGES, f))
  : [];
const out: string[] = [`Machine: ${os.cpus()[0].model}, ${os.cpus().length} CPUs (shared), node ${process.version}`, ''];
out.push("Cells: the largest error relative to max|expected| (in brackets: its largest share of the tensor's tolerance τ_kind × (block + 1)).", '');
out.push(`### Conformance suite (${readSuite(SUITE).cases.length} cases)`, '', (await suiteErrors()).markdown(), '');
if (files.length) {
  out.push(
    `### Same on DeiT-Tiny, ${files.length} dev images × dense, top-k, ToMe, Zero-TPrune, MCTF, PPT, PiToMe at ${BUDGET} × dense GMACs`,
    '',
    (await deitErrors(files)).markdown(),
    '',
  );
  out.push(`### A DeiT-Tiny bundle (dense, ${path.basename(files[0])}), median of ${runs}`, '', ...(await bundleFigures(files[0], runs)), '');
}
process.stdout.write(out.join('\n') + '\n');
rmSync(tmp, { recursive: true, force: true });
