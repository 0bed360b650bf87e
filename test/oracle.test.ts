import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TraceFormatError } from '../src/errors.js';
import { createReference64Kernels, createReference64KernelsAsFloat32, createReferenceKernels } from '../src/kernels/reference.js';
import { saveModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel, seededRandom } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { readBundle, writeBundle, type TraceBundle } from '../src/oracle/bundle.js';
import { checkBundles, formatCheckReport } from '../src/oracle/check.js';
import { TRACE_FORMAT_VERSION } from '../src/oracle/format.js';
import { traceMethodFromJson, traceMethodFromPlan, type TraceMethod } from '../src/oracle/methods.js';
import type { PruningPlan } from '../src/prune/method.js';
import { planPruning, TOKEN_METHODS } from '../src/prune/registry.js';
import { denseGmacs, modelGmacs } from '../src/model/gmacs.js';
import { mctfGmacs } from '../src/prune/mctf.js';
import { pitomeTokens } from '../src/prune/pitome.js';
import { pptTokens } from '../src/prune/ppt.js';
import { recordTrace } from '../src/oracle/trace.js';
import { runCli } from './run-cli.js';

// Trace bundles: what the producer records, that the reader gives back what the writer wrote and
// refuses what is malformed, and that the checker names the first divergence.

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-oracle-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cfg = configFromDims({ dim: 9, depth: 3, heads: 3, imageSize: 8, patchSize: 2, mlpDim: 19, numClasses: 4, distilled: true }, 'tiny');
const model = randomModel(cfg, 5);
const rand = seededRandom(2);
const input = Float32Array.from({ length: 3 * 8 * 8 }, () => 2 * rand() - 1);
const inputSource = { source: 'tensor', description: 'uniform noise' } as const;

function trace(method: TraceMethod | null, kernels = createReference64KernelsAsFloat32()): TraceBundle {
  return recordTrace(new ViTRunner(model, kernels), model, { input, inputSource, method, modelSource: 'tiny' });
}

const TOPK: TraceMethod = { name: 'topk', settings: { keepRate: 0.5, blocks: [1] } };

describe('recordTrace', () => {
  it("records input, embed, every block's tensors in order, the final norm and the logits; floats in float64 from reference64", () => {
    const bundle = trace(null);
    const block = (b: number) => ['ln1', 'qkv', 'attn.probs', 'attn.out', 'x.attn', 'ln2', 'mlp.hidden', 'x.mlp'].map((t) => `block.${b}.${t}`);
    expect([...bundle.tensors.keys()]).toEqual(['input', 'embed', ...block(0), ...block(1), ...block(2), 'final.norm', 'logits']);
    for (const t of bundle.tensors.values()) expect(t.data).toBeInstanceOf(Float64Array);
    const info = bundle.tensors.get('block.1.attn.probs')!.info;
    expect(info).toMatchObject({ dtype: 'F64', shape: [3, 18, 18], kind: 'probs', block: 1, layout: '[H, n, n]' });
    expect(bundle.manifest).toMatchObject({
      format: 'vitprune-trace',
      version: TRACE_FORMAT_VERSION,
      producer: { backend: 'reference64', floatDtype: 'F64' },
      method: null,
      config: { dim: 9, depth: 3, heads: 3, qkDim: 3, vDim: 3, mlpDim: 19, prefixTokens: 2, distilled: true },
    });
    expect(Array.from(bundle.tensors.get('input')!.data)).toEqual(Array.from(input));
    const logits = new ViTRunner(model, createReference64Kernels()).forward(input).logits; // float64, as the runner is generic
    expect(bundle.tensors.get('logits')!.data).toEqual(logits);
  });

  it('stores float32 from a float32 backend, integers as int32', () => {
    const bundle = trace(TOPK, createReferenceKernels());
    expect(bundle.manifest.producer).toMatchObject({ backend: 'reference', floatDtype: 'F32' });
    expect(bundle.tensors.get('embed')!.data).toBeInstanceOf(Float32Array);
    expect(bundle.tensors.get('block.1.after_attention.attentiveness')!.data).toBeInstanceOf(Float32Array);
    expect(bundle.tensors.get('block.1.after_attention.ids')!.data).toBeInstanceOf(Int32Array);
  });

  it('top-k: attentiveness and the ids alive after the reduction, which the next tensors follow', () => {
    const bundle = trace(TOPK);
    const ids = Array.from(bundle.tensors.get('block.1.after_attention.ids')!.data);
    expect(ids.slice(0, 2)).toEqual([0, 1]); // CLS, DIST
    expect(ids).toHaveLength(2 + 8); // ⌈0.5·16⌉ patches
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(bundle.tensors.get('block.1.after_attention.attentiveness')!.info.shape).toEqual([18]);
    expect(bundle.tensors.get('block.1.x.attn')!.info.shape).toEqual([18, 9]);
    expect(bundle.tensors.get('block.1.ln2')!.info.shape).toEqual([10, 9]);
    expect(bundle.tensors.get('block.2.qkv')!.info.shape).toEqual([10, 27]);
  });

  it('ToMe: pairs, scores, ids and sizes after every merge; EViT: the fused token and its id −1', () => {
    const tome = trace({ name: 'tome', settings: { r: [2, 3, 0] } });
    expect(Array.from(tome.tensors.get('block.0.after_attention.sizes')!.data).reduce((a, b) => a + b, 0)).toBe(18);
    expect(tome.tensors.get('block.1.after_attention.pairs')!.info.shape).toEqual([3, 2]);
    expect(tome.tensors.has('block.2.after_attention.ids')).toBe(false); // r = 0: no reduction
    const evit = trace({ name: 'evit', settings: { keepRate: 0.5, blocks: [0] } });
    expect(Array.from(evit.tensors.get('block.0.after_attention.ids')!.data).at(-1)).toBe(-1);
    expect(evit.tensors.get('block.0.after_attention.fused')!.info.shape).toEqual([9]);
  });
});

describe('MCTF, PPT and PiToMe settings for traces', () => {
  const deit = configFromDims({ dim: 192, depth: 12, heads: 3, imageSize: 224, patchSize: 16, mlpDim: 768, numClasses: 1000 }, 'deit-tiny-like');
  const plan = (method: string, settings: unknown) => ({ method, settings }) as PruningPlan;

  it('resolve what a plan reports (the settings objects of prune/mctf.ts, ppt.ts, pitome.ts; defaults filled in), and read back from JSON', () => {
    const cases: [PruningPlan, TraceMethod][] = [
      [
        plan('mctf', { r: 12.6 }),
        {
          name: 'mctf',
          settings: { r: 12.6, layers: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], tauSim: 1, tauInfo: 20, tauSize: 40, bidirectional: true, oneStepAhead: true },
        },
      ],
      [
        plan('mctf', { r: 8, 'one-step-ahead': false, layers: [0, 4] }),
        { name: 'mctf', settings: { r: 8, layers: [0, 4], tauSim: 1, tauInfo: 20, tauSize: 40, bidirectional: true, oneStepAhead: false } },
      ],
      [plan('ppt', { r: 30 }), { name: 'ppt', settings: { r: [30, 30, 30], blocks: [3, 6, 9], threshold: 7e-5 } }],
      [
        plan('pitome', { r: [4, 3], margin: 0.5 }),
        { name: 'pitome', settings: { r: [4, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], margin: Array(12).fill(0.5), alpha: 1 } },
      ],
    ];
    for (const [p, expected] of cases) {
      expect(traceMethodFromPlan(deit, p)).toEqual(expected);
      expect(traceMethodFromJson(JSON.parse(JSON.stringify(expected)), 'manifest.method')).toEqual(expected);
    }
    const pitome = traceMethodFromPlan(deit, plan('pitome', { r: 2 })) as Extract<TraceMethod, { name: 'pitome' }>;
    expect(pitome.settings.margin[6]).toBeCloseTo(0.9 - (0.8 * 6) / 12, 15);
    expect(() => traceMethodFromJson({ name: 'ppt', settings: { r: [1], blocks: [2], threshold: -1 } }, 'here')).toThrow(
      /here.settings.threshold: expected a number in \[0, Infinity\], found -1/,
    );
  });

  // Runs once the method registry lists them (prune/registry.ts): a budget plan (one the method's own
  // token counts reach exactly) turns into trace settings that trace. 12 blocks: PPT's default blocks are 3, 6, 9.
  const deep = configFromDims({ dim: 12, depth: 12, heads: 2, imageSize: 32, patchSize: 4, mlpDim: 24, numClasses: 3 }, 'deep');
  const reachable: Record<string, () => number> = {
    mctf: () => mctfGmacs(deep, { r: 4 }),
    ppt: () => modelGmacs(deep, pptTokens(deep, { r: 10 })),
    pitome: () => modelGmacs(deep, pitomeTokens(deep, 2)),
  };
  for (const [method, gmacs] of Object.entries(reachable)) {
    it.runIf(TOKEN_METHODS.some((m) => m.name === method))(`${method}: a registry plan traces`, async () => {
      const traced = traceMethodFromPlan(deep, await planPruning(deep, { method, budget: gmacs() / denseGmacs(deep) }));
      expect(traced.name).toBe(method);
      const deepModel = randomModel(deep, 1);
      const deepInput = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i));
      const bundle = recordTrace(new ViTRunner(deepModel, createReference64KernelsAsFloat32()), deepModel, {
        input: deepInput,
        inputSource,
        method: traced,
        modelSource: 'deep',
      });
      expect([...bundle.tensors.keys()].some((name) => name.endsWith('.ids'))).toBe(true);
    });
  }
});

describe('vitprune/oracle', () => {
  it("is listed in package.json's exports and works in memory: encode → decode gives the bundle back, which checks against itself", async () => {
    const exports = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../package.json'), 'utf8')).exports;
    expect(exports['./oracle']).toEqual({ types: './dist/oracle/index.d.ts', import: './dist/oracle/index.js' });
    const oracle = await import('../src/oracle/index.js');
    const bundle = trace(TOPK);
    const files = oracle.encodeBundle(bundle);
    const back = oracle.decodeBundle(files, 'in-memory');
    expect([...back.tensors.keys()]).toEqual([...bundle.tensors.keys()]);
    expect(back.tensors.get('block.1.after_attention.ids')!.data).toEqual(bundle.tensors.get('block.1.after_attention.ids')!.data);
    expect(oracle.checkBundles(bundle, back).ok).toBe(true);
    expect(() => oracle.decodeBundle({ ...files, manifest: new TextEncoder().encode('{}') }, 'in-memory')).toThrow(
      /in-memory\/manifest.json: expected "format": "vitprune-trace"/,
    );
  });
});

describe('bundle files', () => {
  it('read gives back what write wrote: manifest, names, order, dtypes, bits', () => {
    const bundle = trace({
      name: 'zero-tprune',
      settings: {
        steps: [{ after: 1, rS: 3, rI: 2 }],
        init: 'cls-boost',
        iterations: [30, 30, 30],
        tolerance: 0,
        useEIR: true,
        useVHF: true,
        vhfWindow: [0.01, 0.7],
        useSStage: true,
        similarity: 'keys',
      },
    });
    const dir = path.join(tmp, 'round-trip');
    writeBundle(dir, bundle);
    const read = readBundle(dir);
    expect(read.manifest).toEqual(JSON.parse(JSON.stringify({ ...bundle.manifest, tensors: [...bundle.tensors.values()].map((t) => t.info) })));
    expect([...read.tensors.keys()]).toEqual([...bundle.tensors.keys()]);
    for (const [name, t] of bundle.tensors) expect(read.tensors.get(name)!.data).toEqual(t.data);
    expect(read.tensors.get('block.0.after_block.s.pairs')!.data).toBeInstanceOf(Int32Array);
  });

  it('a port may write a manifest with format and version only: the file header lists the tensors', () => {
    const dir = path.join(tmp, 'minimal');
    writeBundle(dir, trace(null));
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ format: 'vitprune-trace', version: 1 }));
    expect(readBundle(dir).tensors.get('block.2.x.mlp')!.info).toEqual({ name: 'block.2.x.mlp', dtype: 'F64', shape: [18, 9] });
  });

  it('refuses malformed bundles, naming the file and the tensor', () => {
    const dir = path.join(tmp, 'broken');
    const manifestFile = path.join(dir, 'manifest.json');
    const write = (edit: (m: Record<string, any>) => void) => {
      writeBundle(dir, trace(null));
      const m = JSON.parse(readFileSync(manifestFile, 'utf8'));
      edit(m);
      writeFileSync(manifestFile, JSON.stringify(m));
    };
    const refuses = (pattern: RegExp) => {
      expect(() => readBundle(dir)).toThrow(TraceFormatError);
      expect(() => readBundle(dir)).toThrow(pattern);
    };
    expect(() => readBundle(path.join(tmp, 'nowhere'))).toThrow(/nowhere: expected a trace bundle folder \(manifest.json \+ tensors.safetensors\), not found/);
    write((m) => (m.format = 'other'));
    refuses(/manifest.json: expected "format": "vitprune-trace", found "other"/);
    write((m) => (m.version = TRACE_FORMAT_VERSION + 1));
    refuses(
      new RegExp(`manifest.json: expected "version" 1…${TRACE_FORMAT_VERSION} \\(the versions this vitprune reads\\), found ${TRACE_FORMAT_VERSION + 1}`),
    );
    write((m) => (m.tensors[2].dtype = 'F32'));
    refuses(/tensors.safetensors: tensor "block.0.ln1": manifest.json lists F32 \[18, 9\], the file holds F64 \[18, 9\]/);
    write((m) => (m.tensors[2].dtype = 'F16'));
    refuses(/tensors\[2\] \("block.0.ln1"\): expected "dtype" F64, F32 or I32, found "F16"/);
    write((m) => m.tensors.push({ name: 'extra', dtype: 'F32', shape: [1] }));
    refuses(/tensor "extra" is listed in manifest.json but not in the file/);
    write((m) => m.tensors.splice(1, 1));
    refuses(/tensor "embed" is not listed in manifest.json/);
    write((m) => m.tensors.push(m.tensors[0]));
    refuses(/tensors\[\d+\]: tensor "input" is listed twice/);
  });
});

describe('checkBundles', () => {
  const expected = trace(TOPK);

  /** A copy of `bundle` with `edit` applied to copies of its tensors. */
  const edited = (bundle: TraceBundle, edit: (tensors: TraceBundle['tensors']) => void): TraceBundle => {
    const tensors = new Map([...bundle.tensors].map(([name, t]) => [name, { info: { ...t.info }, data: t.data.slice() }]));
    edit(tensors);
    return { manifest: bundle.manifest, tensors };
  };

  it('passes the float32 reference against reference64, and a bundle against itself', () => {
    expect(checkBundles(expected, trace(TOPK, createReferenceKernels())).ok).toBe(true);
    const self = checkBundles(expected, expected);
    expect(self.ok).toBe(true);
    expect(self.kinds.find((k) => k.kind === 'residual')).toMatchObject({ tensors: 6, failed: 0, worstRelativeError: 0 });
  });

  it('names the first divergence: block, tensor, index, expected, actual, tolerance; later tensors still compared', () => {
    const actual = edited(expected, (t) => {
      t.get('block.1.x.mlp')!.data[5 * 9 + 4] += 0.01;
      t.get('block.2.qkv')!.data[0] += 1;
    });
    const report = checkBundles(expected, actual);
    expect(report.ok).toBe(false);
    const first = report.firstDivergence!;
    expect(first).toMatchObject({ name: 'block.1.x.mlp', block: 1, kind: 'residual', status: 'differs', mismatches: 1 });
    expect(first.first).toMatchObject({ index: 49, at: [5, 4], expected: expected.tensors.get('block.1.x.mlp')!.data[49] });
    expect(report.tensors.find((t) => t.name === 'block.2.qkv')!.status).toBe('differs');
    expect(formatCheckReport(report, 3)).toMatch(
      /first divergence: block 1, block.1.x.mlp \[10, 9\] at \[5, 4\]: expected .*, actual .* \(\|Δ\| 1.00e-2, tolerance 1.00e-4 × max\|expected\| = .*, τ_residual × 2\); 1 of 90 values outside/,
    );
  });

  it('within tolerance passes; --tol style overrides tighten or loosen a kind', () => {
    const scale = Math.max(...Array.from(expected.tensors.get('block.0.ln1')!.data, Math.abs));
    const actual = edited(expected, (t) => (t.get('block.0.ln1')!.data[3] += 3e-5 * scale));
    expect(checkBundles(expected, actual).ok).toBe(true);
    expect(checkBundles(expected, actual, { tolerances: { norm: 1e-5 } }).firstDivergence?.name).toBe('block.0.ln1');
  });

  it('ids are exact; a different token set shows as a shape divergence downstream', () => {
    const actual = edited(expected, (t) => {
      const ids = t.get('block.1.after_attention.ids')!.data;
      ids[9] = ids[9] + 1;
    });
    const report = checkBundles(expected, actual);
    expect(report.firstDivergence).toMatchObject({ name: 'block.1.after_attention.ids', kind: 'ids', tolerance: 0, first: { at: [9] } });
    const other = trace({ name: 'topk', settings: { keepRate: 0.75, blocks: [1] } });
    expect(checkBundles(expected, other).manifestDifferences).toEqual([
      expect.stringMatching(/^method: expected .*"keepRate":0.5.*, actual .*"keepRate":0.75/),
    ]);
    const shapes = checkBundles(expected, { ...other, manifest: { ...other.manifest, method: undefined } });
    expect(shapes.firstDivergence).toMatchObject({ name: 'block.1.after_attention.ids', status: 'shape', actualShape: [14] });
  });

  it('lists missing tensors without failing; fails when nothing is compared', () => {
    const partial = edited(expected, (t) => {
      for (const name of [...t.keys()]) if (!/^(embed|block\.\d+\.x\.mlp|logits)$/.test(name)) t.delete(name);
    });
    const report = checkBundles(expected, partial);
    expect(report.ok).toBe(true);
    expect(report.missing).toContain('block.1.after_attention.attentiveness');
    expect(report.tensors.filter((t) => t.status === 'ok').map((t) => t.name)).toEqual(['embed', 'block.0.x.mlp', 'block.1.x.mlp', 'block.2.x.mlp', 'logits']);
    expect(
      checkBundles(
        expected,
        edited(expected, (t) => t.clear()),
      ).ok,
    ).toBe(false);
  });

  it('non-finite values must be equal: NaN where a number is expected fails, −∞ matches −∞', () => {
    const tome = trace({ name: 'tome', settings: { r: [2, 2, 2] } });
    expect(tome.tensors.get('block.0.after_attention.score')!.data[0]).toBe(-Infinity);
    expect(checkBundles(tome, tome).ok).toBe(true);
    const nan = edited(tome, (t) => (t.get('logits')!.data[1] = NaN));
    expect(checkBundles(tome, nan).firstDivergence).toMatchObject({ name: 'logits', first: { index: 1 } });
  });
});

describe('vitprune trace / check', () => {
  const modelDir = path.join(tmp, 'model');
  saveModelFolder(modelDir, model);
  const inputFile = path.join(tmp, 'input-bundle');

  it("traces a bundle's input again on another backend and checks it: exit 0, then 1 with one error line on a divergence", async () => {
    writeBundle(inputFile, { ...trace(TOPK), manifest: { ...trace(TOPK).manifest, model: { source: '../model', architecture: 'tiny', layout: 'timm' } } });
    const out = path.join(tmp, 'wasm-trace');
    const traced = await runCli('trace', inputFile, '--backend', 'wasm', '--out', out, '--quiet');
    expect(traced.stderr).toBe('');
    expect(traced.stdout).toMatch(/^wrote .*wasm-trace: 30 tensors, .* MB \(F32 from wasm-\w+, topk, .* GMACs\)/);
    expect(traced.code).toBe(0);
    const checked = await runCli('check', inputFile, out);
    expect(checked.stdout).toMatch(/PASS: 30 tensors compared/);
    expect(checked.code).toBe(0);

    const strict = await runCli('check', inputFile, out, '--tol', 'probs=0,qkv=0,norm=0,residual=0,attn.out=0,mlp.hidden=0,logits=0,score=0,embed=0');
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(/FAIL: \d+ of 30 tensors compared differ/);
    expect(strict.stderr).toMatch(/^error: .*wasm-trace does not match .*input-bundle: first divergence: .*\n$/);
  });

  it('traces with the pruning options of the other commands, and refuses what it cannot run', async () => {
    const out = path.join(tmp, 'tome-trace');
    const tome = await runCli('trace', '--model', modelDir, inputFile, '--method', 'tome', '--r', '2', '--out', out, '--json');
    expect(tome.code).toBe(0);
    expect(JSON.parse(tome.stdout)).toMatchObject({ backend: 'reference64', floatDtype: 'F64', method: 'tome' });
    expect(readBundle(out).manifest.method).toEqual({ name: 'tome', settings: { r: [2, 2, 2] } });
    const ltp = await runCli('trace', inputFile, '--method', 'ltp', '--settings', '{"theta": [0, 1, 1], "unit": "mean"}', '--out', out);
    expect(ltp.code).toBe(0);
    expect((await runCli('trace', inputFile, '--method', 'ltp', '--out', out)).stderr).toMatch(
      /--method ltp needs exactly one of --budget, --gmacs, --schedule, --thresholds; found none/,
    );
    expect((await runCli('trace', inputFile, '--method', 'topk', '--settings', '{"keepRate": 2, "blocks": [1]}', '--out', out)).stderr).toMatch(
      /error: --settings.settings.keepRate: expected a number in \[0, 1\], found 2/,
    );
    const pitome = await runCli(
      'trace',
      inputFile,
      '--method',
      'pitome',
      '--settings',
      '{"r": [2, 1, 0], "margin": [0.5, 0.5, 0.5], "alpha": 1}',
      '--out',
      out,
    );
    expect(pitome.code).toBe(0);
    expect(readBundle(out).tensors.get('block.0.after_attention.energy')!.info).toMatchObject({ kind: 'score', shape: [16] });
    expect((await runCli('trace', inputFile)).stderr).toMatch(/needs --out DIR/);
    expect((await runCli('check', inputFile, path.join(tmp, 'nowhere'))).stderr).toMatch(/nowhere: expected a trace bundle folder/);
    expect((await runCli('check', inputFile, out, '--tol', 'ids=1')).stderr).toMatch(/--tol: expected KIND=REL with KIND one of input, embed/);
  });
});
