import { choleskyFactor, choleskySolve, ridgeLambda, solveLowerTransposed, symmetricEigen, withRidge } from './channels-linalg.js';

/**
 * The closed-form reweightings of channel pruning, in float64: (a) and (b) are docs/algorithms.md §5.3
 * step 5; fitQueryMap and fitValueBasis (below) are our extensions.
 *
 * (a) Per-head logit scale. With s = q′k′ᵀ/√d the pruned logits of a head (d = the original width)
 *     and P the original attention, over all calibration rows (queries) r:
 *        KL(α) = Σ_r KL(P_r ‖ softmax(α·s_r)) = Σ_r [ Σ_j P_rj log P_rj − α·Σ_j P_rj s_rj + logsumexp(α·s_r) ]
 *     is convex in α (logsumexp is), with KL′(α) = Σ_r (E_{Q_r}[s_r] − E_{P_r}[s_r]) and
 *     KL″(α) = Σ_r Var_{Q_r}[s_r], Q_r = softmax(α·s_r). Damped Newton from α = 1.
 *
 * (b) Output-projection refit. With Z′ [rows, k] the pruned head outputs, Y [rows, D] the original
 *     attention-branch output proj(attn_out), and W = [W_projᵀ; bᵀ] [k + 1, D] acting on [Z′, 1]:
 *        W′ = argmin ‖Y − [Z′, 1]·W‖² + λ‖W − W₀‖²,   i.e.   (G + λI)·W′ = C + λ·W₀
 *     with G = [Z′, 1]ᵀ[Z′, 1], C = [Z′, 1]ᵀY accumulated over the calibration tokens and W₀ the
 *     kept columns of the original projection. Ridge towards W₀ (not towards 0) means the fit can
 *     never reconstruct worse than W₀: ‖Y − ZW′‖² ≤ ‖Y − ZW′‖² + λ‖W′ − W₀‖² ≤ ‖Y − ZW₀‖².
 */

/** One head's logit-scale problem: the pruned logits of the calibration rows and the target's sums. */
export interface LogitScaleProblem {
  logits: Float32Array[]; // per image [rows_i, n_i] of s = q′k′ᵀ/√d, row-major
  rowLength: number[]; // per image: n_i (keys per row)
  targetDot: number; // Σ_r Σ_j P_rj s_rj
  targetNegEntropy: number; // Σ_r Σ_j P_rj log P_rj
  rows: number; // Σ_i rows_i
}

export interface LogitScaleFit {
  alpha: number;
  klBefore: number; // mean KL per row at α = 1
  klAfter: number; // mean KL per row at the fitted α
}

const ALPHA_RANGE: readonly [number, number] = [0.05, 20];

/** Fit α for one head (see above). */
export function fitLogitScale(problem: LogitScaleProblem): LogitScaleFit {
  const at = (alpha: number) => logitScaleObjective(problem, alpha);
  const start = at(1);
  let alpha = 1;
  let current = start;
  for (let iter = 0; iter < 50; iter++) {
    if (!(current.hessian > 0)) break;
    let step = -current.gradient / current.hessian;
    let next = clamp(alpha + step, ALPHA_RANGE);
    let trial = at(next);
    // Newton on a convex function only overshoots far from the minimum: halve until it descends.
    while (trial.kl > current.kl && Math.abs(step) > 1e-12) {
      step /= 2;
      next = clamp(alpha + step, ALPHA_RANGE);
      trial = at(next);
    }
    if (trial.kl > current.kl) break;
    const moved = Math.abs(next - alpha);
    alpha = next;
    current = trial;
    if (moved < 1e-9 * alpha) break;
  }
  return { alpha, klBefore: start.kl / problem.rows, klAfter: current.kl / problem.rows };
}

function clamp(x: number, [lo, hi]: readonly [number, number]): number {
  return Math.min(hi, Math.max(lo, x));
}

/** KL(α), KL′(α), KL″(α), summed over rows. */
export function logitScaleObjective(problem: LogitScaleProblem, alpha: number): { kl: number; gradient: number; hessian: number } {
  let logSumExp = 0;
  let meanQ = 0;
  let varQ = 0;
  problem.logits.forEach((s, image) => {
    const n = problem.rowLength[image];
    for (let r = 0; r < s.length; r += n) {
      let max = -Infinity;
      for (let j = 0; j < n; j++) max = Math.max(max, alpha * s[r + j]);
      let z = 0;
      let m1 = 0;
      let m2 = 0;
      for (let j = 0; j < n; j++) {
        const x = s[r + j];
        const e = Math.exp(alpha * x - max);
        z += e;
        m1 += e * x;
        m2 += e * x * x;
      }
      m1 /= z;
      m2 /= z;
      logSumExp += max + Math.log(z);
      meanQ += m1;
      varQ += Math.max(m2 - m1 * m1, 0);
    }
  });
  return {
    kl: problem.targetNegEntropy - alpha * problem.targetDot + logSumExp,
    gradient: meanQ - problem.targetDot,
    hessian: varQ,
  };
}

/** Sufficient statistics of the refit: G = [Z, 1]ᵀ[Z, 1], C = [Z, 1]ᵀY, ‖Y‖². */
export class RefitStatistics {
  readonly gram: Float64Array; // [k + 1, k + 1]
  readonly cross: Float64Array; // [k + 1, D]
  targetEnergy = 0; // Σ ‖Y_r‖²
  rows = 0;

  constructor(
    readonly inputs: number, // k: pruned head outputs H·v′
    readonly outputs: number, // D
  ) {
    this.gram = new Float64Array((inputs + 1) ** 2);
    this.cross = new Float64Array((inputs + 1) * outputs);
  }

  /** Add `rows` rows: z [rows, k] (row stride k), y [rows, D]. */
  add(z: Float32Array, y: Float32Array, rows: number): void {
    const k = this.inputs;
    const K = k + 1;
    const D = this.outputs;
    const zr = new Float64Array(K);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < k; i++) zr[i] = z[r * k + i];
      zr[k] = 1;
      for (let i = 0; i < K; i++) {
        const zi = zr[i];
        if (zi === 0) continue;
        const g = i * K;
        for (let j = i; j < K; j++) this.gram[g + j] += zi * zr[j];
        const c = i * D;
        for (let o = 0; o < D; o++) this.cross[c + o] += zi * y[r * D + o];
      }
      for (let o = 0; o < D; o++) this.targetEnergy += y[r * D + o] ** 2;
    }
    this.rows += rows;
  }

  /** The full symmetric G (add() fills the upper triangle). */
  symmetricGram(): Float64Array {
    const K = this.inputs + 1;
    const g = Float64Array.from(this.gram);
    for (let i = 0; i < K; i++) for (let j = 0; j < i; j++) g[i * K + j] = g[j * K + i];
    return g;
  }

  /** ‖Y − [Z, 1]·W‖² / ‖Y‖² for W [k + 1, D] = [Wᵀ; bᵀ]. */
  relativeError(w: Float64Array): number {
    const K = this.inputs + 1;
    const D = this.outputs;
    const g = this.symmetricGram();
    // ‖Y − ZW‖² = ‖Y‖² − 2·tr(WᵀC) + tr(WᵀGW)
    let cross = 0;
    for (let i = 0; i < K * D; i++) cross += w[i] * this.cross[i];
    let quad = 0;
    const gw = new Float64Array(D);
    for (let i = 0; i < K; i++) {
      gw.fill(0);
      for (let j = 0; j < K; j++) {
        const gij = g[i * K + j];
        if (gij === 0) continue;
        for (let o = 0; o < D; o++) gw[o] += gij * w[j * D + o];
      }
      for (let o = 0; o < D; o++) quad += w[i * D + o] * gw[o];
    }
    return Math.max(this.targetEnergy - 2 * cross + quad, 0) / this.targetEnergy;
  }
}

export interface ProjectionRefit {
  weight: Float32Array; // [D, k] refit proj weight
  bias: Float32Array; // [D]
  errorBefore: number; // relative reconstruction error with W₀
  errorAfter: number; // with the refit (≤ errorBefore)
}

/**
 * Solve (G + λI)·W′ = C + λ·W₀ with λ = ridge · mean diagonal of G over the k inputs.
 * weight0 [D, k], bias0 [D]: the kept columns of the original projection.
 */
export function refitProjection(stats: RefitStatistics, weight0: Float32Array, bias0: Float32Array, ridge: number): ProjectionRefit {
  const k = stats.inputs;
  const K = k + 1;
  const D = stats.outputs;
  const w0 = new Float64Array(K * D); // [k + 1, D]
  for (let o = 0; o < D; o++) {
    for (let i = 0; i < k; i++) w0[i * D + o] = weight0[o * k + i];
    w0[k * D + o] = bias0[o];
  }
  const g = stats.symmetricGram();
  const lambda = ridgeLambda(g, K, k, ridge); // over the k inputs, not the bias row
  const rhs = new Float64Array(K * D);
  for (let i = 0; i < K * D; i++) rhs[i] = stats.cross[i] + lambda * w0[i];
  for (let i = 0; i < K; i++) g[i * K + i] += lambda;
  const w = choleskySolve(g, K, rhs, D);

  const errorBefore = stats.relativeError(w0);
  const errorAfter = stats.relativeError(w);
  // The bound above holds in exact arithmetic; keep W₀ should rounding ever say otherwise.
  const best = errorAfter <= errorBefore ? w : w0;
  const weight = new Float32Array(D * k);
  const bias = new Float32Array(D);
  for (let o = 0; o < D; o++) {
    for (let i = 0; i < k; i++) weight[o * k + i] = best[i * D + o];
    bias[o] = best[k * D + o];
  }
  return { weight, bias, errorBefore, errorAfter: Math.min(errorAfter, errorBefore) };
}

/**
 * Query refit for one head: with keys centred within each image (softmax ignores a per-query
 * constant), the map A [d′, d] minimising Σ_i Σ_j (q_i·k_j − (A·q_i)·k′_j)² for every query is
 *    A = (G[kept, kept] + λI)⁻¹ · G[kept, :],    G = Σ_j k̃_j k̃_jᵀ [d, d] (centred keys),
 * the least-squares prediction of the full keys from the kept ones. A·q is linear in the block
 * input, so it folds into the kept Q rows: W′_q = A·W_q, b′_q = A·b_q. λ = ridge · mean diagonal.
 */
export function fitQueryMap(keyGram: Float64Array, d: number, kept: Int32Array, ridge: number): Float64Array {
  const m = kept.length;
  const a = new Float64Array(m * m);
  const rhs = new Float64Array(m * d);
  let trace = 0;
  for (let i = 0; i < m; i++) trace += keyGram[kept[i] * d + kept[i]];
  const lambda = Math.max(ridge * (trace / m), 1e-12);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) a[i * m + j] = keyGram[kept[i] * d + kept[j]] + (i === j ? lambda : 0);
    for (let c = 0; c < d; c++) rhs[i * d + c] = keyGram[kept[i] * d + c] + (kept[i] === c ? lambda : 0);
  }
  return choleskySolve(a, m, rhs, d); // [m, d]
}

/**
 * Value basis for one head: the r value features z′ = B·z (B [r, v]) from which proj best
 * reconstructs the head's output contribution z·W_hᵀ (W_h [D, v] its proj columns), given the
 * centred covariance S [v, v] of the head outputs z (reduced-rank regression): with S = L·Lᵀ and
 * U_r the top r eigenvectors of Lᵀ·W_hᵀ·W_h·L,
 *    B = U_rᵀ·L⁻¹   and the matching proj columns   C = W_h·L·U_r [D, r].
 * B·V is linear in the block input, so it folds into the V rows: W′_v = B·W_v, b′_v = B·b_v.
 */
export function fitValueBasis(
  covariance: Float64Array,
  v: number,
  projColumns: Float64Array,
  D: number,
  r: number,
  ridge: number,
): { basis: Float64Array; proj: Float64Array } {
  const L = choleskyFactor(withRidge(covariance, v, ridge), v);
  // WL = W_h·L [D, v]; E = (W_h L)ᵀ(W_h L) [v, v]
  const WL = new Float64Array(D * v);
  for (let o = 0; o < D; o++) {
    for (let j = 0; j < v; j++) {
      let sum = 0;
      for (let t = j; t < v; t++) sum += projColumns[o * v + t] * L[t * v + j];
      WL[o * v + j] = sum;
    }
  }
  const E = new Float64Array(v * v);
  for (let i = 0; i < v; i++) {
    for (let j = i; j < v; j++) {
      let sum = 0;
      for (let o = 0; o < D; o++) sum += WL[o * v + i] * WL[o * v + j];
      E[i * v + j] = E[j * v + i] = sum;
    }
  }
  const { vectors } = symmetricEigen(E, v);
  const U = new Float64Array(v * r); // [v, r] top r eigenvectors as columns
  for (let k = 0; k < r; k++) for (let i = 0; i < v; i++) U[i * r + k] = vectors[k * v + i];
  const Bt = solveLowerTransposed(L, v, U, r); // [v, r] = L⁻ᵀ·U_r = Bᵀ
  const basis = new Float64Array(r * v);
  for (let i = 0; i < v; i++) for (let k = 0; k < r; k++) basis[k * v + i] = Bt[i * r + k];
  const proj = new Float64Array(D * r);
  for (let o = 0; o < D; o++) {
    for (let k = 0; k < r; k++) {
      let sum = 0;
      for (let j = 0; j < v; j++) sum += WL[o * v + j] * U[j * r + k];
      proj[o * r + k] = sum;
    }
  }
  return { basis, proj };
}

/**
 * Query/key basis for one head, the q/k analogue of fitValueBasis: r-dimensional q′ = A·q and
 * k′ = B·k (A, B [r, d]) minimising the logit error summed over every query and every (centred)
 * key, Σ_i Σ_j (q_i·k̃_j − q′_i·k̃′_j)² = ‖L_qᵀ·(I − AᵀB)·L_k‖²_F, with Σ_q = Σ_i q_i q_iᵀ = L_q L_qᵀ
 * and Σ_k = Σ_j k̃_j k̃_jᵀ = L_k L_kᵀ. The optimum is the rank-r SVD of C = L_qᵀL_k; with
 * V_r, s_r the top eigenvectors and singular values of CᵀC = L_kᵀ Σ_q L_k,
 *    A = diag(s_r)^(−½)·V_rᵀ·L_kᵀ,    B = diag(s_r)^(½)·V_rᵀ·L_k⁻¹,
 * so AᵀB = L_q⁻ᵀ·C_r·L_k⁻¹. Both fold into the Q and K rows. λ = ridge · mean diagonal.
 */
export function fitQkBasis(queryGram: Float64Array, keyGram: Float64Array, d: number, r: number, ridge: number): { query: Float64Array; key: Float64Array } {
  const L = choleskyFactor(withRidge(keyGram, d, ridge), d); // lower triangular
  // E = Lᵀ·Σ_q·L [d, d]
  const QL = new Float64Array(d * d); // Σ_q·L
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let sum = 0;
      for (let t = j; t < d; t++) sum += queryGram[i * d + t] * L[t * d + j];
      QL[i * d + j] = sum;
    }
  }
  const E = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      let sum = 0;
      for (let t = i; t < d; t++) sum += L[t * d + i] * QL[t * d + j];
      E[i * d + j] = E[j * d + i] = sum;
    }
  }
  const { values, vectors } = symmetricEigen(E, d);
  const floor = Math.max(values[0], 1e-30) * 1e-12;
  const query = new Float64Array(r * d);
  const scaledV = new Float64Array(d * r); // V_r·diag(s)^½ [d, r]
  for (let k = 0; k < r; k++) {
    const s = Math.sqrt(Math.max(values[k], floor)); // singular value of C
    const down = 1 / Math.sqrt(s);
    // A[k, :] = s^(−½)·(L·v_k)ᵀ
    for (let c = 0; c < d; c++) {
      let sum = 0;
      for (let t = 0; t <= c; t++) sum += L[c * d + t] * vectors[k * d + t];
      query[k * d + c] = down * sum;
    }
    for (let i = 0; i < d; i++) scaledV[i * r + k] = Math.sqrt(s) * vectors[k * d + i];
  }
  const Bt = solveLowerTransposed(L, d, scaledV, r); // [d, r] = L⁻ᵀ·V_r·diag(s)^½ = Bᵀ
  const key = new Float64Array(r * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < r; k++) key[k * d + i] = Bt[i * r + k];
  return { query, key };
}

/**
 * Value bases of all the heads of one block, fitted jointly: minimise the error of the whole
 * attention output, E‖Σ_h (W_h − C_h·B_h)·z_h‖² (W_h [D, v] the proj columns of head h, B_h [r, v],
 * C_h [D, r]), rather than each head's own. Heads' outputs are correlated, so part of what one head
 * drops can be carried by what the others keep. Block-coordinate descent from the per-head
 * solutions: for each head in turn, the others fixed, the best (B_h, C_h) is the reduced-rank
 * regression of the remaining error R = Σ_g W_g z_g − Σ_{g≠h} C_g B_g z_g on z_h, i.e.
 * fitValueBasis with the regression matrix β_h = Cov(R, z_h)·Cov(z_h)⁻¹ in place of W_h. Every
 * step lowers the objective (up to the ridge). covariance: [H·v, H·v] of z; proj: [D, H·v].
 */
export function fitValueBases(
  covariance: Float64Array,
  proj: ArrayLike<number>,
  D: number,
  H: number,
  v: number,
  r: number,
  ridge: number,
  rounds = 4,
): { basis: Float64Array; proj: Float64Array }[] {
  const Z = H * v;
  const block = (g: number, h: number) => {
    const out = new Float64Array(v * v);
    for (let i = 0; i < v; i++) for (let j = 0; j < v; j++) out[i * v + j] = covariance[(g * v + i) * Z + h * v + j];
    return out;
  };
  const W = Array.from({ length: H }, (_, h) => {
    const w = new Float64Array(D * v);
    for (let o = 0; o < D; o++) for (let c = 0; c < v; c++) w[o * v + c] = proj[o * Z + h * v + c];
    return w;
  });
  const fits = W.map((w, h) => fitValueBasis(block(h, h), v, w, D, r, ridge));
  if (H === 1) return fits;
  // The part of head g's output that its basis drops: W_g − C_g·B_g [D, v].
  const lost = (g: number) => {
    const { basis: B, proj: C } = fits[g];
    const out = Float64Array.from(W[g]);
    for (let o = 0; o < D; o++) {
      for (let c = 0; c < v; c++) {
        let sum = 0;
        for (let k = 0; k < r; k++) sum += C[o * r + k] * B[k * v + c];
        out[o * v + c] -= sum;
      }
    }
    return out;
  };
  for (let round = 0; round < rounds; round++) {
    for (let h = 0; h < H; h++) {
      // Mᵀ [v, D] = Σ_g Σ_hg·Ŵ_gᵀ, Ŵ_g = W_h for g = h and the lost part of head g otherwise.
      const Mt = new Float64Array(v * D);
      for (let g = 0; g < H; g++) {
        const Wg = g === h ? W[h] : lost(g);
        const S = block(h, g); // [v, v] Cov(z_h, z_g)
        for (let i = 0; i < v; i++) {
          for (let o = 0; o < D; o++) {
            let sum = 0;
            for (let c = 0; c < v; c++) sum += S[i * v + c] * Wg[o * v + c];
            Mt[i * D + o] += sum;
          }
        }
      }
      const betaT = choleskySolve(withRidge(block(h, h), v, ridge), v, Mt, D); // [v, D] = (Σ_hh + λI)⁻¹·Mᵀ = β_hᵀ
      const beta = new Float64Array(D * v);
      for (let i = 0; i < v; i++) for (let o = 0; o < D; o++) beta[o * v + i] = betaT[i * D + o];
      fits[h] = fitValueBasis(block(h, h), v, beta, D, r, ridge);
    }
  }
  return fits;
}
