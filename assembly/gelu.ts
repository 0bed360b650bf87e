import { X0, X1, X2, X3, X4, X5, exp2Fraction, loadFirstLanes, madd, storeFirstLanes } from './vector';

// GELU(x) = x·Φ(x) = relu(x) − T(|x|),  T(a) = a·Φ(−a)  (Φ the standard normal CDF).
// Working with the tail T keeps every rounding relative to a small quantity (no 1 + erf
// cancellation, no x·(½ + …) amplification for large |x|); only the final subtraction rounds at
// the scale of x. With a = min(|x|, 5.6):
//   T(a) = 2^(−a²·log₂e/2) · R(a),   R(a) = a·(P1 + P2·a + P3·a²) / (1 + Q1·a + Q2·a² + Q3·a³)
// where R approximates a·Φ(−a)·e^(a²/2) (a Mills-ratio form, smooth and saturating) as a
// (3, 3) rational fitted by weighted minimax: |T error| ≤ 6.7e-8 on [0, 5.6]; the Gaussian
// factor is 2^w with w = −a²·log₂e/2 = n + f, 2^f by the degree-5 polynomial of vector.ts
// (relative 7.4e-8), 2ⁿ added to the exponent field. Beyond 5.6, T(5.6) ≈ 6e-8 stands in for
// T(|x|) < 6e-8, so GELU(x) = x exactly for large x and |GELU(x)| < 1e-7 for x ≪ 0.
// Result: absolute error ≤ 2.5e-7 against the float64 GELU over all finite f32 inputs (mostly
// the final rounding at |x| ≈ 4…5.6), in both builds (fused or unfused multiply-adds);
// GELU(±0) = 0. No division chain: one div, a short exp, two cubic Horner chains side by side.
const CLAMP: f32 = 5.6;
const HALF_NEG_LOG2E: f32 = -0.7213475204444817; // −log₂(e)/2
const ROUND_MAGIC: f32 = 12582912.0; // 1.5·2²³: w + magic rounds w to an integer in the low bits
const P1: f32 = 0.5000031590461731;
const P2: f32 = 0.2282736748456955;
const P3: f32 = 0.04451249912381172;
const Q1: f32 = 1.2545279264450073;
const Q2: f32 = 0.5895047187805176;
const Q3: f32 = 0.110300712287426;
// 2^f on [−½, ½]: the coefficients X0…X5 of vector.ts

/** The constants, each splatted to 16 bytes (see vector.ts: loads beat v128.const in V8). */
const GELU_TABLE = memory.data<f32>([
  CLAMP, CLAMP, CLAMP, CLAMP, // 0
  HALF_NEG_LOG2E, HALF_NEG_LOG2E, HALF_NEG_LOG2E, HALF_NEG_LOG2E, // 16
  ROUND_MAGIC, ROUND_MAGIC, ROUND_MAGIC, ROUND_MAGIC, // 32
  P3, P3, P3, P3, P2, P2, P2, P2, P1, P1, P1, P1, // 48, 64, 80
  Q3, Q3, Q3, Q3, Q2, Q2, Q2, Q2, Q1, Q1, Q1, Q1, 1, 1, 1, 1, // 96, 112, 128, 144
  X5, X5, X5, X5, X4, X4, X4, X4, X3, X3, X3, X3, // 160, 176, 192
  X2, X2, X2, X2, X1, X1, X1, X1, X0, X0, X0, X0, // 208, 224, 240
], 16);
/** 0x7fffffff in every lane (|x| = x & mask: V8 would build the mask in 2 instructions per use). */
const ABS_MASK = memory.data<i32>([0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff], 16);

// @ts-ignore: decorator
@inline
export function geluF32x4(x: v128): v128 {
  const T = GELU_TABLE;
  const a = f32x4.pmin(v128.and(x, v128.load(ABS_MASK)), v128.load(T));
  // Gaussian factor 2^w, w = −a²·log₂e/2 ∈ [−22.7, 0]
  const w = f32x4.mul(f32x4.mul(a, v128.load(T, 16)), a);
  const magic = v128.load(T, 32);
  const t = f32x4.add(w, magic);
  const f = f32x4.sub(w, f32x4.sub(t, magic)); // exact, ∈ [−½, ½]
  const gauss = i32x4.add(exp2Fraction(f, T + 160), i32x4.shl(t, 23));
  // R(a) = a·P(a)/Q(a)
  let p = madd(v128.load(T, 48), a, v128.load(T, 64));
  p = madd(p, a, v128.load(T, 80));
  let q = madd(v128.load(T, 96), a, v128.load(T, 112));
  q = madd(q, a, v128.load(T, 128));
  q = madd(q, a, v128.load(T, 144));
  const tail = f32x4.mul(f32x4.mul(gauss, a), f32x4.div(p, q));
  return f32x4.sub(f32x4.pmax(x, f32x4.splat(0)), tail);
}

/** x[i] ← GELU(x[i]) in place for i < length (x: byte address). */
export function f32_gelu_wasmsimd(x: usize, length: i32): void {
  const end = x + (<usize>length << 2);
  const vectorEnd = x + (<usize>(length & ~3) << 2);
  for (; x < vectorEnd; x += 16) v128.store(x, geluF32x4(v128.load(x)));
  const rest = <i32>(end - x) >> 2;
  if (rest) storeFirstLanes(x, geluF32x4(loadFirstLanes(x, rest)), rest);
}
