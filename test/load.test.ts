import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFormatError } from '../src/errors.js';
import { loadModelFolder, saveModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import type { ViTModel, ViTWeights } from '../src/model/types.js';
import {
  DEIT_PREPROCESSOR,
  DESCRIPTIONS,
  DIMS,
  LABELS,
  timmConfig,
  timmTensors,
  tinyModel,
  transformersConfig,
  transformersTensors,
  writeFolder,
  type Tensors,
  type TransformersClass,
} from './model-writers.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-load-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let folders = 0;
function newFolder(): string {
  const dir = path.join(tmp, `model-${folders++}`);
  mkdirSync(dir);
  return dir;
}

function writeTimmFolder(m: ViTModel, edit: { config?: (c: Record<string, any>) => void; tensors?: (t: Tensors) => void } = {}): string {
  const config = timmConfig(m);
  const tensors = timmTensors(m);
  edit.config?.(config);
  edit.tensors?.(tensors);
  return writeFolder(newFolder(), config, tensors);
}

function writeTransformersFolder(
  m: ViTModel,
  cls: TransformersClass,
  edit: { config?: (c: Record<string, any>) => void; tensors?: (t: Tensors) => void; preprocessor?: unknown; qkvBias?: boolean } = {},
): string {
  const config = transformersConfig(m, cls, edit.qkvBias);
  const tensors = transformersTensors(m, cls, edit.qkvBias);
  edit.config?.(config);
  edit.tensors?.(tensors);
  return writeFolder(newFolder(), config, tensors, edit.preprocessor ?? DEIT_PREPROCESSOR);
}

function loadError(dir: string): string {
  try {
    loadModelFolder(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(ModelFormatError);
    return (err as Error).message;
  }
  throw new Error(`loading ${dir} succeeded, expected a ModelFormatError`);
}

/** Every parameter array of the weights, in a fixed order. */
function weightArrays(w: ViTWeights): Float32Array[] {
  const pair = (p: { weight: Float32Array; bias: Float32Array } | null) => (p ? [p.weight, p.bias] : []);
  return [
    ...pair(w.patchEmbed),
    w.clsToken,
    ...(w.distToken ? [w.distToken] : []),
    w.posEmbed,
    ...w.blocks.flatMap((b) => [b.norm1, b.qkv, b.proj, b.norm2, b.fc1, b.fc2].flatMap(pair)),
    ...pair(w.norm),
    ...pair(w.head),
    ...pair(w.headDist),
  ];
}

function countParameters(w: ViTWeights): number {
  return weightArrays(w).reduce((sum, a) => sum + a.length, 0);
}

describe('loadModelFolder: timm layout', () => {
  const model = tinyModel();

  it('loads the weights and reads dims from config and shapes', () => {
    const dir = writeTimmFolder(model);
    const loaded = loadModelFolder(dir);
    expect(loaded.source).toBe(dir);
    expect(loaded.weights).toEqual(model.weights);
    expect(loaded.config).toEqual({
      ...model.config,
      architecture: 'vit_tiny_patch4_8',
      labels: LABELS,
      descriptions: DESCRIPTIONS,
    });
  });

  it('takes dims from the architecture name when there are no model_args', () => {
    // deit_tiny_patch16_224: D = 192, 12 blocks, 3 heads. A width-8 file must then fail on D.
    const dir = writeTimmFolder(model, { config: (c) => delete c.model_args });
    expect(loadError(dir)).toMatch(/"patch_embed.proj.weight" has shape \[8, 3, 4, 4\], expected \[192, 3, 4, 4\] \(D = 192 per /);
    const named = writeTimmFolder(model, {
      config: (c) => {
        c.architecture = 'vit_wide_patch4_8';
        delete c.model_args;
      },
    });
    expect(loadError(named)).toMatch(/cannot tell width, depth, heads/);
  });

  it('labels default to class indices and descriptions to empty strings', () => {
    const dir = writeTimmFolder(model, {
      config: (c) => {
        delete c.label_names;
        delete c.label_descriptions;
      },
    });
    const { config } = loadModelFolder(dir);
    expect(config.labels).toEqual(['0', '1', '2']);
    expect(config.descriptions).toEqual(['', '', '']);
  });

  it('accepts label_descriptions as a list', () => {
    const dir = writeTimmFolder(model, { config: (c) => (c.label_descriptions = DESCRIPTIONS) });
    expect(loadModelFolder(dir).config.descriptions).toEqual(DESCRIPTIONS);
  });

  it('uses zeros when timm omits the qkv bias (qkv_bias=False)', () => {
    const dir = writeTimmFolder(model, {
      tensors: (t) => {
        for (let i = 0; i < model.config.depth; i++) t.delete(`blocks.${i}.attn.qkv.bias`);
      },
    });
    const loaded = loadModelFolder(dir);
    for (const b of loaded.weights.blocks) expect(b.qkv.bias).toEqual(new Float32Array(3 * 8));
  });

  it('loads a distilled DeiT', () => {
    const distilled = tinyModel(true);
    const loaded = loadModelFolder(writeTimmFolder(distilled));
    expect(loaded.config.distilled).toBe(true);
    expect(loaded.weights).toEqual(distilled.weights);
    expect(loaded.weights.posEmbed.length).toBe((2 + 4) * 8);
  });

  it('ignores unused extra tensors', () => {
    const dir = writeTimmFolder(model, { tensors: (t) => t.set('extra.unused', { shape: [2], data: new Float32Array(2) }) });
    expect(loadModelFolder(dir).weights).toEqual(model.weights);
  });
});

describe('loadModelFolder: transformers layout', () => {
  it('ViTForImageClassification loads the same weights as timm', () => {
    const model = tinyModel();
    const fromTimm = loadModelFolder(writeTimmFolder(model));
    const fromTransformers = loadModelFolder(writeTransformersFolder(model, 'ViTForImageClassification'));
    expect(fromTransformers.weights).toEqual(fromTimm.weights);
    const c = fromTransformers.config;
    expect(c.layout).toBe('transformers');
    expect(c.architecture).toBe('ViTForImageClassification');
    expect(c.eps).toBe(1e-12);
    expect(c.labels).toEqual(DESCRIPTIONS);
    expect(c.descriptions).toEqual(['', '', '']);
    expect([c.dim, c.depth, c.heads, c.qkDim, c.vDim, c.mlpDim, c.numClasses]).toEqual([8, 2, 2, 4, 4, 16, 3]);
    expect(c.preprocess).toEqual({ inputSize: 8, interpolation: 'bicubic', cropPct: 8 / 9, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  });

  it('DeiTForImageClassificationWithTeacher loads the same weights as a distilled timm DeiT', () => {
    const model = tinyModel(true);
    const fromTimm = loadModelFolder(writeTimmFolder(model));
    const fromTransformers = loadModelFolder(writeTransformersFolder(model, 'DeiTForImageClassificationWithTeacher'));
    expect(fromTransformers.config.distilled).toBe(true);
    expect(fromTransformers.weights).toEqual(fromTimm.weights);
  });

  it('DeiTForImageClassification (distillation token, one head) becomes head = 2·classifier, head_dist = 0', () => {
    const model = tinyModel(true);
    const dir = writeTransformersFolder(model, 'DeiTForImageClassification', {
      tensors: (t) => {
        t.delete('distillation_classifier.weight');
        t.delete('distillation_classifier.bias');
      },
    });
    const loaded = loadModelFolder(dir);
    expect(loaded.config.distilled).toBe(true);
    expect(loaded.weights.head.weight).toEqual(model.weights.head.weight.map((x) => 2 * x));
    expect(loaded.weights.head.bias).toEqual(model.weights.head.bias.map((x) => 2 * x));
    expect(loaded.weights.headDist!.weight).toEqual(new Float32Array(3 * 8));
    expect(loaded.weights.headDist!.bias).toEqual(new Float32Array(3));
    expect(loaded.weights.blocks).toEqual(model.weights.blocks);
  });

  it('uses zeros for qkv bias when qkv_bias is false', () => {
    const model = tinyModel();
    const loaded = loadModelFolder(writeTransformersFolder(model, 'ViTForImageClassification', { qkvBias: false }));
    expect(loaded.weights.blocks[1].qkv.bias).toEqual(new Float32Array(24));
    expect(loaded.weights.blocks[1].qkv.weight).toEqual(model.weights.blocks[1].qkv.weight);
  });

  it('ViTImageProcessor (resize straight to the input size, no crop) gives cropPct 1.0', () => {
    const preprocessor = { do_resize: true, size: 8, resample: 2, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] };
    const loaded = loadModelFolder(writeTransformersFolder(tinyModel(), 'ViTForImageClassification', { preprocessor }));
    expect(loaded.config.preprocess).toEqual({ inputSize: 8, interpolation: 'bilinear', cropPct: 1, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  });

  it('accepts size {shortest_edge} with an integer crop_size', () => {
    const preprocessor = { ...DEIT_PREPROCESSOR, size: { shortest_edge: 10 }, crop_size: 8 };
    const loaded = loadModelFolder(writeTransformersFolder(tinyModel(), 'ViTForImageClassification', { preprocessor }));
    expect(loaded.config.preprocess.cropPct).toBe(0.8);
  });

  it('rejects a processed size that differs from image_size, an unknown resample, a missing preprocessor_config.json', () => {
    const model = tinyModel();
    const wrongCrop = writeTransformersFolder(model, 'ViTForImageClassification', { preprocessor: { ...DEIT_PREPROCESSOR, crop_size: 6 } });
    expect(loadError(wrongCrop)).toMatch(/processed image is 6 px, but config.json has image_size 8/);
    const nearest = writeTransformersFolder(model, 'ViTForImageClassification', { preprocessor: { ...DEIT_PREPROCESSOR, resample: 0 } });
    expect(loadError(nearest)).toMatch(/resample must be 3 \(bicubic\) or 2 \(bilinear\), found 0/);
    const noPreprocessor = writeTransformersFolder(model, 'ViTForImageClassification');
    rmSync(path.join(noPreprocessor, 'preprocessor_config.json'));
    expect(loadError(noPreprocessor)).toMatch(/expected preprocessor_config.json/);
  });
});

describe('loadModelFolder: errors', () => {
  const model = tinyModel();

  it('names a missing folder, config.json or model.safetensors', () => {
    expect(loadError(path.join(tmp, 'does-not-exist'))).toMatch(/does-not-exist not found/);
    const noConfig = writeTimmFolder(model);
    rmSync(path.join(noConfig, 'config.json'));
    expect(loadError(noConfig)).toMatch(/expected config.json .*not found/);
    const noWeights = writeTimmFolder(model);
    rmSync(path.join(noWeights, 'model.safetensors'));
    expect(loadError(noWeights)).toMatch(/expected model.safetensors, not found/);
  });

  it('names an invalid config.json', () => {
    const dir = writeTimmFolder(model);
    writeFileSync(path.join(dir, 'config.json'), '{"architecture": ');
    expect(loadError(dir)).toMatch(/config.json: expected JSON/);
  });

  it('rejects unknown architectures and lists what is supported', () => {
    const timm = writeTimmFolder(model, { config: (c) => (c.architecture = 'resnet50') });
    expect(loadError(timm)).toMatch(/unknown architecture "resnet50"; supported: .*vit_<size>.*ViTForImageClassification/);
    const transformers = writeTransformersFolder(model, 'ViTForImageClassification', {
      config: (c) => (c.architectures = ['BeitForImageClassification']),
    });
    expect(loadError(transformers)).toMatch(/unknown architecture \["BeitForImageClassification"\]; supported: .*DeiTForImageClassificationWithTeacher/);
    const neither = writeTimmFolder(model, { config: (c) => delete c.architecture });
    expect(loadError(neither)).toMatch(/expected "architecture" \(timm layout\) or "architectures"/);
  });

  it('names a missing tensor, in the file’s own naming', () => {
    const timm = writeTimmFolder(model, { tensors: (t) => t.delete('blocks.1.mlp.fc2.bias') });
    expect(loadError(timm)).toMatch(/model.safetensors: missing tensor "blocks.1.mlp.fc2.bias" \(expected shape \[8\]\)/);
    const transformers = writeTransformersFolder(model, 'ViTForImageClassification', {
      tensors: (t) => t.delete('vit.encoder.layer.1.attention.attention.key.weight'),
    });
    expect(loadError(transformers)).toMatch(/missing tensor "vit.encoder.layer.1.attention.attention.key.weight"/);
    const noDist = writeTimmFolder(tinyModel(true), { tensors: (t) => t.delete('dist_token') });
    expect(loadError(noDist)).toMatch(/missing tensor "dist_token" \(expected shape \[1, 1, 8\]\)/);
  });

  it('names a tensor whose shape disagrees, with expected and found', () => {
    const cls = writeTimmFolder(model, { tensors: (t) => t.set('cls_token', { shape: [1, 1, 6], data: new Float32Array(6) }) });
    expect(loadError(cls)).toMatch(/tensor "cls_token" has shape \[1, 1, 6\], expected \[1, 1, 8\] \(D = 8 per .*config.json\)/);
    const qkv = writeTimmFolder(model, {
      tensors: (t) => t.set('blocks.0.attn.qkv.weight', { shape: [16, 8], data: new Float32Array(128) }),
    });
    expect(loadError(qkv)).toMatch(/"blocks.0.attn.qkv.weight" has shape \[16, 8\], expected \[24, 8\] \(2·H·qkDim \+ H·vDim rows/);
    const hfQuery = writeTransformersFolder(model, 'ViTForImageClassification', {
      tensors: (t) => t.set('vit.encoder.layer.0.attention.attention.query.weight', { shape: [4, 8], data: new Float32Array(32) }),
    });
    expect(loadError(hfQuery)).toMatch(/query and key must have the same number of rows/);
    const fc2 = writeTimmFolder(model, { tensors: (t) => t.set('blocks.1.mlp.fc2.weight', { shape: [8, 12], data: new Float32Array(96) }) });
    expect(loadError(fc2)).toMatch(/"blocks.1.mlp.fc2.weight" has shape \[8, 12\], expected \[8, 16\]/);
  });

  it('refuses non-finite weights, naming the tensor and the count', () => {
    const poisoned = (values: number[]) => (t: Tensors) => {
      const fc1 = t.get('blocks.1.mlp.fc1.weight')!;
      const data = Float32Array.from(fc1.data);
      values.forEach((v, i) => (data[i * 3] = v));
      t.set('blocks.1.mlp.fc1.weight', { shape: fc1.shape, data });
    };
    expect(loadError(writeTimmFolder(model, { tensors: poisoned([NaN]) }))).toMatch(
      /tensor "blocks.1.mlp.fc1.weight" has 1 non-finite value\(s\) \(NaN or ±Infinity\) among 128/,
    );
    expect(loadError(writeTimmFolder(model, { tensors: poisoned([Infinity, -Infinity, NaN]) }))).toMatch(/"blocks.1.mlp.fc1.weight" has 3 non-finite/);
  });

  it('refuses preprocessing values that make a zero or absurd size, naming file, key, expected and found', () => {
    const timm = (edit: (c: Record<string, any>) => void) => loadError(writeTimmFolder(model, { config: edit }));
    expect(timm((c) => (c.pretrained_cfg.crop_pct = 300))).toMatch(/config.json: pretrained_cfg: expected "crop_pct" to be a number from 0.25 to 1, found 300/);
    expect(timm((c) => (c.pretrained_cfg.crop_pct = 0.001))).toMatch(/expected "crop_pct" to be a number from 0.25 to 1, found 0.001/);
    expect(timm((c) => (c.pretrained_cfg.crop_pct = 0))).toMatch(/"crop_pct" .* found 0/);
    expect(timm((c) => (c.pretrained_cfg.input_size = [3, 100000, 100000]))).toMatch(
      /expected input_size \[C, S, S\] \(square, S at most 4096\), found \[3, 100000, 100000\]/,
    );
    expect(timm((c) => (c.model_args.img_size = 0))).toMatch(/model_args: expected "img_size" to be an image side from 1 to 4096.*found 0/);
    expect(timm((c) => (c.pretrained_cfg.std = [0.2, 0, 0.2]))).toMatch(/pretrained_cfg: expected "std" to be 3 positive numbers, found \[0.2, 0, 0.2\]/);
    expect(timm((c) => (c.pretrained_cfg.std = [1e-40, 1, 1]))).toMatch(/"mean" .* and "std" .* normalise pixel values to .*beyond float32/);
    expect(timm((c) => (c.pretrained_cfg.mean = [0.5, 'x', 0.5]))).toMatch(/expected "mean" to be a list of 3 numbers/);
    const transformers = (preprocessor: Record<string, unknown>) =>
      loadError(writeTransformersFolder(model, 'ViTForImageClassification', { preprocessor: { ...DEIT_PREPROCESSOR, ...preprocessor } }));
    expect(transformers({ crop_size: { height: 8, width: 8 }, size: { shortest_edge: 1 }, do_center_crop: true })).toMatch(
      /preprocessor_config.json: expected "crop_size" \/ "size" between 0.25 and 1 .*found 8 \/ 1/,
    );
    expect(transformers({ image_std: [-1, 1, 1] })).toMatch(/expected "image_std" to be 3 positive numbers/);
  });

  it('checks the token count of pos_embed against the image and patch sizes', () => {
    const dir = writeTimmFolder(model, { config: (c) => (c.pretrained_cfg.input_size = [3, 12, 12]) });
    expect(loadError(dir)).toMatch(/"pos_embed" has shape \[1, 5, 8\], expected \[1, 10, 8\] \(1 prefix token\(s\) \+ \(12\/4\)² patches/);
    const notMultiple = writeTimmFolder(model, { config: (c) => (c.pretrained_cfg.input_size = [3, 10, 10]) });
    expect(loadError(notMultiple)).toMatch(/image size 10 is not a multiple of the patch size 4/);
  });

  it('cross-checks dims read from the weights with the config', () => {
    const mlp = writeTimmFolder(model, { config: (c) => (c.model_args.mlp_ratio = 4) });
    expect(loadError(mlp)).toMatch(/"blocks.0.mlp.fc1.weight" gives MLP width 16, but .*config.json declares 32/);
    const classes = writeTimmFolder(model, { config: (c) => (c.num_classes = 5) });
    expect(loadError(classes)).toMatch(/"head.weight" gives number of classes 3, but .*declares 5/);
    const patch = writeTimmFolder(model, { config: (c) => (c.architecture = 'vit_tiny_patch2_8') });
    expect(loadError(patch)).toMatch(/"patch_embed.proj.weight" gives patch size 4, but .*declares 2/);
    const channels = writeTimmFolder(model, { config: (c) => (c.pretrained_cfg.input_size = [1, 8, 8]) });
    expect(loadError(channels)).toMatch(/gives input channels 3, but .*declares 1/);
    const labels = writeTimmFolder(model, { config: (c) => (c.label_names = ['a', 'b']) });
    expect(loadError(labels)).toMatch(/has 2 labels, but the classifier head has 3 classes/);
    const heads = writeTimmFolder(model, { config: (c) => (c.model_args.num_heads = 3) });
    expect(loadError(heads)).toMatch(/width 8 is not divisible by 3 heads/);
    const hfHidden = writeTransformersFolder(model, 'ViTForImageClassification', { config: (c) => (c.intermediate_size = 20) });
    expect(loadError(hfHidden)).toMatch(/"vit.encoder.layer.0.intermediate.dense.weight" gives MLP width 16, but .*declares 20/);
  });

  it('rejects blocks beyond the declared depth', () => {
    const deeper = tinyModel();
    const dir = writeTimmFolder(deeper, { config: (c) => (c.model_args.depth = 1) });
    expect(loadError(dir)).toMatch(/tensor "blocks.1.norm1.weight" belongs to a block beyond the depth 1/);
    const hf = writeTransformersFolder(deeper, 'ViTForImageClassification', { config: (c) => (c.num_hidden_layers = 1) });
    expect(loadError(hf)).toMatch(/"vit.encoder.layer.1.layernorm_before.weight" belongs to a block beyond the depth 1/);
  });

  it('rejects features the forward pass does not implement', () => {
    const layerScale = writeTimmFolder(model, { tensors: (t) => t.set('blocks.0.ls1.gamma', { shape: [8], data: new Float32Array(8) }) });
    expect(loadError(layerScale)).toMatch(/"blocks.0.ls1.gamma" means layer scale/);
    const avgPool = writeTimmFolder(model, { config: (c) => (c.global_pool = 'avg') });
    expect(loadError(avgPool)).toMatch(/global_pool "avg" is not supported/);
    const act = writeTransformersFolder(model, 'ViTForImageClassification', { config: (c) => (c.hidden_act = 'gelu_new') });
    expect(loadError(act)).toMatch(/hidden_act must be "gelu".*found "gelu_new"/);
  });

  it('names missing preprocessing fields', () => {
    const dir = writeTimmFolder(model, { config: (c) => delete c.pretrained_cfg.mean });
    expect(loadError(dir)).toMatch(/config.json: pretrained_cfg: expected "mean" to be a list of 3 numbers, found nothing/);
    const interp = writeTimmFolder(model, { config: (c) => (c.pretrained_cfg.interpolation = 'nearest') });
    expect(loadError(interp)).toMatch(/interpolation must be "bicubic" or "bilinear", found "nearest"/);
  });
});

describe('saveModelFolder', () => {
  it('round-trips a model bit-exactly', () => {
    const model = loadModelFolder(writeTimmFolder(tinyModel()));
    const dir = path.join(tmp, 'saved-plain');
    saveModelFolder(dir, model);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(readdirSync(tmp).filter((name) => name.includes('.tmp-'))).toEqual([]);
    const again = loadModelFolder(dir);
    expect(again.config).toEqual(model.config);
    expect(again.weights).toEqual(model.weights);
  });

  it('records channel-pruned qkDim/vDim and loads them back', () => {
    const model = randomModel(configFromDims({ ...DIMS, qkDim: 3, vDim: 5, distilled: true }, 'deit_tiny_distilled_patch4_8'), 9);
    const dir = path.join(tmp, 'saved-pruned');
    saveModelFolder(dir, model);
    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(config.vitprune).toMatchObject({ dim: 8, heads: 2, qkDim: 3, vDim: 5, distilled: true });
    const again = loadModelFolder(dir);
    expect(again.config).toEqual(model.config);
    expect(again.weights).toEqual(model.weights);
    expect(again.weights.blocks[0].qkv.outFeatures).toBe(2 * 2 * 3 + 2 * 5);
    expect(again.weights.blocks[0].proj.inFeatures).toBe(2 * 5);
  });

  it('round-trips a transformers model as timm layout', () => {
    const model = loadModelFolder(writeTransformersFolder(tinyModel(true), 'DeiTForImageClassificationWithTeacher'));
    const dir = path.join(tmp, 'saved-from-transformers');
    saveModelFolder(dir, model);
    const again = loadModelFolder(dir);
    expect(again.config).toEqual({ ...model.config, layout: 'timm' });
    expect(again.weights).toEqual(model.weights);
  });

  it('replaces the model files of an existing folder and keeps its other files', () => {
    const dir = path.join(tmp, 'saved-existing');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'README.md'), 'keep me');
    writeFileSync(path.join(dir, 'config.json'), 'old');
    const model = tinyModel(false, 11);
    saveModelFolder(dir, model);
    expect(readdirSync(dir).sort()).toEqual(['README.md', 'config.json', 'model.safetensors']);
    expect(readdirSync(tmp).filter((name) => name.includes('.tmp-'))).toEqual([]);
    expect(loadModelFolder(dir).weights).toEqual(model.weights);
  });
});

describeWithData('real models in ../shared/data', () => {
  for (const name of ['deit-tiny', 'vit-tiny']) {
    it(`loads ${name} with the documented dims, parameter count and labels`, () => {
      const model = loadModelFolder(path.join(SHARED_DATA, name));
      const c = model.config;
      expect(c.architecture).toBe(name === 'deit-tiny' ? 'deit_tiny_patch16_224' : 'vit_tiny_patch16_224');
      expect([c.imageSize, c.patchSize, c.inChannels, c.dim, c.depth, c.heads, c.qkDim, c.vDim, c.mlpDim, c.numClasses]).toEqual([
        224, 16, 3, 192, 12, 3, 64, 64, 768, 1000,
      ]);
      expect(c.eps).toBe(1e-6);
      expect(c.distilled).toBe(false);
      expect(countParameters(model.weights)).toBe(5_717_416);
      expect(c.labels[0]).toBe('n01440764');
      expect(c.descriptions[0]).toBe('tench, Tinca tinca');
      expect(c.preprocess).toEqual(
        name === 'deit-tiny'
          ? { inputSize: 224, interpolation: 'bicubic', cropPct: 0.875, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }
          : { inputSize: 224, interpolation: 'bicubic', cropPct: 0.9, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
      );
    });
  }

  it('saves and reloads DeiT-Tiny bit-exactly', () => {
    const model = loadModelFolder(path.join(SHARED_DATA, 'deit-tiny'));
    const dir = path.join(tmp, 'deit-tiny-copy');
    saveModelFolder(dir, model);
    const again = loadModelFolder(dir);
    expect(again.config).toEqual(model.config);
    // Byte comparison: toEqual over 5.7 M floats takes seconds.
    const bytes = (w: ViTWeights) => Buffer.concat(weightArrays(w).map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)));
    expect(weightArrays(again.weights).map((a) => a.length)).toEqual(weightArrays(model.weights).map((a) => a.length));
    expect(bytes(again.weights).equals(bytes(model.weights))).toBe(true);
  });
});
