import { expect } from 'vitest';
import { seededRandom } from '../src/model/random.js';

/**
 * Central finite differences for gradient checks, and the error measure they are judged by.
 * The five-point central stencil
 *
 *   ∂f/∂x_i ≈ (8·(f(x + h·e_i) − f(x − h·e_i)) − (f(x + 2h·e_i) − f(x − 2h·e_i))) / (12h)
 *
 * has a truncation error O(h⁴·f⁽⁵⁾) (the three-point one's O(h²·f‴) was visible on LayerNorm
 * rows of two values, whose gradient is tiny and curved); in float64 with h = 1e-4 that is
 * ≈ 1e-16·f⁽⁵⁾, and the rounding error ≈ 1e-16·|f|/h ≈ 1e-12·|f|: far below what the checks allow.
 */
export const FD_STEP = 1e-4;

/** Gradient of f with respect to x[indices] (all of x by default), x restored afterwards. */
export function finiteDifferences(f: () => number, x: { [i: number]: number; length: number }, indices?: number[], h = FD_STEP): Float64Array {
  const at = indices ?? Array.from({ length: x.length }, (_, i) => i);
  const grad = new Float64Array(at.length);
  at.forEach((i, j) => {
    const saved = x[i];
    const shifted = (steps: number) => {
      x[i] = saved + steps * h;
      return f();
    };
    grad[j] = (8 * (shifted(1) - shifted(-1)) - (shifted(2) - shifted(-2))) / (12 * h);
    x[i] = saved;
  });
  return grad;
}

/**
 * Relative error of an analytic gradient against a numerical one: max_i |a_i − n_i| / max_i |n_i|
 * (an error relative to the gradient's scale, so that components near 0 are not judged on their
 * own tiny size), or the absolute error when the whole gradient is below `floor`.
 */
export function relativeError(analytic: ArrayLike<number>, numeric: ArrayLike<number>, floor = 1e-6): number {
  let error = 0;
  let scale = 0;
  for (let i = 0; i < numeric.length; i++) {
    error = Math.max(error, Math.abs(analytic[i] - numeric[i]));
    scale = Math.max(scale, Math.abs(numeric[i]));
  }
  if (Number.isNaN(error) || analytic.length !== numeric.length) return Infinity;
  return error / Math.max(scale, floor);
}

/**
 * Fails unless relativeError(analytic, numeric, floor) ≤ tolerance. Pass as `floor` the size of the
 * terms a gradient sums when they may cancel: float32 rounding is relative to them, not to the sum.
 */
export function expectGradient(analytic: ArrayLike<number>, numeric: ArrayLike<number>, tolerance: number, what: string, floor?: number): void {
  const error = relativeError(analytic, numeric, floor);
  if (!(error <= tolerance)) {
    expect.fail(
      `${what}: relative error ${error.toExponential(2)} > ${tolerance} (analytic ${Array.from(analytic)
        .slice(0, 6)
        .map((v) => v.toPrecision(6))}…, numeric ${Array.from(numeric)
        .slice(0, 6)
        .map((v) => v.toPrecision(6))}…)`,
    );
  }
}

/** Uniform values in [−1, 1) from a 32-bit seed. */
export function uniform(seed: number): () => number {
  const next = seededRandom(seed);
  return () => 2 * next() - 1;
}

export function randomFloat64(length: number, next: () => number, magnitude = 1, offset = 0): Float64Array {
  return Float64Array.from({ length }, () => offset + magnitude * next());
}

/** Σ r_i·y_i: the scalar a check differentiates (r random, so every output's gradient path counts). */
export function dot(r: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i] * y[i];
  return s;
}

/** Up to `count` distinct indices below `length`, spread evenly (all when length ≤ count). */
export function sampleIndices(length: number, count: number): number[] {
  if (length <= count) return Array.from({ length }, (_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.floor(((i + 0.5) * length) / count));
}
