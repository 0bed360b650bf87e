/**
 * Generates fixtures/conformance/ (`npm run conformance`): the suite other ports run to check
 * themselves against reference64 (docs/porting.md).
 *
 *   models/<name>/   tiny random ViTs: timm and transformers layouts, odd widths, 2–4 heads,
 *                    2–3 blocks, a distilled one, one with per-block attention widths, one
 *                    with 16 patches rather than 9 (MCTF keeps at least 10 tokens)
 *   cases/<model>.<input>.<method>[-<setting>]/   a trace bundle from reference64
 *   suite.json       the index (src/oracle/suite.ts)
 *
 * Every model runs 2 inputs × (dense + every method at 2 settings). An input is kept only if
 * every integer decision of every case (token ids, pairs, heads, masks) stays the same when the
 * input is perturbed by ±1e-4 (relative) and on the float32 reference backend: no decision sits
 * so close to a tie that a correct float32 port could take the other side. Two more cases
 * put exact ties on purpose (bit-identical tokens) at a top-k and a ToMe boundary, to test the
 * tie-break rule (lower position first).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReference64KernelsAsFloat32, createReferenceKernels } from '../src/kernels/reference.js';
import type { Kernels } from '../src/kernels/types.js';
import { loadModelFolder, saveModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel, seededRandom, type ViTDims } from '../src/model/random.js';
import type { ViTConfig, ViTModel } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import { writeBundle, type TraceBundle } from '../src/oracle/bundle.js';
import { pitomeTraceSettings, type TraceMethod } from '../src/oracle/methods.js';
import { SUITE_FILE, SUITE_FORMAT, SUITE_VERSION, type SuiteCase, type SuiteIndex, type SuiteModel } from '../src/oracle/suite.js';
import { recordTrace } from '../src/oracle/trace.js';
import { packageVersion } from '../src/util/package-version.js';
import { DEIT_PREPROCESSOR, timmConfig, timmTensors, transformersConfig, transformersTensors, writeFolder } from '../test/model-writers.js';

const SUITE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/conformance');
const IMAGE = 6; // 6×6 input, patch 2: 9 patches (a model's default)
const PATCH = 2;
const PERTURBATION = 1e-4; // relative, of each input value
const PERTURBED_RUNS = 3;
const MAX_SEEDS = 200;

/** Patches that are copies of others in the 'twins' input, with equal position embeddings in the model: tokens 1 ≡ 3, 2 ≡ 4. */
const TWINS: readonly [number, number][] = [
  [0, 2],
  [1, 3],
]; // [original, copy] patch indices

interface ModelSpec {
  name: string;
  description: string;
  dims: ViTDims;
  image?: number; // input side (default IMAGE)
  blockWidths?: { qkDim: number; vDim: number }[];
  write(dir: string, model: ViTModel): void;
  twins?: boolean; // position embeddings of the TWINS patches made equal
}

const labels = (n: number) => Array.from({ length: n }, (_, i) => `class${i}`);

/** timm's hub config for a model with every dimension in model_args. */
function timmHubConfig(model: ViTModel, architecture: string): Record<string, unknown> {
  const c = model.config;
  const base = timmConfig(model);
  return {
    ...base,
    architecture,
    num_classes: c.numClasses,
    // int(dim × mlp_ratio) must give the MLP width back: 19 / 9 × 9 is 18.999… in floating point, hence + 1e-9
    model_args: { embed_dim: c.dim, depth: c.depth, num_heads: c.heads, mlp_ratio: c.mlpDim / c.dim + 1e-9, img_size: c.imageSize, patch_size: c.patchSize },
    pretrained_cfg: { ...(base.pretrained_cfg as object), input_size: [c.inChannels, c.imageSize, c.imageSize] },
    label_names: labels(c.numClasses),
    label_descriptions: labels(c.numClasses),
  };
}

const MODELS: ModelSpec[] = [
  {
    name: 'timm-d9-h3',
    description: 'timm layout (model_args), width 9, 3 heads of 3, MLP 19, 3 blocks; tokens 1 ≡ 3 and 2 ≡ 4 share position embeddings',
    dims: { dim: 9, depth: 3, heads: 3, mlpDim: 19, numClasses: 7 },
    twins: true,
    write: (dir, m) => writeFolder(dir, timmHubConfig(m, 'vit_conformance_patch2_6'), timmTensors(m)),
  },
  {
    name: 'transformers-d12-h4',
    description: 'transformers layout (ViTForImageClassification: separate query/key/value, LayerNorm eps 1e-12), width 12, 4 heads of 3, MLP 20, 2 blocks',
    dims: { dim: 12, depth: 2, heads: 4, mlpDim: 20, numClasses: 3 },
    write: (dir, m) =>
      writeFolder(dir, transformersConfig(m, 'ViTForImageClassification'), transformersTensors(m, 'ViTForImageClassification'), {
        ...DEIT_PREPROCESSOR,
        size: { height: 7, width: 7 },
        crop_size: { height: IMAGE, width: IMAGE },
      }),
  },
  {
    name: 'deit-distilled-d10-h2',
    description: 'timm layout, distilled (DIST token, head_dist; logits = mean of both heads), width 10, 2 heads of 5, MLP 23, 3 blocks',
    dims: { dim: 10, depth: 3, heads: 2, mlpDim: 23, numClasses: 5, distilled: true },
    write: (dir, m) => writeFolder(dir, timmHubConfig(m, 'deit_conformance_distilled_patch2_6'), timmTensors(m)),
  },
  {
    name: 'widths-d12-h3',
    description: 'timm layout as vitprune saves channel-pruned models: per-block q/k and v widths (4/4, 2/3, 3/1), width 12, 3 heads, MLP 17, 3 blocks',
    dims: { dim: 12, depth: 3, heads: 3, mlpDim: 17, numClasses: 4, qkDim: 4, vDim: 4 },
    blockWidths: [
      { qkDim: 4, vDim: 4 },
      { qkDim: 2, vDim: 3 },
      { qkDim: 3, vDim: 1 },
    ],
    write: (dir, m) => saveModelFolder(dir, m),
  },
  {
    name: 'timm-d10-h2-s8',
    description: 'timm layout, 8×8 input (16 patches, so that MCTF, which keeps at least 10 tokens, fuses), width 10, 2 heads of 5, MLP 21, 3 blocks',
    dims: { dim: 10, depth: 3, heads: 2, mlpDim: 21, numClasses: 6 },
    image: 8,
    write: (dir, m) => writeFolder(dir, timmHubConfig(m, 'vit_conformance_patch2_8'), timmTensors(m)),
  },
];

const INPUTS: { name: string; description: string; make(seed: number, values: number): Float32Array }[] = [
  { name: 'smooth', description: 'a smooth pattern: sin/cos waves of seeded phases', make: smoothInput },
  {
    name: 'noise',
    description: 'uniform noise in [−2, 2)',
    make: (seed, values) => {
      const rand = seededRandom(1000 + seed);
      return Float32Array.from({ length: values }, () => 4 * rand() - 2);
    },
  },
];

function smoothInput(seed: number, values: number): Float32Array {
  const rand = seededRandom(seed);
  const [a, b, c] = [rand(), rand(), rand()];
  return Float32Array.from({ length: values }, (_, i) => Math.sin(i * (0.3 + a) + 6 * b) + 0.5 * Math.cos(i * 0.07 + 6 * c));
}

/** Method settings that fit a model of this depth: two per method. */
function methodSettings(cfg: ViTConfig): TraceMethod[][] {
  const d = cfg.depth;
  const perBlock = (values: number[]) => values.slice(0, d);
  const zeroTPrune = (
    steps: { after: number; rS: number; rI: number }[],
    options: Partial<Extract<TraceMethod, { name: 'zero-tprune' }>['settings']>,
  ): TraceMethod => ({
    name: 'zero-tprune',
    settings: {
      steps,
      init: 'cls-boost',
      iterations: perBlock([30, 30, 30]),
      tolerance: 0,
      useEIR: true,
      useVHF: true,
      vhfWindow: [0.01, 0.7],
      useSStage: true,
      similarity: 'keys',
      ...options,
    },
  });
  return [
    [
      { name: 'topk', settings: { keepRate: 0.5, blocks: [1] } },
      { name: 'topk', settings: { keepRate: 0.7, blocks: [0, d - 1] } },
    ],
    [
      { name: 'evit', settings: { keepRate: 0.5, blocks: [1] } },
      { name: 'evit', settings: { keepRate: 0.7, blocks: [0, d - 1] } },
    ],
    [
      { name: 'tome', settings: { r: perBlock([2, 2, 2]) } },
      { name: 'tome', settings: { r: perBlock([3, 1, 0]) } },
    ],
    [
      zeroTPrune([{ after: 1, rS: 2, rI: 2 }], {}),
      zeroTPrune(
        [
          { after: 1, rS: 1, rI: 1 },
          { after: 2, rS: 1, rI: 1 },
        ],
        { init: 'uniform', iterations: perBlock([5, 3, 1]), useVHF: false, useEIR: false, similarity: 'head-mean-keys' },
      ),
    ],
    [
      { name: 'random', settings: { steps: [{ afterBlock: 0, remove: 3 }], seed: 1 } },
      {
        name: 'random',
        settings: {
          steps: [
            { afterBlock: 0, remove: 2 },
            { afterBlock: 1, remove: 2 },
          ],
          seed: 7,
        },
      },
    ],
    [
      { name: 'ltp', settings: { theta: perBlock([0, 0.9, 1]), unit: 'mean' } },
      { name: 'ltp', settings: { theta: perBlock([0.08, 0.1, 0.1]), unit: 'absolute' } },
    ],
    [
      // the paper's temperatures and placement (from the second block, fusion one step ahead), r 2
      {
        name: 'mctf',
        settings: {
          r: 2,
          layers: Array.from({ length: d - 1 }, (_, i) => i + 1),
          tauSim: 1,
          tauInfo: 20,
          tauSize: 40,
          bidirectional: true,
          oneStepAhead: true,
        },
      },
      // after the block, one direction, informativeness off, a fractional r (2 then 1)
      { name: 'mctf', settings: { r: 1.5, layers: [0, 1], tauSim: 2, tauInfo: 0, tauSize: 10, bidirectional: false, oneStepAhead: false } },
    ],
    [
      // threshold 0: every listed block prunes; threshold 1 (above any variance of shares): every one pools
      { name: 'ppt', settings: { r: [2, 2], blocks: [0, d - 1], threshold: 0 } },
      { name: 'ppt', settings: { r: [3], blocks: [1], threshold: 1 } },
    ],
    [
      { name: 'pitome', settings: pitomeTraceSettings(d, { r: 2 }) }, // the reference's margins 0.9 − 0.8·l/L, α 1
      { name: 'pitome', settings: pitomeTraceSettings(d, { r: [3, 1, 0].slice(0, d), margin: 0.5, alpha: 0.5 }) },
    ],
  ];
}

interface Case {
  name: string;
  method: TraceMethod | null;
  setting: number | null;
}

function casesOf(cfg: ViTConfig): Case[] {
  const cases: Case[] = [{ name: 'dense', method: null, setting: null }];
  for (const settings of methodSettings(cfg)) settings.forEach((method, i) => cases.push({ name: `${method.name}-${i + 1}`, method, setting: i + 1 }));
  return cases;
}

function trace(model: ViTModel, kernels: Kernels, input: Float32Array, inputDescription: string, method: TraceMethod | null, modelSource: string): TraceBundle {
  return recordTrace(new ViTRunner(model, kernels), model, {
    input,
    inputSource: { source: 'tensor', description: inputDescription },
    method,
    modelSource,
    producerVersion: packageVersion(),
  });
}

/** The integer tensors of a bundle (its decisions), as one comparable string. */
function decisions(bundle: TraceBundle): string {
  return JSON.stringify([...bundle.tensors].filter(([, t]) => t.data instanceof Int32Array).map(([name, t]) => [name, Array.from(t.data)]));
}

/** Whether every decision of `method` on `input` survives small perturbations of the input and float32 arithmetic. */
function robust(model: ViTModel, input: Float32Array, method: TraceMethod | null, expected: TraceBundle): boolean {
  const reference = decisions(expected);
  if (decisions(trace(model, createReferenceKernels(), input, '', method, '')) !== reference) return false;
  for (let run = 0; run < PERTURBED_RUNS; run++) {
    const rand = seededRandom(77 + run);
    const perturbed = input.map((x) => x * (1 + PERTURBATION * (2 * rand() - 1)));
    if (decisions(trace(model, createReference64KernelsAsFloat32(), perturbed, '', method, '')) !== reference) return false;
  }
  return true;
}

function buildModel(spec: ModelSpec): ViTModel {
  const cfg = {
    ...configFromDims({ imageSize: spec.image ?? IMAGE, patchSize: PATCH, ...spec.dims }, spec.name),
    ...(spec.blockWidths && { blockWidths: spec.blockWidths }),
  };
  const model = randomModel(cfg, 11);
  if (spec.twins) {
    const prefix = cfg.distilled ? 2 : 1;
    for (const [original, copy] of TWINS)
      model.weights.posEmbed.copyWithin((prefix + copy) * cfg.dim, (prefix + original) * cfg.dim, (prefix + original + 1) * cfg.dim);
  }
  return model;
}

/** The 'twins' input: a smooth pattern whose TWINS patches are copies. */
function twinsInput(cfg: ViTConfig): Float32Array {
  const input = smoothInput(5, cfg.inChannels * IMAGE * IMAGE);
  const side = IMAGE / PATCH;
  for (const [original, copy] of TWINS) {
    for (let c = 0; c < cfg.inChannels; c++) {
      for (let y = 0; y < PATCH; y++) {
        for (let x = 0; x < PATCH; x++) {
          const at = (p: number) => c * IMAGE * IMAGE + (Math.floor(p / side) * PATCH + y) * IMAGE + (p % side) * PATCH + x;
          input[at(copy)] = input[at(original)];
        }
      }
    }
  }
  return input;
}

/**
 * The tie cases on the 'twins' input: top-k and ToMe in block 0 with the boundary between two
 * bit-identical tokens (found from the scores the oracle computes), so that exactly one of them
 * survives and the tie-break rule decides which.
 */
function tieCases(model: ViTModel, input: Float32Array, source: string): { name: string; method: TraceMethod }[] {
  const prefix = model.config.distilled ? 2 : 1;
  const patches = (IMAGE / PATCH) ** 2;
  const probe = (method: TraceMethod, scores: string) =>
    Array.from(trace(model, createReference64KernelsAsFloat32(), input, '', method, source).tensors.get(`block.0.after_attention.${scores}`)!.data);
  const splitAt = (scores: number[], candidates: number[]) => {
    const ranked = [...candidates].sort((p, q) => scores[q] - scores[p] || p - q);
    const i = ranked.findIndex((p, j) => j + 1 < ranked.length && scores[ranked[j + 1]] === scores[p]);
    if (i < 0) throw new Error('tie cases: no two tokens tie; the twins did not come out bit-identical');
    return i + 1; // keep ranked[0..i]: the tie at ranked[i], ranked[i + 1] is split
  };
  const attentiveness = probe({ name: 'topk', settings: { keepRate: 0.5, blocks: [0] } }, 'attentiveness');
  const k = splitAt(
    attentiveness,
    Array.from({ length: patches }, (_, j) => prefix + j),
  );
  const score = probe({ name: 'tome', settings: { r: [1] } }, 'score');
  const r = splitAt(
    score,
    Array.from({ length: score.length }, (_, i) => i).filter((i) => Number.isFinite(score[i])),
  );
  return [
    { name: 'topk-ties', method: { name: 'topk', settings: { keepRate: k / patches, blocks: [0] } } },
    { name: 'tome-ties', method: { name: 'tome', settings: { r: [r, 0, 0].slice(0, model.config.depth) } } },
  ];
}

function main(): void {
  rmSync(SUITE, { recursive: true, force: true });
  const suite: SuiteIndex = {
    format: SUITE_FORMAT,
    version: SUITE_VERSION,
    generator: 'scripts/make-conformance.ts (npm run conformance)',
    models: {},
    cases: [],
  };
  const write = (name: string, modelName: string, inputName: string, bundle: TraceBundle, c: Omit<SuiteCase, 'name' | 'dir' | 'model' | 'input'>) => {
    const dir = `cases/${name}`;
    writeBundle(path.join(SUITE, dir), bundle);
    suite.cases.push({ name, dir, model: modelName, input: inputName, ...c });
  };
  for (const spec of MODELS) {
    const modelDir = `models/${spec.name}`;
    mkdirSync(path.join(SUITE, modelDir), { recursive: true });
    spec.write(path.join(SUITE, modelDir), buildModel(spec));
    const model = loadModelFolder(path.join(SUITE, modelDir)); // what a port reads, through our loader
    const layout: SuiteModel['layout'] = model.config.layout;
    suite.models[spec.name] = { dir: modelDir, layout, description: spec.description };
    const source = `../../${modelDir}`; // from a case folder
    const values = model.config.inChannels * model.config.imageSize ** 2;
    const cases = casesOf(model.config);

    for (const inputSpec of INPUTS) {
      let accepted: { seed: number; input: Float32Array; bundles: TraceBundle[] } | null = null;
      for (let seed = 0; seed < MAX_SEEDS && !accepted; seed++) {
        const input = inputSpec.make(seed, values);
        const description = `${inputSpec.description} (seed ${seed})`;
        const bundles = cases.map((c) => trace(model, createReference64KernelsAsFloat32(), input, description, c.method, source));
        if (cases.every((c, i) => robust(model, input, c.method, bundles[i]))) accepted = { seed, input, bundles };
      }
      if (!accepted) throw new Error(`${spec.name} / ${inputSpec.name}: no seed below ${MAX_SEEDS} keeps every decision away from ties`);
      cases.forEach((c, i) =>
        write(`${spec.name}.${inputSpec.name}.${c.name}`, spec.name, inputSpec.name, accepted!.bundles[i], {
          method: c.method?.name ?? 'dense',
          setting: c.setting,
          ties: false,
        }),
      );
      process.stdout.write(`${spec.name} / ${inputSpec.name}: seed ${accepted.seed}, ${cases.length} cases\n`);
    }
    if (spec.twins) {
      const input = twinsInput(model.config);
      for (const t of tieCases(model, input, source)) {
        const bundle = trace(
          model,
          createReference64KernelsAsFloat32(),
          input,
          `a smooth pattern (seed 5) with patches ${TWINS.map(([o, c]) => `${c} = ${o}`).join(', ')}`,
          t.method,
          source,
        );
        write(`${spec.name}.twins.${t.name}`, spec.name, 'twins', bundle, { method: t.method.name, setting: null, ties: true });
      }
    }
  }
  writeFileSync(path.join(SUITE, SUITE_FILE), JSON.stringify(suite, null, 1) + '\n');
  process.stdout.write(`wrote ${suite.cases.length} cases of ${Object.keys(suite.models).length} models to ${SUITE}\n`);
}

main();
