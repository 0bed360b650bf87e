import { ModelFormatError } from '../errors.js';
import type { BlockWidths, PreprocessConfig } from './types.js';

/**
 * What a model folder's config files declare, before any weight is read. Two layouts:
 *
 * - timm (`config.json` with `architecture`, `num_classes`, `pretrained_cfg`, `label_names`,
 *   `label_descriptions`, optionally `model_args`): dimensions come from, in order of preference,
 *   the `vitprune` object that saveModelFolder writes, timm's `model_args`, `pretrained_cfg.input_size`,
 *   and the architecture name (`deit_tiny_patch16_224` → tiny = 192 wide, 12 blocks, 3 heads; patch 16; 224 px).
 * - transformers (`config.json` with `architectures: ["ViTForImageClassification"]` and friends,
 *   plus `preprocessor_config.json`).
 *
 * Fields that are `null` are not declared; load.ts reads them from the weight shapes.
 * Declared fields are cross-checked against the weights there.
 */
export interface DeclaredModel {
  configFile: string; // path of config.json, for messages
  architecture: string;
  layout: 'timm' | 'transformers';
  distilled: boolean; // a distillation token follows the CLS token
  dim: number; // D
  depth: number;
  heads: number;
  qkDim: number; // D / heads unless recorded by vitprune (channel-pruned)
  vDim: number;
  blockWidths?: BlockWidths[]; // recorded by vitprune when channel pruning left blocks different widths
  mlpDim: number | null;
  numClasses: number | null;
  imageSize: number;
  patchSize: number | null;
  inChannels: number | null;
  eps: number;
  qkvBias: boolean | null; // null: the qkv bias is used when the file has it (timm), else zeros
  labels: string[] | null; // null: class indices
  descriptions: string[] | null; // null: ''
  preprocess: PreprocessConfig;
}

/** transformers classes we load, and the prefix of their backbone's tensor names. */
export const TRANSFORMERS_CLASSES: Record<string, { prefix: string; distilled: boolean }> = {
  ViTForImageClassification: { prefix: 'vit', distilled: false },
  // DeiTForImageClassification has a distillation token in the sequence but a single head on
  // the CLS token (load.ts maps it exactly onto our distilled layout).
  DeiTForImageClassification: { prefix: 'deit', distilled: true },
  DeiTForImageClassificationWithTeacher: { prefix: 'deit', distilled: true },
};

/** Standard timm widths: `<family>_<size>_patch<P>_<S>`. */
const TIMM_SIZES: Record<string, { dim: number; depth: number; heads: number }> = {
  tiny: { dim: 192, depth: 12, heads: 3 },
  small: { dim: 384, depth: 12, heads: 6 },
  base: { dim: 768, depth: 12, heads: 12 },
  large: { dim: 1024, depth: 24, heads: 16 },
};

/**
 * Preprocessing values outside these bounds are refused when the config is read: a crop_pct
 * below 1/4 resizes the image to more than 4× the crop (and a large one to less than a pixel);
 * a crop_pct above 1 crops beyond the resized image, which no eval transform does. Image sides
 * are at most 4096 px (ViTs run at 224–518).
 */
const CROP_PCT_RANGE = { min: 0.25, max: 1 };
const MAX_IMAGE_SIDE = 4096;

/** timm builds every ViT/DeiT LayerNorm with eps 1e-6. */
const TIMM_LAYER_NORM_EPS = 1e-6;

const SUPPORTED_ARCHITECTURES =
  `timm names vit_<size>_patch<P>_<S> / deit_<size>[_distilled]_patch<P>_<S> (size: ${Object.keys(TIMM_SIZES).join(', ')}; ` +
  `other sizes need model_args), or transformers ${Object.keys(TRANSFORMERS_CLASSES).join(', ')}`;

/** A JSON document of a model folder (config.json, preprocessor_config.json), read only when needed. */
export interface ConfigDocument {
  readonly where: string; // its path, or a label, for messages
  /** Its text; throws ModelFormatError saying what is missing when there is no such document. */
  text(): string;
}

/** What `config` (config.json) declares, and for transformers `preprocessor` (preprocessor_config.json). */
export function declareModel(config: ConfigDocument, preprocessor: ConfigDocument): DeclaredModel {
  const json = readJsonObject(config);
  if (json.has('architecture')) return timmConfig(json);
  if (json.has('architectures')) return transformersConfig(json, preprocessor);
  throw new ModelFormatError(
    `${config.where}: expected "architecture" (timm layout) or "architectures" (transformers layout), found neither; supported: ${SUPPORTED_ARCHITECTURES}`,
  );
}

function timmConfig(config: JsonObject): DeclaredModel {
  const architecture = config.string('architecture');
  const saved = config.optionalObject('vitprune'); // written by saveModelFolder: every dimension, exactly
  const name = parseTimmName(architecture);
  if (!saved && !name) {
    throw new ModelFormatError(`${config.where}: unknown architecture "${architecture}"; supported: ${SUPPORTED_ARCHITECTURES}`);
  }
  const globalPool = config.optionalString('global_pool');
  if (globalPool !== undefined && globalPool !== 'token') {
    throw new ModelFormatError(`${config.where}: global_pool "${globalPool}" is not supported; expected "token" (logits from the CLS token)`);
  }
  const pretrained = config.object('pretrained_cfg');
  const inputSize = pretrained.optionalIntegerArray('input_size'); // [C, S, S]
  if (inputSize && (inputSize.length !== 3 || inputSize[1] !== inputSize[2] || inputSize[1] > MAX_IMAGE_SIDE)) {
    throw new ModelFormatError(`${pretrained.where}: expected input_size [C, S, S] (square, S at most ${MAX_IMAGE_SIDE}), found [${inputSize.join(', ')}]`);
  }
  const dims = saved ? savedDims(saved) : timmDims(config, name!, inputSize);

  const labels = config.optionalStringArray('label_names') ?? null;
  return {
    configFile: config.where,
    architecture,
    layout: 'timm',
    ...dims,
    qkvBias: null,
    labels,
    descriptions: timmDescriptions(config, labels),
    preprocess: timmPreprocess(pretrained, dims.imageSize),
  };
}

type DeclaredDims = Pick<
  DeclaredModel,
  'dim' | 'depth' | 'heads' | 'qkDim' | 'vDim' | 'blockWidths' | 'mlpDim' | 'imageSize' | 'patchSize' | 'inChannels' | 'numClasses' | 'eps' | 'distilled'
>;

/** The `vitprune` object of a folder written by saveModelFolder records every dimension. */
function savedDims(saved: JsonObject): DeclaredDims {
  return {
    dim: saved.positiveInteger('dim'),
    depth: saved.positiveInteger('depth'),
    heads: saved.positiveInteger('heads'),
    qkDim: saved.positiveInteger('qkDim'),
    vDim: saved.positiveInteger('vDim'),
    mlpDim: saved.positiveInteger('mlpDim'),
    imageSize: saved.positiveInteger('imageSize'),
    patchSize: saved.positiveInteger('patchSize'),
    inChannels: saved.positiveInteger('inChannels'),
    numClasses: saved.positiveInteger('numClasses'),
    eps: saved.positiveNumber('eps'),
    distilled: saved.boolean('distilled'),
    blockWidths: savedBlockWidths(saved),
  };
}

/** Per-block widths (`blockQkDims`, `blockVDims`: one per block, none above qkDim/vDim), or undefined. */
function savedBlockWidths(saved: JsonObject): BlockWidths[] | undefined {
  const qk = saved.optionalIntegerArray('blockQkDims');
  const v = saved.optionalIntegerArray('blockVDims');
  if (!qk && !v) return undefined;
  const depth = saved.positiveInteger('depth');
  const qkDim = saved.positiveInteger('qkDim');
  const vDim = saved.positiveInteger('vDim');
  for (const [key, list, max] of [
    ['blockQkDims', qk, qkDim],
    ['blockVDims', v, vDim],
  ] as const) {
    if (!list || list.length !== depth || list.some((w) => w > max)) {
      throw new ModelFormatError(
        `${saved.where}: expected "${key}" to list ${depth} widths (one per block) of at most ${max}, found ${JSON.stringify(list ?? null)}`,
      );
    }
  }
  return qk!.map((q, b) => ({ qkDim: q, vDim: v![b] }));
}

/** Dimensions of a timm checkpoint: model_args first, then pretrained_cfg.input_size, then the name. */
function timmDims(config: JsonObject, name: TimmName, inputSize: number[] | undefined): DeclaredDims {
  const args = config.optionalObject('model_args') ?? new JsonObject({}, `${config.where}: model_args`);
  const size = name.size === undefined ? undefined : TIMM_SIZES[name.size];
  const dim = args.optionalPositiveInteger('embed_dim') ?? size?.dim;
  const depth = args.optionalPositiveInteger('depth') ?? size?.depth;
  const heads = args.optionalPositiveInteger('num_heads') ?? size?.heads;
  const imageSize = args.optionalSize('img_size') ?? inputSize?.[1] ?? name.imageSize;
  if (dim === undefined || depth === undefined || heads === undefined || imageSize === undefined) {
    throw new ModelFormatError(
      `${config.where}: cannot tell width, depth, heads and image size of "${config.string('architecture')}": expected a size ` +
        `(${Object.keys(TIMM_SIZES).join(', ')}) and an image size (_224) in the name, or model_args {embed_dim, depth, num_heads, img_size}`,
    );
  }
  const headDim = perHeadWidth(dim, heads, config.where);
  const mlpRatio = args.optionalNumber('mlp_ratio');
  return {
    dim,
    depth,
    heads,
    qkDim: headDim,
    vDim: headDim,
    mlpDim: mlpRatio === undefined ? null : Math.floor(mlpRatio * dim), // timm: int(dim * mlp_ratio)
    imageSize,
    patchSize: args.optionalPositiveInteger('patch_size') ?? name.patchSize ?? null,
    inChannels: args.optionalPositiveInteger('in_chans') ?? inputSize?.[0] ?? null,
    numClasses: config.optionalPositiveInteger('num_classes') ?? null,
    eps: TIMM_LAYER_NORM_EPS,
    distilled: name.distilled,
  };
}

interface TimmName {
  distilled: boolean;
  size: string | undefined; // key of TIMM_SIZES
  patchSize: number | undefined;
  imageSize: number | undefined;
}

/** `deit_base_distilled_patch16_384.fb_in1k` → base, distilled, patch 16, 384 px; null unless vit_… / deit_…. */
function parseTimmName(architecture: string): TimmName | null {
  const parts = architecture.split('.')[0].split('_'); // drop the pretrained tag
  if (parts[0] !== 'vit' && parts[0] !== 'deit') return null;
  const patchIndex = parts.findIndex((p) => /^patch\d+$/.test(p));
  const imageSizePart = parts.slice(patchIndex + 1).find((p) => /^\d+$/.test(p));
  return {
    distilled: parts.includes('distilled'),
    size: parts.find((p) => p in TIMM_SIZES),
    patchSize: patchIndex >= 0 ? Number(parts[patchIndex].slice('patch'.length)) : undefined,
    imageSize: patchIndex >= 0 && imageSizePart !== undefined ? Number(imageSizePart) : undefined,
  };
}

/** `label_descriptions` is a list parallel to `label_names`, or (as timm writes it) an object keyed by label name. */
function timmDescriptions(config: JsonObject, labels: string[] | null): string[] | null {
  if (!config.has('label_descriptions')) return null;
  if (Array.isArray(config.value.label_descriptions)) return config.stringArray('label_descriptions');
  const byLabel = config.object('label_descriptions');
  if (!labels) throw new ModelFormatError(`${config.where}: label_descriptions is keyed by label name, but label_names is missing`);
  return labels.map((label) => byLabel.optionalString(label) ?? '');
}

function timmPreprocess(pretrained: JsonObject, imageSize: number): PreprocessConfig {
  const cropMode = pretrained.optionalString('crop_mode');
  if (cropMode !== undefined && cropMode !== 'center') {
    throw new ModelFormatError(`${pretrained.where}: crop_mode "${cropMode}" is not supported; expected "center"`);
  }
  const interpolation = pretrained.string('interpolation');
  if (interpolation !== 'bicubic' && interpolation !== 'bilinear') {
    throw new ModelFormatError(`${pretrained.where}: interpolation must be "bicubic" or "bilinear", found "${interpolation}"`);
  }
  if (imageSize > MAX_IMAGE_SIDE) {
    throw new ModelFormatError(
      `${pretrained.where}: expected an input size of at most ${MAX_IMAGE_SIDE} px, found ${imageSize} (from input_size, model_args or the architecture name)`,
    );
  }
  return {
    inputSize: imageSize,
    interpolation,
    cropPct: pretrained.numberInRange('crop_pct', CROP_PCT_RANGE.min, CROP_PCT_RANGE.max),
    ...normalisation(pretrained, 'mean', 'std'),
  };
}

/**
 * Mean and std of the normalisation (v / 255 − mean) / std: each std positive, and black and
 * white must stay finite in float32 after it.
 */
function normalisation(config: JsonObject, meanKey: string, stdKey: string): Pick<PreprocessConfig, 'mean' | 'std'> {
  const mean = config.triple(meanKey);
  const std = config.triple(stdKey);
  if (std.some((s) => s <= 0)) {
    throw new ModelFormatError(`${config.where}: expected "${stdKey}" to be 3 positive numbers, found [${std.join(', ')}]`);
  }
  const extreme = Math.max(...mean.map((m, c) => Math.max(Math.abs(m), Math.abs(1 - m)) / std[c]));
  if (!Number.isFinite(Math.fround(extreme))) {
    throw new ModelFormatError(
      `${config.where}: "${meanKey}" [${mean.join(', ')}] and "${stdKey}" [${std.join(', ')}] normalise pixel values to ${extreme}, beyond float32; expected std of a pixel-value scale`,
    );
  }
  return { mean, std };
}

function transformersConfig(config: JsonObject, preprocessor: ConfigDocument): DeclaredModel {
  const architectures = config.stringArray('architectures');
  const architecture = architectures[0];
  const cls = TRANSFORMERS_CLASSES[architecture];
  if (architectures.length !== 1 || !cls) {
    throw new ModelFormatError(`${config.where}: unknown architecture ${JSON.stringify(architectures)}; supported: ${SUPPORTED_ARCHITECTURES}`);
  }
  const act = config.optionalString('hidden_act') ?? 'gelu';
  if (act !== 'gelu') throw new ModelFormatError(`${config.where}: hidden_act must be "gelu" (exact, erf), found "${act}"`);

  const dim = config.positiveInteger('hidden_size');
  const heads = config.positiveInteger('num_attention_heads');
  const headDim = perHeadWidth(dim, heads, config.where);
  const imageSize = config.size('image_size');
  const labels = transformersLabels(config);
  const preprocess = transformersPreprocess(preprocessor);
  if (preprocess.inputSize !== imageSize) {
    throw new ModelFormatError(`${preprocessor.where}: the processed image is ${preprocess.inputSize} px, but config.json has image_size ${imageSize}`);
  }
  return {
    configFile: config.where,
    architecture,
    layout: 'transformers',
    distilled: cls.distilled,
    dim,
    depth: config.positiveInteger('num_hidden_layers'),
    heads,
    qkDim: headDim,
    vDim: headDim,
    mlpDim: config.optionalPositiveInteger('intermediate_size') ?? null,
    numClasses: labels?.length ?? null,
    imageSize,
    patchSize: config.positiveInteger('patch_size'),
    inChannels: config.optionalPositiveInteger('num_channels') ?? null,
    eps: config.optionalNumber('layer_norm_eps') ?? 1e-12, // the transformers default
    qkvBias: config.optionalBoolean('qkv_bias') ?? true,
    labels,
    descriptions: null,
    preprocess,
  };
}

/** `id2label` {"0": "tench, Tinca tinca", …} → labels in class order. */
function transformersLabels(config: JsonObject): string[] | null {
  const id2label = config.optionalObject('id2label');
  if (!id2label) return null;
  const count = Object.keys(id2label.value).length;
  return Array.from({ length: count }, (_, i) => {
    if (!id2label.has(String(i))) {
      throw new ModelFormatError(`${id2label.where}: expected keys "0" … "${count - 1}", key "${i}" is missing`);
    }
    return id2label.string(String(i));
  });
}

/**
 * transformers preprocessing → timm terms. `size` (int, {height, width} or {shortest_edge}) is the
 * resize target and `crop_size` the centre crop, so cropPct = crop / size. Without a centre crop
 * (ViTImageProcessor resizes straight to 224×224) the whole resized image is the input: cropPct 1.0.
 * Note that {height, width} resizes (squashes) both sides while timm resizes the shorter side; for
 * square crops of near-square images the two agree closely.
 */
function transformersPreprocess(document: ConfigDocument): PreprocessConfig {
  const file = document.where;
  const pre = readJsonObject(document);
  const resizeSize = pre.size('size');
  const crop = pre.optionalBoolean('do_center_crop') ?? false;
  const cropSize = crop ? pre.size('crop_size') : resizeSize;
  const resample = pre.number('resample');
  const interpolation = resample === 3 ? 'bicubic' : resample === 2 ? 'bilinear' : null;
  if (!interpolation) throw new ModelFormatError(`${file}: resample must be 3 (bicubic) or 2 (bilinear), found ${resample}`);
  const cropPct = cropSize / resizeSize;
  if (!(cropPct >= CROP_PCT_RANGE.min && cropPct <= CROP_PCT_RANGE.max)) {
    throw new ModelFormatError(
      `${file}: expected "crop_size" / "size" between ${CROP_PCT_RANGE.min} and ${CROP_PCT_RANGE.max} (a centre crop inside the resized image), found ${cropSize} / ${resizeSize}`,
    );
  }
  const normalize = pre.optionalBoolean('do_normalize') ?? true;
  return {
    inputSize: cropSize,
    interpolation,
    cropPct,
    ...(normalize ? normalisation(pre, 'image_mean', 'image_std') : { mean: [0, 0, 0], std: [1, 1, 1] }),
  };
}

function perHeadWidth(dim: number, heads: number, where: string): number {
  if (dim % heads !== 0) throw new ModelFormatError(`${where}: width ${dim} is not divisible by ${heads} heads`);
  return dim / heads;
}

function readJsonObject(document: ConfigDocument): JsonObject {
  const file = document.where;
  const text = document.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(`${file}: expected JSON, ${(err as Error).message}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelFormatError(`${file}: expected a JSON object, found ${JSON.stringify(value)?.slice(0, 40)}`);
  }
  return new JsonObject(value as Record<string, unknown>, file);
}

/** Typed access to a JSON object's fields; every failure is a ModelFormatError naming file and field. */
class JsonObject {
  constructor(
    readonly value: Record<string, unknown>,
    readonly where: string, // "path/config.json" or "path/config.json: pretrained_cfg"
  ) {}

  has(key: string): boolean {
    return this.value[key] !== undefined && this.value[key] !== null;
  }

  private fail(key: string, expected: string): never {
    const found = this.has(key) ? JSON.stringify(this.value[key]).slice(0, 60) : 'nothing';
    throw new ModelFormatError(`${this.where}: expected "${key}" to be ${expected}, found ${found}`);
  }

  number(key: string): number {
    const v = this.value[key];
    return typeof v === 'number' && Number.isFinite(v) ? v : this.fail(key, 'a number');
  }

  positiveNumber(key: string): number {
    const v = this.number(key);
    return v > 0 ? v : this.fail(key, 'a positive number');
  }

  numberInRange(key: string, min: number, max: number): number {
    const v = this.number(key);
    return v >= min && v <= max ? v : this.fail(key, `a number from ${min} to ${max}`);
  }

  positiveInteger(key: string): number {
    const v = this.value[key];
    return Number.isSafeInteger(v) && (v as number) > 0 ? (v as number) : this.fail(key, 'a positive integer');
  }

  string(key: string): string {
    const v = this.value[key];
    return typeof v === 'string' ? v : this.fail(key, 'a string');
  }

  boolean(key: string): boolean {
    const v = this.value[key];
    return typeof v === 'boolean' ? v : this.fail(key, 'true or false');
  }

  stringArray(key: string): string[] {
    const v = this.value[key];
    return Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : this.fail(key, 'a list of strings');
  }

  object(key: string): JsonObject {
    const v = this.value[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return this.fail(key, 'an object');
    return new JsonObject(v as Record<string, unknown>, `${this.where}: ${key}`);
  }

  /** [r, g, b] */
  triple(key: string): [number, number, number] {
    const v = this.value[key];
    const ok = Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
    return ok ? (v as [number, number, number]) : this.fail(key, 'a list of 3 numbers');
  }

  /** An image side: an integer, a square [S, S], or {height, width} (square) or {shortest_edge}; at most MAX_IMAGE_SIDE. */
  size(key: string): number {
    const v = this.value[key];
    const side = (s: unknown): s is number => Number.isSafeInteger(s) && (s as number) > 0 && (s as number) <= MAX_IMAGE_SIDE;
    if (side(v)) return v;
    if (Array.isArray(v) && v.length === 2 && v[0] === v[1] && side(v[0])) return v[0];
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const o = this.object(key);
      if (o.has('shortest_edge')) return o.size('shortest_edge');
      const height = o.size('height');
      if (o.size('width') === height) return height;
    }
    return this.fail(key, `an image side from 1 to ${MAX_IMAGE_SIDE}: S, [S, S], {"height": S, "width": S} or {"shortest_edge": S}`);
  }

  optionalNumber(key: string): number | undefined {
    return this.has(key) ? this.number(key) : undefined;
  }

  optionalPositiveInteger(key: string): number | undefined {
    return this.has(key) ? this.positiveInteger(key) : undefined;
  }

  optionalSize(key: string): number | undefined {
    return this.has(key) ? this.size(key) : undefined;
  }

  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }

  optionalBoolean(key: string): boolean | undefined {
    return this.has(key) ? this.boolean(key) : undefined;
  }

  optionalStringArray(key: string): string[] | undefined {
    return this.has(key) ? this.stringArray(key) : undefined;
  }

  optionalIntegerArray(key: string): number[] | undefined {
    if (!this.has(key)) return undefined;
    const v = this.value[key];
    return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x > 0) ? v : this.fail(key, 'a list of positive integers');
  }

  optionalObject(key: string): JsonObject | undefined {
    return this.has(key) ? this.object(key) : undefined;
  }
}

/**
 * Dimensions of a standard timm ViT/DeiT from its name alone (`deit_small_patch16_224` →
 * 384 wide, 12 blocks, 6 heads, patch 16, 224 px), for random-weight models of that shape.
 */
export function timmArchitectureDims(architecture: string): {
  dim: number;
  depth: number;
  heads: number;
  patchSize: number;
  imageSize: number;
  distilled: boolean;
} {
  const name = parseTimmName(architecture);
  const size = name?.size === undefined ? undefined : TIMM_SIZES[name.size];
  if (!name || !size || name.patchSize === undefined || name.imageSize === undefined) {
    throw new ModelFormatError(`unknown architecture "${architecture}"; supported: ${SUPPORTED_ARCHITECTURES}`);
  }
  return { ...size, patchSize: name.patchSize, imageSize: name.imageSize, distilled: name.distilled };
}
