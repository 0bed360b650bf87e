/**
 * Vector helpers shared by the kernels: the fused-or-not multiply-add that distinguishes the
 * two builds, loads and stores of the first 1…3 lanes (row tails), and exp over f32x4.
 */

/**
 * a·b + c per lane. The relaxed build (`--enable relaxed-simd`) emits `f32x4.relaxed_madd`
 * (an FMA on x86 with FMA3); the plain SIMD build a mul and an add.
 */
// @ts-ignore: decorator
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** The first `count` (0…3) floats at p in the low lanes, zeros above. */
// @ts-ignore: decorator
@inline
export function loadFirstLanes(p: usize, count: i32): v128 {
  if (count == 0) return f32x4.splat(0);
  if (count == 1) return v128.load32_zero(p);
  const pair = v128.load64_zero(p);
  return count == 2 ? pair : v128.load32_lane(p, pair, 2, 8);
}

/** Stores the low `count` (0…3) lanes of v at p. */
// @ts-ignore: decorator
@inline
export function storeFirstLanes(p: usize, v: v128, count: i32): void {
  if (count & 2) {
    v128.store64_lane(p, v, 0);
    if (count & 1) v128.store32_lane(p, v, 2, 8);
  } else if (count & 1) {
    v128.store32_lane(p, v, 0);
  }
}

/** All-ones in the low `count` (0…4) lanes, zeros above. */
// @ts-ignore: decorator
@inline
export function laneMask(count: i32): v128 {
  return i32x4.gt_s(i32x4.splat(count), i32x4(0, 1, 2, 3));
}

// exp(y) = 2ⁿ · exp(r), n = round(y·log₂e), r = y − n·ln2 ∈ [−ln2/2, ln2/2] (Cody–Waite split of
// ln2), exp(r) by the Cephes expf polynomial (≈ 1 ulp). Inputs below −87.33 (where 2ⁿ would
// leave the normal range) give exactly 0; inputs are clamped at 88 (exp(88) ≈ 1.65e38).
const EXP_MIN: f32 = -87.33654475;
const EXP_MAX: f32 = 88.0;
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;

// @ts-ignore: decorator
@inline
export function expF32x4(y: v128): v128 {
  const clamped = f32x4.pmax(f32x4.pmin(y, f32x4.splat(EXP_MAX)), f32x4.splat(EXP_MIN));
  const n = f32x4.nearest(f32x4.mul(clamped, f32x4.splat(LOG2E)));
  let r = f32x4.sub(clamped, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = madd(f32x4.splat(1.9875691500e-4), r, f32x4.splat(1.3981999507e-3));
  p = madd(p, r, f32x4.splat(8.3334519073e-3));
  p = madd(p, r, f32x4.splat(4.1665795894e-2));
  p = madd(p, r, f32x4.splat(1.6666665459e-1));
  p = madd(p, r, f32x4.splat(5.0000001201e-1));
  const expR = f32x4.add(madd(p, f32x4.mul(r, r), r), f32x4.splat(1));
  const twoToN = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.and(f32x4.mul(expR, twoToN), f32x4.ge(y, f32x4.splat(EXP_MIN)));
}

/**
 * a·b + c per float64 lane: f64x2.relaxed_madd in the relaxed build, mul + add otherwise. Use
 * it only where a·b is exact (e.g. both factors are float32 values): then fused and unfused
 * results are identical and both builds agree bit for bit.
 */
// @ts-ignore: decorator
@inline
export function maddF64(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f64x2.relaxed_madd(a, b, c);
  return f64x2.add(f64x2.mul(a, b), c);
}
