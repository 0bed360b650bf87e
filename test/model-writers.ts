import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { configFromDims, randomModel, type ViTDims } from '../src/model/random.js';
import { type TensorToWrite } from '../src/model/safetensors.js';
import { writeSafetensors } from '../src/model/safetensors-file.js';
import type { Linear, ViTModel } from '../src/model/types.js';

/**
 * Writers of model folders in the timm and transformers layouts, independent of
 * src/model/load.ts (so the loader is tested against a second implementation). Used by the
 * loader tests and by scripts/make-fixtures.ts.
 */

// A tiny ViT: 8×8 input, patch 4 → 4 patches, width 8, 2 heads of 4, MLP 16, 3 classes.
export const DIMS: ViTDims = { dim: 8, depth: 2, heads: 2, imageSize: 8, patchSize: 4, mlpDim: 16, numClasses: 3 };
export const LABELS = ['n0001', 'n0002', 'n0003'];
export const DESCRIPTIONS = ['tench', 'goldfish', 'shark'];

export function tinyModel(distilled = false, seed = 3): ViTModel {
  return randomModel(configFromDims({ ...DIMS, distilled }, 'tiny'), seed);
}

export type Tensors = Map<string, TensorToWrite>;

/** The weights under timm names, written independently of src/model/load.ts. */
export function timmTensors(m: ViTModel): Tensors {
  const { config: c, weights: w } = m;
  const D = c.dim;
  const t: Tensors = new Map();
  const linear = (name: string, l: Linear) => {
    t.set(`${name}.weight`, { shape: [l.outFeatures, l.inFeatures], data: l.weight });
    t.set(`${name}.bias`, { shape: [l.outFeatures], data: l.bias });
  };
  const norm = (name: string, n: { weight: Float32Array; bias: Float32Array }) => {
    t.set(`${name}.weight`, { shape: [D], data: n.weight });
    t.set(`${name}.bias`, { shape: [D], data: n.bias });
  };
  t.set('cls_token', { shape: [1, 1, D], data: w.clsToken });
  if (w.distToken) t.set('dist_token', { shape: [1, 1, D], data: w.distToken });
  t.set('pos_embed', { shape: [1, w.posEmbed.length / D, D], data: w.posEmbed });
  t.set('patch_embed.proj.weight', { shape: [D, c.inChannels, c.patchSize, c.patchSize], data: w.patchEmbed.weight });
  t.set('patch_embed.proj.bias', { shape: [D], data: w.patchEmbed.bias });
  w.blocks.forEach((b, i) => {
    norm(`blocks.${i}.norm1`, b.norm1);
    linear(`blocks.${i}.attn.qkv`, b.qkv);
    linear(`blocks.${i}.attn.proj`, b.proj);
    norm(`blocks.${i}.norm2`, b.norm2);
    linear(`blocks.${i}.mlp.fc1`, b.fc1);
    linear(`blocks.${i}.mlp.fc2`, b.fc2);
  });
  norm('norm', w.norm);
  linear('head', w.head);
  if (w.headDist) linear('head_dist', w.headDist);
  return t;
}

export function timmConfig(m: ViTModel): Record<string, any> {
  const c = m.config;
  return {
    architecture: c.distilled ? 'deit_tiny_distilled_patch4_8' : 'vit_tiny_patch4_8',
    num_classes: c.numClasses,
    model_args: { embed_dim: c.dim, depth: c.depth, num_heads: c.heads, mlp_ratio: c.mlpDim / c.dim },
    pretrained_cfg: {
      input_size: [3, 8, 8],
      interpolation: 'bicubic',
      crop_pct: 0.875,
      crop_mode: 'center',
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    },
    label_names: LABELS,
    label_descriptions: Object.fromEntries(LABELS.map((l, i) => [l, DESCRIPTIONS[i]])),
  };
}

export function writeFolder(dir: string, config: unknown, tensors: Tensors, preprocessor?: unknown): string {
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  if (preprocessor !== undefined) writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify(preprocessor));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  return dir;
}

export type TransformersClass = 'ViTForImageClassification' | 'DeiTForImageClassification' | 'DeiTForImageClassificationWithTeacher';

/** The same weights under transformers names: q, k, v split, `vit.`/`deit.` prefix. */
export function transformersTensors(m: ViTModel, cls: TransformersClass, qkvBias = true): Tensors {
  const p = cls === 'ViTForImageClassification' ? 'vit' : 'deit';
  const t: Tensors = new Map();
  const rename: [RegExp, string][] = [
    [/^cls_token$/, `${p}.embeddings.cls_token`],
    [/^dist_token$/, `${p}.embeddings.distillation_token`],
    [/^pos_embed$/, `${p}.embeddings.position_embeddings`],
    [/^patch_embed\.proj\./, `${p}.embeddings.patch_embeddings.projection.`],
    [/^blocks\.(\d+)\.norm1\./, `${p}.encoder.layer.$1.layernorm_before.`],
    [/^blocks\.(\d+)\.attn\.proj\./, `${p}.encoder.layer.$1.attention.output.dense.`],
    [/^blocks\.(\d+)\.norm2\./, `${p}.encoder.layer.$1.layernorm_after.`],
    [/^blocks\.(\d+)\.mlp\.fc1\./, `${p}.encoder.layer.$1.intermediate.dense.`],
    [/^blocks\.(\d+)\.mlp\.fc2\./, `${p}.encoder.layer.$1.output.dense.`],
    [/^norm\./, `${p}.layernorm.`],
    [/^head\./, cls === 'DeiTForImageClassificationWithTeacher' ? 'cls_classifier.' : 'classifier.'],
    [/^head_dist\./, 'distillation_classifier.'],
  ];
  for (const [name, tensor] of timmTensors(m)) {
    const qkv = /^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$/.exec(name);
    if (qkv) {
      if (qkv[2] === 'bias' && !qkvBias) continue;
      const D = m.config.dim;
      const rowLength = qkv[2] === 'weight' ? D : 1;
      ['query', 'key', 'value'].forEach((part, j) => {
        const data = tensor.data.slice(j * D * rowLength, (j + 1) * D * rowLength);
        t.set(`${p}.encoder.layer.${qkv[1]}.attention.attention.${part}.${qkv[2]}`, { shape: qkv[2] === 'weight' ? [D, D] : [D], data });
      });
      continue;
    }
    const rule = rename.find(([re]) => re.test(name))!;
    t.set(name.replace(rule[0], rule[1]), tensor);
  }
  return t;
}

export function transformersConfig(m: ViTModel, cls: TransformersClass, qkvBias = true): Record<string, any> {
  const c = m.config;
  return {
    architectures: [cls],
    model_type: cls === 'ViTForImageClassification' ? 'vit' : 'deit',
    hidden_size: c.dim,
    num_hidden_layers: c.depth,
    num_attention_heads: c.heads,
    intermediate_size: c.mlpDim,
    hidden_act: 'gelu',
    image_size: c.imageSize,
    patch_size: c.patchSize,
    num_channels: c.inChannels,
    layer_norm_eps: 1e-12,
    qkv_bias: qkvBias,
    id2label: Object.fromEntries(DESCRIPTIONS.map((d, i) => [String(i), d])),
    label2id: Object.fromEntries(DESCRIPTIONS.map((d, i) => [d, i])),
  };
}

/** DeiTImageProcessor-style: resize to 256, centre crop 224 (scaled down to our 8 px model: 9 → 8). */
export const DEIT_PREPROCESSOR = {
  do_resize: true,
  size: { height: 9, width: 9 },
  do_center_crop: true,
  crop_size: { height: 8, width: 8 },
  resample: 3,
  do_normalize: true,
  image_mean: [0.485, 0.456, 0.406],
  image_std: [0.229, 0.224, 0.225],
};
