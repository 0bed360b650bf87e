// Kernels of the merging and fusion methods ToMe, MCTF and PiToMe (src/prune/merge-kernels.ts holds
// the TypeScript oracles). Like prune.ts, they are BIT-IDENTICAL to the oracles: every reduction
// (float64, or float32 for the cosines) runs in the oracle's order (SIMD lanes hold independent
// sums, never parts of one sum), a product that is not exact is a separate multiply and add,
// never fused, and element-wise operations are correctly rounded in both languages. So the scores, rankings and
// merged tokens computed here are the oracle's, ties included.
// Pointers are byte addresses; counts and strides are in elements.

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
 * four independent sums share the loop (each in order: the values of the plain loop).
 *   inv: [rows] float64
 */
function inverseNorms(f: usize, rows: i32, c: i32, inv: usize): void {
  const rowBytes = <usize>c << 2;
  let i = 0;
  for (; i + 4 <= rows; i += 4) {
    const r0 = f + <usize>i * rowBytes;
    let s01 = f64x2.splat(0), s23 = s01;
    for (let d: usize = 0; d < rowBytes; d += 4) {
      const x01 = f64x2.replace_lane(f64x2.splat(<f64>load<f32>(r0 + d)), 1, <f64>load<f32>(r0 + rowBytes + d));
      const x23 = f64x2.replace_lane(f64x2.splat(<f64>load<f32>(r0 + 2 * rowBytes + d)), 1, <f64>load<f32>(r0 + 3 * rowBytes + d));
      s01 = f64x2.add(s01, f64x2.mul(x01, x01));
      s23 = f64x2.add(s23, f64x2.mul(x23, x23));
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

// @ts-ignore: decorator
@inline
function storeInverseRoot(p: usize, sumSquares: f64): void {
  store<f64>(p, sumSquares > 0 ? 1.0 / Math.sqrt(sumSquares) : 0);
}

/**
 * A unit row in float32: u = f32(f64(f)·inv), inv from inverseNorms. Written with `step` bytes
 * between consecutive values (4: a plain row; 32: a column of a panel of eight).
 */
// @ts-ignore: decorator
@inline
function writeUnitRow(f: usize, c: i32, inv: f64, dst: usize, step: usize): void {
  for (let d = 0; d < c; d++, dst += step) store<f32>(dst, <f32>(<f64>load<f32>(f + (<usize>d << 2)) * inv));
}

/** The last panel of `columns` columns padded with copies of its last column (eight per panel). */
function padLastPanel(panels: usize, columns: i32, c: i32): void {
  const panelBytes = <usize>c << 5;
  const last = panels + <usize>((columns - 1) >> 3) * panelBytes;
  const lastLane = <usize>((columns - 1) & 7) << 2;
  for (let lane = (columns & 7) == 0 ? 8 : columns & 7; lane < 8; lane++) {
    for (let d = 0; d < c; d++) {
      const p = last + (<usize>d << 5);
      store<f32>(p + (<usize>lane << 2), load<f32>(p + lastLane));
    }
  }
}

/**
 * out[i, j] = Σ_d a_i[d]·b_j[d] in float32, summed over d in order (separate multiply and add),
 * stored as float64, for rows i in [0, aCount) and columns j in [firstColumn… by panels, bCount);
 * out has `outStride` values per row. Columns from panel ⌊firstColumn(i)/8⌋ on, where
 * firstColumn(i) = 0, or the row block's own first row when `upper` (the upper triangle by
 * blocks, enough for a symmetric matrix that the caller mirrors).
 *   a: [aCount, c] float32 rows   b: [⌈bCount/8⌉][c][8] float32 panels (the last one padded)
 * Tiles of 4 rows × 8 columns: 8 float32x4 running sums, one per (row, four columns).
 */
function dotTiles(a: usize, aCount: i32, b: usize, bCount: i32, c: i32, out: usize, outStride: i32, upper: bool): void {
  const rowBytes = <usize>c << 2;
  const panelBytes = rowBytes << 3;
  const panels = (bCount + 7) >> 3;
  for (let i = 0; i < aCount; i += 4) {
    const a0 = a + <usize>i * rowBytes;
    const a1 = a + <usize>min(i + 1, aCount - 1) * rowBytes;
    const a2 = a + <usize>min(i + 2, aCount - 1) * rowBytes;
    const a3 = a + <usize>min(i + 3, aCount - 1) * rowBytes;
    for (let p = upper ? i >> 3 : 0; p < panels; p++) {
      let bp = b + <usize>p * panelBytes;
      let c0lo = f32x4.splat(0), c0hi = c0lo, c1lo = c0lo, c1hi = c0lo;
      let c2lo = c0lo, c2hi = c0lo, c3lo = c0lo, c3hi = c0lo;
      for (let d: usize = 0; d < rowBytes; d += 4, bp += 32) {
        const bLo = v128.load(bp);
        const bHi = v128.load(bp, 16);
        const x0 = v128.load32_splat(a0 + d);
        c0lo = f32x4.add(c0lo, f32x4.mul(x0, bLo));
        c0hi = f32x4.add(c0hi, f32x4.mul(x0, bHi));
        const x1 = v128.load32_splat(a1 + d);
        c1lo = f32x4.add(c1lo, f32x4.mul(x1, bLo));
        c1hi = f32x4.add(c1hi, f32x4.mul(x1, bHi));
        const x2 = v128.load32_splat(a2 + d);
        c2lo = f32x4.add(c2lo, f32x4.mul(x2, bLo));
        c2hi = f32x4.add(c2hi, f32x4.mul(x2, bHi));
        const x3 = v128.load32_splat(a3 + d);
        c3lo = f32x4.add(c3lo, f32x4.mul(x3, bLo));
        c3hi = f32x4.add(c3hi, f32x4.mul(x3, bHi));
      }
      const j = p << 3;
      const columns = min(8, bCount - j);
      storeTileRow(out, outStride, i, j, columns, c0lo, c0hi);
      if (i + 1 < aCount) storeTileRow(out, outStride, i + 1, j, columns, c1lo, c1hi);
      if (i + 2 < aCount) storeTileRow(out, outStride, i + 2, j, columns, c2lo, c2hi);
      if (i + 3 < aCount) storeTileRow(out, outStride, i + 3, j, columns, c3lo, c3hi);
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
    v128.store(o, f64x2.promote_low_f32x4(i32x4.shuffle(lo, lo, 2, 3, 0, 1)), 16);
    v128.store(o, f64x2.promote_low_f32x4(hi), 32);
    v128.store(o, f64x2.promote_low_f32x4(i32x4.shuffle(hi, hi, 2, 3, 0, 1)), 48);
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
 *   work: f32_cosine_work_bytes(t, c) bytes: the inverse norms, the even unit rows, then the odd
 *   ones in panels of eight
 */
export function f32_even_odd_cosines(metric: usize, t: i32, c: i32, work: usize, out: usize): void {
  const nA = (t + 1) >> 1;
  const nB = t >> 1;
  if (nB == 0) return;
  const rowBytes = <usize>c << 2;
  const inv = work;
  const aBase = inv + (<usize>t << 3);
  const bBase = aBase + <usize>nA * rowBytes;
  inverseNorms(metric, t, c, inv);
  for (let i = 0; i < nA; i++) writeUnitRow(metric + <usize>(2 * i) * rowBytes, c, load<f64>(inv + (<usize>(2 * i) << 3)), aBase + <usize>i * rowBytes, 4);
  for (let j = 0; j < nB; j++) {
    const dst = bBase + <usize>(j >> 3) * (rowBytes << 3) + (<usize>(j & 7) << 2);
    writeUnitRow(metric + <usize>(2 * j + 1) * rowBytes, c, load<f64>(inv + (<usize>(2 * j + 1) << 3)), dst, 32);
  }
  padLastPanel(bBase, nB, c);
  dotTiles(aBase, nA, bBase, nB, c, out, nB, false);
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
  const aBase = inv + (<usize>n << 3);
  const bBase = aBase + <usize>n * rowBytes;
  inverseNorms(metric, n, c, inv);
  for (let i = 0; i < n; i++) {
    const f = metric + <usize>i * rowBytes;
    const scale = load<f64>(inv + (<usize>i << 3));
    writeUnitRow(f, c, scale, aBase + <usize>i * rowBytes, 4);
    writeUnitRow(f, c, scale, bBase + <usize>(i >> 3) * (rowBytes << 3) + (<usize>(i & 7) << 2), 32);
  }
  padLastPanel(bBase, n, c);
  dotTiles(aBase, n, bBase, n, c, out, n, true);
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
      for (let j = firstColumn; j < cols; j++) {
        const v = load<f64>(row + (<usize>j << 3));
        if (v > max) {
          max = v;
          arg = j;
        }
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
  for (let j = 0; j < cols; j++) {
    store<f64>(best + (<usize>j << 3), -Infinity);
    store<i32>(partner + (<usize>j << 2), 0);
  }
  for (let k = 0; k < count; k++) {
    const i = load<i32>(candidates + (<usize>k << 2));
    const row = W + ((<usize>i * <usize>cols) << 3);
    for (let j = firstColumn; j < cols; j++) {
      const v = load<f64>(row + (<usize>j << 3));
      const b = best + (<usize>j << 3);
      if (v > load<f64>(b)) {
        store<f64>(b, v);
        store<i32>(partner + (<usize>j << 2), i);
      }
    }
  }
}

/**
 * MCTF's affinity, in place on W [nA, nB] holding the even/odd cosines (f32_even_odd_cosines):
 *   W[i, j] = s · info[2i] · info[2j + 1] · size[2i] · size[2j + 1]   (multiplied left to right)
 * with s = min(1, max(0, (W[i, j] + 1) / 2)) when `similarity`, else 1 (τ_sim = 1 or off; other
 * temperatures take a power, which stays in TypeScript).   info, size: [nA + nB] float64
 */
export function f64_mctf_affinity(W: usize, nA: i32, nB: i32, similarity: bool, info: usize, size: usize): void {
  for (let i = 0; i < nA; i++) {
    const a = <usize>(2 * i) << 3;
    const infoA = load<f64>(info + a);
    const sizeA = load<f64>(size + a);
    const row = W + ((<usize>i * <usize>nB) << 3);
    for (let j = 0; j < nB; j++) {
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
        s1 = f64x2.add(s1, f64x2.mul(w, f64x2.promote_low_f32x4(v128.shuffle<f32>(lo, lo, 2, 3, 0, 1))));
        s2 = f64x2.add(s2, f64x2.mul(w, f64x2.promote_low_f32x4(hi)));
        s3 = f64x2.add(s3, f64x2.mul(w, f64x2.promote_low_f32x4(v128.shuffle<f32>(hi, hi, 2, 3, 0, 1))));
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
 */
export function f64_attention_received(probs: usize, heads: i32, n: i32, out: usize): void {
  memory.fill(out, 0, <usize>n << 3);
  const rows = heads * n;
  for (let r = 0; r < rows; r++) {
    const row = probs + ((<usize>r * <usize>n) << 2);
    let k = 0;
    for (; k + 2 <= n; k += 2) {
      const p = out + (<usize>k << 3);
      v128.store(p, f64x2.add(v128.load(p), f64x2.promote_low_f32x4(v128.load64_zero(row + (<usize>k << 2)))));
    }
    for (; k < n; k++) {
      const p = out + (<usize>k << 3);
      store<f64>(p, load<f64>(p) + <f64>load<f32>(row + (<usize>k << 2)));
    }
  }
  const divisor: f64 = <f64>rows;
  for (let k = 0; k < n; k++) {
    const p = out + (<usize>k << 3);
    store<f64>(p, load<f64>(p) / divisor);
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
 *   E_i = (Σ_j ELU_α(C[i, j] − margin)) / n,  ELU_α(z) = z for z > 0, else α·expm1(z)
 * summed over j in order. Each ELU value is computed once, for j ≥ i (C is symmetric), and added
 * to the sums of rows i and j: going down the rows, row j receives its terms j' < j from the rows
 * above, in order, before its own row adds j' ≥ j, so every sum runs over j' in order.
 *   energy: [n] float64 (the running sums, then the energies)
 */
export function f64_pitome_energy(cosines: usize, n: i32, margin: f64, alpha: f64, energy: usize): void {
  memory.fill(energy, 0, <usize>n << 3);
  for (let i = 0; i < n; i++) {
    const row = cosines + ((<usize>i * <usize>n) << 3);
    const own = energy + (<usize>i << 3);
    let sum = load<f64>(own);
    for (let j = i; j < n; j++) {
      const z = load<f64>(row + (<usize>j << 3)) - margin;
      const e = z > 0 ? z : alpha * expm1(z);
      sum += e;
      if (j > i) {
        const other = energy + (<usize>j << 3);
        store<f64>(other, load<f64>(other) + e);
      }
    }
    store<f64>(own, sum / <f64>n);
  }
}

/**
 * e^x − 1 as JavaScript's Math.expm1 computes it in V8 (fdlibm's s_expm1.c), to the bit:
 * AssemblyScript's Math.expm1 (musl's) evaluates the polynomial in another order and differs in
 * the last bit for some x. Method: x = k·ln2 + r, |r| ≤ ½ln2 (hi − lo with a correction c);
 * expm1(r) from a rational approximation whose polynomial R1(r²/2) is evaluated by Horner's
 * rule; then scaled by 2^k with the association that keeps the result accurate for each k.
 */
// @ts-ignore: decorator
@inline
function expm1(x: f64): f64 {
  const oThreshold = reinterpret<f64>(0x40862e42fefa39ef); // 709.78…: above, e^x overflows
  const ln2Hi = reinterpret<f64>(0x3fe62e42fee00000);
  const ln2Lo = reinterpret<f64>(0x3dea39ef35793c76);
  const invLn2 = reinterpret<f64>(0x3ff71547652b82fe);
  const q1 = reinterpret<f64>(0xbfa11111111110f4);
  const q2 = reinterpret<f64>(0x3f5a01a019fe5585);
  const q3 = reinterpret<f64>(0xbf14ce199eaadbb7);
  const q4 = reinterpret<f64>(0x3ed0cfca86e65239);
  const q5 = reinterpret<f64>(0xbe8afdb76e09c32d);
  const bits = reinterpret<u64>(x);
  const negative = (bits >> 63) != 0;
  const hx = <u32>(bits >> 32) & 0x7fffffff; // high word of |x|
  if (hx >= 0x4043687a) { // |x| ≥ 56·ln2
    if (hx >= 0x7ff00000) return isNaN(x) ? x + x : negative ? -1.0 : x;
    if (negative) return -1.0;
    if (x > oThreshold) return Infinity;
  }
  let k = 0;
  let c: f64 = 0;
  if (hx > 0x3fd62e42) { // |x| > ½ln2: reduce
    let hi: f64, lo: f64;
    if (hx < 0x3ff0a2b2) { // and |x| < 1.5·ln2
      if (negative) {
        hi = x + ln2Hi;
        lo = -ln2Lo;
        k = -1;
      } else {
        hi = x - ln2Hi;
        lo = ln2Lo;
        k = 1;
      }
    } else {
      k = <i32>(invLn2 * x + (negative ? -0.5 : 0.5));
      const kf = <f64>k;
      hi = x - kf * ln2Hi; // exact
      lo = kf * ln2Lo;
    }
    x = hi - lo;
    c = hi - x - lo;
  } else if (hx < 0x3c900000) { // |x| < 2⁻⁵⁴: expm1(x) = x
    return x;
  }
  const hfx = 0.5 * x;
  const hxs = x * hfx;
  const r1 = 1.0 + hxs * (q1 + hxs * (q2 + hxs * (q3 + hxs * (q4 + hxs * q5))));
  let t = 3.0 - r1 * hfx;
  let e = hxs * ((r1 - t) / (6.0 - x * t));
  if (k == 0) return x - (x * e - hxs);
  const twoPowK = reinterpret<f64>(<u64>(0x3ff + k) << 52);
  e = x * (e - c) - c;
  e -= hxs;
  if (k == -1) return 0.5 * (x - e) - 0.5;
  if (k == 1) return x < -0.25 ? -2.0 * (e - (x + 0.5)) : 1.0 + 2.0 * (x - e);
  if (k <= -2 || k > 56) {
    let y = 1.0 - (e - x);
    y = k == 1024 ? y * 2.0 * reinterpret<f64>(0x7fe0000000000000) : y * twoPowK;
    return y - 1.0;
  }
  if (k < 20) {
    t = reinterpret<f64>(<u64>(0x3ff00000 - (0x200000 >> k)) << 32); // 1 − 2^−k
    return (t - (e - x)) * twoPowK;
  }
  t = reinterpret<f64>(<u64>(0x3ff - k) << 52); // 2^−k
  return (x - (e + t) + 1.0) * twoPowK;
}
