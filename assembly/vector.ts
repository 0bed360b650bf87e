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

// Constant tables. Kernels read their f32x4 constants with v128.load from splatted tables in
// static memory: V8 (x64) builds each v128.const from immediates in 3 instructions, and a kernel
// whose constants outnumber the free registers spills and rebuilds them; a load is 1 instruction.

// exp(y) = 2^w, w = y·log₂e = n + f with n = round(w) (the float "magic number" rounding: the
// low bits of w + 1.5·2²³ hold n) and f ∈ [−½, ½]; 2^f by a degree-5 minimax polynomial
// (relative error 7.4e-8); 2ⁿ is added to the exponent field. The rounding of w adds a relative
// error ≈ |y|·2⁻²⁵: ≤ 3e-7 for |y| ≤ 10, and an absolute error ≤ e⁻¹·2⁻²⁵ ≈ 1.1e-8 for y ≤ 0
// (softmax's range). Inputs below −87 give exactly 0 (the true value is < 1.7e-38); inputs are
// clamped at 88 (exp(88) ≈ 1.65e38).
const EXP_MIN: f32 = -87.0;
const EXP_MAX: f32 = 88.0;
const LOG2E: f32 = 1.44269504088896341;
const ROUND_MAGIC: f32 = 12582912.0; // 1.5·2²³
// 2^f ≈ X0 + f·(X1 + f·(X2 + f·(X3 + f·(X4 + f·X5)))) on [−½, ½]
export const X0: f32 = 1.0000001192092896;
export const X1: f32 = 0.6931469440460205;
export const X2: f32 = 0.24022120237350464;
export const X3: f32 = 0.0555071160197258;
export const X4: f32 = 0.009675559587776661;
export const X5: f32 = 0.0013276932295411825;

// Offsets into EXP_TABLE (bytes).
const EXP_TABLE = memory.data<f32>([
  EXP_MIN, EXP_MIN, EXP_MIN, EXP_MIN, // 0
  EXP_MAX, EXP_MAX, EXP_MAX, EXP_MAX, // 16
  LOG2E, LOG2E, LOG2E, LOG2E, // 32
  ROUND_MAGIC, ROUND_MAGIC, ROUND_MAGIC, ROUND_MAGIC, // 48
  X5, X5, X5, X5, X4, X4, X4, X4, X3, X3, X3, X3, // 64, 80, 96
  X2, X2, X2, X2, X1, X1, X1, X1, X0, X0, X0, X0, // 112, 128, 144
], 16);

/** 2^f for f ∈ [−½, ½] (relative error ≤ 7.4e-8), with the coefficient table at `table` (X5 first). */
// @ts-ignore: decorator
@inline
export function exp2Fraction(f: v128, table: usize): v128 {
  let e = madd(v128.load(table), f, v128.load(table, 16));
  e = madd(e, f, v128.load(table, 32));
  e = madd(e, f, v128.load(table, 48));
  e = madd(e, f, v128.load(table, 64));
  return madd(e, f, v128.load(table, 80));
}

// @ts-ignore: decorator
@inline
export function expF32x4(y: v128): v128 {
  const T = EXP_TABLE;
  const clamped = f32x4.pmax(f32x4.pmin(y, v128.load(T, 16)), v128.load(T));
  const w = f32x4.mul(clamped, v128.load(T, 32));
  const magic = v128.load(T, 48);
  const t = f32x4.add(w, magic); // low bits: n = round(w)
  const f = f32x4.sub(w, f32x4.sub(t, magic)); // exact
  const e = i32x4.add(exp2Fraction(f, T + 64), i32x4.shl(t, 23)); // 2^f · 2ⁿ
  return v128.and(e, f32x4.ge(y, v128.load(T)));
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

/** The float64 values of the two high float32 lanes of v (f64x2.promote_low_f32x4 takes the low two). */
// @ts-ignore: decorator
@inline
export function promoteHigh(v: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1));
}
