import type { BlockWidths, ViTConfig, ViTWeights } from '../model/types.js';
import type { AttentionChannelStats } from './channels-stats.js';
import { eliminateChannels } from './channels-elimination.js';
import { initialTokens } from '../model/gmacs.js';

/**
 * Which attention channels to keep (docs/algorithms.md §5.3, steps 1–4 and 7): channel scores from
 * the calibration statistics, one kept width for q/k and one for v shared by every head (equal
 * proportion), and the kept channels of each head, q and k sharing their indices: the top
 * channels by score (§5.3), or those backward elimination of the reconstruction error keeps.
 */

export type QkScore = 'attention-difference' | 'logit-proxy';
export type Allocator = 'uniform' | 'greedy';
export const ALLOCATORS: readonly Allocator[] = ['uniform', 'greedy'];

/** Scores of one block's channels, higher = more important. */
export interface BlockChannelScores {
  qk: Float64Array; // [H, qk] w_{h,c}·Δ_{h,c}
  v: Float64Array; // [H, v] E‖z_c‖·‖W_proj[:, (h, c)]‖
  similarity: Float64Array; // [H, qk] w_{h,c} = 1 − max_{c'≠c} |cos(a_c, a_c')| (all 1 when the term is off)
}

/** The kept channels of every block and head. Indices ascending; every head of a block keeps the same count. */
export interface ChannelSelection {
  widths: BlockWidths[]; // [block] kept q/k and v channels per head
  qk: Int32Array[][]; // [block][head] kept q/k channel indices (the same for Q and K)
  v: Int32Array[][]; // [block][head] kept v channel indices
}

/**
 * Scores from one block's statistics: q/k = similarity weight × attention difference (or the
 * logit proxy E|s·q_c·k_c|); v = RMS over tokens of the head output channel z_c = (P_h V_h)[:, c]
 * times the norm of the proj column it feeds.
 */
export function blockChannelScores(
  cfg: ViTConfig,
  weights: ViTWeights,
  block: number,
  stats: AttentionChannelStats,
  opts: { qkScore: QkScore; similarity: boolean },
): BlockChannelScores {
  const { heads: H, qkDim: d, vDim: dv, dim: D } = cfg;
  const base = opts.qkScore === 'attention-difference' ? stats.attentionDifference : stats.logitContribution;
  if (!base) throw new RangeError(`block ${block}: the attention difference was not measured (emptyChannelStats(cfg, true) measures it)`);
  const qkGram = stats.queryGram.map((g, i) => g + stats.keyGram[i]);
  const similarity = opts.similarity ? similarityWeights(qkGram, H, d) : new Float64Array(H * d).fill(1);
  const qk = new Float64Array(H * d);
  for (let i = 0; i < H * d; i++) qk[i] = (similarity[i] * base[i]) / stats.images;

  const proj = weights.blocks[block].proj.weight; // [D, H·v]
  const v = new Float64Array(H * dv);
  for (let col = 0; col < H * dv; col++) {
    let norm2 = 0;
    for (let o = 0; o < D; o++) norm2 += proj[o * H * dv + col] ** 2;
    const energy = stats.headOutputGram[col * (H * dv + 1) + col];
    v[col] = Math.sqrt(energy / stats.queries) * Math.sqrt(norm2);
  }
  return { qk, v, similarity };
}

/**
 * w[h, c] = 1 − max_{c'≠c} |cos(a_c, a_c')| from the Gram matrix G[h] = Σ a aᵀ [H, d, d]:
 * cos = G[c, c'] / √(G[c, c]·G[c', c']) (0 when either channel is all zero).
 */
export function similarityWeights(gram: Float64Array, heads: number, d: number): Float64Array {
  const w = new Float64Array(heads * d);
  for (let h = 0; h < heads; h++) {
    const g = h * d * d;
    for (let c = 0; c < d; c++) {
      let maxCos = 0;
      for (let c2 = 0; c2 < d; c2++) {
        if (c2 === c) continue;
        const norms = Math.sqrt(gram[g + c * d + c] * gram[g + c2 * d + c2]);
        if (norms > 0) maxCos = Math.max(maxCos, Math.abs(gram[g + c * d + c2]) / norms);
      }
      w[h * d + c] = 1 - Math.min(maxCos, 1);
    }
  }
  return w;
}

/** MACs one kept channel per head costs in one block (n tokens): q/k pair, or v channel. */
export function channelMacs(cfg: ViTConfig): { qk: number; v: number } {
  const n = initialTokens(cfg);
  const { dim: D, heads: H } = cfg;
  return {
    qk: n * D * 2 * H + n * n * H, // two rows of the qkv projection, one term of QKᵀ, per head
    v: n * D * H + n * n * H + n * H * D, // one row of the qkv projection, one column of PV and of proj, per head
  };
}

/**
 * Kept widths per block (per head: every head of a block keeps the same number).
 *  - uniform: qk′ = v′ = round((1 − ratio)·d) in every block.
 *  - greedy (docs/algorithms.md §5.3 step 7): the same MAC saving as uniform, spent where it costs
 *    least score: channel groups (the lowest-ranked remaining channel of every head of one block,
 *    q/k or v) are removed one at a time, cheapest (score per MAC saved) first over all blocks and
 *    both kinds, until the saving reaches uniform's. Scores are made comparable across blocks and
 *    between q/k and v by dividing each block's q/k (and v) scores by their block total. At least
 *    one channel per head stays.
 */
export function allocateWidths(cfg: ViTConfig, scores: BlockChannelScores[], ratio: number, allocator: Allocator): BlockWidths[] {
  if (!(ratio >= 0 && ratio < 1)) throw new RangeError(`the pruning ratio must be in [0, 1), got ${ratio}`);
  const keep = (d: number) => Math.max(1, Math.round((1 - ratio) * d));
  const uniform = { qkDim: keep(cfg.qkDim), vDim: keep(cfg.vDim) };
  if (allocator === 'uniform') return scores.map(() => ({ ...uniform }));

  const macs = channelMacs(cfg);
  const target = scores.length * ((cfg.qkDim - uniform.qkDim) * macs.qk + (cfg.vDim - uniform.vDim) * macs.v);
  const costs = scores.map((s) => ({ qk: groupCosts(s.qk, cfg.heads, cfg.qkDim), v: groupCosts(s.v, cfg.heads, cfg.vDim) }));
  const removed = scores.map(() => ({ qk: 0, v: 0 }));
  const width = { qk: cfg.qkDim, v: cfg.vDim };
  let saved = 0;
  while (saved < target) {
    let best: { b: number; kind: 'qk' | 'v' } | null = null;
    let bestCost = Infinity;
    for (let b = 0; b < costs.length; b++) {
      for (const kind of ['qk', 'v'] as const) {
        const r = removed[b][kind];
        if (r >= width[kind] - 1) continue;
        const cost = costs[b][kind][r] / macs[kind];
        if (cost < bestCost) {
          bestCost = cost;
          best = { b, kind };
        }
      }
    }
    if (!best) break;
    removed[best.b][best.kind]++;
    saved += macs[best.kind];
  }
  return removed.map((r) => ({ qkDim: cfg.qkDim - r.qk, vDim: cfg.vDim - r.v }));
}

/**
 * cost[r] = Σ_heads (normalised score of the head's r-th lowest channel): the score one block
 * loses by removing its r-th group. The block's scores are divided by their total.
 */
function groupCosts(s: Float64Array, heads: number, d: number): Float64Array {
  const cost = new Float64Array(d);
  const total = s.reduce((a, b) => a + b, 0);
  for (let h = 0; h < heads; h++) {
    const sorted = Array.from(s.subarray(h * d, (h + 1) * d)).sort((a, b) => a - b);
    for (let r = 0; r < d; r++) cost[r] += total > 0 ? sorted[r] / total : 1 / (heads * d);
  }
  return cost;
}

/** The top `keep` channels of every head by score (ties: lower index), indices ascending. */
export function topChannels(scores: Float64Array, heads: number, d: number, keep: number): Int32Array[] {
  return Array.from({ length: heads }, (_, h) => {
    const order = Array.from({ length: d }, (_, c) => c);
    order.sort((a, b) => scores[h * d + b] - scores[h * d + a] || a - b);
    return Int32Array.from(order.slice(0, keep)).sort();
  });
}

export function selectChannels(cfg: ViTConfig, scores: BlockChannelScores[], widths: BlockWidths[]): ChannelSelection {
  return {
    widths,
    qk: scores.map((s, b) => topChannels(s.qk, cfg.heads, cfg.qkDim, widths[b].qkDim)),
    v: scores.map((s, b) => topChannels(s.v, cfg.heads, cfg.vDim, widths[b].vDim)),
  };
}

/**
 * The kept channels by backward elimination of the reconstruction error the reweightings leave
 * (channels-elimination.ts): per head for q/k (the logit error after the query refit), per block
 * with heads in rounds for v (the output error after the proj refit).
 */
export function selectByElimination(
  cfg: ViTConfig,
  weights: ViTWeights,
  stats: AttentionChannelStats[],
  widths: BlockWidths[],
  ridge: number,
): ChannelSelection {
  const { heads: H, qkDim: d, vDim: dv, dim: D } = cfg;
  const identity = new Float64Array(d * d);
  for (let c = 0; c < d; c++) identity[c * d + c] = 1;
  const all = Int32Array.from({ length: d }, (_, c) => c);
  const qk = stats.map((s, b) =>
    Array.from({ length: H }, (_, h) => {
      const head = (g: Float64Array) => g.subarray(h * d * d, (h + 1) * d * d);
      return eliminateChannels(head(s.centredKeyGram), d, identity, d, head(s.queryGram), [all], d - widths[b].qkDim, ridge)[0];
    }),
  );
  const m = H * dv + 1;
  const v = stats.map((s, b) => {
    const proj = weights.blocks[b].proj; // [D, H·v]
    const coefficients = new Float64Array(m * D); // [H·v + 1, D] = [Wᵀ; bᵀ]
    for (let o = 0; o < D; o++) {
      for (let i = 0; i < H * dv; i++) coefficients[i * D + o] = proj.weight[o * H * dv + i];
      coefficients[H * dv * D + o] = proj.bias[o];
    }
    const heads = Array.from({ length: H }, (_, h) => Int32Array.from({ length: dv }, (_, c) => h * dv + c));
    return eliminateChannels(s.headOutputGram, m, coefficients, D, null, heads, dv - widths[b].vDim, ridge).map((kept, h) => kept.map((i) => i - h * dv));
  });
  return { widths, qk, v };
}
