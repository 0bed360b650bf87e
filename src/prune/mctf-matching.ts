import { REFERENCE_MERGE_KERNELS, type MergeKernelLoops, type MergeWorkspace } from './merge-kernels.js';
import { rankedRange } from './rank.js';
import { writeKeptA, type TomeMatching } from './tome.js';

/**
 * MCTF's multi-criteria bipartite matching (Lee, Choi, Kim, CVPR 2024, "Multi-criteria Token
 * Fusion with One-step-ahead Attention"; mlvlab/MCTF `utils/mctf.py`), the decision half of
 * the method; pooling and the one-step-ahead attention are in mctf.ts.
 *
 * Tokens split by position as in ToMe: A = even positions, B = odd positions (CLS, position 0,
 * is in A). The affinity of a ∈ A and b ∈ B multiplies three criteria, each tempered by its τ:
 *
 *   W_sim[a, b]  = ((cos(x_a, x_b) + 1) / 2)^(1/τ_sim)       similarity of the metric rows
 *   W_info[a, b] = (ι_a · ι_b)^(1/τ_info),  ι_k = min_j ā_j / ā_k   informativeness: ā_k = mean
 *                  attention token k receives (over heads and queries); rarely attended → ι near 1
 *   W_size[a, b] = (σ_a · σ_b)^(1/τ_size),  σ_k = min_j s_j / s_k   size: small tokens → σ near 1
 *   W = W_sim · W_info · W_size                                  (τ = 0 switches a term off: 1)
 *
 * Bidirectional matching fuses r = r₁ + r₂ tokens, r₁ = ⌊r/2⌋, r₂ = r − r₁:
 *   1. every a takes its best b (argmax_b W[a, b]); the r₁ a with the largest maxima fuse into it;
 *   2. every b takes its best among the unfused a (argmax W[a, b], the scores of step 1, not
 *      recomputed); the r₂ b with the largest maxima fuse into it, carrying what fused into them
 *      in step 1.
 * Output order (the reference's, which the next layer's even/odd split sees): the unfused A
 * by position, then the remaining B by decreasing step-2 maximum. One-directional matching
 * (r₁ = r) keeps B by position, as ToMe does.
 *
 * Protected: CLS (position 0) is never a source and never a step-2 destination (its row is
 * −∞). A distillation token (position 1, in B) is never a step-1 destination nor a step-2
 * source and stays at row 1. (The reference code marks rows 0 and 1 of A instead, which
 * protects position 2 and not DIST; it is never run on distilled models.)
 * Ties go to the lower position, for the best partner and for the ranking.
 */

export interface MctfTemperatures {
  tauSim: number; // τ_sim (paper 1)
  tauInfo: number; // τ_info (paper 20)
  tauSize: number; // τ_size (paper 40)
}

/** ā_k = (1/(H·n)) Σ_h Σ_q P_h[q, k]: the mean attention token k receives.  probs [H, n, n] (row = query) → [n] */
export function attentionReceived(probs: Float32Array, heads: number, n: number): Float64Array {
  const a = new Float64Array(n);
  REFERENCE_MERGE_KERNELS.attentionReceived(probs, heads, n, a);
  return a;
}

/** out[k] = v_k^(1/τ) with v_k = min_j values_j / values_k (all 1 when τ = 0 or there are no values); out [≥ t]. */
function temperedInverseShare(values: ArrayLike<number> | null, t: number, tau: number, out: Float64Array): Float64Array {
  out.fill(1, 0, t);
  if (!(tau > 0) || values === null) return out;
  let min = Infinity;
  for (let k = 0; k < t; k++) min = Math.min(min, values[k]);
  for (let k = 0; k < t; k++) out[k] = (min / values[k]) ** (1 / tau);
  return out;
}

/**
 * W [⌈t/2⌉, ⌊t/2⌋]: W[i, j] is the affinity of A token 2i and B token 2j + 1.
 *   metric: [t, c] rows compared by cosine (a zero row has cosine 0 with everything)
 *   attention: [t] ā (attentionReceived); sizes: [t] or null (all 1)
 * (cos + 1)/2 is clamped to [0, 1] so that rounding cannot take a fractional power of a negative number.
 * `kernels` compute in the buffers of `workspace` (default: the TypeScript oracles on fresh arrays);
 * W is its `cosines`.
 */
export function mctfScores(
  metric: Float32Array,
  t: number,
  c: number,
  attention: ArrayLike<number>,
  sizes: ArrayLike<number> | null,
  tau: MctfTemperatures,
  kernels: Pick<MergeKernelLoops, 'evenOddCosines' | 'mctfAffinity'> = REFERENCE_MERGE_KERNELS,
  workspace: Pick<MergeWorkspace, 'cosines' | 'info' | 'sizeShare'> = {
    cosines: new Float64Array(Math.ceil(t / 2) * Math.floor(t / 2)),
    info: new Float64Array(t),
    sizeShare: new Float64Array(t),
  },
): Float64Array {
  const nA = Math.ceil(t / 2);
  const nB = Math.floor(t / 2);
  const info = temperedInverseShare(attention, t, tau.tauInfo, workspace.info);
  const size = temperedInverseShare(sizes, t, tau.tauSize, workspace.sizeShare);
  const W = workspace.cosines.subarray(0, nA * nB);
  if (tau.tauSim > 0) kernels.evenOddCosines(metric, t, c, W);
  kernels.mctfAffinity(W, nA, nB, tau.tauSim, info, size);
  return W;
}

/**
 * The fusion decided by W (mctfScores) for t tokens: r tokens fuse (the caller caps r at
 * ⌊(t − prefix)/2⌋), bidirectionally or A → B only. Sources list every fused token with the
 * token it finally lands in (a step-1 source whose destination fuses on in step 2 lands where
 * that destination does); `order` is the surviving tokens in output order. Positions are in
 * the sequence of t tokens. `kernels` find step 1's maxima in `workspace` (default: the oracles on fresh arrays).
 */
export function mctfMatching(
  W: Float64Array,
  t: number,
  r: number,
  prefix: number,
  bidirectional: boolean,
  kernels: Pick<MergeKernelLoops, 'rowArgmax' | 'columnArgmax' | 'rankDescending'> = REFERENCE_MERGE_KERNELS,
  workspace: Pick<MergeWorkspace, 'best' | 'partner' | 'columnBest' | 'columnPartner' | 'candidates' | 'ranking'> = {
    best: new Float64Array(Math.ceil(t / 2)),
    partner: new Int32Array(Math.ceil(t / 2)),
    columnBest: new Float64Array(Math.floor(t / 2)),
    columnPartner: new Int32Array(Math.floor(t / 2)),
    candidates: new Int32Array(Math.ceil(t / 2)),
    ranking: new Int32Array(Math.ceil(t / 2)),
  },
): TomeMatching {
  const nA = Math.ceil(t / 2);
  const nB = Math.floor(t / 2);
  const firstA = prefix >= 1 ? 1 : 0; // CLS is never fused
  const firstB = prefix >= 2 ? 1 : 0; // neither is DIST
  if (!(Number.isInteger(r) && r >= 0 && r <= Math.floor((t - prefix) / 2))) {
    throw new RangeError(`MCTF matching: expected an integer r in 0…${Math.floor((t - prefix) / 2)} for ${t} tokens, found ${r}`);
  }
  const r1 = bidirectional ? Math.floor(r / 2) : r;
  const r2 = r - r1;

  // Step 1: A → B (the first b of the highest affinity).
  const { best: best1, partner: partner1 } = workspace;
  kernels.rowArgmax(W, nA, nB, firstA, firstB, best1, partner1);
  const sources1 = rankedRange(best1, firstA, nA, workspace.ranking, kernels).slice(0, r1);
  const fusedA = new Uint8Array(nA);
  for (const i of sources1) fusedA[i] = 1;

  // Step 2: B → the unfused A (CLS excluded), the first a of the highest affinity.
  const { candidates, columnBest: best2, columnPartner: partner2 } = workspace;
  let count = 0;
  for (let i = firstA; i < nA; i++) if (!fusedA[i]) candidates[count++] = i;
  kernels.columnArgmax(W, nA, nB, candidates, count, firstB, best2, partner2);
  const rankedB = bidirectional ? rankedRange(best2, firstB, nB, workspace.ranking, kernels) : Int32Array.from({ length: nB - firstB }, (_, k) => firstB + k);
  const sources2 = rankedB.subarray(0, r2);
  if (r2 > 0 && count === 0) throw new RangeError(`MCTF matching: no unfused A token left for the B → A step (t = ${t}, r = ${r})`);
  const landsOn = new Int32Array(nB).fill(-1); // the A a fused B token lands on
  for (const j of sources2) landsOn[j] = partner2[j];

  // Where every fused token lands, as positions.
  const sources = new Int32Array(r);
  const destinations = new Int32Array(r);
  let e = 0;
  for (const i of sources1) {
    const j = partner1[i];
    sources[e] = 2 * i;
    destinations[e++] = landsOn[j] >= 0 ? 2 * landsOn[j] : 2 * j + 1;
  }
  for (const j of sources2) {
    sources[e] = 2 * j + 1;
    destinations[e++] = 2 * landsOn[j];
  }
  // Output order: the unfused A by position (CLS first, then DIST when distilled), then the remaining B.
  const order = new Int32Array(t - r);
  let o = writeKeptA(order, fusedA, nA, prefix);
  for (let k = r2; k < rankedB.length; k++) order[o++] = 2 * rankedB[k] + 1; // DIST (B 0) is not among them
  return { sources: sources.subarray(0, e), destinations: destinations.subarray(0, e), order: order.subarray(0, o) };
}
