import { expF32x4, loadFirstLanes, madd, storeFirstLanes } from './vector';

// GELU(x) = x·Φ(x), Φ the standard normal CDF. With z = |x|/√2 the tail
//   Φ(−|x|) = erfc(z)/2,   erfc(z) ≈ t·exp(−z² + P(t)),  t = 1/(1 + z/2)
// (the Chebyshev fit of Numerical Recipes' erfcc, fractional error < 1.2e-7 for all z ≥ 0), so
//   GELU(x) = x·Φ(−|x|)        for x < 0
//           = x − x·Φ(−|x|)    for x ≥ 0
// Working with the tail keeps it accurate for large |x| (no 1 + erf cancellation): absolute
// error ≤ 3e-7 in f32 over the whole range; GELU(x) = x exactly once Φ(−x) < 2⁻²⁵.
const P9: f32 = 0.17087277;
const P8: f32 = -0.82215223;
const P7: f32 = 1.48851587;
const P6: f32 = -1.13520398;
const P5: f32 = 0.27886807;
const P4: f32 = -0.18628806;
const P3: f32 = 0.09678418;
const P2: f32 = 0.37409196;
const P1: f32 = 1.00002368;
const P0: f32 = -1.26551223;
const SQRT1_2: f32 = 0.7071067811865476;

// @ts-ignore: decorator
@inline
export function geluF32x4(x: v128): v128 {
  const half = f32x4.splat(0.5);
  const z = f32x4.mul(f32x4.abs(x), f32x4.splat(SQRT1_2));
  const t = f32x4.div(f32x4.splat(1), madd(z, half, f32x4.splat(1)));
  let p = madd(f32x4.splat(P9), t, f32x4.splat(P8));
  p = madd(p, t, f32x4.splat(P7));
  p = madd(p, t, f32x4.splat(P6));
  p = madd(p, t, f32x4.splat(P5));
  p = madd(p, t, f32x4.splat(P4));
  p = madd(p, t, f32x4.splat(P3));
  p = madd(p, t, f32x4.splat(P2));
  p = madd(p, t, f32x4.splat(P1));
  p = madd(p, t, f32x4.splat(P0));
  const tail = f32x4.mul(f32x4.mul(half, t), expF32x4(f32x4.sub(p, f32x4.mul(z, z)))); // Φ(−|x|)
  const xTail = f32x4.mul(x, tail);
  return v128.bitselect(xTail, f32x4.sub(x, xTail), f32x4.lt(x, f32x4.splat(0)));
}

/** x[i] ← GELU(x[i]) in place for i < length (x: byte address). */
export function f32_gelu_wasmsimd(x: usize, length: i32): void {
  const end = x + (<usize>length << 2);
  const vectorEnd = x + (<usize>(length & ~3) << 2);
  for (; x < vectorEnd; x += 16) v128.store(x, geluF32x4(v128.load(x)));
  const rest = <i32>(end - x) >> 2;
  if (rest) storeFirstLanes(x, geluF32x4(loadFirstLanes(x, rest)), rest);
}
