import { maddF64 } from './vector';

// Kernels of Zero-TPrune's pruning layer (src/prune/wpr.ts holds the TypeScript oracles). They
// are BIT-IDENTICAL to the oracles, not merely close: every float64 reduction runs in the
// oracle's order (SIMD lanes hold independent sums, never parts of one sum), element-wise
// operations are correctly rounded in both languages, and a multiply-add is fused only where
// the product is exact (float32 × float32 fits a float64), where fused and unfused agree. So a
// ranking computed from these scores is the oracle's, ties included.
// Pointers are byte addresses; `n`, `c`, `m`, `dim`, `stride` count elements.

/**
 * The attention graph of the tokens alive[0..c) (int32 indices into P's n rows), rows
 * re-normalised: out[q, k] = f32(P[a_q, a_k] / S_q), S_q = Σ_j P[a_q, a_j] summed in float64
 * for j = 0…c−1 in order, the quotient in float64; a row with S_q ≤ 0 becomes f32(1/c).
 *   P: [n, n] float32 (row = query)   out: [c, c] float32
 * Four rows at a time: their four sums are independent chains (latency hidden), each in order.
 */
export function f32_restrict_graph(P: usize, n: i32, alive: usize, c: i32, out: usize): void {
  const rowBytes = <usize>n << 2;
  const outRowBytes = <usize>c << 2;
  let q = 0;
  for (; q + 4 <= c; q += 4) {
    const p0 = P + <usize>load<i32>(alive + (<usize>q << 2)) * rowBytes;
    const p1 = P + <usize>load<i32>(alive + (<usize>q << 2), 4) * rowBytes;
    const p2 = P + <usize>load<i32>(alive + (<usize>q << 2), 8) * rowBytes;
    const p3 = P + <usize>load<i32>(alive + (<usize>q << 2), 12) * rowBytes;
    const o0 = out + <usize>q * outRowBytes;
    const o1 = o0 + outRowBytes, o2 = o1 + outRowBytes, o3 = o2 + outRowBytes;
    let s0: f64 = 0, s1: f64 = 0, s2: f64 = 0, s3: f64 = 0;
    for (let k = 0; k < c; k++) {
      const col = <usize>load<i32>(alive + (<usize>k << 2)) << 2;
      const kb = <usize>k << 2;
      const v0 = load<f32>(p0 + col), v1 = load<f32>(p1 + col), v2 = load<f32>(p2 + col), v3 = load<f32>(p3 + col);
      store<f32>(o0 + kb, v0);
      store<f32>(o1 + kb, v1);
      store<f32>(o2 + kb, v2);
      store<f32>(o3 + kb, v3);
      s0 += <f64>v0;
      s1 += <f64>v1;
      s2 += <f64>v2;
      s3 += <f64>v3;
    }
    normaliseRow(o0, c, s0);
    normaliseRow(o1, c, s1);
    normaliseRow(o2, c, s2);
    normaliseRow(o3, c, s3);
  }
  for (; q < c; q++) {
    const p = P + <usize>load<i32>(alive + (<usize>q << 2)) * rowBytes;
    const o = out + <usize>q * outRowBytes;
    let s: f64 = 0;
    for (let k = 0; k < c; k++) {
      const v = load<f32>(p + (<usize>load<i32>(alive + (<usize>k << 2)) << 2));
      store<f32>(o + (<usize>k << 2), v);
      s += <f64>v;
    }
    normaliseRow(o, c, s);
  }
}

/** row[k] ← f32(f64(row[k]) / sum) for k < c, or f32(1/c) everywhere when sum ≤ 0 (or NaN). */
function normaliseRow(row: usize, c: i32, sum: f64): void {
  if (!(sum > 0)) {
    const uniform = f32x4.splat(<f32>(1.0 / <f64>c));
    let k = 0;
    for (; k + 4 <= c; k += 4) v128.store(row + (<usize>k << 2), uniform);
    for (; k < c; k++) store<f32>(row + (<usize>k << 2), <f32>(1.0 / <f64>c));
    return;
  }
  const sumV = f64x2.splat(sum);
  let k = 0;
  for (; k + 4 <= c; k += 4) {
    const p = row + (<usize>k << 2);
    const lo = f64x2.div(f64x2.promote_low_f32x4(v128.load64_zero(p)), sumV);
    const hi = f64x2.div(f64x2.promote_low_f32x4(v128.load64_zero(p + 8)), sumV);
    v128.store(p, v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
  }
  for (; k < c; k++) {
    const p = row + (<usize>k << 2);
    store<f32>(p, <f32>(<f64>load<f32>(p) / sum));
  }
}

/**
 * Weighted Page Rank, in place on s[0..n) (float64): s ← Pᵀ s, `iterations` times, or until
 * ‖Δs‖₁ < tolerance (≤ 0: never). Returns the steps taken. next: [n] float64 scratch.
 *   next[k] = Σ over groups of four query rows q…q+3 (in order) of
 *             (((P[q,k]·s[q] + P[q+1,k]·s[q+1]) + P[q+2,k]·s[q+2]) + P[q+3,k]·s[q+3])
 * with a short last group padded by row n − 1 at weight 0: the oracle's exact order. Four
 * columns per pass keep their running sums in registers; P is read down the columns.
 *   P: [n, n] float32, row-stochastic (row = query)
 */
export function f64_weighted_page_rank(P: usize, n: i32, s: usize, iterations: i32, next: usize, tolerance: f64): i32 {
  const rowBytes = <usize>n << 2;
  const full = n & ~3; // rows in complete groups of four
  const last = n - 1;
  // The short last group: rows q…q+3 clamped to n − 1, weights 0 past n.
  const tq1 = min(full + 1, last), tq2 = min(full + 2, last), tq3 = min(full + 3, last);
  for (let t = 0; t < iterations; t++) {
    const w0: f64 = full < n ? load<f64>(s + (<usize>full << 3)) : 0;
    const w1: f64 = full + 1 < n ? load<f64>(s + (<usize>(full + 1) << 3)) : 0;
    const w2: f64 = full + 2 < n ? load<f64>(s + (<usize>(full + 2) << 3)) : 0;
    const w3: f64 = full + 3 < n ? load<f64>(s + (<usize>(full + 3) << 3)) : 0;
    let k = 0;
    for (; k + 4 <= n; k += 4) {
      const col = P + (<usize>k << 2);
      let accLo = f64x2.splat(0), accHi = f64x2.splat(0);
      let r = col;
      let sq = s;
      for (let q = 0; q < full; q += 4, r += rowBytes << 2, sq += 32) {
        const v0 = v128.load64_splat(sq), v1 = v128.load64_splat(sq, 8);
        const v2 = v128.load64_splat(sq, 16), v3 = v128.load64_splat(sq, 24);
        const r1 = r + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
        let lo = f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r)), v0);
        let hi = f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r, 8)), v0);
        lo = f64x2.add(lo, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r1)), v1));
        hi = f64x2.add(hi, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r1, 8)), v1));
        lo = f64x2.add(lo, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r2)), v2));
        hi = f64x2.add(hi, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r2, 8)), v2));
        lo = f64x2.add(lo, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r3)), v3));
        hi = f64x2.add(hi, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r3, 8)), v3));
        accLo = f64x2.add(accLo, lo);
        accHi = f64x2.add(accHi, hi);
      }
      if (full < n) {
        const v0 = f64x2.splat(w0), v1 = f64x2.splat(w1), v2 = f64x2.splat(w2), v3 = f64x2.splat(w3);
        const r0 = col + <usize>full * rowBytes;
        const r1 = col + <usize>tq1 * rowBytes, r2 = col + <usize>tq2 * rowBytes, r3 = col + <usize>tq3 * rowBytes;
        let lo = f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r0)), v0);
        let hi = f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r0, 8)), v0);
        lo = f64x2.add(lo, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r1)), v1));
        hi = f64x2.add(hi, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r1, 8)), v1));
        lo = f64x2.add(lo, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r2)), v2));
        hi = f64x2.add(hi, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r2, 8)), v2));
        lo = f64x2.add(lo, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r3)), v3));
        hi = f64x2.add(hi, f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(r3, 8)), v3));
        accLo = f64x2.add(accLo, lo);
        accHi = f64x2.add(accHi, hi);
      }
      v128.store(next + (<usize>k << 3), accLo);
      v128.store(next + (<usize>k << 3), accHi, 16);
    }
    for (; k < n; k++) { // the last n mod 4 columns, one at a time in the same order
      const col = P + (<usize>k << 2);
      let acc: f64 = 0;
      let r = col;
      let sq = s;
      for (let q = 0; q < full; q += 4, r += rowBytes << 2, sq += 32) {
        acc += <f64>load<f32>(r) * load<f64>(sq) + <f64>load<f32>(r + rowBytes) * load<f64>(sq, 8)
          + <f64>load<f32>(r + 2 * rowBytes) * load<f64>(sq, 16) + <f64>load<f32>(r + 3 * rowBytes) * load<f64>(sq, 24);
      }
      if (full < n) {
        acc += <f64>load<f32>(col + <usize>full * rowBytes) * w0 + <f64>load<f32>(col + <usize>tq1 * rowBytes) * w1
          + <f64>load<f32>(col + <usize>tq2 * rowBytes) * w2 + <f64>load<f32>(col + <usize>tq3 * rowBytes) * w3;
      }
      store<f64>(next + (<usize>k << 3), acc);
    }
    if (tolerance > 0) {
      let change: f64 = 0;
      for (let i = 0; i < n; i++) {
        const p = <usize>i << 3;
        const v = load<f64>(next + p);
        change += Math.abs(v - load<f64>(s + p));
        store<f64>(s + p, v);
      }
      if (change < tolerance) return t + 1;
    } else {
      memory.copy(s, next, <usize>n << 3);
    }
  }
  return iterations;
}

/**
 * The S-stage match (Zero-TPrune): with u_j the feature row of token order[j] scaled to unit
 * length and rounded to float32 (u = f32(f·(1/√Σf²)), the sum of squares in float64 in order;
 * a zero row stays 0),
 *   best[order[i]] = max_{j < bCount} Σ_d u_i[d]·u_j[d]   for bCount ≤ i < m
 * (dot products in float64 summed over d in order; best is float64, indexed by token; other
 * entries untouched).
 *   features: row t at features + t·stride floats, `dim` floats   order: [m] int32
 *   work: float64 scratch of (m + 4)·dim values: the A rows u_i [m − bCount][dim], then the B
 *         rows as columns in panels of 4 [⌈bCount/4⌉][dim][4] (the last panel padded with
 *         copies of its last column, which leaves every max unchanged)
 * Tiles of 4 A rows × 4 B columns: 8 float64x2 running sums, one per (row, column pair).
 */
export function f64_max_cosine(
  features: usize, stride: i32, dim: i32, order: usize, m: i32, bCount: i32, work: usize, best: usize,
): void {
  const aRows = m - bCount;
  if (aRows <= 0) return;
  if (bCount <= 0) { // a max over nothing
    for (let i = 0; i < aRows; i++) store<f64>(best + (<usize>load<i32>(order + (<usize>(bCount + i) << 2)) << 3), -Infinity);
    return;
  }
  const dimBytes = <usize>dim << 3;
  const aBase = work;
  const bBase = work + <usize>aRows * dimBytes;
  const panels = (bCount + 3) >> 2;
  const panelBytes = dimBytes << 2;

  // Unit rows, four at a time (four independent sums of squares), into their packed places.
  for (let j = 0; j < m; j += 4) {
    const j1 = min(j + 1, m - 1), j2 = min(j + 2, m - 1), j3 = min(j + 3, m - 1);
    const f0 = featureRow(features, stride, order, j), f1 = featureRow(features, stride, order, j1);
    const f2 = featureRow(features, stride, order, j2), f3 = featureRow(features, stride, order, j3);
    let s0: f64 = 0, s1: f64 = 0, s2: f64 = 0, s3: f64 = 0;
    for (let d = 0; d < dim; d++) {
      const o = <usize>d << 2;
      const x0 = <f64>load<f32>(f0 + o), x1 = <f64>load<f32>(f1 + o), x2 = <f64>load<f32>(f2 + o), x3 = <f64>load<f32>(f3 + o);
      s0 += x0 * x0;
      s1 += x1 * x1;
      s2 += x2 * x2;
      s3 += x3 * x3;
    }
    writeUnit(f0, dim, s0, j, bCount, aBase, bBase, dimBytes);
    if (j + 1 < m) writeUnit(f1, dim, s1, j1, bCount, aBase, bBase, dimBytes);
    if (j + 2 < m) writeUnit(f2, dim, s2, j2, bCount, aBase, bBase, dimBytes);
    if (j + 3 < m) writeUnit(f3, dim, s3, j3, bCount, aBase, bBase, dimBytes);
  }
  // Pad the last B panel with its last real column.
  const lastPanel = bBase + <usize>(panels - 1) * panelBytes;
  const lastLane = <usize>((bCount - 1) & 3) << 3;
  for (let lane = (bCount & 3) == 0 ? 4 : bCount & 3; lane < 4; lane++) {
    for (let d = 0; d < dim; d++) {
      const p = lastPanel + (<usize>d << 5);
      store<f64>(p + (<usize>lane << 3), load<f64>(p + lastLane));
    }
  }

  for (let i = 0; i < aRows; i += 4) {
    const a0 = aBase + <usize>i * dimBytes;
    const a1 = aBase + <usize>min(i + 1, aRows - 1) * dimBytes;
    const a2 = aBase + <usize>min(i + 2, aRows - 1) * dimBytes;
    const a3 = aBase + <usize>min(i + 3, aRows - 1) * dimBytes;
    let m0 = f64x2.splat(-Infinity), m1 = m0, m2 = m0, m3 = m0;
    for (let p = 0; p < panels; p++) {
      let b = bBase + <usize>p * panelBytes;
      let c0lo = f64x2.splat(0), c0hi = c0lo, c1lo = c0lo, c1hi = c0lo;
      let c2lo = c0lo, c2hi = c0lo, c3lo = c0lo, c3hi = c0lo;
      for (let d: usize = 0; d < dimBytes; d += 8, b += 32) {
        const bLo = v128.load(b);
        const bHi = v128.load(b, 16);
        const x0 = v128.load64_splat(a0 + d);
        c0lo = maddF64(x0, bLo, c0lo);
        c0hi = maddF64(x0, bHi, c0hi);
        const x1 = v128.load64_splat(a1 + d);
        c1lo = maddF64(x1, bLo, c1lo);
        c1hi = maddF64(x1, bHi, c1hi);
        const x2 = v128.load64_splat(a2 + d);
        c2lo = maddF64(x2, bLo, c2lo);
        c2hi = maddF64(x2, bHi, c2hi);
        const x3 = v128.load64_splat(a3 + d);
        c3lo = maddF64(x3, bLo, c3lo);
        c3hi = maddF64(x3, bHi, c3hi);
      }
      m0 = f64x2.max(m0, f64x2.max(c0lo, c0hi));
      m1 = f64x2.max(m1, f64x2.max(c1lo, c1hi));
      m2 = f64x2.max(m2, f64x2.max(c2lo, c2hi));
      m3 = f64x2.max(m3, f64x2.max(c3lo, c3hi));
    }
    storeBest(best, order, bCount + i, m0);
    if (i + 1 < aRows) storeBest(best, order, bCount + i + 1, m1);
    if (i + 2 < aRows) storeBest(best, order, bCount + i + 2, m2);
    if (i + 3 < aRows) storeBest(best, order, bCount + i + 3, m3);
  }
}

// @ts-ignore: decorator
@inline
function featureRow(features: usize, stride: i32, order: usize, j: i32): usize {
  return features + (<usize>load<i32>(order + (<usize>j << 2)) * <usize>stride << 2);
}

/** u = f32(f·inv) as float64, into A row j − bCount or B panel column j. */
function writeUnit(f: usize, dim: i32, sumSquares: f64, j: i32, bCount: i32, aBase: usize, bBase: usize, dimBytes: usize): void {
  const inv: f64 = sumSquares > 0 ? 1.0 / Math.sqrt(sumSquares) : 0;
  let dst: usize, step: usize;
  if (j < bCount) {
    dst = bBase + <usize>(j >> 2) * (dimBytes << 2) + (<usize>(j & 3) << 3);
    step = 32;
  } else {
    dst = aBase + <usize>(j - bCount) * dimBytes;
    step = 8;
  }
  for (let d = 0; d < dim; d++, dst += step) {
    store<f64>(dst, <f64><f32>(<f64>load<f32>(f + (<usize>d << 2)) * inv));
  }
}

// @ts-ignore: decorator
@inline
function storeBest(best: usize, order: usize, j: i32, v: v128): void {
  const token = <usize>load<i32>(order + (<usize>j << 2));
  store<f64>(best + (token << 3), Math.max(f64x2.extract_lane(v, 0), f64x2.extract_lane(v, 1)));
}
