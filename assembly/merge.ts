// Kernels of the merging and fusion methods ToMe, MCTF and PiToMe (src/prune/merge-kernels.ts holds
// the TypeScript oracles). Like prune.ts, they are BIT-IDENTICAL to the oracles: every reduction
// (float64, or float32 for the cosines) runs in the oracle's order (SIMD lanes hold independent
// sums, never parts of one sum), a product that is not exact is a separate multiply and add,
// never fused, and element-wise operations are correctly rounded in both languages. So the scores, rankings and
// merged tokens computed here are the oracle's, ties included.
// Pointers are byte addresses; counts and strides are in elements.
import { promoteHigh } from './vector';

/**
 * The head-mean keys of t tokens: out[i, j] = f32(Σ_h K_h[i, j]) / H, summed in float32 from 0
 * over h in order, then divided in float32.
 *   qkv: row i at qkv + i·stride floats, head h's key at keyOffset + h·c   out: [t, c] float32
 */
export function f32_head_mean_keys(qkv: usize, stride: i32, keyOffset: i32, heads: i32, c: i32, t: i32, out: usize): void {
  const divisor = f32x4.splat(<f32>heads);
  const headBytes = <usize>c << 2;
  for (let i = 0; i < t; i++) {
    const row = qkv + ((<usize>i * <usize>stride + <usize>keyOffset) << 2);
    const o = out + ((<usize>i * <usize>c) << 2);
    let j = 0;
    for (; j + 4 <= c; j += 4) {
      const jb = <usize>j << 2;
      let acc = f32x4.splat(0);
      let k = row + jb;
      for (let h = 0; h < heads; h++, k += headBytes) acc = f32x4.add(acc, v128.load(k));
      v128.store(o + jb, f32x4.div(acc, divisor));
    }
    for (; j < c; j++) {
      const jb = <usize>j << 2;
      let acc: f32 = 0;
      let k = row + jb;
      for (let h = 0; h < heads; h++, k += headBytes) acc += load<f32>(k);
      store<f32>(o + jb, acc / <f32>heads);
    }
  }
}

/**
 * inv[i] = 1/√Σ_d f_i[d]² for rows i of f [rows, c] (float32, contiguous), the sum in float64
 * over d in order (0 for a zero row): four rows at a time, one float64x2 lane per row, so that
 * four independent sums share the loop (each in order: the values of the plain loop). Four
 * values of each row are loaded at once and interleaved row by row (lanes: rows i, i + 1).
 *   inv: [rows] float64
 */
function inverseNorms(f: usize, rows: i32, c: i32, inv: usize): void {
  const rowBytes = <usize>c << 2;
  const vectorBytes = rowBytes & ~(<usize>15);
  let i = 0;
  for (; i + 4 <= rows; i += 4) {
    const r0 = f + <usize>i * rowBytes;
    const r1 = r0 + rowBytes;
    const r2 = r1 + rowBytes;
    const r3 = r2 + rowBytes;
    let s01 = f64x2.splat(0), s23 = s01;
    let d: usize = 0;
    for (; d < vectorBytes; d += 16) {
      const x0 = v128.load(r0 + d), x1 = v128.load(r1 + d), x2 = v128.load(r2 + d), x3 = v128.load(r3 + d);
      const p = i32x4.shuffle(x0, x1, 0, 4, 1, 5); // x0[d], x1[d], x0[d+1], x1[d+1]
      const q = i32x4.shuffle(x0, x1, 2, 6, 3, 7);
      const u = i32x4.shuffle(x2, x3, 0, 4, 1, 5);
      const w = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
      s01 = addSquare(s01, f64x2.promote_low_f32x4(p));
      s23 = addSquare(s23, f64x2.promote_low_f32x4(u));
      s01 = addSquare(s01, promoteHigh(p));
      s23 = addSquare(s23, promoteHigh(u));
      s01 = addSquare(s01, f64x2.promote_low_f32x4(q));
      s23 = addSquare(s23, f64x2.promote_low_f32x4(w));
      s01 = addSquare(s01, promoteHigh(q));
      s23 = addSquare(s23, promoteHigh(w));
    }
    for (; d < rowBytes; d += 4) {
      s01 = addSquare(s01, f64x2.promote_low_f32x4(f32x4.replace_lane(v128.load32_splat(r0 + d), 1, load<f32>(r1 + d))));
      s23 = addSquare(s23, f64x2.promote_low_f32x4(f32x4.replace_lane(v128.load32_splat(r2 + d), 1, load<f32>(r3 + d))));
    }
    storeInverseRoot(inv + (<usize>i << 3), f64x2.extract_lane(s01, 0));
    storeInverseRoot(inv + (<usize>(i + 1) << 3), f64x2.extract_lane(s01, 1));
    storeInverseRoot(inv + (<usize>(i + 2) << 3), f64x2.extract_lane(s23, 0));
    storeInverseRoot(inv + (<usize>(i + 3) << 3), f64x2.extract_lane(s23, 1));
  }
  for (; i < rows; i++) {
    const r = f + <usize>i * rowBytes;
    let sumSquares: f64 = 0;
    for (let d: usize = 0; d < rowBytes; d += 4) {
      const x = <f64>load<f32>(r + d);
      sumSquares += x * x;
    }
    storeInverseRoot(inv + (<usize>i << 3), sumSquares);
  }
}

/** s + x·x in both float64 lanes. */
// @ts-ignore: decorator
@inline
function addSquare(s: v128, x: v128): v128 {
  return f64x2.add(s, f64x2.mul(x, x));
}

// @ts-ignore: decorator
@inline
function storeInverseRoot(p: usize, sumSquares: f64): void {
  store<f64>(p, sumSquares > 0 ? 1.0 / Math.sqrt(sumSquares) : 0);
}

/**
 * The unit rows in float32: u_i = f32(f64(f_i)·inv[i]) for rows i of f [rows, c], inv from
 * inverseNorms, written contiguously to dst [rows, c] (four values at a time, two per float64x2).
 */
function unitRows(f: usize, rows: i32, c: i32, inv: usize, dst: usize): void {
  const rowBytes = <usize>c << 2;
  const vectorBytes = rowBytes & ~(<usize>15);
  for (let i = 0; i < rows; i++) {
    const scale = load<f64>(inv + (<usize>i << 3));
    const s = f64x2.splat(scale);
    const src = f + <usize>i * rowBytes;
    const out = dst + <usize>i * rowBytes;
    let d: usize = 0;
    for (; d < vectorBytes; d += 16) {
      const x = v128.load(src + d);
      const lo = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(x), s));
      const hi = f32x4.demote_f64x2_zero(f64x2.mul(promoteHigh(x), s));
      v128.store(out + d, i32x4.shuffle(lo, hi, 0, 1, 4, 5));
    }
    for (; d < rowBytes; d += 4) store<f32>(out + d, <f32>(<f64>load<f32>(src + d) * scale));
  }
}

/**
 * Rows first, first + step, … (count of them) of u [·, c] as the columns of panels of eight,
 * dst [⌈count/8⌉][c][8]; the last panel is padded with copies of the last column. Four columns
 * at a time: 4×4 blocks transposed in registers.
 */
function packPanels(u: usize, c: i32, first: i32, step: i32, count: i32, dst: usize): void {
  const rowBytes = <usize>c << 2;
  const vectorBytes = rowBytes & ~(<usize>15);
  const panelBytes = rowBytes << 3;
  const columns = (count + 7) & ~7;
  for (let j = 0; j < columns; j += 4) {
    const r0 = panelColumn(u, rowBytes, first, step, j, count);
    const r1 = panelColumn(u, rowBytes, first, step, j + 1, count);
    const r2 = panelColumn(u, rowBytes, first, step, j + 2, count);
    const r3 = panelColumn(u, rowBytes, first, step, j + 3, count);
    const base = dst + <usize>(j >> 3) * panelBytes + (<usize>(j & 7) << 2);
    let d: usize = 0;
    for (; d < vectorBytes; d += 16) {
      const x0 = v128.load(r0 + d), x1 = v128.load(r1 + d), x2 = v128.load(r2 + d), x3 = v128.load(r3 + d);
      const t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5), t1 = i32x4.shuffle(x0, x1, 2, 6, 3, 7);
      const t2 = i32x4.shuffle(x2, x3, 0, 4, 1, 5), t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
      const o = base + (d << 3); // value d of the four rows: panel row d (32 bytes each)
      v128.store(o, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
      v128.store(o, i32x4.shuffle(t0, t2, 2, 3, 6, 7), 32);
      v128.store(o, i32x4.shuffle(t1, t3, 0, 1, 4, 5), 64);
      v128.store(o, i32x4.shuffle(t1, t3, 2, 3, 6, 7), 96);
    }
    for (; d < rowBytes; d += 4) {
      const o = base + (d << 3);
      store<f32>(o, load<f32>(r0 + d));
      store<f32>(o, load<f32>(r1 + d), 4);
      store<f32>(o, load<f32>(r2 + d), 8);
      store<f32>(o, load<f32>(r3 + d), 12);
    }
  }
}

/** The row of u that is column j of packPanels' panels (the last one past the end). */
// @ts-ignore: decorator
@inline
function panelColumn(u: usize, rowBytes: usize, first: i32, step: i32, j: i32, count: i32): usize {
  return u + <usize>(first + step * min(j, count - 1)) * rowBytes;
}

/**
 * out[i, j] = Σ_d a_i[d]·b_j[d] in float32, summed over d in order (separate multiply and add),
 * stored as float64, for rows i in [0, aCount) and columns j in [firstColumn… by panels, bCount);
 * out has `outStride` values per row. Columns from panel ⌊firstColumn(i)/8⌋ on, where
 * firstColumn(i) = 0, or the row block's own first row when `upper` (the upper triangle by
 * blocks, enough for a symmetric matrix that the caller mirrors).
 *   a: aCount float32 rows of c values, aRowBytes apart   b: [⌈bCount/8⌉][c][8] float32 panels (the last one padded)
 * Tiles of 2 rows × 16 columns (two panels): 8 float32x4 running sums, one per (row, four
 * columns); measured faster than 4 × 8 (fewer broadcasts) and than 6 × 8 (spills).
 */
function dotTiles(a: usize, aRowBytes: usize, aCount: i32, b: usize, bCount: i32, c: i32, out: usize, outStride: i32, upper: bool): void {
  const rowBytes = <usize>c << 2;
  const panelBytes = rowBytes << 3;
  const panels = (bCount + 7) >> 3;
  for (let i = 0; i < aCount; i += 2) {
    const a0 = a + <usize>i * aRowBytes;
    const a1 = a + <usize>min(i + 1, aCount - 1) * aRowBytes;
    for (let p = upper ? i >> 3 : 0; p < panels; p += 2) {
      let bp = b + <usize>p * panelBytes;
      let bq = b + <usize>min(p + 1, panels - 1) * panelBytes;
      let c0 = f32x4.splat(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
      for (let d: usize = 0; d < rowBytes; d += 4, bp += 32, bq += 32) {
        const b0 = v128.load(bp), b1 = v128.load(bp, 16), b2 = v128.load(bq), b3 = v128.load(bq, 16);
        const x0 = v128.load32_splat(a0 + d);
        c0 = f32x4.add(c0, f32x4.mul(x0, b0));
        c1 = f32x4.add(c1, f32x4.mul(x0, b1));
        c2 = f32x4.add(c2, f32x4.mul(x0, b2));
        c3 = f32x4.add(c3, f32x4.mul(x0, b3));
        const x1 = v128.load32_splat(a1 + d);
        c4 = f32x4.add(c4, f32x4.mul(x1, b0));
        c5 = f32x4.add(c5, f32x4.mul(x1, b1));
        c6 = f32x4.add(c6, f32x4.mul(x1, b2));
        c7 = f32x4.add(c7, f32x4.mul(x1, b3));
      }
      const j = p << 3;
      const second = j + 8 < bCount;
      storeTileRow(out, outStride, i, j, min(8, bCount - j), c0, c1);
      if (second) storeTileRow(out, outStride, i, j + 8, min(8, bCount - j - 8), c2, c3);
      if (i + 1 < aCount) {
        storeTileRow(out, outStride, i + 1, j, min(8, bCount - j), c4, c5);
        if (second) storeTileRow(out, outStride, i + 1, j + 8, min(8, bCount - j - 8), c6, c7);
      }
    }
  }
}

/** Row i, columns j…j + columns − 1 (≤ 8) of out (float64) from the float32 lanes of lo, then hi. */
// @ts-ignore: decorator
@inline
function storeTileRow(out: usize, outStride: i32, i: i32, j: i32, columns: i32, lo: v128, hi: v128): void {
  const o = out + ((<usize>i * <usize>outStride + <usize>j) << 3);
  if (columns == 8) {
    v128.store(o, f64x2.promote_low_f32x4(lo));
    v128.store(o, promoteHigh(lo), 16);
    v128.store(o, f64x2.promote_low_f32x4(hi), 32);
    v128.store(o, promoteHigh(hi), 48);
    return;
  }
  store<f64>(o, <f64>f32x4.extract_lane(lo, 0));
  if (columns > 1) store<f64>(o, <f64>f32x4.extract_lane(lo, 1), 8);
  if (columns > 2) store<f64>(o, <f64>f32x4.extract_lane(lo, 2), 16);
  if (columns > 3) store<f64>(o, <f64>f32x4.extract_lane(lo, 3), 24);
  if (columns > 4) store<f64>(o, <f64>f32x4.extract_lane(hi, 0), 32);
  if (columns > 5) store<f64>(o, <f64>f32x4.extract_lane(hi, 1), 40);
  if (columns > 6) store<f64>(o, <f64>f32x4.extract_lane(hi, 2), 48);
}

/** Bytes of work f32_even_odd_cosines and f32_pairwise_cosines need for t rows of c values. */
export function f32_cosine_work_bytes(t: i32, c: i32): usize {
  return (<usize>t + 8) * (<usize>c << 2) * 2 + (<usize>t << 3);
}

/**
 * cos[i, j] = u_2i · u_2j+1 for the float32 unit rows u of metric [t, c] (float32, contiguous):
 * the even positions against the odd ones, summed in float32.  → out [⌈t/2⌉, ⌊t/2⌋] float64
 *   work: f32_cosine_work_bytes(t, c) bytes: the inverse norms, the unit rows, then the odd ones
 *   in panels of eight
 */
export function f32_even_odd_cosines(metric: usize, t: i32, c: i32, work: usize, out: usize): void {
  const nA = (t + 1) >> 1;
  const nB = t >> 1;
  if (nB == 0) return;
  const rowBytes = <usize>c << 2;
  const inv = work;
  const units = inv + (<usize>t << 3);
  const panels = units + <usize>t * rowBytes;
  inverseNorms(metric, t, c, inv);
  unitRows(metric, t, c, inv, units);
  packPanels(units, c, 1, 2, nB, panels);
  dotTiles(units, rowBytes << 1, nA, panels, nB, c, out, nB, false);
}

/**
 * cos[i, j] = u_i · u_j for the pairs j ≥ i of the float32 unit rows u of metric [n, c] (float32,
 * contiguous), summed in float32: out [n, n] float64 holds the upper triangle (and, in the
 * diagonal blocks, a few values below it); the rest is not written (cos is symmetric).
 *   work: f32_cosine_work_bytes(n, c) bytes
 */
export function f32_pairwise_cosines(metric: usize, n: i32, c: i32, work: usize, out: usize): void {
  if (n == 0) return;
  const rowBytes = <usize>c << 2;
  const inv = work;
  const units = inv + (<usize>n << 3);
  const panels = units + <usize>n * rowBytes;
  inverseNorms(metric, n, c, inv);
  unitRows(metric, n, c, inv, units);
  packPanels(units, c, 0, 1, n, panels);
  dotTiles(units, rowBytes, n, panels, n, c, out, n, true);
}

/**
 * Per row i of W [rows, cols] (float64) from `firstRow` on: best[i] = max_{j ≥ firstColumn} W[i, j]
 * and partner[i] = the first j reaching it (strict >, from −∞; 0 when no value beats −∞). Rows
 * before `firstRow`: −∞ and 0.   best: [rows] float64   partner: [rows] int32
 */
export function f64_row_argmax(W: usize, rows: i32, cols: i32, firstRow: i32, firstColumn: i32, best: usize, partner: usize): void {
  for (let i = 0; i < rows; i++) {
    let max: f64 = -Infinity;
    let arg = 0;
    if (i >= firstRow) {
      const row = W + ((<usize>i * <usize>cols) << 3);
      // The largest value, two lanes at a time: pmax(m, v) = m < v ? v : m is the loop's strict
      // update (a NaN is never taken), so `top` equals (==) the loop's maximum.
      let m = f64x2.splat(-Infinity);
      let j = firstColumn;
      for (; j + 2 <= cols; j += 2) m = f64x2.pmax(m, v128.load(row + (<usize>j << 3)));
      let top = f64x2.extract_lane(m, 0);
      if (top < f64x2.extract_lane(m, 1)) top = f64x2.extract_lane(m, 1);
      for (; j < cols; j++) {
        const v = load<f64>(row + (<usize>j << 3));
        if (top < v) top = v;
      }
      // The loop keeps the first value reaching the maximum: the first j equal to it (±0 alike).
      if (top > -Infinity) {
        arg = firstColumn;
        while (load<f64>(row + (<usize>arg << 3)) != top) arg++;
        max = load<f64>(row + (<usize>arg << 3));
      }
    }
    store<f64>(best + (<usize>i << 3), max);
    store<i32>(partner + (<usize>i << 2), arg);
  }
}

/**
 * indices[0..count) (int32) sorted in place by values[index] (float64) descending, ties by index
 * ascending: the order of JavaScript's sort with (p, q) => values[q] − values[p] || p − q on
 * values without NaN (the order is total, so any correct sort gives it). Insertion sort: the
 * counts here are a few hundred.
 */
export function i32_rank_descending(values: usize, indices: usize, count: i32): void {
  for (let k = 1; k < count; k++) {
    const index = load<i32>(indices + (<usize>k << 2));
    const value = load<f64>(values + (<usize>index << 3));
    let slot = k;
    while (slot > 0) {
      const before = load<i32>(indices + (<usize>(slot - 1) << 2));
      const v = load<f64>(values + (<usize>before << 3));
      if (v > value || (!(v < value) && before < index)) break; // `before` ranks first
      store<i32>(indices + (<usize>slot << 2), before);
      slot--;
    }
    store<i32>(indices + (<usize>slot << 2), index);
  }
}

/**
 * Per column j of W [rows, cols] (float64) from `firstColumn` on: best[j] = max W[i, j] over the
 * rows i = candidates[0..count) and partner[j] = the first such i in that order (strict >, from
 * −∞; 0 when no value beats −∞). Columns before `firstColumn`: −∞ and 0. The rows are visited
 * in the candidates' order for every column, so W is read along its rows.
 *   candidates: [count] int32   best: [cols] float64   partner: [cols] int32
 */
export function f64_column_argmax(
  W: usize, rows: i32, cols: i32, candidates: usize, count: i32, firstColumn: i32, best: usize, partner: usize,
): void {
  for (let j = 0; j < min(firstColumn, cols); j++) {
    store<f64>(best + (<usize>j << 3), -Infinity);
    store<i32>(partner + (<usize>j << 2), 0);
  }
  // Eight columns at a time, their maxima and rows in registers down the candidates: gt(v, b)
  // is the strict update (false for a NaN), and bitselect takes v and its row where it holds.
  let j = firstColumn;
  for (; j + 8 <= cols; j += 8) {
    let b0 = f64x2.splat(-Infinity), b1 = b0, b2 = b0, b3 = b0;
    let p0 = i64x2.splat(0), p1 = p0, p2 = p0, p3 = p0;
    for (let k = 0; k < count; k++) {
      const i = load<i32>(candidates + (<usize>k << 2));
      const at = W + ((<usize>i * <usize>cols + <usize>j) << 3);
      const row = i64x2.splat(i);
      const v0 = v128.load(at), v1 = v128.load(at, 16), v2 = v128.load(at, 32), v3 = v128.load(at, 48);
      const g0 = f64x2.gt(v0, b0), g1 = f64x2.gt(v1, b1), g2 = f64x2.gt(v2, b2), g3 = f64x2.gt(v3, b3);
      b0 = v128.bitselect(v0, b0, g0);
      b1 = v128.bitselect(v1, b1, g1);
      b2 = v128.bitselect(v2, b2, g2);
      b3 = v128.bitselect(v3, b3, g3);
      p0 = v128.bitselect(row, p0, g0);
      p1 = v128.bitselect(row, p1, g1);
      p2 = v128.bitselect(row, p2, g2);
      p3 = v128.bitselect(row, p3, g3);
    }
    const o = best + (<usize>j << 3);
    v128.store(o, b0);
    v128.store(o, b1, 16);
    v128.store(o, b2, 32);
    v128.store(o, b3, 48);
    const q = partner + (<usize>j << 2);
    v128.store(q, i32x4.shuffle(p0, p1, 0, 2, 4, 6));
    v128.store(q, i32x4.shuffle(p2, p3, 0, 2, 4, 6), 16);
  }
  for (; j < cols; j++) {
    let max: f64 = -Infinity;
    let arg = 0;
    for (let k = 0; k < count; k++) {
      const i = load<i32>(candidates + (<usize>k << 2));
      const v = load<f64>(W + ((<usize>i * <usize>cols + <usize>j) << 3));
      if (v > max) {
        max = v;
        arg = i;
      }
    }
    store<f64>(best + (<usize>j << 3), max);
    store<i32>(partner + (<usize>j << 2), arg);
  }
}

/**
 * MCTF's affinity, in place on W [nA, nB] holding the even/odd cosines (f32_even_odd_cosines):
 *   W[i, j] = s · info[2i] · info[2j + 1] · size[2i] · size[2j + 1]   (multiplied left to right)
 * with s = min(1, max(0, (W[i, j] + 1) / 2)) when `similarity`, else 1 (τ_sim = 1 or off; other
 * temperatures take a power, which stays in TypeScript).   info, size: [nA + nB] float64
 */
export function f64_mctf_affinity(W: usize, nA: i32, nB: i32, similarity: bool, info: usize, size: usize): void {
  const one = f64x2.splat(1);
  const zero = f64x2.splat(0);
  const half = f64x2.splat(0.5); // x / 2 = x · 0.5 exactly (one rounding of the same value)
  // min(1, max(0, v)) as pmin(pmax(v, 0), 1) (v < 0 ? 0 : v, then 1 < · ? 1 : ·): the same for
  // every v here, NaN included (kept by both), since v = (W + 1) · 0.5 is never −0.
  for (let i = 0; i < nA; i++) {
    const a = <usize>(2 * i) << 3;
    const infoA = load<f64>(info + a);
    const sizeA = load<f64>(size + a);
    const infoA2 = f64x2.splat(infoA);
    const sizeA2 = f64x2.splat(sizeA);
    const row = W + ((<usize>i * <usize>nB) << 3);
    let j = 0;
    for (; j + 2 <= nB; j += 2) {
      const p = row + (<usize>j << 3);
      const b = <usize>(2 * j) << 3; // info[2j + 1] and info[2j + 3]: the odd lanes of two loads
      const sim = similarity ? f64x2.pmin(f64x2.pmax(f64x2.mul(f64x2.add(v128.load(p), one), half), zero), one) : one;
      const infoB = i32x4.shuffle(v128.load(info + b), v128.load(info + b, 16), 2, 3, 6, 7);
      const sizeB = i32x4.shuffle(v128.load(size + b), v128.load(size + b, 16), 2, 3, 6, 7);
      v128.store(p, f64x2.mul(f64x2.mul(f64x2.mul(f64x2.mul(sim, infoA2), infoB), sizeA2), sizeB));
    }
    for (; j < nB; j++) {
      const p = row + (<usize>j << 3);
      const b = <usize>(2 * j + 1) << 3;
      const sim: f64 = similarity ? min<f64>(1, max<f64>(0, (load<f64>(p) + 1) / 2)) : 1;
      store<f64>(p, sim * infoA * load<f64>(info + b) * sizeA * load<f64>(size + b));
    }
  }
}

/**
 * Weighted pooling of rows of x [·, D] (float32) into `outRows` groups, entry by entry in order:
 *   sum[rows[e]] += weights[e]·x[positions[e]],  total[rows[e]] += weights[e]   (float64, from 0)
 *   out[g] = f32(sum[g] / total[g])
 *   positions, rows: [m] int32   weights: [m] float64   total: [outRows] float64 (written)
 *   out: [outRows, D] float32   work: (outRows + 1 + m) int32 scratch
 * The entries are first listed by group, in their order (a stable counting sort), so that each
 * group's sums stay in registers, eight columns at a time, and no [outRows, D] sum is stored.
 * A group of one entry whose weight w lies in [2⁻⁵⁰⁰, 2⁵⁰⁰] (ToMe's sizes, MCTF's attention ×
 * size) is its row plus +0 (the sum's 0 + w·x turns −0 into +0), so the division, most rows'
 * whole cost, is skipped with the same bits: neither w·x nor (w·x)/w can overflow or leave the
 * normal float64 range for a finite float32 x, so (w·x)/w is x·(1 + ε) with |ε| ≤ 2⁻⁵², which
 * rounds back to x in float32 (x's neighbours are at least 2⁻²⁴·|x| away, or 2⁻¹⁴⁹ if subnormal).
 */
export function f64_pool_rows(
  x: usize, D: i32, positions: usize, rows: usize, weights: usize, m: i32, outRows: i32, work: usize, total: usize, out: usize,
): void {
  const start = work; // [outRows + 1] first entry of each group in `byGroup`
  const byGroup = work + ((<usize>outRows + 1) << 2); // [m] entries grouped, in order within each group
  memory.fill(start, 0, (<usize>outRows + 1) << 2);
  for (let e = 0; e < m; e++) {
    const p = start + ((<usize>load<i32>(rows + (<usize>e << 2)) + 1) << 2);
    store<i32>(p, load<i32>(p) + 1);
  }
  for (let g = 0; g < outRows; g++) {
    const p = start + (<usize>g << 2);
    store<i32>(p + 4, load<i32>(p + 4) + load<i32>(p));
  }
  for (let e = 0; e < m; e++) { // place, moving start[g] on; afterwards start[g] is group g's end
    const p = start + (<usize>load<i32>(rows + (<usize>e << 2)) << 2);
    const slot = load<i32>(p);
    store<i32>(byGroup + (<usize>slot << 2), e);
    store<i32>(p, slot + 1);
  }
  const rowBytes = <usize>D << 2;
  let first = 0;
  for (let g = 0; g < outRows; g++) {
    const end = load<i32>(start + (<usize>g << 2));
    let tot: f64 = 0;
    for (let k = first; k < end; k++) tot += load<f64>(weights + (<usize>load<i32>(byGroup + (<usize>k << 2)) << 3));
    store<f64>(total + (<usize>g << 3), tot);
    const o = out + <usize>g * rowBytes;
    if (end - first == 1 && tot >= reinterpret<f64>(0x20b0000000000000) && tot <= reinterpret<f64>(0x5f30000000000000)) { // 2⁻⁵⁰⁰ … 2⁵⁰⁰
      const src = x + <usize>load<i32>(positions + (<usize>load<i32>(byGroup + (<usize>first << 2)) << 2)) * rowBytes;
      const zero = f32x4.splat(0);
      let d = 0;
      for (; d + 4 <= D; d += 4) v128.store(o + (<usize>d << 2), f32x4.add(v128.load(src + (<usize>d << 2)), zero));
      for (; d < D; d++) store<f32>(o + (<usize>d << 2), load<f32>(src + (<usize>d << 2)) + 0);
      first = end;
      continue;
    }
    const totV = f64x2.splat(tot);
    let d = 0;
    for (; d + 8 <= D; d += 8) {
      let s0 = f64x2.splat(0), s1 = s0, s2 = s0, s3 = s0;
      for (let k = first; k < end; k++) {
        const e = <usize>load<i32>(byGroup + (<usize>k << 2));
        const w = v128.load64_splat(weights + (e << 3));
        const src = x + <usize>load<i32>(positions + (e << 2)) * rowBytes + (<usize>d << 2);
        const lo = v128.load(src), hi = v128.load(src, 16);
        s0 = f64x2.add(s0, f64x2.mul(w, f64x2.promote_low_f32x4(lo)));
        s1 = f64x2.add(s1, f64x2.mul(w, promoteHigh(lo)));
        s2 = f64x2.add(s2, f64x2.mul(w, f64x2.promote_low_f32x4(hi)));
        s3 = f64x2.add(s3, f64x2.mul(w, promoteHigh(hi)));
      }
      const q0 = f32x4.demote_f64x2_zero(f64x2.div(s0, totV)), q1 = f32x4.demote_f64x2_zero(f64x2.div(s1, totV));
      const q2 = f32x4.demote_f64x2_zero(f64x2.div(s2, totV)), q3 = f32x4.demote_f64x2_zero(f64x2.div(s3, totV));
      v128.store(o + (<usize>d << 2), v128.shuffle<f32>(q0, q1, 0, 1, 4, 5));
      v128.store(o + (<usize>d << 2), v128.shuffle<f32>(q2, q3, 0, 1, 4, 5), 16);
    }
    for (; d < D; d++) {
      let sum: f64 = 0;
      for (let k = first; k < end; k++) {
        const e = <usize>load<i32>(byGroup + (<usize>k << 2));
        sum += load<f64>(weights + (e << 3)) * <f64>load<f32>(x + <usize>load<i32>(positions + (e << 2)) * rowBytes + (<usize>d << 2));
      }
      store<f32>(o + (<usize>d << 2), <f32>(sum / tot));
    }
    first = end;
  }
}

/**
 * ā_k = (Σ_h Σ_q P_h[q, k]) / (H·n): the mean attention token k receives, the sum in float64 over
 * h, then q, in order.   probs: [H, n, n] float32 (row = query)   out: [n] float64
 * Sixteen columns at a time walk down all H·n rows with their sums in eight float64x2
 * registers (one lane per column), then the last columns two at a time, then one.
 */
export function f64_attention_received(probs: usize, heads: i32, n: i32, out: usize): void {
  const rows = heads * n;
  const rowBytes = <usize>n << 2;
  const divisor = f64x2.splat(<f64>rows);
  let k = 0;
  for (; k + 16 <= n; k += 16) {
    let s0 = f64x2.splat(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    let p = probs + (<usize>k << 2);
    for (let r = 0; r < rows; r++, p += rowBytes) {
      const a = v128.load(p), b = v128.load(p, 16), c = v128.load(p, 32), d = v128.load(p, 48);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(a));
      s1 = f64x2.add(s1, promoteHigh(a));
      s2 = f64x2.add(s2, f64x2.promote_low_f32x4(b));
      s3 = f64x2.add(s3, promoteHigh(b));
      s4 = f64x2.add(s4, f64x2.promote_low_f32x4(c));
      s5 = f64x2.add(s5, promoteHigh(c));
      s6 = f64x2.add(s6, f64x2.promote_low_f32x4(d));
      s7 = f64x2.add(s7, promoteHigh(d));
    }
    const o = out + (<usize>k << 3);
    v128.store(o, f64x2.div(s0, divisor));
    v128.store(o, f64x2.div(s1, divisor), 16);
    v128.store(o, f64x2.div(s2, divisor), 32);
    v128.store(o, f64x2.div(s3, divisor), 48);
    v128.store(o, f64x2.div(s4, divisor), 64);
    v128.store(o, f64x2.div(s5, divisor), 80);
    v128.store(o, f64x2.div(s6, divisor), 96);
    v128.store(o, f64x2.div(s7, divisor), 112);
  }
  for (; k + 2 <= n; k += 2) {
    let s = f64x2.splat(0);
    let p = probs + (<usize>k << 2);
    for (let r = 0; r < rows; r++, p += rowBytes) s = f64x2.add(s, f64x2.promote_low_f32x4(v128.load64_zero(p)));
    v128.store(out + (<usize>k << 3), f64x2.div(s, divisor));
  }
  if (k < n) {
    let s: f64 = 0;
    let p = probs + (<usize>k << 2);
    for (let r = 0; r < rows; r++, p += rowBytes) s += <f64>load<f32>(p);
    store<f64>(out + (<usize>k << 3), s / <f64>rows);
  }
}

/**
 * MCTF's one-step-ahead correction (src/prune/mctf.ts, OneStepAheadAttention): with the m tokens
 * fused[0..m) of fused groups,
 *   pooled[h, g, i] = Σ_q share[q]·P_h[q, fused[i]]   over q with rowOf[q] = g, h then q in order (float64)
 *   out[g, h·v + c] = f32(out[g, h·v + c] + Σ_i f32(pooled[h, g, i])·δ[i, h·v + c])   the sum in float32 over i in order
 *   probs: [H, t, t] float32   fused: [m] int32   rowOf: [t] int32   share: [t] float64
 *   delta: [m, H·v] float32   pooled: [H, rows, m] float64 scratch   out: [rows, H·v] float32 (added to)
 */
export function f32_fused_attention_correction(
  probs: usize, heads: i32, t: i32, fused: usize, m: i32, rowOf: usize, share: usize, rows: i32, delta: usize, v: i32,
  pooled: usize, out: usize,
): void {
  const width = heads * v;
  memory.fill(pooled, 0, (<usize>heads * <usize>rows * <usize>m) << 3);
  for (let h = 0; h < heads; h++) {
    for (let q = 0; q < t; q++) {
      const s = load<f64>(share + (<usize>q << 3));
      const pRow = probs + ((<usize>(h * t + q) * <usize>t) << 2);
      const o = pooled + ((<usize>(h * rows + load<i32>(rowOf + (<usize>q << 2))) * <usize>m) << 3);
      for (let i = 0; i < m; i++) {
        const p = o + (<usize>i << 3);
        store<f64>(p, load<f64>(p) + s * <f64>load<f32>(pRow + (<usize>load<i32>(fused + (<usize>i << 2)) << 2)));
      }
    }
  }
  // The coefficients in float32, in place at the start of each [m] row of `pooled`.
  const coefficients = pooled;
  const total = heads * rows * m;
  for (let j = 0; j < total; j++) store<f32>(coefficients + (<usize>j << 2), <f32>load<f64>(pooled + (<usize>j << 3)));
  // Two output rows × sixteen columns at a time: eight float32x4 sums kept in registers over i.
  const rowBytes = <usize>width << 2;
  for (let h = 0; h < heads; h++) {
    const hv = <usize>(h * v) << 2;
    for (let g = 0; g < rows; g += 2) {
      const g1 = min(g + 1, rows - 1); // an odd last row is computed twice, and added once
      const p0 = coefficients + ((<usize>(h * rows + g) * <usize>m) << 2);
      const p1 = coefficients + ((<usize>(h * rows + g1) * <usize>m) << 2);
      const o0 = out + <usize>g * rowBytes + hv;
      const o1 = out + <usize>g1 * rowBytes + hv;
      let c = 0;
      for (; c + 16 <= v; c += 16) {
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        let d = delta + hv + (<usize>c << 2);
        for (let i = 0; i < m; i++, d += rowBytes) {
          const x0 = v128.load32_splat(p0 + (<usize>i << 2));
          const x1 = v128.load32_splat(p1 + (<usize>i << 2));
          const d0 = v128.load(d), d1 = v128.load(d, 16), d2 = v128.load(d, 32), d3 = v128.load(d, 48);
          a0 = f32x4.add(a0, f32x4.mul(x0, d0));
          a1 = f32x4.add(a1, f32x4.mul(x0, d1));
          a2 = f32x4.add(a2, f32x4.mul(x0, d2));
          a3 = f32x4.add(a3, f32x4.mul(x0, d3));
          b0 = f32x4.add(b0, f32x4.mul(x1, d0));
          b1 = f32x4.add(b1, f32x4.mul(x1, d1));
          b2 = f32x4.add(b2, f32x4.mul(x1, d2));
          b3 = f32x4.add(b3, f32x4.mul(x1, d3));
        }
        const cb = <usize>c << 2;
        addTo(o0 + cb, a0, a1, a2, a3);
        if (g1 != g) addTo(o1 + cb, b0, b1, b2, b3);
      }
      for (; c < v; c++) {
        let a: f32 = 0, b: f32 = 0;
        for (let i = 0; i < m; i++) {
          const dv = load<f32>(delta + <usize>i * rowBytes + hv + (<usize>c << 2));
          a += load<f32>(p0 + (<usize>i << 2)) * dv;
          b += load<f32>(p1 + (<usize>i << 2)) * dv;
        }
        const q0 = o0 + (<usize>c << 2);
        store<f32>(q0, load<f32>(q0) + a);
        if (g1 != g) {
          const q1 = o1 + (<usize>c << 2);
          store<f32>(q1, load<f32>(q1) + b);
        }
      }
    }
  }
}

/** The sixteen float32 values at p += s0…s3. */
// @ts-ignore: decorator
@inline
function addTo(p: usize, s0: v128, s1: v128, s2: v128, s3: v128): void {
  v128.store(p, f32x4.add(v128.load(p), s0));
  v128.store(p, f32x4.add(v128.load(p, 16), s1), 16);
  v128.store(p, f32x4.add(v128.load(p, 32), s2), 32);
  v128.store(p, f32x4.add(v128.load(p, 48), s3), 48);
}

/**
 * PiToMe's energy from the pairwise cosines C [n, n] (float64, read on and above the diagonal):
 *   E_i = (S_even + S_odd)/n,  S_even = Σ_{even j} ELU_α(C[i, j] − margin), S_odd over odd j,
 *   each summed over j in order;  ELU_α(z) = z for z > 0, else α·expm1NonPositive(f32(z))
 * Each ELU value is computed once, for j ≥ i (C is symmetric), four at a time (j even, j + 1,
 * j + 2, j + 3; the exponentials in float32 lanes), and added to the sums of row i and of the
 * tokens j: going down the rows, token j receives its terms j' < j from the rows above, in
 * order (into partial[j' mod 2][j]), before its own row adds j' ≥ j, so every sum runs over j'
 * in order. One float64x2 holds row i's two sums.
 *   work: 16·n bytes (the partial sums of parity 0, then of parity 1)   energy: [n] float64
 */
export function f64_pitome_energy(cosines: usize, n: i32, margin: f64, alpha: f64, work: usize, energy: usize): void {
  const partialBytes = <usize>n << 3;
  memory.fill(work, 0, partialBytes << 1);
  const m = f64x2.splat(margin);
  const a = f64x2.splat(alpha);
  const zero = f64x2.splat(0);
  for (let i = 0; i < n; i++) {
    const row = cosines + ((<usize>i * <usize>n) << 3);
    const own = <usize>i << 3;
    const column = work + (<usize>(i & 1) * partialBytes); // where row i's terms for the tokens j > i go
    let sums = f64x2.replace_lane(f64x2.splat(load<f64>(work + own)), 1, load<f64>(work + partialBytes + own));
    let j = i;
    if (j & 1) { // the diagonal term of an odd row, alone
      sums = f64x2.add(sums, i64x2.shuffle(zero, elu2(v128.load64_splat(row + (<usize>j << 3)), m, a), 0, 3));
      j++;
    }
    for (; j + 4 <= n; j += 4) {
      const at = row + (<usize>j << 3);
      let e01 = f64x2.sub(v128.load(at), m);
      let e23 = f64x2.sub(v128.load(at, 16), m);
      const positive01 = f64x2.gt(e01, zero);
      const positive23 = f64x2.gt(e23, zero);
      if (!(i64x2.all_true(positive01) && i64x2.all_true(positive23))) {
        const e = expm1NonPositive(i32x4.shuffle(f32x4.demote_f64x2_zero(e01), f32x4.demote_f64x2_zero(e23), 0, 1, 4, 5));
        e01 = v128.bitselect(e01, f64x2.mul(a, f64x2.promote_low_f32x4(e)), positive01);
        e23 = v128.bitselect(e23, f64x2.mul(a, promoteHigh(e)), positive23);
      }
      sums = f64x2.add(f64x2.add(sums, e01), e23);
      const p = column + (<usize>j << 3); // partial[i mod 2][j…j + 3] (for j = i: never read again)
      v128.store(p, f64x2.add(v128.load(p), e01));
      v128.store(p, f64x2.add(v128.load(p, 16), e23), 16);
    }
    if (j + 2 <= n) {
      const e = elu2(v128.load(row + (<usize>j << 3)), m, a);
      sums = f64x2.add(sums, e);
      const p = column + (<usize>j << 3);
      v128.store(p, f64x2.add(v128.load(p), e));
      j += 2;
    }
    if (j < n) { // a last even j
      const e = f64x2.extract_lane(elu2(v128.load64_splat(row + (<usize>j << 3)), m, a), 0);
      sums = f64x2.replace_lane(sums, 0, f64x2.extract_lane(sums, 0) + e);
      if (j > i) {
        const p = column + (<usize>j << 3);
        store<f64>(p, load<f64>(p) + e);
      }
    }
    store<f64>(energy + own, (f64x2.extract_lane(sums, 0) + f64x2.extract_lane(sums, 1)) / <f64>n);
  }
}

/** ELU_α(c − margin) of two float64 lanes (the energy loop's, for a pair). */
// @ts-ignore: decorator
@inline
function elu2(c: v128, margin: v128, alpha: v128): v128 {
  const z = f64x2.sub(c, margin);
  const e = expm1NonPositive(f32x4.demote_f64x2_zero(z));
  return v128.bitselect(z, f64x2.mul(alpha, f64x2.promote_low_f32x4(e)), f64x2.gt(z, f64x2.splat(0)));
}

/**
 * expm1NonPositive's constants, each splatted to 16 bytes (loads beat v128.const in V8, see
 * vector.ts): −20, f32(1/ln 2), 1.5·2²³, ln 2's high part (7 trailing zero bits) and low part, 1,
 * then the Taylor coefficients f32(1/i!) for i = 2…7 (the same bits as merge-kernels.ts).
 */
const EXPM1_TABLE = memory.data<f32>([
  -20, -20, -20, -20,
  1.4426950216293335, 1.4426950216293335, 1.4426950216293335, 1.4426950216293335,
  12582912, 12582912, 12582912, 12582912,
  0.6931381225585938, 0.6931381225585938, 0.6931381225585938, 0.6931381225585938,
  9.058001523953862e-6, 9.058001523953862e-6, 9.058001523953862e-6, 9.058001523953862e-6,
  1, 1, 1, 1,
  0.5, 0.5, 0.5, 0.5,
  0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.1666666716337204,
  0.0416666679084301, 0.0416666679084301, 0.0416666679084301, 0.0416666679084301,
  0.008333333767950535, 0.008333333767950535, 0.008333333767950535, 0.008333333767950535,
  0.0013888889225199819, 0.0013888889225199819, 0.0013888889225199819, 0.0013888889225199819,
  0.00019841270113829523, 0.00019841270113829523, 0.00019841270113829523, 0.00019841270113829523,
], 16);

/**
 * eᶻ − 1 for z ≤ 0 in four float32 lanes, the float32 operations of src/prune/merge-kernels.ts's
 * expm1NonPositive in the same order (its comment has the method and the accuracy):
 * x = max(z, −20); k = round(x/ln 2); r = x − k·ln 2 (in two parts); p = r + r²·q(r), q the rest
 * of eʳ − 1's Taylor polynomial to degree 7 (Horner); eᶻ − 1 = 2ᵏ·p + (2ᵏ − 1), with 2ᵏ built
 * from the bits of x/ln 2 + 1.5·2²³ (k in the low mantissa bits). Lanes with z > 0 compute a
 * finite value that the caller discards.
 */
// @ts-ignore: decorator
@inline
function expm1NonPositive(z: v128): v128 {
  const table = EXPM1_TABLE;
  const low = v128.load(table);
  const x = v128.bitselect(low, z, f32x4.lt(z, low));
  const rounding = v128.load(table, 32);
  const shifted = f32x4.add(f32x4.mul(x, v128.load(table, 16)), rounding);
  const k = f32x4.sub(shifted, rounding);
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, v128.load(table, 48))), f32x4.mul(k, v128.load(table, 64)));
  let q = v128.load(table, 176); // 1/7!
  q = f32x4.add(f32x4.mul(q, r), v128.load(table, 160));
  q = f32x4.add(f32x4.mul(q, r), v128.load(table, 144));
  q = f32x4.add(f32x4.mul(q, r), v128.load(table, 128));
  q = f32x4.add(f32x4.mul(q, r), v128.load(table, 112));
  q = f32x4.add(f32x4.mul(q, r), v128.load(table, 96)); // 1/2!
  const p = f32x4.add(r, f32x4.mul(f32x4.mul(r, r), q));
  const s = i32x4.shl(i32x4.add(shifted, i32x4.splat(127)), 23); // 2ᵏ: exponent field k + 127
  return f32x4.add(f32x4.mul(s, p), f32x4.sub(s, v128.load(table, 80)));
}
