import type { Tensor } from './types.js';

/**
 * The learned correction of a block's output projection, the proj half of channel pruning's
 * reweight module (issue 17): a rank-r update of the frozen weight and a bias shift,
 *
 *   proj′(z) = z·(W + U·Vᵀ)ᵀ + b + Δb        z [n, H·v] head outputs, U [D, r], V [H·v, r], Δb [D]
 *
 * added to the frozen projection as t = z·V [n, r], y += t·Uᵀ + Δb. It folds into the pruned
 * model's proj exactly (W′ = W + U·Vᵀ on the kept columns, b′ = b + Δb), so its rank costs
 * nothing at inference; low rank keeps the learning cheap (plain loops, ≈ 4·n·r·(D + H·v) MACs
 * per block and image, a few % of a forward + backward, where a full correction would need
 * products on weights that change every step, which the wasm GEMM only has pre-packed) and the
 * parameters few for a few hundred calibration images. Gradients, from dY = ∂L/∂y [n, D]:
 *
 *   dU = dYᵀ·t,   dT = dY·U [n, r],   dV = zᵀ·dT,   dΔb = Σ_rows dY,   dz += dT·Vᵀ
 */
export interface ProjCorrection {
  rank: number; // r
  up: Float64Array; // U [D, r]
  down: Float64Array; // V [H·v, r]
  bias: Float64Array; // Δb [D]
}

export function zeroProjCorrection(dim: number, inFeatures: number, rank: number): ProjCorrection {
  return { rank, up: new Float64Array(dim * rank), down: new Float64Array(inFeatures * rank), bias: new Float64Array(dim) };
}

/** t [n, r] = z [n, H·v]·V (V [H·v, r]). */
function projectDown(z: ArrayLike<number>, n: number, inFeatures: number, c: ProjCorrection, t: Float64Array): void {
  const r = c.rank;
  t.fill(0, 0, n * r);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < inFeatures; j++) {
      const zij = z[i * inFeatures + j];
      if (zij === 0) continue;
      for (let k = 0; k < r; k++) t[i * r + k] += zij * c.down[j * r + k];
    }
  }
}

/** y [n, D] += z·V·Uᵀ + Δb. */
export function projCorrectionForward(z: ArrayLike<number>, n: number, inFeatures: number, c: ProjCorrection, y: Tensor): void {
  const r = c.rank;
  const D = c.bias.length;
  const t = new Float64Array(n * r);
  projectDown(z, n, inFeatures, c, t);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < D; o++) {
      let sum = c.bias[o];
      for (let k = 0; k < r; k++) sum += t[i * r + k] * c.up[o * r + k];
      y[i * D + o] += sum;
    }
  }
}

/** From dY [n, D]: dz [n, H·v] += dT·Vᵀ; the parameters' gradients are added to `grads`. */
export function projCorrectionBackward(
  z: ArrayLike<number>,
  n: number,
  inFeatures: number,
  c: ProjCorrection,
  dY: ArrayLike<number>,
  dz: Tensor,
  grads: ProjCorrection,
): void {
  const r = c.rank;
  const D = c.bias.length;
  const t = new Float64Array(n * r);
  projectDown(z, n, inFeatures, c, t);
  const dT = new Float64Array(n * r);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < D; o++) {
      const g = dY[i * D + o];
      if (g === 0) continue;
      grads.bias[o] += g;
      for (let k = 0; k < r; k++) {
        grads.up[o * r + k] += g * t[i * r + k];
        dT[i * r + k] += g * c.up[o * r + k];
      }
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < inFeatures; j++) {
      const zij = z[i * inFeatures + j];
      let sum = 0;
      for (let k = 0; k < r; k++) {
        grads.down[j * r + k] += zij * dT[i * r + k];
        sum += dT[i * r + k] * c.down[j * r + k];
      }
      dz[i * inFeatures + j] += sum;
    }
  }
}
