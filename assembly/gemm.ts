import { geluF32x4 } from './gelu';
import { loadFirstLanes, madd, storeFirstLanes } from './vector';

// What a GEMM does with a finished tile (the same codes are used by src/kernels/wasm.ts).
export const EPILOGUE_STORE = 0; // c = a·b + bias
export const EPILOGUE_ACCUMULATE = 1; // c += a·b + bias   (residual add)
export const EPILOGUE_GELU = 2; // c = GELU(a·b + bias)

/**
 * Packs the rows of src[n, k] (row stride srcStride floats), times `scale`, as the columns of a
 * [k, n] matrix in column panels of 8: dst[⌈n/8⌉][k][8], columns past n zero. A linear layer's
 * weight W[out, in] packed this way is Wᵀ ready for f32_gemm_4x8_wasmsimd (panelStride = 8k,
 * bRowStride = 8). Pointers are byte addresses.
 */
export function f32_pack_panels8(src: usize, srcStride: i32, n: i32, k: i32, scale: f32, dst: usize): void {
  const srcRowBytes = <usize>srcStride << 2;
  for (let col = 0; col < n; col += 8) {
    for (let j = 0; j < 8; j++) {
      let out = dst + (<usize>j << 2);
      if (col + j < n) {
        const row = src + <usize>(col + j) * srcRowBytes;
        for (let i = 0; i < k; i++, out += 32) store<f32>(out, load<f32>(row + (<usize>i << 2)) * scale);
      } else {
        for (let i = 0; i < k; i++, out += 32) store<f32>(out, 0);
      }
    }
    dst += <usize>k << 5;
  }
}

/**
 * c[m, n] = epilogue(a[m, k] · b[k, n] + bias[n]) in register tiles of 4×8 (2×8 and 1×8 for
 * the last rows; the last panel's columns past n are computed and not stored).
 *   a:    rows at a + i·lda floats
 *   b:    column panels of 8: columns 8p…8p+7 at b + p·panelStride floats, row κ of a panel at
 *         κ·bRowStride floats. Packed weights: panelStride = 8k, bRowStride = 8. A row-major
 *         [k, n] matrix read in place: panelStride = 8, bRowStride = its row stride (the last
 *         panel then reads up to 7 floats past each row; they only reach discarded lanes).
 *   bias: [n] read 8 at a time (lanes past n are discarded), or 0 for none
 *   c:    rows at c + i·ldc floats
 * Pointers are byte addresses, strides in floats.
 */
export function f32_gemm_4x8_wasmsimd(
  m: i32, n: i32, k: i32, a: usize, lda: i32, b: usize, panelStride: i32, bRowStride: i32,
  bias: usize, c: usize, ldc: i32, epilogue: i32,
): void {
  const aRowBytes = <usize>lda << 2;
  const bRowBytes = <usize>bRowStride << 2;
  const cRowBytes = <usize>ldc << 2;
  const kBytes = <usize>k << 2;
  for (let col = 0; col < n; col += 8) {
    const cols = min(8, n - col);
    const panel = b + <usize>(col >> 3) * (<usize>panelStride << 2);
    const panelBias = bias ? bias + (<usize>col << 2) : 0;
    const cCol = c + (<usize>col << 2);
    let row = 0;
    for (; row + 4 <= m; row += 4) {
      gemmTile4x8(kBytes, a + <usize>row * aRowBytes, aRowBytes, panel, bRowBytes, panelBias,
        cCol + <usize>row * cRowBytes, cRowBytes, cols, epilogue);
    }
    if (row + 2 <= m) {
      gemmTile2x8(kBytes, a + <usize>row * aRowBytes, aRowBytes, panel, bRowBytes, panelBias,
        cCol + <usize>row * cRowBytes, cRowBytes, cols, epilogue);
      row += 2;
    }
    if (row < m) {
      gemmTile1x8(kBytes, a + <usize>row * aRowBytes, panel, bRowBytes, panelBias,
        cCol + <usize>row * cRowBytes, cols, epilogue);
    }
  }
}

// The micro-kernels: accumulators start at the bias; per κ, one row of the B panel (2 vectors)
// times each A row's element broadcast with load32_splat. Strides and kBytes are in bytes.

function gemmTile4x8(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bRowBytes: usize, bias: usize,
  c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  const biasLo = bias ? v128.load(bias) : f32x4.splat(0);
  const biasHi = bias ? v128.load(bias, 16) : f32x4.splat(0);
  let c0lo = biasLo, c0hi = biasHi, c1lo = biasLo, c1hi = biasHi;
  let c2lo = biasLo, c2hi = biasHi, c3lo = biasLo, c3hi = biasHi;
  const a1 = a + aRowBytes, a2 = a1 + aRowBytes, a3 = a2 + aRowBytes;
  for (let i: usize = 0; i < kBytes; i += 4, b += bRowBytes) {
    const bLo = v128.load(b);
    const bHi = v128.load(b, 16);
    const x0 = v128.load32_splat(a + i);
    c0lo = madd(x0, bLo, c0lo);
    c0hi = madd(x0, bHi, c0hi);
    const x1 = v128.load32_splat(a1 + i);
    c1lo = madd(x1, bLo, c1lo);
    c1hi = madd(x1, bHi, c1hi);
    const x2 = v128.load32_splat(a2 + i);
    c2lo = madd(x2, bLo, c2lo);
    c2hi = madd(x2, bHi, c2hi);
    const x3 = v128.load32_splat(a3 + i);
    c3lo = madd(x3, bLo, c3lo);
    c3hi = madd(x3, bHi, c3hi);
  }
  finishRow(c, c0lo, c0hi, cols, epilogue);
  finishRow(c + cRowBytes, c1lo, c1hi, cols, epilogue);
  finishRow(c + 2 * cRowBytes, c2lo, c2hi, cols, epilogue);
  finishRow(c + 3 * cRowBytes, c3lo, c3hi, cols, epilogue);
}

function gemmTile2x8(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bRowBytes: usize, bias: usize,
  c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  const biasLo = bias ? v128.load(bias) : f32x4.splat(0);
  const biasHi = bias ? v128.load(bias, 16) : f32x4.splat(0);
  let c0lo = biasLo, c0hi = biasHi, c1lo = biasLo, c1hi = biasHi;
  const a1 = a + aRowBytes;
  for (let i: usize = 0; i < kBytes; i += 4, b += bRowBytes) {
    const bLo = v128.load(b);
    const bHi = v128.load(b, 16);
    const x0 = v128.load32_splat(a + i);
    c0lo = madd(x0, bLo, c0lo);
    c0hi = madd(x0, bHi, c0hi);
    const x1 = v128.load32_splat(a1 + i);
    c1lo = madd(x1, bLo, c1lo);
    c1hi = madd(x1, bHi, c1hi);
  }
  finishRow(c, c0lo, c0hi, cols, epilogue);
  finishRow(c + cRowBytes, c1lo, c1hi, cols, epilogue);
}

function gemmTile1x8(
  kBytes: usize, a: usize, b: usize, bRowBytes: usize, bias: usize,
  c: usize, cols: i32, epilogue: i32,
): void {
  let c0lo = bias ? v128.load(bias) : f32x4.splat(0);
  let c0hi = bias ? v128.load(bias, 16) : f32x4.splat(0);
  for (let i: usize = 0; i < kBytes; i += 4, b += bRowBytes) {
    const x0 = v128.load32_splat(a + i);
    c0lo = madd(x0, v128.load(b), c0lo);
    c0hi = madd(x0, v128.load(b, 16), c0hi);
  }
  finishRow(c, c0lo, c0hi, cols, epilogue);
}

/** Applies the epilogue to one tile row [lo, hi] and stores its first `cols` (1…8) lanes at c. */
// @ts-ignore: decorator
@inline
function finishRow(c: usize, lo: v128, hi: v128, cols: i32, epilogue: i32): void {
  if (epilogue == EPILOGUE_GELU) {
    lo = geluF32x4(lo);
    hi = geluF32x4(hi);
  }
  if (cols == 8) {
    if (epilogue == EPILOGUE_ACCUMULATE) {
      lo = f32x4.add(lo, v128.load(c));
      hi = f32x4.add(hi, v128.load(c, 16));
    }
    v128.store(c, lo);
    v128.store(c, hi, 16);
  } else {
    finishPartialRow(c, lo, hi, cols, epilogue);
  }
}

function finishPartialRow(c: usize, lo: v128, hi: v128, cols: i32, epilogue: i32): void {
  const accumulate = epilogue == EPILOGUE_ACCUMULATE;
  if (cols >= 4) {
    if (accumulate) lo = f32x4.add(lo, v128.load(c));
    v128.store(c, lo);
    if (accumulate) hi = f32x4.add(hi, loadFirstLanes(c + 16, cols - 4));
    storeFirstLanes(c + 16, hi, cols - 4);
  } else {
    if (accumulate) lo = f32x4.add(lo, loadFirstLanes(c, cols));
    storeFirstLanes(c, lo, cols);
  }
}
