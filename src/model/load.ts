import { ModelFormatError } from '../errors.js';
import { declareModel, TRANSFORMERS_CLASSES, type DeclaredModel } from './config.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile, type TensorToWrite } from './safetensors.js';
import type { BlockWeights, Linear, Norm, ViTConfig, ViTModel, ViTWeights } from './types.js';
import { blockConfig, numPatches, prefixTokens } from './types.js';

/**
 * A model from what a model folder holds, `config.json` + `model.safetensors` in timm or
 * transformers layout (see config.ts), given as values: folder.ts reads and writes model folders.
 * Dimensions are read from the weight shapes and cross-checked with the config; any
 * disagreement, missing tensor or unknown architecture is a ModelFormatError naming the file,
 * the tensor, what was expected and what was found. Extra tensors are ignored, except blocks
 * beyond the declared depth and tensors of timm features we do not implement.
 */
export function assembleModel(declared: DeclaredModel, weights: SafetensorsFile, source: string): ViTModel {
  const tensors = declared.layout === 'timm' ? timmSource(weights) : transformersSource(weights, declared);
  return buildModel(declared, tensors, source);
}

/** A model folder's files as bytes (config.json, model.safetensors, and preprocessor_config.json for transformers). */
export interface ModelBytes {
  config: Uint8Array | string;
  weights: Uint8Array;
  preprocessorConfig?: Uint8Array | string;
}

/** A model from the bytes of its files; `source` names it in messages. */
export function modelFromBytes(bytes: ModelBytes, source = 'model'): ViTModel {
  const text = (content: Uint8Array | string) => (typeof content === 'string' ? content : new TextDecoder().decode(content));
  const declared = declareModel(
    { where: `${source}: config.json`, text: () => text(bytes.config) },
    {
      where: `${source}: preprocessor_config.json`,
      text: () => {
        if (bytes.preprocessorConfig === undefined) {
          throw new ModelFormatError(`${source}: expected preprocessor_config.json with a transformers config.json, none was given`);
        }
        return text(bytes.preprocessorConfig);
      },
    },
  );
  return assembleModel(declared, parseSafetensors(bytes.weights, `${source}: model.safetensors`), source);
}

/** A float32 tensor of the file. */
interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Our tensors, asked for by their timm names, found in a file of either layout. */
interface TensorSource {
  file: string;
  /** The name(s) the file uses for a timm name, for messages. */
  nameInFile(timmName: string): string;
  find(timmName: string): Tensor | undefined;
  /** A tensor of a block with index ≥ depth, if the file has one. */
  tensorBeyondDepth(depth: number): string | undefined;
}

/** Tensors that mean a timm feature our forward pass does not implement. */
const UNSUPPORTED_TIMM_TENSORS: Record<string, string> = {
  'norm_pre.weight': 'a LayerNorm before the blocks (CLIP-style ViT)',
  'fc_norm.weight': 'a LayerNorm after pooling',
  reg_token: 'register tokens',
  'blocks.0.ls1.gamma': 'layer scale (DeiT III)',
  'blocks.0.attn.q_norm.weight': 'query/key normalisation',
};

function timmSource(file: SafetensorsFile): TensorSource {
  for (const [name, feature] of Object.entries(UNSUPPORTED_TIMM_TENSORS)) {
    if (file.tensors.has(name)) throw new ModelFormatError(`${file.file}: tensor "${name}" means ${feature}, which is not supported`);
  }
  return {
    file: file.file,
    nameInFile: (name) => name,
    find: (name) => file.tensors.get(name),
    tensorBeyondDepth: (depth) => firstBlockTensorFrom(file, /^blocks\.(\d+)\./, depth),
  };
}

/**
 * transformers names (`vit.` or `deit.` prefix) mapped onto timm's. Separate query, key and value
 * projections are concatenated into our fused qkv (Q rows, then K rows, then V rows).
 *
 * DeiTForImageClassification keeps the distillation token in the sequence but computes
 * logits = classifier(CLS) only. Our distilled forward pass computes (head(CLS) + head_dist(DIST)) / 2,
 * so we load head = 2 · classifier and head_dist = 0: the result is exactly classifier(CLS), since
 * scaling by 2 and halving are exact in floating point.
 */
function transformersSource(file: SafetensorsFile, declared: DeclaredModel): TensorSource {
  const { prefix } = TRANSFORMERS_CLASSES[declared.architecture];
  const withTeacher = declared.architecture === 'DeiTForImageClassificationWithTeacher';
  const singleHeadDeiT = declared.architecture === 'DeiTForImageClassification';
  const renames: [RegExp, string][] = [
    [/^cls_token$/, `${prefix}.embeddings.cls_token`],
    [/^dist_token$/, `${prefix}.embeddings.distillation_token`],
    [/^pos_embed$/, `${prefix}.embeddings.position_embeddings`],
    [/^patch_embed\.proj\./, `${prefix}.embeddings.patch_embeddings.projection.`],
    [/^blocks\.(\d+)\.norm1\./, `${prefix}.encoder.layer.$1.layernorm_before.`],
    [/^blocks\.(\d+)\.attn\.qkv\.(\w+)$/, `${prefix}.encoder.layer.$1.attention.attention.{query,key,value}.$2`],
    [/^blocks\.(\d+)\.attn\.proj\./, `${prefix}.encoder.layer.$1.attention.output.dense.`],
    [/^blocks\.(\d+)\.norm2\./, `${prefix}.encoder.layer.$1.layernorm_after.`],
    [/^blocks\.(\d+)\.mlp\.fc1\./, `${prefix}.encoder.layer.$1.intermediate.dense.`],
    [/^blocks\.(\d+)\.mlp\.fc2\./, `${prefix}.encoder.layer.$1.output.dense.`],
    [/^norm\./, `${prefix}.layernorm.`],
    [/^head\./, withTeacher ? 'cls_classifier.' : 'classifier.'],
    [/^head_dist\./, singleHeadDeiT ? 'classifier.' : 'distillation_classifier.'],
  ];
  const nameInFile = (timmName: string): string => {
    const rule = renames.find(([pattern]) => pattern.test(timmName));
    return rule ? timmName.replace(rule[0], rule[1]) : timmName;
  };
  const get = (name: string): Tensor => {
    const tensor = file.tensors.get(name);
    if (!tensor) throw new ModelFormatError(`${file.file}: missing tensor "${name}"`);
    return tensor;
  };

  const find = (timmName: string): Tensor | undefined => {
    const qkv = /^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$/.exec(timmName);
    if (qkv) {
      const names = ['query', 'key', 'value'].map((p) => `${prefix}.encoder.layer.${qkv[1]}.attention.attention.${p}.${qkv[2]}`);
      if (names.every((n) => !file.tensors.has(n))) return undefined;
      return concatenateRows(names.map(get), names, qkv[2] === 'weight' ? declared.dim : null, file.file);
    }
    const tensor = file.tensors.get(nameInFile(timmName));
    if (singleHeadDeiT && tensor && timmName.startsWith('head.')) return { shape: tensor.shape, data: tensor.data.map((x) => 2 * x) };
    if (singleHeadDeiT && tensor && timmName.startsWith('head_dist.')) return { shape: tensor.shape, data: new Float32Array(tensor.data.length) };
    return tensor;
  };

  return {
    file: file.file,
    nameInFile,
    find,
    tensorBeyondDepth: (depth) => firstBlockTensorFrom(file, new RegExp(`^${prefix}\\.encoder\\.layer\\.(\\d+)\\.`), depth),
  };
}

/** Stack query, key and value ([rows_i, D] weights or [rows_i] biases) into [Σ rows_i, D] or [Σ rows_i]. */
function concatenateRows(parts: Tensor[], names: string[], columns: number | null, file: string): Tensor {
  parts.forEach((p, i) => {
    const ok = columns === null ? p.shape.length === 1 : p.shape.length === 2 && p.shape[1] === columns;
    if (!ok) {
      throw new ModelFormatError(`${file}: tensor "${names[i]}" has shape ${formatShape(p.shape)}, expected [rows${columns === null ? '' : `, ${columns}`}]`);
    }
  });
  if (parts[0].shape[0] !== parts[1].shape[0]) {
    throw new ModelFormatError(
      `${file}: query and key must have the same number of rows; ` +
        `"${names[0]}" has ${formatShape(parts[0].shape)}, "${names[1]}" has ${formatShape(parts[1].shape)}`,
    );
  }
  const rows = parts.reduce((sum, p) => sum + p.shape[0], 0);
  const data = new Float32Array(parts.reduce((sum, p) => sum + p.data.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  return { shape: columns === null ? [rows] : [rows, columns], data };
}

function firstBlockTensorFrom(file: SafetensorsFile, blockPattern: RegExp, depth: number): string | undefined {
  for (const name of file.tensors.keys()) {
    const match = blockPattern.exec(name);
    if (match && Number(match[1]) >= depth) return name;
  }
  return undefined;
}

/** Takes tensors from a source with the expected shapes; every failure names file, tensor, expected and found. */
class WeightReader {
  constructor(
    private readonly source: TensorSource,
    private readonly legend: string, // where the expected dimensions come from, for messages
  ) {}

  /** The shape of a tensor that must exist, checked for rank only. */
  shape(name: string, rank: number, expected: string): number[] {
    const tensor = this.require(name, expected);
    if (tensor.shape.length !== rank) this.wrongShape(name, tensor.shape, expected);
    return tensor.shape;
  }

  /** A dimension read from the weights, which must agree with the config when the config declares it. */
  agree(what: string, fromWeights: number, declared: number | null, name: string, configFile: string): number {
    if (declared !== null && declared !== fromWeights) {
      throw new ModelFormatError(
        `${this.source.file}: tensor "${this.source.nameInFile(name)}" gives ${what} ${fromWeights}, but ${configFile} declares ${declared}`,
      );
    }
    return fromWeights;
  }

  take(name: string, shape: number[], why = this.legend): Float32Array {
    const tensor = this.require(name, formatShape(shape));
    if (!sameShape(tensor.shape, shape)) this.wrongShape(name, tensor.shape, formatShape(shape), why);
    const nonFinite = countNonFinite(tensor.data);
    if (nonFinite > 0) {
      throw new ModelFormatError(
        `${this.source.file}: tensor "${this.source.nameInFile(name)}" has ${nonFinite} non-finite value(s) (NaN or ±Infinity) among ${tensor.data.length}; expected finite weights`,
      );
    }
    return tensor.data;
  }

  linear(name: string, outFeatures: number, inFeatures: number, bias: 'required' | 'zeros' = 'required', why = this.legend): Linear {
    return {
      weight: this.take(`${name}.weight`, [outFeatures, inFeatures], why),
      bias: bias === 'required' ? this.take(`${name}.bias`, [outFeatures], why) : new Float32Array(outFeatures),
      outFeatures,
      inFeatures,
    };
  }

  norm(name: string, dim: number): Norm {
    return { weight: this.take(`${name}.weight`, [dim]), bias: this.take(`${name}.bias`, [dim]) };
  }

  has(name: string): boolean {
    return this.source.find(name) !== undefined;
  }

  private require(name: string, expected: string): Tensor {
    const tensor = this.source.find(name);
    if (!tensor) throw new ModelFormatError(`${this.source.file}: missing tensor "${this.source.nameInFile(name)}" (expected shape ${expected})`);
    return tensor;
  }

  private wrongShape(name: string, found: number[], expected: string, why?: string): never {
    throw new ModelFormatError(
      `${this.source.file}: tensor "${this.source.nameInFile(name)}" has shape ${formatShape(found)}, expected ${expected}${why ? ` (${why})` : ''}`,
    );
  }
}

function buildModel(declared: DeclaredModel, source: TensorSource, dir: string): ViTModel {
  const { dim: D, depth, heads: H, qkDim, vDim, configFile } = declared;
  const legend = `D = ${D} per ${configFile}`;
  const w = new WeightReader(source, legend);

  const beyond = source.tensorBeyondDepth(depth);
  if (beyond) throw new ModelFormatError(`${source.file}: tensor "${beyond}" belongs to a block beyond the depth ${depth} declared by ${configFile}`);

  // Dimensions read from the weights.
  const patchShape = w.shape('patch_embed.proj.weight', 4, '[D, C, P, P]'); // conv kernel
  const inChannels = w.agree('input channels', patchShape[1], declared.inChannels, 'patch_embed.proj.weight', configFile);
  const patchSize = w.agree('patch size', patchShape[2], declared.patchSize, 'patch_embed.proj.weight', configFile);
  const mlpDim = w.agree('MLP width', w.shape('blocks.0.mlp.fc1.weight', 2, '[mlpDim, D]')[0], declared.mlpDim, 'blocks.0.mlp.fc1.weight', configFile);
  const numClasses = w.agree('number of classes', w.shape('head.weight', 2, '[classes, D]')[0], declared.numClasses, 'head.weight', configFile);
  if (declared.imageSize % patchSize !== 0) {
    throw new ModelFormatError(
      `${configFile}: image size ${declared.imageSize} is not a multiple of the patch size ${patchSize} (from patch_embed.proj.weight)`,
    );
  }

  const config: ViTConfig = {
    architecture: declared.architecture,
    layout: declared.layout,
    imageSize: declared.imageSize,
    patchSize,
    inChannels,
    dim: D,
    depth,
    heads: H,
    qkDim,
    vDim,
    ...(declared.blockWidths && { blockWidths: declared.blockWidths }),
    mlpDim,
    numClasses,
    eps: declared.eps,
    distilled: declared.distilled,
    labels: declared.labels ?? Array.from({ length: numClasses }, (_, i) => String(i)),
    descriptions: declared.descriptions ?? Array.from({ length: numClasses }, () => ''),
    preprocess: declared.preprocess,
  };
  for (const [what, list] of [
    ['labels', config.labels],
    ['label descriptions', config.descriptions],
  ] as const) {
    if (list.length !== numClasses) {
      throw new ModelFormatError(`${configFile}: has ${list.length} ${what}, but the classifier head has ${numClasses} classes`);
    }
  }

  const tokens = prefixTokens(config) + numPatches(config);
  const qkvRows = (b: number) => {
    const { qkDim: qk, vDim: v } = blockConfig(config, b);
    return { rows: 2 * H * qk + H * v, why: `2·H·qkDim + H·vDim rows with H = ${H}, qkDim = ${qk}, vDim = ${v}; ${legend}`, inputs: H * v };
  };
  const qkvBias = (declared.qkvBias ?? w.has('blocks.0.attn.qkv.bias')) ? 'required' : 'zeros';
  const weights: ViTWeights = {
    // The conv kernel [D, C, P, P] is the matrix [D, C·P·P] over (channel, row, col)-flattened patches.
    patchEmbed: {
      weight: w.take('patch_embed.proj.weight', [D, inChannels, patchSize, patchSize]),
      bias: w.take('patch_embed.proj.bias', [D]),
      outFeatures: D,
      inFeatures: inChannels * patchSize * patchSize,
    },
    clsToken: w.take('cls_token', [1, 1, D]),
    distToken: config.distilled ? w.take('dist_token', [1, 1, D]) : null,
    posEmbed: w.take('pos_embed', [1, tokens, D], `${prefixTokens(config)} prefix token(s) + (${config.imageSize}/${patchSize})² patches; ${legend}`),
    blocks: Array.from(
      { length: depth },
      (_, i): BlockWeights => ({
        norm1: w.norm(`blocks.${i}.norm1`, D),
        qkv: w.linear(`blocks.${i}.attn.qkv`, qkvRows(i).rows, D, qkvBias, qkvRows(i).why),
        proj: w.linear(`blocks.${i}.attn.proj`, D, qkvRows(i).inputs, 'required', `H·vDim = ${qkvRows(i).inputs} inputs; ${legend}`),
        norm2: w.norm(`blocks.${i}.norm2`, D),
        fc1: w.linear(`blocks.${i}.mlp.fc1`, mlpDim, D),
        fc2: w.linear(`blocks.${i}.mlp.fc2`, D, mlpDim),
      }),
    ),
    norm: w.norm('norm', D),
    head: w.linear('head', numClasses, D),
    headDist: config.distilled ? w.linear('head_dist', numClasses, D) : null,
  };
  return { config, weights, source: dir };
}

/**
 * The files of `model` as a timm-layout model folder: `config.json` (architecture, num_classes,
 * pretrained_cfg, label_names, label_descriptions as a list parallel to label_names, and a
 * `vitprune` object with every dimension, so channel-pruned qkDim/vDim survive) and a float32
 * `model.safetensors`. Loading them gives back the same config (layout 'timm') and bit-identical weights.
 */
export function modelFolderFiles(model: ViTModel): { 'config.json': Uint8Array; 'model.safetensors': Uint8Array } {
  return {
    'model.safetensors': serializeSafetensors(timmTensors(model), { format: 'pt' }),
    'config.json': new TextEncoder().encode(JSON.stringify(timmConfigJson(model.config), null, 2) + '\n'),
  };
}

function timmConfigJson(cfg: ViTConfig): Record<string, unknown> {
  return {
    architecture: cfg.architecture,
    num_classes: cfg.numClasses,
    num_features: cfg.dim,
    global_pool: 'token',
    pretrained_cfg: {
      input_size: [cfg.inChannels, cfg.imageSize, cfg.imageSize],
      interpolation: cfg.preprocess.interpolation,
      crop_pct: cfg.preprocess.cropPct,
      crop_mode: 'center',
      mean: cfg.preprocess.mean,
      std: cfg.preprocess.std,
    },
    label_names: cfg.labels,
    label_descriptions: cfg.descriptions,
    vitprune: {
      dim: cfg.dim,
      depth: cfg.depth,
      heads: cfg.heads,
      qkDim: cfg.qkDim,
      vDim: cfg.vDim,
      ...(cfg.blockWidths && { blockQkDims: cfg.blockWidths.map((w) => w.qkDim), blockVDims: cfg.blockWidths.map((w) => w.vDim) }),
      mlpDim: cfg.mlpDim,
      imageSize: cfg.imageSize,
      patchSize: cfg.patchSize,
      inChannels: cfg.inChannels,
      numClasses: cfg.numClasses,
      eps: cfg.eps,
      distilled: cfg.distilled,
    },
  };
}

/** The weights under timm names and shapes. */
function timmTensors(model: ViTModel): Map<string, TensorToWrite> {
  const { config: cfg, weights: w } = model;
  const D = cfg.dim;
  const tensors = new Map<string, TensorToWrite>();
  const add = (name: string, shape: number[], data: Float32Array) => tensors.set(name, { shape, data });
  const addLinear = (name: string, lin: Linear) => {
    add(`${name}.weight`, [lin.outFeatures, lin.inFeatures], lin.weight);
    add(`${name}.bias`, [lin.outFeatures], lin.bias);
  };
  const addNorm = (name: string, norm: Norm) => {
    add(`${name}.weight`, [D], norm.weight);
    add(`${name}.bias`, [D], norm.bias);
  };

  add('cls_token', [1, 1, D], w.clsToken);
  if (w.distToken) add('dist_token', [1, 1, D], w.distToken);
  add('pos_embed', [1, prefixTokens(cfg) + numPatches(cfg), D], w.posEmbed);
  add('patch_embed.proj.weight', [D, cfg.inChannels, cfg.patchSize, cfg.patchSize], w.patchEmbed.weight);
  add('patch_embed.proj.bias', [D], w.patchEmbed.bias);
  w.blocks.forEach((b, i) => {
    addNorm(`blocks.${i}.norm1`, b.norm1);
    addLinear(`blocks.${i}.attn.qkv`, b.qkv);
    addLinear(`blocks.${i}.attn.proj`, b.proj);
    addNorm(`blocks.${i}.norm2`, b.norm2);
    addLinear(`blocks.${i}.mlp.fc1`, b.fc1);
    addLinear(`blocks.${i}.mlp.fc2`, b.fc2);
  });
  addNorm('norm', w.norm);
  addLinear('head', w.head);
  if (w.headDist) addLinear('head_dist', w.headDist);
  return tensors;
}

function countNonFinite(data: Float32Array): number {
  let count = 0;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) count++;
  return count;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function formatShape(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}
