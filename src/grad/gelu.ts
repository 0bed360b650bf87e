import { erf, gelu } from '../kernels/reference.js';
import type { Tensor } from './types.js';

/**
 * GELU and its derivative (exact, erf-based), elementwise:
 *
 *   GELU(x) = x·Φ(x),   GELU′(x) = Φ(x) + x·φ(x)
 *
 * with Φ the standard normal CDF, Φ(x) = (1 + erf(x/√2))/2, and φ(x) = e^(−x²/2)/√(2π) its density.
 */

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

export function geluDerivative(x: number): number {
  return 0.5 * (1 + erf(x * Math.SQRT1_2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/** out[i] = GELU(x[i]) for i < length. */
export function geluForward(x: Tensor, length: number, out: Tensor): void {
  for (let i = 0; i < length; i++) out[i] = gelu(x[i]);
}

/** dx[i] = dy[i]·GELU′(x[i]) for i < length. */
export function geluBackward(x: Tensor, dy: Tensor, length: number, dx: Tensor): void {
  for (let i = 0; i < length; i++) dx[i] = dy[i] * geluDerivative(x[i]);
}
