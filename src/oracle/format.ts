import type { BlockWidths, PreprocessConfig } from '../model/types.js';
import type { TraceMethod } from './methods.js';

/**
 * The trace bundle format (docs/trace-format.md, which this file must agree with): a folder with
 * `manifest.json` (what was run, and a list of the tensors) and `tensors.safetensors` (their
 * values). This file holds the format's vocabulary: the manifest's shape, the tensor names with
 * their layout, meaning and tolerance kind, and the default tolerances.
 */

export const TRACE_FORMAT = 'vitprune-trace';
export const TRACE_FORMAT_VERSION = 3;
export const MANIFEST_FILE = 'manifest.json';
export const TENSORS_FILE = 'tensors.safetensors';

/** Element types of bundle tensors: floats in the producer's precision, integers as int32. */
export type TensorDtype = 'F64' | 'F32' | 'I32';
export const ELEMENT_BYTES: Readonly<Record<TensorDtype, number>> = { F64: 8, F32: 4, I32: 4 };

export type TraceArray = Float64Array | Float32Array | Int32Array;

/** One tensor as the manifest lists it. A port's bundle needs name, dtype and shape only. */
export interface ManifestTensor {
  name: string;
  dtype: TensorDtype;
  shape: number[];
  kind?: TensorKind;
  block?: number; // −1 before the blocks, depth after them
  layout?: string;
  meaning?: string;
}

/** The model's dimensions, as the forward pass used them. */
export interface TraceConfig {
  dim: number; // D
  depth: number;
  heads: number; // H
  qkDim: number; // per-head width of q and k (the largest, with blockWidths)
  vDim: number; // per-head width of v
  blockWidths?: BlockWidths[]; // per block, when channel pruning left blocks different widths
  mlpDim: number;
  imageSize: number; // S
  patchSize: number; // P
  inChannels: number; // C
  numClasses: number;
  eps: number; // LayerNorm epsilon
  distilled: boolean; // a DIST token follows CLS; logits = mean of both heads
  prefixTokens: number; // 1, or 2 when distilled
}

/** Where the input came from. */
export type TraceInput = { source: 'image'; file: string; sha256: string; preprocessing: PreprocessConfig } | { source: 'tensor'; description: string };

export interface TraceManifest {
  format: typeof TRACE_FORMAT;
  version: number;
  producer?: { name: string; version?: string; backend?: string; floatDtype?: 'F64' | 'F32'; runtime?: string };
  model?: { source: string; architecture: string; layout: 'timm' | 'transformers' };
  config?: TraceConfig;
  input?: TraceInput;
  method?: TraceMethod | null; // null: dense
  gmacs?: number; // executed, by the MAC count of the token counts
  tolerances?: Partial<Record<TensorKind, number>>; // what the expected values are to be compared with
  tensors?: ManifestTensor[]; // in the order they were computed
}

/**
 * Tolerance kinds. Floats of a kind pass when every |actual − expected| ≤ τ·max|expected| over the
 * tensor, with τ = τ_kind·depthFactor(block): rounding errors grow with depth, so a tensor of
 * block b is allowed (b + 1) times the kind's τ. Integer kinds (ids, positions, flags) must be equal.
 */
export const FLOAT_KINDS = ['input', 'embed', 'norm', 'qkv', 'probs', 'attn.out', 'residual', 'mlp.hidden', 'logits', 'score', 'sizes'] as const;
export const INTEGER_KINDS = ['ids', 'positions', 'flags'] as const;
export type TensorKind = (typeof FLOAT_KINDS)[number] | (typeof INTEGER_KINDS)[number];
export const TENSOR_KINDS: readonly TensorKind[] = [...FLOAT_KINDS, ...INTEGER_KINDS];

export function isIntegerKind(kind: TensorKind): boolean {
  return (INTEGER_KINDS as readonly string[]).includes(kind);
}

/** The multiple of τ_kind a tensor of `block` is allowed: 1 before the blocks, b + 1 in block b, depth + 1 after them. */
export function depthFactor(block: number): number {
  return Math.max(1, block + 1);
}

/**
 * Default τ per kind (relative to the tensor's largest magnitude, times depthFactor): at least
 * 5× the largest error of our float32 wasm kernels against reference64 on DeiT-Tiny, at every
 * depth, and below the errors of a float16 softmax (docs/porting.md has the measurements).
 * Token sizes are integers: exact.
 */
export const DEFAULT_TOLERANCES: Readonly<Record<(typeof FLOAT_KINDS)[number], number>> = {
  input: 1e-6,
  embed: 1e-5,
  norm: 5e-5,
  qkv: 5e-5,
  probs: 5e-5,
  'attn.out': 5e-5,
  residual: 5e-5,
  'mlp.hidden': 5e-5,
  logits: 5e-5,
  score: 5e-5,
  sizes: 0,
};

interface TensorSpec {
  pattern: RegExp; // the tensor's name; `b` is the 0-indexed block
  kind: TensorKind;
  layout: string; // n = tokens entering the block, n′ = alive after its after_attention reduction
  meaning: string;
}

const BLOCK = String.raw`^block\.\d+\.`;
const REDUCTION = String.raw`^block\.\d+\.after_(?:attention|block)\.`;

/** Every tensor a bundle may hold, in the order the forward pass computes them. */
const TENSOR_SPECS: readonly TensorSpec[] = [
  { pattern: /^input$/, kind: 'input', layout: '[C, S, S]', meaning: 'the preprocessed image (channels first), float32 values' },
  { pattern: /^embed$/, kind: 'embed', layout: '[n, D]', meaning: '[CLS, (DIST), patches·W_pe + b_pe] + pos_embed: the residual stream entering block 0' },
  { pattern: new RegExp(`${BLOCK}ln1$`), kind: 'norm', layout: '[n, D]', meaning: 'LN1(x)' },
  { pattern: new RegExp(`${BLOCK}qkv$`), kind: 'qkv', layout: '[n, 2H·qk + H·v]', meaning: 'LN1(x)·W_qkvᵀ + b_qkv: each row Q of heads 0…H−1, then K, then V' },
  {
    pattern: new RegExp(`${BLOCK}attn\\.probs$`),
    kind: 'probs',
    layout: '[H, n, n]',
    meaning: 'softmax(Q_h·K_hᵀ/√qk + log size of the key) per head, row = query',
  },
  { pattern: new RegExp(`${BLOCK}attn\\.out$`), kind: 'attn.out', layout: '[n, H·v]', meaning: 'P_h·V_h, heads concatenated (before the output projection)' },
  {
    pattern: new RegExp(`${BLOCK}x\\.attn$`),
    kind: 'residual',
    layout: '[n, D]',
    meaning: "x + proj(attn.out): the residual stream after attention, before the block's after_attention reduction (MCTF one-step-ahead: after it, [n′, D])",
  },
  { pattern: new RegExp(`${BLOCK}ln2$`), kind: 'norm', layout: '[n′, D]', meaning: 'LN2(x) of the tokens alive after the after_attention reduction' },
  { pattern: new RegExp(`${BLOCK}mlp\\.hidden$`), kind: 'mlp.hidden', layout: '[n′, mlp]', meaning: 'GELU(LN2(x)·W_fc1ᵀ + b_fc1), exact (erf) GELU' },
  {
    pattern: new RegExp(`${BLOCK}x\\.mlp$`),
    kind: 'residual',
    layout: '[n′, D]',
    meaning: 'x + fc2(mlp.hidden): the residual stream after the block, before its after_block reduction',
  },
  {
    pattern: new RegExp(`${REDUCTION}ids$`),
    kind: 'ids',
    layout: '[tokens after]',
    meaning:
      "original id of each token alive after the reduction, in sequence order: 0 = CLS, 1 = DIST (distilled), prefix + p = patch p (row-major), −1 = EViT's fused token",
  },
  {
    pattern: new RegExp(`${REDUCTION}sizes$`),
    kind: 'sizes',
    layout: '[tokens after]',
    meaning: 'patches each token stands for after a merge (ToMe, MCTF, PiToMe; PPT after ToMe)',
  },
  { pattern: new RegExp(`${REDUCTION}attentiveness$`), kind: 'score', layout: '[n]', meaning: 'top-k / EViT: a_j = mean over heads of P_h[CLS, j]' },
  {
    pattern: new RegExp(`${REDUCTION}fused$`),
    kind: 'residual',
    layout: '[D]',
    meaning: 'EViT: Σ a_j·x_j over the dropped tokens, appended as the last token',
  },
  {
    pattern: new RegExp(`${REDUCTION}score$`),
    kind: 'score',
    layout: '[⌈n/2⌉]',
    meaning: 'ToMe (and PPT when pooling): v(a) = max over B of cos(k̄_a, k̄_b) for each A token (positions 0, 2, 4, …); −∞ for CLS',
  },
  {
    pattern: new RegExp(`${REDUCTION}pairs$`),
    kind: 'positions',
    layout: '[r, 2]',
    meaning: 'ToMe, PiToMe, MCTF, PPT when pooling: [source, destination] positions of each merge (MCTF: where the source finally lands), by source position',
  },
  { pattern: new RegExp(`${REDUCTION}pre\\.scores$`), kind: 'score', layout: '[H, n]', meaning: 'Zero-TPrune I′-stage: per-head WPR scores after 1 iteration' },
  {
    pattern: new RegExp(`${REDUCTION}pre\\.heads$`),
    kind: 'flags',
    layout: '[H]',
    meaning: 'Zero-TPrune I′-stage: 1 = head used (inside the VHF window; all heads when none is)',
  },
  {
    pattern: new RegExp(`${REDUCTION}pre\\.importance$`),
    kind: 'score',
    layout: '[n]',
    meaning: "Zero-TPrune I′-stage: s′, the used heads' scores aggregated (EIR: root mean square)",
  },
  {
    pattern: new RegExp(`${REDUCTION}s\\.pairs$`),
    kind: 'positions',
    layout: '[rS, 2]',
    meaning: 'Zero-TPrune S-stage: [dropped a, its most similar B token b] positions, by a',
  },
  { pattern: new RegExp(`${REDUCTION}s\\.similarity$`), kind: 'score', layout: '[rS]', meaning: 'Zero-TPrune S-stage: the cosine of each pair' },
  {
    pattern: new RegExp(`${REDUCTION}i\\.scores$`),
    kind: 'score',
    layout: '[H, c]',
    meaning: 'Zero-TPrune I-stage: per-head WPR scores over the c tokens alive after the S-stage, in sequence order',
  },
  { pattern: new RegExp(`${REDUCTION}i\\.heads$`), kind: 'flags', layout: '[H]', meaning: 'Zero-TPrune I-stage: 1 = head used' },
  { pattern: new RegExp(`${REDUCTION}i\\.importance$`), kind: 'score', layout: '[c]', meaning: "Zero-TPrune I-stage: s, the used heads' scores aggregated" },
  { pattern: new RegExp(`${REDUCTION}i\\.dropped$`), kind: 'positions', layout: '[rI]', meaning: 'Zero-TPrune I-stage: positions dropped, ascending' },
  {
    pattern: new RegExp(`${REDUCTION}importance$`),
    kind: 'score',
    layout: '[n]',
    meaning:
      "LTP: s(i) = attention received, averaged over heads and queries, in the threshold's unit; PPT: ŝ_j = Σ_h P_h[CLS, j]·‖v_j‖ normalised over the patches (prefix entries 0)",
  },
  { pattern: new RegExp(`${REDUCTION}mask$`), kind: 'flags', layout: '[n]', meaning: 'LTP: 1 = kept' },
  {
    pattern: new RegExp(`${REDUCTION}received$`),
    kind: 'score',
    layout: '[n]',
    meaning: 'MCTF: ā_k = attention token k receives, averaged over heads and queries',
  },
  {
    pattern: new RegExp(`${REDUCTION}affinity$`),
    kind: 'score',
    layout: '[⌈n/2⌉, ⌊n/2⌋]',
    meaning: 'MCTF: W[i, j] = W_sim·W_info·W_size of A token 2i and B token 2j + 1',
  },
  { pattern: new RegExp(`${REDUCTION}weights$`), kind: 'score', layout: '[n]', meaning: 'MCTF: pooling weight w_k = ā_k·s_k of every token' },
  {
    pattern: new RegExp(`${REDUCTION}energy$`),
    kind: 'score',
    layout: '[n − prefix]',
    meaning: 'PiToMe: energy E_i of each non-prefix token (entry i is position prefix + i)',
  },
  {
    pattern: new RegExp(`${REDUCTION}protected$`),
    kind: 'positions',
    layout: '[n − prefix − 2r]',
    meaning: 'PiToMe: the positions outside the 2r of highest energy (never merged), by decreasing energy',
  },
  { pattern: new RegExp(`${REDUCTION}variance$`), kind: 'score', layout: '[1]', meaning: 'PPT: σ², the unbiased variance of ŝ over the patches' },
  {
    pattern: new RegExp(`${REDUCTION}pruned$`),
    kind: 'flags',
    layout: '[1]',
    meaning: 'PPT: 1 = pruned by importance (σ² ≥ threshold), 0 = pooled by a ToMe step',
  },
  {
    pattern: new RegExp(`${REDUCTION}kept$`),
    kind: 'positions',
    layout: '[n − r]',
    meaning: 'PPT when pruning: the positions kept, in their new order (prefix, then by decreasing ŝ)',
  },
  { pattern: /^final\.norm$/, kind: 'norm', layout: '[prefix, D]', meaning: 'the final LayerNorm of the prefix tokens (CLS, DIST)' },
  { pattern: /^logits$/, kind: 'logits', layout: '[classes]', meaning: 'head(final.norm[CLS]); distilled: the mean of head(CLS) and head_dist(DIST)' },
];

/** The format's description of a tensor name, or undefined for a name the format does not define. */
export function tensorSpec(name: string): Omit<TensorSpec, 'pattern'> | undefined {
  const spec = TENSOR_SPECS.find((s) => s.pattern.test(name));
  return spec && { kind: spec.kind, layout: spec.layout, meaning: spec.meaning };
}

/** The block a tensor belongs to: its number, −1 for input and embed, `depth` for final.norm and logits. */
export function tensorBlock(name: string, depth: number): number {
  const match = /^block\.(\d+)\./.exec(name);
  if (match) return Number(match[1]);
  return name === 'input' || name === 'embed' ? -1 : depth;
}
