import type { Tensor } from './types.js';

/**
 * LayerNorm over the last axis, forward and input gradient, in plain loops (the reference
 * backend; float64 arithmetic whatever the storage). Per row of d values:
 *
 *   μ = mean(x),  σ² = mean((x − μ)²),  r = 1/√(σ² + eps),  x̂ = (x − μ)·r,  y = x̂⊙γ + β
 *
 * Input gradient, with g = dy⊙γ (the gradient reaching x̂):
 *
 *   ∂L/∂x = r·(g − mean(g) − x̂·mean(g⊙x̂))
 *
 * (x̂ depends on x directly, through μ, and through r; the last two give the two means.)
 */

/** μ and r = 1/√(σ² + eps) of the row x[offset … offset + d), by Welford's one-pass update. */
function rowStatistics(x: Tensor, offset: number, d: number, eps: number): { mean: number; invStd: number } {
  let mean = 0;
  let squares = 0; // Σ (x − μ)² so far
  for (let j = 0; j < d; j++) {
    const value = x[offset + j];
    const delta = value - mean;
    mean += delta / (j + 1);
    squares += delta * (value - mean);
  }
  return { mean, invStd: 1 / Math.sqrt(squares / d + eps) };
}

/** out[m, d] = LayerNorm(x[m, d])·γ + β. */
export function layerNormForward(x: Tensor, m: number, d: number, gamma: Tensor, beta: Tensor, eps: number, out: Tensor): void {
  for (let i = 0; i < m; i++) {
    const row = i * d;
    const { mean, invStd } = rowStatistics(x, row, d, eps);
    for (let j = 0; j < d; j++) out[row + j] = (x[row + j] - mean) * invStd * gamma[j] + beta[j];
  }
}

/** dx[m, d] += ∂LayerNorm/∂x ᵀ·dy, from the forward's input x [m, d]. */
export function layerNormBackward(x: Tensor, m: number, d: number, gamma: Tensor, eps: number, dy: Tensor, dx: Tensor): void {
  for (let i = 0; i < m; i++) {
    const row = i * d;
    const { mean, invStd } = rowStatistics(x, row, d, eps);
    let meanG = 0; // mean(g)
    let meanGXhat = 0; // mean(g⊙x̂)
    for (let j = 0; j < d; j++) {
      const g = dy[row + j] * gamma[j];
      meanG += g;
      meanGXhat += g * (x[row + j] - mean) * invStd;
    }
    meanG /= d;
    meanGXhat /= d;
    for (let j = 0; j < d; j++) {
      const xHat = (x[row + j] - mean) * invStd;
      dx[row + j] += invStd * (dy[row + j] * gamma[j] - meanG - xHat * meanGXhat);
    }
  }
}
