import { idsAt, type BlockState, type ForwardHooks, type TokenReduction } from '../model/hooks.js';
import type { ViTConfig } from '../model/types.js';
import { prefixTokens } from '../model/types.js';
import type { BlockTokens } from '../model/gmacs.js';
import { initialTokens, modelGmacs } from '../model/gmacs.js';
import { ScheduleError } from '../errors.js';
import type { BudgetKnob } from './budget.js';
import { isRecordingDecisions, recordDecision } from './decisions.js';
import { defineMethod, settingsObject } from './method.js';
import { mergeKernels, REFERENCE_MERGE_KERNELS, type MergeKernelLoops, type MergeWorkspace } from './merge-kernels.js';

export { unitRows } from './merge-kernels.js';

/**
 * ToMe, Token Merging (Bolya et al., ICLR 2023; docs/algorithms.md §3), off the shelf. In every
 * block, between the attention residual add and the MLP, r tokens merge into their most
 * similar partners (facebookresearch/ToMe `bipartite_soft_matching` + `merge_wavg`):
 *
 *   metric  k̄_i = mean_h K_h[i], L2-normalised              [t, qk]   keys of this block's attention
 *   split   A = even positions, B = odd positions             CLS (0) is in A, DIST (1) in B
 *   scores  S = k̄_A · k̄_Bᵀ                                   [|A|, |B|]  row CLS = −∞, column DIST = −∞
 *   match   j(a) = argmax_b S[a, b], v(a) = max_b S[a, b];  the r tokens of A with the largest v
 *           are sources (ties: lower position first), several may share a destination
 *   merge   x_b ← (s_b·x_b + Σ_{a→b} s_a·x_a) / (s_b + Σ_{a→b} s_a),   s_b ← s_b + Σ_{a→b} s_a
 *   order   [unmerged A by position, B by position]        distilled: [CLS, DIST, other A, other B]
 *
 * r is capped per block at ⌊(t − protected)/2⌋, protected = the prefix tokens (CLS, DIST).
 * Merged tokens keep the token id of their destination. The sizes s go back to the forward
 * pass, which from then on adds log s to every key's attention logit (proportional attention,
 * ToMe's default for off-the-shelf DeiT): a token of size s is attended as if present s times.
 * Proportional attention cannot be switched off here, since the forward pass ties it to sizes.
 */

/**
 * r per block: a constant; a linear ramp `{ r, inflection }` (ToMe's `parse_r`: lo = ⌊r·(1 −
 * inflection)⌋, hi = 2r − lo, r_l = ⌊lo + l·(hi − lo)/(L − 1)⌋; inflection 0 = constant r,
 * −1 = 2r falling to 0); or an explicit list, padded with zeros to the depth.
 */
export type TomeSchedule = number | { r: number; inflection: number } | readonly number[];

/** The requested r of each of `depth` blocks (before the per-block cap). Negative ramp values become 0. */
export function tomeRates(depth: number, schedule: TomeSchedule): number[] {
  if (typeof schedule === 'number') {
    checkR(schedule, 'r');
    return Array.from({ length: depth }, () => schedule);
  }
  if (isRateList(schedule)) {
    if (schedule.length > depth) {
      throw new ScheduleError(`ToMe schedule: expected at most ${depth} per-block values (the model has ${depth} blocks), found ${schedule.length}`);
    }
    schedule.forEach((r, i) => checkR(r, `r of block ${i + 1}`));
    return Array.from({ length: depth }, (_, i) => schedule[i] ?? 0);
  }
  const { r, inflection } = schedule;
  checkR(r, 'r');
  if (!Number.isFinite(inflection)) throw new ScheduleError(`ToMe schedule: expected a finite inflection, found ${inflection}`);
  // ToMe truncates with Python's int(); Math.trunc is the same for negative values too.
  const lo = Math.trunc(r * (1 - inflection));
  const hi = 2 * r - lo;
  const step = depth > 1 ? (hi - lo) / (depth - 1) : 0;
  return Array.from({ length: depth }, (_, l) => Math.max(0, Math.trunc(lo + step * l)));
}

/** The r a block really merges: min(r, ⌊(t − protected)/2⌋). */
export function cappedR(r: number, t: number, prefix: number): number {
  return Math.max(0, Math.min(r, Math.floor((t - prefix) / 2)));
}

/** Token counts per block under a schedule, without running the model: block l runs attention on t and its MLP on t − r_l. */
export function tomeTokens(cfg: ViTConfig, schedule: TomeSchedule): BlockTokens[] {
  const prefix = prefixTokens(cfg);
  let t = initialTokens(cfg);
  return tomeRates(cfg.depth, schedule).map((r) => {
    const attention = t;
    t -= cappedR(r, t, prefix);
    return { attention, mlp: t };
  });
}

/** Head-averaged keys of the first t tokens: k̄[i] = (1/H) Σ_h K_h[i].  qkv [t, stride] → [t, qkDim] */
export function headMeanKeys(qkv: Float32Array, cfg: ViTConfig, t: number): Float32Array {
  const out = new Float32Array(t * cfg.qkDim);
  REFERENCE_MERGE_KERNELS.headMeanKeys(qkv, cfg, t, out);
  return out;
}

/** A merge decision over a sequence of t tokens, in positions of that sequence. */
export interface TomeMatching {
  sources: Int32Array; // [r] A tokens merged away
  destinations: Int32Array; // [r] the B token each source merges into
  order: Int32Array; // [t − r] the surviving tokens, in output order
  scores?: Float64Array; // [⌈t/2⌉] v(a) of each A token, the CLS row −∞ (ToMe's matching; other matchings leave it out)
}

/**
 * Bipartite soft matching on `metric` [t, c] (rows need not be normalised). `prefix` tokens are
 * protected: CLS (position 0) is never a source, DIST (position 1) never a destination. r is
 * capped at ⌊(t − prefix)/2⌋. A zero metric row has cosine 0 with everything. `kernels` and the
 * buffers of `workspace` do the arithmetic (default: the TypeScript oracles on fresh arrays).
 */
export function bipartiteSoftMatching(
  metric: Float32Array,
  t: number,
  c: number,
  r: number,
  prefix: number,
  kernels: MergeKernelLoops = REFERENCE_MERGE_KERNELS,
  workspace: Pick<MergeWorkspace, 'cosines' | 'best' | 'partner'> = { cosines: new Float64Array(t * t), best: new Float64Array(t), partner: new Int32Array(t) },
): TomeMatching {
  r = cappedR(r, t, prefix);
  const nA = Math.ceil(t / 2); // A[i] = position 2i
  const nB = Math.floor(t / 2); // B[j] = position 2j + 1
  // v(a) and j(a), the first B token of the highest similarity. The CLS row (prefix ≥ 1) is never
  // a source, the DIST column (prefix ≥ 2) never a destination.
  const { cosines, best, partner } = workspace;
  kernels.evenOddCosines(metric, t, c, cosines);
  kernels.rowArgmax(cosines, nA, nB, prefix >= 1 ? 1 : 0, prefix >= 2 ? 1 : 0, best, partner);
  // The r A tokens of the largest v(a), in ranking order (v descending, ties: lower position
  // first), by r passes over A; the others keep their positions.
  const sources = new Int32Array(r);
  const destinations = new Int32Array(r);
  const merged = new Uint8Array(nA);
  for (let k = 0; k < r; k++) {
    let pick = -1;
    for (let i = 0; i < nA; i++) if (!merged[i] && (pick < 0 || best[i] > best[pick])) pick = i;
    merged[pick] = 1;
    sources[k] = 2 * pick;
    destinations[k] = 2 * partner[pick] + 1;
  }
  // [unmerged A, B] by position; distilled: [CLS, DIST, other unmerged A, other B]
  const order = new Int32Array(t - r);
  let o = writeKeptA(order, merged, nA, prefix);
  for (let j = prefix >= 2 ? 1 : 0; j < nB; j++) order[o++] = 2 * j + 1;
  return { sources, destinations, order, scores: best.slice(0, nA) };
}

/**
 * The start of a bipartite matching's output order: the A tokens (positions 2i) not `merged`, by
 * position, with DIST (position 1, in B) right after the first of them (CLS, which never merges)
 * when `prefix` ≥ 2. Written into `order`; returns how many.
 */
export function writeKeptA(order: Int32Array, merged: Uint8Array, nA: number, prefix: number): number {
  let o = 0;
  for (let i = 0; i < nA; i++) {
    if (merged[i]) continue;
    order[o++] = 2 * i;
    if (o === 1 && prefix >= 2) order[o++] = 1;
  }
  return o;
}

/**
 * Size-weighted merge of x [t, D] (sizes [t], null = all 1) by `m`: x [t − r, D] and sizes
 * [t − r] in the order of `m.order`. Computed as ToMe does: scatter-add s·x and s (the survivors
 * in order, then the sources in order), then divide. With `kernels` and `workspace` the results
 * are the workspace's pooled and total buffers (default: the TypeScript oracles on fresh arrays).
 */
export function mergeWeightedAverage(
  m: TomeMatching,
  x: Float32Array,
  D: number,
  sizes: Float32Array | null,
  kernels: MergeKernelLoops = REFERENCE_MERGE_KERNELS,
  workspace?: Pick<MergeWorkspace, 'positions' | 'rows' | 'weights' | 'total' | 'pooled'>,
): { x: Float32Array; sizes: Float32Array } {
  const rows = m.order.length;
  const entries = rows + m.sources.length;
  const w = workspace ?? {
    positions: new Int32Array(entries),
    rows: new Int32Array(entries),
    weights: new Float64Array(entries),
    total: new Float64Array(rows),
    pooled: new Float32Array(rows * D),
  };
  const rowOf = new Int32Array(entries); // position → output row (positions < t = entries)
  for (let row = 0; row < rows; row++) {
    const p = m.order[row];
    rowOf[p] = row;
    w.positions[row] = p;
    w.rows[row] = row;
    w.weights[row] = sizes ? sizes[p] : 1;
  }
  for (let i = 0; i < m.sources.length; i++) {
    const a = m.sources[i];
    w.positions[rows + i] = a;
    w.rows[rows + i] = rowOf[m.destinations[i]];
    w.weights[rows + i] = sizes ? sizes[a] : 1;
  }
  kernels.poolRows(x, D, w.positions, w.rows, w.weights, entries, rows, w.total, w.pooled);
  const pooledSizes = new Float32Array(rows);
  pooledSizes.set(w.total.subarray(0, rows)); // rounded to float32
  return { x: w.pooled.subarray(0, rows * D), sizes: pooledSizes };
}

/** One ToMe step on a block's state at the afterAttention hook: merge r tokens (capped), or nothing. */
export function tomeMerge(state: BlockState, r: number): TokenReduction | void {
  const { config: cfg, n } = state;
  const prefix = prefixTokens(cfg);
  if (cappedR(r, n, prefix) === 0) return;
  const kernels = mergeKernels(state.kernels);
  const workspace = kernels.workspace(state.model);
  kernels.headMeanKeys(state.qkv, cfg, n, workspace.metric);
  const m = bipartiteSoftMatching(workspace.metric, n, cfg.qkDim, r, prefix, kernels, workspace);
  if (isRecordingDecisions()) recordMatching(m);
  const merged = mergeWeightedAverage(m, state.x, cfg.dim, state.sizes, kernels, workspace);
  return { kind: 'replace', n: m.order.length, x: merged.x, sizes: merged.sizes, tokenIds: idsAt(state.tokenIds, m.order) };
}

/** The decisions of a matching (ToMe's, MCTF's, PiToMe's): v(a) of the A tokens when it has them, and [source, destination] pairs by source position. */
export function recordMatching(m: TomeMatching): void {
  if (m.scores) recordDecision('score', m.scores, [m.scores.length]);
  const bySource = Array.from(m.sources.keys()).sort((i, j) => m.sources[i] - m.sources[j]);
  const pairs = Int32Array.from(bySource.flatMap((i) => [m.sources[i], m.destinations[i]]));
  recordDecision('pairs', pairs, [m.sources.length, 2]);
}

/** Forward hooks merging tokens by `schedule` in every block. Stateless per image: one object serves a whole run. */
export function tomeHooks(schedule: TomeSchedule): ForwardHooks {
  let depth = -1;
  let rates: number[] = [];
  return {
    afterAttention(state) {
      if (state.config.depth !== depth) {
        depth = state.config.depth;
        rates = tomeRates(depth, schedule);
      }
      return tomeMerge(state, rates[state.block]);
    },
  };
}

/**
 * ToMe's budget knobs (budget.ts), coarse first: a constant r from 0 (dense) to r_max, beyond
 * which every block is capped; then, when no constant lands within the tolerance (constant r
 * moves in steps of ≈ 3 % of dense on DeiT-T/S), r and r + 1 mixed: position t = r·L + m merges
 * r + 1 in the first m blocks and r in the others (more merging early, like ToMe's decreasing
 * schedule, and the rates stay monotone).
 */
export function tomeKnobs(cfg: ViTConfig): BudgetKnob<TomeSchedule>[] {
  const L = cfg.depth;
  const rMax = Math.floor((initialTokens(cfg) - prefixTokens(cfg)) / 2);
  const gmacs = (schedule: TomeSchedule) => modelGmacs(cfg, tomeTokens(cfg, schedule));
  const describe = (schedule: TomeSchedule) => `r = ${JSON.stringify(schedule)}`;
  const constant: BudgetKnob<TomeSchedule> = { dense: 0, sparse: rMax, integer: true, settings: (r) => r, gmacs, describe };
  const mixed: BudgetKnob<TomeSchedule> = {
    dense: 0,
    sparse: rMax * L,
    integer: true,
    settings(t) {
      const r = Math.floor(t / L);
      const m = t - r * L;
      return m === 0 ? r : Array.from({ length: L }, (_, l) => (l < m ? r + 1 : r));
    },
    gmacs,
    describe,
  };
  return [constant, mixed];
}

/** ToMe's settings from JSON: {"r": R} or {"r": [R per block]} (integers ≥ 0). */
function tomeScheduleFromJson(cfg: ViTConfig, json: unknown, source: string): TomeSchedule {
  const { r } = settingsObject(json, ['r'], source);
  if (!(typeof r === 'number' || (Array.isArray(r) && r.every((v) => typeof v === 'number')))) {
    throw new ScheduleError(`${source}: expected {"r": R} or {"r": [R per block]} with integers ≥ 0, found ${JSON.stringify(json).slice(0, 80)}`);
  }
  tomeRates(cfg.depth, r); // checks the values and the length
  return r;
}

/** ToMe as a registered method (method.ts). */
export const tome = defineMethod<TomeSchedule>({
  name: 'tome',
  summary: 'ToMe: in every block, merge the r most similar token pairs (keys, bipartite matching), weighted by size',
  removal: 'merged',
  counts: 'fixed',
  fromJson: tomeScheduleFromJson,
  knobs: tomeKnobs,
  tokens: tomeTokens,
  hooks(schedule) {
    const hooks = tomeHooks(schedule);
    return () => hooks;
  },
  describe: (schedule) => ({ r: schedule }),
});

function isRateList(s: TomeSchedule): s is readonly number[] {
  return Array.isArray(s);
}

function checkR(r: number, what: string): void {
  if (!(Number.isInteger(r) && r >= 0)) throw new ScheduleError(`ToMe schedule: expected ${what} to be an integer ≥ 0, found ${r}`);
}
