import type { BlockState, ForwardHooks, TokenReduction } from '../model/hooks.js';
import type { ViTConfig } from '../model/types.js';
import { prefixTokens, qkvLayout } from '../model/types.js';
import type { BlockTokens } from '../model/gmacs.js';
import { initialTokens, modelGmacs } from '../model/gmacs.js';
import { ScheduleError } from '../errors.js';
import type { BudgetKnob } from './budget.js';
import { isRecordingDecisions, recordDecision } from './decisions.js';
import { defineMethod, settingsObject } from './method.js';

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

/** Head-averaged keys of the first t tokens: k̄[i] = (1/H) Σ_h K_h[i].  qkv [t, stride] → [t, qkDim]. */
export function headMeanKeys(qkv: Float32Array, cfg: ViTConfig, t: number): Float32Array {
  const { stride, keyOffset } = qkvLayout(cfg);
  const c = cfg.qkDim;
  const out = new Float32Array(t * c);
  for (let i = 0; i < t; i++) {
    for (let h = 0; h < cfg.heads; h++) {
      const k = i * stride + keyOffset(h);
      for (let j = 0; j < c; j++) out[i * c + j] += qkv[k + j];
    }
    for (let j = 0; j < c; j++) out[i * c + j] /= cfg.heads;
  }
  return out;
}

/** Rows first…first + count − 1 of `metric` [·, c] scaled to unit length, in float64 (a zero row stays 0).  → [count, c] */
export function unitRows(metric: Float32Array, first: number, count: number, c: number): Float64Array {
  const unit = new Float64Array(count * c);
  for (let i = 0; i < count; i++) {
    const row = (first + i) * c;
    let norm = 0;
    for (let j = 0; j < c; j++) norm += metric[row + j] ** 2;
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let j = 0; j < c; j++) unit[i * c + j] = metric[row + j] * inv;
  }
  return unit;
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
 * capped at ⌊(t − prefix)/2⌋. A zero metric row has cosine 0 with everything.
 */
export function bipartiteSoftMatching(metric: Float32Array, t: number, c: number, r: number, prefix: number): TomeMatching {
  r = cappedR(r, t, prefix);
  const unit = unitRows(metric, 0, t, c);
  const nA = Math.ceil(t / 2); // A[i] = position 2i
  const nB = Math.floor(t / 2); // B[j] = position 2j + 1
  const best = new Float64Array(nA).fill(-Infinity); // v(a)
  const partner = new Int32Array(nA); // j(a): the first B token of the highest similarity
  // Rows a0 = 2i, a1 = 2i + 2 against columns b0 = 2j + 1, b1 = 2j + 3, four dot products sharing
  // their loads (≈ 3× faster in V8); each dot product sums d in order, so the values and the
  // first-maximum ties are those of the plain double loop. An odd last row or column pairs with
  // itself. The CLS row (prefix ≥ 1) is never a source, the DIST column (prefix ≥ 2) never a destination.
  const firstRow = prefix >= 1 ? 1 : 0;
  const firstColumn = prefix >= 2 ? 1 : 0;
  for (let i = firstRow; i < nA; i += 2) {
    const i1 = Math.min(i + 1, nA - 1);
    const a0 = 2 * i * c;
    const a1 = 2 * i1 * c;
    let max0 = -Infinity,
      max1 = -Infinity;
    let arg0 = 0,
      arg1 = 0;
    for (let j = firstColumn; j < nB; j += 2) {
      const j1 = Math.min(j + 1, nB - 1);
      const b0 = (2 * j + 1) * c;
      const b1 = (2 * j1 + 1) * c;
      let d00 = 0,
        d01 = 0,
        d10 = 0,
        d11 = 0;
      for (let d = 0; d < c; d++) {
        const x0 = unit[a0 + d],
          x1 = unit[a1 + d],
          y0 = unit[b0 + d],
          y1 = unit[b1 + d];
        d00 += x0 * y0;
        d01 += x0 * y1;
        d10 += x1 * y0;
        d11 += x1 * y1;
      }
      if (d00 > max0) {
        max0 = d00;
        arg0 = j;
      }
      if (d01 > max0) {
        max0 = d01;
        arg0 = j1;
      }
      if (d10 > max1) {
        max1 = d10;
        arg1 = j;
      }
      if (d11 > max1) {
        max1 = d11;
        arg1 = j1;
      }
    }
    best[i] = max0;
    partner[i] = arg0;
    best[i1] = max1;
    partner[i1] = arg1;
  }
  const ranked = Array.from({ length: nA }, (_, i) => i).sort((a, b) => best[b] - best[a] || a - b);
  const sources = Int32Array.from(ranked.slice(0, r), (i) => 2 * i);
  const destinations = Int32Array.from(ranked.slice(0, r), (i) => 2 * partner[i] + 1);
  const unmerged = ranked
    .slice(r)
    .sort((a, b) => a - b)
    .map((i) => 2 * i);
  const bPositions = Array.from({ length: nB }, (_, j) => 2 * j + 1);
  const order = prefix >= 2 ? [unmerged[0], bPositions[0], ...unmerged.slice(1), ...bPositions.slice(1)] : [...unmerged, ...bPositions];
  return { sources, destinations, order: Int32Array.from(order), scores: best };
}

/**
 * Size-weighted merge of x [t, D] (sizes [t], null = all 1) by `m`: x [t − r, D] and sizes
 * [t − r] in the order of `m.order`. Computed as ToMe does: scatter-add s·x and s, then divide.
 */
export function mergeWeightedAverage(m: TomeMatching, x: Float32Array, D: number, sizes: Float32Array | null): { x: Float32Array; sizes: Float32Array } {
  const size = (p: number) => (sizes ? sizes[p] : 1);
  const rows = m.order.length;
  const rowOf = new Map<number, number>(); // position → output row
  const sum = new Float64Array(rows * D); // [t − r, D] Σ s·x
  const total = new Float64Array(rows); // [t − r] Σ s
  m.order.forEach((p, row) => rowOf.set(p, row));
  const add = (row: number, p: number) => {
    const s = size(p);
    for (let d = 0; d < D; d++) sum[row * D + d] += s * x[p * D + d];
    total[row] += s;
  };
  m.order.forEach((p, row) => add(row, p));
  m.sources.forEach((a, i) => add(rowOf.get(m.destinations[i])!, a));
  const out = new Float32Array(rows * D);
  for (let row = 0; row < rows; row++) {
    for (let d = 0; d < D; d++) out[row * D + d] = sum[row * D + d] / total[row];
  }
  return { x: out, sizes: Float32Array.from(total) };
}

/** One ToMe step on a block's state at the afterAttention hook: merge r tokens (capped), or nothing. */
export function tomeMerge(state: BlockState, r: number): TokenReduction | void {
  const { config: cfg, n } = state;
  const prefix = prefixTokens(cfg);
  if (cappedR(r, n, prefix) === 0) return;
  const m = bipartiteSoftMatching(headMeanKeys(state.qkv, cfg, n), n, cfg.qkDim, r, prefix);
  if (isRecordingDecisions()) recordMatching(m);
  const merged = mergeWeightedAverage(m, state.x, cfg.dim, state.sizes);
  return { kind: 'replace', n: m.order.length, x: merged.x, sizes: merged.sizes, tokenIds: m.order.map((p) => state.tokenIds[p]) };
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
