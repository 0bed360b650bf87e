import type { FloatArray, Kernels, PreparedLinear } from '../kernels/types.js';
import type { BlockWeights, ViTConfig } from '../model/types.js';
import { blockConfig, prefixTokens, qkvLayout } from '../model/types.js';
import { idsAt, type BlockState, type ForwardHooks, type TokenReduction } from '../model/hooks.js';
import type { BlockTokens } from '../model/gmacs.js';
import { blockMacs, initialTokens, modelGmacs, stemAndHeadMacs } from '../model/gmacs.js';
import type { BudgetKnob } from './budget.js';
import { checkedSettings, defineMethod, settingsObject } from './method.js';
import { mctfMatching, mctfScores, type MctfTemperatures } from './mctf-matching.js';
import { mergeKernels, REFERENCE_MERGE_KERNELS, scratchWorkspace, type MergeKernelLoops, type MergeWorkspace } from './merge-kernels.js';
import { ScheduleError } from '../errors.js';
import { recordMatching, type TomeMatching } from './tome.js';
import { isRecordingDecisions, recordDecision } from './decisions.js';

/**
 * MCTF, multi-criteria token fusion with one-step-ahead attention (Lee, Choi, Kim, CVPR 2024;
 * mlvlab/MCTF), used off the shelf. In each fusing block l, r_l tokens fuse into others chosen
 * by mctf-matching.ts (similarity × informativeness × size, bidirectional), and the fused
 * tokens are pooled with weights w_k = ā_k · s_k (attention received × size):
 *
 *   x'_g = Σ_{k→g} w_k x_k / Σ_{k→g} w_k,      s'_g = Σ_{k→g} s_k
 *
 * One-step-ahead (the paper's default, `one_step_ahead = 1` of the reference): the fusion runs
 * at the start of block l, on the block's input x, with the attention P [H, t, t] that block l
 * computes on x (proportional attention included). The block then attends with P fused too,
 * columns summed and rows pooled with the same weights,
 *
 *   P'_h[g', g] = Σ_{q→g'} w_q Σ_{k→g} P_h[q, k] / Σ_{q→g'} w_q          (rows still sum to 1)
 *
 *   x ← x' + proj(P' · V(LN1(x')))          then the MLP on the t − r fused tokens.
 *
 * In this engine the forward pass has already run block l's heads on x when the
 * `beforeProjection` hook sees P (x is still the block's input there). The hook fuses x and
 * derives P'·V(LN1(x')) exactly from the heads' output P·V plus a correction for the fused
 * groups, which needs the block's LN1 and value weights (BlockState.weights; see
 * OneStepAheadAttention); the runner then projects the t − r fused tokens. Wall time pays for
 * the unfused V and P·V the forward ran (executed GMACs count them: mctfExecutedTokens); the
 * method's own count (mctfGmacs) does not.
 *
 * Without one-step-ahead (`oneStepAhead: false`, "fusion after the block"), block l runs
 * unchanged and its output is fused with the attention block l computed: the next block sees
 * t − r tokens. Merged tokens keep the token id of the token they landed in; sizes go back to
 * the forward pass, which adds log s to the attention logits from then on (proportional
 * attention, `prop_attn` of the reference).
 *
 * r per block: the paper runs a constant r in blocks 2…12 (1-indexed; activate_layer 1…11).
 * A fractional r spreads over the fusing blocks by rounding the running total:
 * r_i = round(r·(i + 1)) − round(r·i) for the i-th fusing block (12.6 over 11 blocks: seven of
 * 13 and four of 12). Per block r is capped, as in the reference, at ⌊(t − prefix)/2⌋ and so
 * that at least 10 tokens remain.
 */

export interface MctfSettings extends MctfTemperatures {
  r: number; // tokens fused per fusing block (fractional: spread as above)
  layers: readonly number[] | null; // 0-indexed fusing blocks; null = every block but the first (the paper's)
  bidirectional: boolean; // true: ⌊r/2⌋ A → B, then the rest B → A
  oneStepAhead: boolean; // true: fuse at the start of the block; false: after the block
}

/** The paper's settings (DeiT-T/S scripts: r 16 in blocks 2…12, τ 1 / 20 / 40, bidirectional, one-step-ahead). */
export const MCTF_DEFAULTS: Readonly<MctfSettings> = {
  r: 16,
  layers: null,
  tauSim: 1,
  tauInfo: 20,
  tauSize: 40,
  bidirectional: true,
  oneStepAhead: true,
};

/** Fill in defaults and check the settings against a model of `depth` blocks. */
export function resolveMctfSettings(depth: number, settings: Partial<MctfSettings> = {}): MctfSettings & { layers: readonly number[] } {
  const s = { ...MCTF_DEFAULTS };
  for (const [key, value] of Object.entries(settings)) if (value !== undefined) Object.assign(s, { [key]: value });
  if (!(Number.isFinite(s.r) && s.r >= 0)) throw new ScheduleError(`MCTF: expected r ≥ 0, found ${s.r}`);
  for (const tau of ['tauSim', 'tauInfo', 'tauSize'] as const) {
    if (!(Number.isFinite(s[tau]) && s[tau] >= 0)) throw new ScheduleError(`MCTF: expected ${tau} ≥ 0 (0 switches the criterion off), found ${s[tau]}`);
  }
  const layers = s.layers ?? Array.from({ length: depth - 1 }, (_, i) => i + 1);
  layers.forEach((l, i) => {
    if (!(Number.isInteger(l) && l >= 0 && l < depth)) throw new ScheduleError(`MCTF: expected 0-indexed blocks in 0…${depth - 1}, found ${l}`);
    if (i > 0 && l <= layers[i - 1]) throw new ScheduleError(`MCTF: expected fusing blocks in increasing order, found ${layers.join(', ')}`);
  });
  return { ...s, layers };
}

/** r of each of `depth` blocks: the fractional r spread over the fusing blocks by rounding the running total (before the per-block cap). */
export function mctfRates(depth: number, settings: Partial<MctfSettings> = {}): number[] {
  const s = resolveMctfSettings(depth, settings);
  const rates = new Array<number>(depth).fill(0);
  s.layers.forEach((l, i) => (rates[l] = Math.round(s.r * (i + 1)) - Math.round(s.r * i)));
  return rates;
}

/** The r a block really fuses: min(r, ⌊(t − prefix)/2⌋, t − 10), at least 0. */
export function mctfCappedR(r: number, t: number, prefix: number): number {
  return Math.max(0, Math.min(r, Math.floor((t - prefix) / 2), t - 10));
}

/** The output row of every input position: a survivor's own row, a source's destination's row.  → [t] */
export function outputRows(m: TomeMatching, t: number): Int32Array {
  const rows = new Int32Array(t).fill(-1);
  for (let row = 0; row < m.order.length; row++) rows[m.order[row]] = row;
  for (let i = 0; i < m.sources.length; i++) rows[m.sources[i]] = rows[m.destinations[i]];
  return rows;
}

/**
 * Weighted pooling into `rows` groups: out[g] = Σ_{k→g} w_k x_k / Σ_{k→g} w_k (tokens k in order)
 * and the summed sizes.
 *   x [t, D], weights [t], sizes [t] or null (all 1), rowOf [t]  →  out [rows, D] (written), sizes [rows]
 * `kernels` pool, with the pooling entries (rowOf copied to its `rows`) and total in `workspace`
 * (default: the TypeScript oracles on fresh arrays).
 */
export function poolTokens(
  x: FloatArray,
  D: number,
  weights: ArrayLike<number>,
  sizes: ArrayLike<number> | null,
  rowOf: Int32Array,
  rows: number,
  out: FloatArray,
  kernels: Pick<MergeKernelLoops, 'poolRows'> = REFERENCE_MERGE_KERNELS,
  workspace: Pick<MergeWorkspace, 'positions' | 'rows' | 'weights' | 'total'> = {
    positions: new Int32Array(rowOf.length),
    rows: new Int32Array(rowOf.length),
    weights: new Float64Array(rowOf.length),
    total: new Float64Array(rows),
  },
): Float32Array {
  const t = rowOf.length;
  const summedSizes = new Float32Array(rows);
  for (let k = 0; k < t; k++) {
    workspace.positions[k] = k;
    workspace.rows[k] = rowOf[k];
    workspace.weights[k] = weights[k];
    summedSizes[rowOf[k]] += sizes ? sizes[k] : 1;
  }
  kernels.poolRows(x, D, workspace.positions, workspace.rows, workspace.weights, t, rows, workspace.total, out);
  return summedSizes;
}

/** What one MCTF fusion produced (for the tokens of one block). */
export interface MctfFusion {
  matching: TomeMatching; // sources → destinations (final), survivors in output order
  rowOf: Int32Array; // [t] output row of every input token
  weights: Float64Array; // [t] pooling weights ā_k · s_k
  x: Float32Array; // [t − r, D] pooled tokens
  sizes: Float32Array; // [t − r]
  tokenIds: Int32Array; // [t − r] token id of the token each row landed in
}

/**
 * Fuse r tokens of x [t, D] (the metric, and what is pooled), with the attention P [H, t, t]
 * those tokens received and their sizes (null = all 1). `kernels` compute in `workspace`, whose
 * pooled rows are the result's x (default: the TypeScript oracles on fresh arrays).
 */
export function mctfFuse(
  cfg: ViTConfig,
  x: Float32Array,
  t: number,
  probs: Float32Array,
  sizes: Float32Array | null,
  tokenIds: Int32Array,
  r: number,
  settings: MctfTemperatures & { bidirectional: boolean },
  kernels: MergeKernelLoops = REFERENCE_MERGE_KERNELS,
  workspace: MergeWorkspace = scratchWorkspace(cfg, t),
): MctfFusion {
  const D = cfg.dim;
  const out = workspace.pooled;
  const attention = workspace.received.subarray(0, t);
  kernels.attentionReceived(probs, cfg.heads, t, attention);
  const W = mctfScores(x, t, D, attention, sizes, settings, kernels, workspace);
  const matching = mctfMatching(W, t, r, prefixTokens(cfg), settings.bidirectional, kernels, workspace);
  const rows = matching.order.length;
  const rowOf = outputRows(matching, t);
  const weights = new Float64Array(t);
  for (let k = 0; k < t; k++) weights[k] = sizes ? attention[k] * sizes[k] : attention[k];
  const pooledSizes = poolTokens(x, D, weights, sizes, rowOf, rows, out, kernels, workspace);
  if (isRecordingDecisions()) {
    recordDecision('received', attention, [t]);
    recordDecision('affinity', W, [Math.ceil(t / 2), Math.floor(t / 2)]);
    recordMatching(matching);
    recordDecision('weights', weights, [t]);
  }
  return { matching, rowOf, weights, x: out.subarray(0, rows * D), sizes: pooledSizes, tokenIds: idsAt(tokenIds, matching.order) };
}

interface PreparedBlockValues {
  gamma: Float32Array; // [D] LN1
  beta: Float32Array; // [D]
  values: PreparedLinear; // the V rows of the block's qkv: [H·v, D]
}

/**
 * A block's attention output on the fused tokens under one-step-ahead attention, derived from
 * the heads' output o = P·V that the forward pass computed on the unfused ones (the runner then
 * projects it on the t − r fused tokens: x' + proj(o')). With ŵ_q = w_q / Σ_{q'→g} w_q' and
 * δ_k = V(LN1(x'_g)) − V_k for the tokens k of fused groups g (δ = 0 for a token alone in its
 * row, where x'_g = x_k):
 *
 *   (P'·V(LN1(x')))_g' = Σ_{q→g'} ŵ_q o_q + Σ_{q→g'} ŵ_q Σ_k P_h[q, k] δ_k,h        (per head h, concatenated)
 *
 * because P' pools P's rows with weights summing to 1 and sums its columns over groups whose
 * fused value is shared. It costs t·|fused tokens|·H·v instead of (t − r)²·H·v. Buffers and
 * prepared weights are made once per block.
 */
class OneStepAheadAttention {
  private readonly out: Float32Array; // [T, H·v] o' of the fused tokens
  private readonly fusedInput: Float32Array; // [T, D] x'_g of the fused groups
  private readonly normed: Float32Array; // [T, D]
  private readonly fusedValues: Float32Array; // [T, H·v] V(LN1(x'_g)) of the fused groups
  private readonly blocks = new WeakMap<BlockWeights, PreparedBlockValues>();

  constructor(
    private readonly kernels: Kernels,
    cfg: ViTConfig,
  ) {
    const T = initialTokens(cfg);
    this.out = kernels.alloc(T * cfg.heads * cfg.vDim);
    this.fusedInput = kernels.alloc(T * cfg.dim);
    this.normed = kernels.alloc(T * cfg.dim);
    this.fusedValues = kernels.alloc(T * cfg.heads * cfg.vDim);
  }

  private prepared(w: BlockWeights, cfg: ViTConfig): PreparedBlockValues {
    let p = this.blocks.get(w);
    if (!p) {
      const D = cfg.dim;
      const width = cfg.heads * cfg.vDim;
      const first = qkvLayout(cfg).valueOffset(0); // V rows follow Q and K
      p = {
        gamma: this.kernels.upload(w.norm1.weight),
        beta: this.kernels.upload(w.norm1.bias),
        values: this.kernels.prepareLinear({
          weight: w.qkv.weight.subarray(first * D, (first + width) * D),
          bias: w.qkv.bias.subarray(first, first + width),
          outFeatures: width,
          inFeatures: D,
        }),
      };
      this.blocks.set(w, p);
    }
    return p;
  }

  /**
   * o' [rows, H·v] for fusion `f` of the t tokens of `state` (its attnOut o, its probs P, its qkv
   * V), whose pooled inputs are f.x.
   */
  run(state: BlockState, f: MctfFusion): Float32Array {
    const k = this.kernels;
    const cfg = state.config;
    const { dim: D, heads: H, vDim: v } = cfg;
    const t = state.n;
    const width = H * v;
    const rows = f.tokenIds.length;
    const { rowOf, weights } = f;
    if (!state.weights)
      throw new RangeError(`MCTF in block ${state.block + 1}: one-step-ahead fusion needs the block's weights (BlockState.weights), the runner gave none`);
    const p = this.prepared(state.weights, cfg);

    const merge = mergeKernels(k);
    const workspace = merge.workspace(state.model);
    const members = new Int32Array(rows);
    for (let q = 0; q < t; q++) members[rowOf[q]]++;
    poolTokens(state.attnOut, width, weights, null, rowOf, rows, this.out, merge, workspace);
    const { total } = workspace; // [rows] Σ_{q→g} w_q, summed by the pooling in q order

    // V(LN1(x'_g)) of the groups with more than one token, at their slot.
    const slot = new Int32Array(rows).fill(-1);
    let fusedRows = 0;
    for (let g = 0; g < rows; g++) {
      if (members[g] < 2) continue;
      this.fusedInput.set(f.x.subarray(g * D, (g + 1) * D), fusedRows * D);
      slot[g] = fusedRows++;
    }
    k.layerNorm(this.fusedInput, fusedRows, D, p.gamma, p.beta, cfg.eps, this.normed);
    k.linear(this.normed, fusedRows, p.values, this.fusedValues);

    // δ_k for the tokens of those groups.  [|fused|, H·v]
    const { stride, valueOffset } = qkvLayout(cfg);
    const { fused, delta, share } = workspace;
    let m = 0;
    for (let q = 0; q < t; q++) if (slot[rowOf[q]] >= 0) fused[m++] = q;
    const { fusedValues } = this;
    const qkv = state.qkv;
    for (let i = 0; i < m; i++) {
      const kTok = fused[i];
      const own = kTok * stride + valueOffset(0);
      const shared = slot[rowOf[kTok]] * width;
      for (let c = 0; c < width; c++) delta[i * width + c] = fusedValues[shared + c] - qkv[own + c];
    }

    // o'[g'] += Σ_i P̄_h[g', i] δ_i,h with P̄_h[g', i] = Σ_{q→g'} ŵ_q P_h[q, fused_i].
    for (let q = 0; q < t; q++) share[q] = weights[q] / total[rowOf[q]];
    merge.fusedAttentionCorrection(state.probs, H, t, fused, m, workspace.rows, share, rows, delta, v, this.out); // workspace.rows: rowOf (poolTokens)
    return this.out.subarray(0, rows * width);
  }
}

/**
 * One-step-ahead attentions per backend and model config, shared by every hook object: each
 * prepares its blocks' value weights on the backend at first use, and wasm memory is never
 * freed, so plans made again (a classifier's requests, compare's budgets) reuse them.
 */
const attentions = new WeakMap<Kernels, WeakMap<ViTConfig, OneStepAheadAttention>>();

function attentionFor(kernels: Kernels, cfg: ViTConfig): OneStepAheadAttention {
  let byConfig = attentions.get(kernels);
  if (!byConfig) attentions.set(kernels, (byConfig = new WeakMap()));
  let attention = byConfig.get(cfg);
  if (!attention) byConfig.set(cfg, (attention = new OneStepAheadAttention(kernels, cfg)));
  return attention;
}

/**
 * Forward hooks fusing tokens by MCTF in the blocks of `settings`. With one-step-ahead, at
 * `beforeProjection`, where x is still the block's input and the heads' output is not yet
 * projected; reads the fusing blocks' weights from the runner (BlockState.weights). The
 * settings are checked against the model at the first block.
 */
export function mctfHooks(settings: Partial<MctfSettings> = {}): ForwardHooks {
  let cfg: ViTConfig | null = null;
  let s: ReturnType<typeof resolveMctfSettings>;
  let rates: number[] = [];
  let prefix = 0;
  const resolve = (model: ViTConfig) => {
    if (model === cfg) return;
    cfg = model;
    s = resolveMctfSettings(cfg.depth, settings);
    rates = mctfRates(cfg.depth, s);
    prefix = prefixTokens(cfg);
  };
  const fusion = (state: BlockState): MctfFusion | undefined => {
    resolve(state.model);
    const r = mctfCappedR(rates[state.block], state.n, prefix);
    if (r === 0) return;
    if (state.attentionTokens !== state.n)
      throw new RangeError(`MCTF in block ${state.block + 1}: expected the attention of the ${state.n} tokens alive, found ${state.attentionTokens}`);
    const kernels = mergeKernels(state.kernels);
    return mctfFuse(state.config, state.x, state.n, state.probs, state.sizes, state.tokenIds, r, s, kernels, kernels.workspace(state.model));
  };
  const oneStepAhead = settings.oneStepAhead ?? MCTF_DEFAULTS.oneStepAhead;
  if (!oneStepAhead) {
    return {
      afterBlock(state): TokenReduction | void {
        const f = fusion(state);
        if (f) return { kind: 'replace', n: f.tokenIds.length, x: f.x, sizes: f.sizes, tokenIds: f.tokenIds };
      },
    };
  }
  return {
    beforeProjection(state): TokenReduction | void {
      const f = fusion(state);
      if (!f) return;
      const attnOut = attentionFor(state.kernels, state.model).run(state, f);
      return { kind: 'replace', n: f.tokenIds.length, x: f.x, attnOut, sizes: f.sizes, tokenIds: f.tokenIds };
    },
  };
}

/**
 * Token counts of one block under MCTF: queries and keys of `attention` tokens (QKᵀ over them),
 * values, attention output and projection of `values` tokens (the fused ones under
 * one-step-ahead, else all), the MLP on `mlp` tokens.
 */
export interface MctfBlockTokens extends BlockTokens {
  values: number;
}

/** Token counts per block, without running the model. */
export function mctfTokens(cfg: ViTConfig, settings: Partial<MctfSettings> = {}): MctfBlockTokens[] {
  const s = resolveMctfSettings(cfg.depth, settings);
  const rates = mctfRates(cfg.depth, s);
  const prefix = prefixTokens(cfg);
  let t = initialTokens(cfg);
  return rates.map((rate) => {
    const fused = t - mctfCappedR(rate, t, prefix);
    const block = s.oneStepAhead ? { attention: t, values: fused, mlp: fused } : { attention: t, values: t, mlp: t };
    t = fused;
    return block;
  });
}

/** MACs of a block (gmacs.ts convention) whose Q, K and QKᵀ run on `attention` tokens and the rest on `values`. */
export function mctfBlockMacs(cfg: ViTConfig, t: MctfBlockTokens): number {
  const qk = cfg.heads * cfg.qkDim;
  return blockMacs(cfg, { attention: t.values, mlp: t.mlp }) + (t.attention - t.values) * cfg.dim * 2 * qk + (t.attention ** 2 - t.values ** 2) * qk;
}

/** GMACs of MCTF with `settings` (matching, pooling and attention fusion not counted, as for ToMe). */
export function mctfGmacs(cfg: ViTConfig, settings: Partial<MctfSettings> = {}): number {
  let macs = stemAndHeadMacs(cfg);
  mctfTokens(cfg, settings).forEach((t, b) => (macs += mctfBlockMacs(blockConfig(cfg, b), t)));
  return macs / 1e9;
}

/** MCTF's settings as the registry plans them: r, fusing blocks and temperatures (the switches are options). */
export type MctfPlanSettings = Pick<MctfSettings, 'r' | 'layers' | 'tauSim' | 'tauInfo' | 'tauSize'>;

/** MCTF's options: one-step-ahead attention and bidirectional matching, both on in the paper. */
export interface MctfOptions extends Record<string, boolean> {
  'one-step-ahead': boolean;
  bidirectional: boolean;
}

const MCTF_SETTINGS_KEYS = ['r', 'layers', 'tauSim', 'tauInfo', 'tauSize'] as const;

function withOptions(settings: MctfPlanSettings, o: MctfOptions): MctfSettings {
  return { ...settings, oneStepAhead: o['one-step-ahead'], bidirectional: o.bidirectional };
}

/**
 * Token counts per block as the forward pass executes them: under one-step-ahead, block l's
 * QKV and attention run on all t tokens (the hook fuses after them), its output projection and
 * MLP on t − r; the method's own count (mctfGmacs: Q, K and QKᵀ on t, the rest on t − r) is
 * lower by the values and the attention output of the r fused tokens. Without one-step-ahead,
 * both are the same.
 */
export function mctfExecutedTokens(cfg: ViTConfig, settings: Partial<MctfSettings>): BlockTokens[] {
  return mctfTokens(cfg, settings).map(({ attention, values, mlp }) => (values === attention ? { attention, mlp } : { attention, projection: values, mlp }));
}

/**
 * The budget knob: r in hundredths, from 0 (dense) to the largest r any block can fuse, GMACs
 * as executed; among positions of equal GMACs, the r with the fewest decimals.
 */
function mctfKnob(cfg: ViTConfig, o: MctfOptions, fixed: Partial<MctfPlanSettings>): BudgetKnob<MctfPlanSettings> {
  const base = mctfSettingsFromJson(cfg, { ...fixed, r: 0 }, o, "MCTF's fixed settings");
  const settings = (t: number): MctfPlanSettings => ({ ...base, r: t / 100 });
  const gmacs = (s: MctfPlanSettings) => modelGmacs(cfg, mctfExecutedTokens(cfg, withOptions(s, o)));
  return {
    dense: 0,
    sparse: 100 * Math.floor((initialTokens(cfg) - prefixTokens(cfg)) / 2),
    integer: true,
    settings,
    gmacs,
    canonical: (t, cost) => [100, 10].map((step) => Math.round(t / step) * step).find((c) => gmacs(settings(c)) === cost) ?? t,
    describe: (s) => `r = ${s.r}`,
  };
}

/** MCTF's settings from JSON: {"r": R, "layers"?: [0-indexed blocks], "tauSim"?, "tauInfo"?, "tauSize"?}. */
function mctfSettingsFromJson(cfg: ViTConfig, json: unknown, o: MctfOptions, source: string): MctfPlanSettings {
  const fields = settingsObject(json, MCTF_SETTINGS_KEYS, source);
  if (typeof fields.r !== 'number')
    throw new ScheduleError(`${source}: expected "r", a number ≥ 0 (tokens fused per fusing block), found ${JSON.stringify(fields.r)}`);
  if (!(fields.layers === undefined || fields.layers === null || Array.isArray(fields.layers))) {
    throw new ScheduleError(`${source}: expected "layers", a list of 0-indexed blocks, found ${JSON.stringify(fields.layers)}`);
  }
  const settings: MctfPlanSettings = {
    r: fields.r,
    layers: (fields.layers ?? null) as number[] | null,
    tauSim: (fields.tauSim ?? MCTF_DEFAULTS.tauSim) as number,
    tauInfo: (fields.tauInfo ?? MCTF_DEFAULTS.tauInfo) as number,
    tauSize: (fields.tauSize ?? MCTF_DEFAULTS.tauSize) as number,
  };
  checkedSettings(source, () => resolveMctfSettings(cfg.depth, withOptions(settings, o)));
  return settings;
}

/** MCTF as a registered method (method.ts). */
export const mctf = defineMethod<MctfPlanSettings, MctfOptions>({
  name: 'mctf',
  summary: 'MCTF: from block 2 on, fuse r tokens per block by similarity × attention received × size (bidirectional matching, one-step-ahead attention)',
  removal: 'fused',
  counts: 'fixed',
  options: {
    'one-step-ahead': { help: "fuse at the start of each block with that block's attention (else after the block)", values: 'boolean', default: true },
    bidirectional: { help: 'match half of r from each side of the split (else all A → B)', values: 'boolean', default: true },
  },
  fromJson: mctfSettingsFromJson,
  fixable: ['layers', 'tauSim', 'tauInfo', 'tauSize'],
  knobs: (cfg, o, _context, fixed) => [mctfKnob(cfg, o, fixed)],
  tokens: (cfg, settings, o) => mctfExecutedTokens(cfg, withOptions(settings, o)),
  hooks(settings, o) {
    const hooks = mctfHooks(withOptions(settings, o));
    return () => hooks;
  },
  describe: (settings, o) => ({ ...settings, ...o }),
});
