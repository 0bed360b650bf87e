import { geluF32x4 } from './gelu';
import { loadFirstLanes, madd, storeFirstLanes } from './vector';

// What a GEMM does with a finished tile (the same codes are used by src/kernels/wasm.ts).
// Bit 0: add to c; bit 1: apply GELU (the tile code tests the bits; 3 = GELU(c + a·b) is the
// last K chunk of a GELU GEMM).
export const EPILOGUE_STORE = 0; // c = a·b + bias
export const EPILOGUE_ACCUMULATE = 1; // c += a·b + bias   (residual add)
export const EPILOGUE_GELU = 2; // c = GELU(a·b + bias)

/**
 * Columns per panel of this build's packed weights (f32_pack_weights, f32_gemm_packed_wasmsimd).
 * Relaxed build: 12, for 3×12 register tiles (9 accumulators + 3 B vectors + 3 A broadcasts =
 * 15 of V8's 15 allocatable xmm registers): 9 fused multiply-adds per 6 loads reach the wasm
 * SIMD FMA peak (≈ 64 GFLOP/s here, +8 % over 4×8). The plain SIMD build needs a temporary per
 * mul + add, which makes 3×12 spill (≈ 24 GFLOP/s): it keeps 4×8 tiles and panels of 8.
 */
export const PACKED_PANEL: i32 = ASC_FEATURE_RELAXED_SIMD ? 12 : 8;

/** PACKED_PANEL, for JavaScript (sizes of packed weights: ⌈n/width⌉·width·k floats). */
export function f32_packed_panel_width(): i32 {
  return PACKED_PANEL;
}

/**
 * Packs the rows of src[n, k] (row stride srcStride floats), times `scale`, as the columns of a
 * [k, n] matrix in column panels of `width`: dst[⌈n/width⌉][k][width], columns past n zero.
 * Pointers are byte addresses.
 */
export function f32_pack_panels(src: usize, srcStride: i32, n: i32, k: i32, scale: f32, width: i32, dst: usize): void {
  const srcRowBytes = <usize>srcStride << 2;
  const stepBytes = <usize>width << 2;
  for (let col = 0; col < n; col += width) {
    for (let j = 0; j < width; j++) {
      let out = dst + (<usize>j << 2);
      if (col + j < n) {
        const row = src + <usize>(col + j) * srcRowBytes;
        for (let i = 0; i < k; i++, out += stepBytes) store<f32>(out, load<f32>(row + (<usize>i << 2)) * scale);
      } else {
        for (let i = 0; i < k; i++, out += stepBytes) store<f32>(out, 0);
      }
    }
    dst += <usize>k * stepBytes;
  }
}

/**
 * A linear layer's weight W[n, k] (row stride srcStride) packed for f32_gemm_packed_wasmsimd:
 * Wᵀ in column panels of PACKED_PANEL, ⌈n/PACKED_PANEL⌉·PACKED_PANEL·k floats at dst.
 */
export function f32_pack_weights(src: usize, srcStride: i32, n: i32, k: i32, dst: usize): void {
  f32_pack_panels(src, srcStride, n, k, 1, PACKED_PANEL, dst);
}

/** f32_pack_panels with width 8: the layout of f32_gemm_4x8_wasmsimd's packed B. */
export function f32_pack_panels8(src: usize, srcStride: i32, n: i32, k: i32, scale: f32, dst: usize): void {
  f32_pack_panels(src, srcStride, n, k, scale, 8, dst);
}

/**
 * Packs the rows of a row-major [k, n] matrix (row stride srcStride floats) into column panels
 * of 8: dst[⌈n/8⌉][k][8], columns past n zero. (The B of out = P·V with V read from the qkv rows.)
 */
export function f32_pack_rows8(src: usize, srcStride: i32, k: i32, n: i32, dst: usize): void {
  const srcRowBytes = <usize>srcStride << 2;
  const panelBytes = <usize>k << 5;
  const fullPanels = n >> 3;
  const rest = n & 7;
  for (let i = 0; i < k; i++, src += srcRowBytes, dst += 32) {
    let out = dst;
    let p = src;
    for (let panel = 0; panel < fullPanels; panel++, out += panelBytes, p += 32) {
      v128.store(out, v128.load(p));
      v128.store(out, v128.load(p, 16), 16);
    }
    if (rest) {
      v128.store(out, rest >= 4 ? v128.load(p) : loadFirstLanes(p, rest));
      v128.store(out, rest > 4 ? loadFirstLanes(p + 16, rest - 4) : f32x4.splat(0), 16);
    }
  }
}

/**
 * Sums over K run in chunks of at most K_CHUNK products (blocked summation): per column panel,
 * each chunk's sums are added into c, whose panel block stays in L1/L2 meanwhile. A dot product
 * accumulated in one f32 chain carries a rounding error that grows with the chain's length, and
 * whole models amplify it at a few sensitive tokens: against the float64 golden references of
 * ViT-Ti / DeiT-Ti the worst hidden-state error was up to 1.07e-3 unchunked (the tests allow 1e-3),
 * ≤ 6.6e-4 with chunks of 128 (on random images, the typical error against float64 accumulation
 * drops ≈ 1.7×). Cost: ≈ 1.5 % of DeiT-S forward time. (For speed alone, chunking K to keep A in
 * L2 gained nothing, even at K = 4096: the hardware prefetchers keep up with A's row streams.)
 */
const K_CHUNK: i32 = 128;

/**
 * c[m, n] = epilogue(a[m, k] · W + bias[n]) with W packed by f32_pack_weights (panel stride
 * PACKED_PANEL·k floats): 3×12 register tiles in the relaxed build, 4×8 in the plain one, edge
 * tiles for any m and n (the last panel's columns past n are computed and not stored); K in
 * chunks of ≤ K_CHUNK.
 *   a: rows at a + i·lda floats; bias: [n] (read a panel at a time: lanes past n discarded) or 0;
 *   c: rows at c + i·ldc floats. Pointers are byte addresses, strides in floats.
 */
export function f32_gemm_packed_wasmsimd(
  m: i32, n: i32, k: i32, a: usize, lda: i32, b: usize, bias: usize, c: usize, ldc: i32, epilogue: i32,
): void {
  if (PACKED_PANEL == 12) gemm3x12(m, n, k, a, lda, b, PACKED_PANEL * k, bias, c, ldc, epilogue);
  else f32_gemm_4x8_wasmsimd(m, n, k, a, lda, b, PACKED_PANEL * k, 8, bias, c, ldc, epilogue);
}

/** The length of K chunks for a sum over k products: k itself up to K_CHUNK, else near-equal multiples of 4. */
// @ts-ignore: decorator
@inline
function chunkLength(k: i32): i32 {
  if (k <= K_CHUNK) return k;
  const chunks = (k + K_CHUNK - 1) / K_CHUNK;
  return (((k + chunks - 1) / chunks) + 3) & ~3;
}

/**
 * The epilogue of one K chunk: the first adds the bias (and, for a residual, c), the later ones
 * add into c, the last one applies GELU.
 */
// @ts-ignore: decorator
@inline
function chunkEpilogue(epilogue: i32, first: bool, last: bool): i32 {
  return (first ? epilogue & EPILOGUE_ACCUMULATE : EPILOGUE_ACCUMULATE) | (last ? epilogue & EPILOGUE_GELU : 0);
}

// ---------------------------------------------------------------- 3×12 tiles (panels of 12)

function gemm3x12(
  m: i32, n: i32, k: i32, a: usize, lda: i32, b: usize, panelStride: i32, bias: usize, c: usize, ldc: i32, epilogue: i32,
): void {
  const aRowBytes = <usize>lda << 2;
  const cRowBytes = <usize>ldc << 2;
  const panelBytes = <usize>panelStride << 2;
  const chunk = chunkLength(k);
  // Per column panel, the K chunks one after the other: the panel's block of c (m × 12 floats)
  // stays in L1/L2 between chunks.
  for (let col = 0; col < n; col += 12, b += panelBytes) {
    const cols = min(12, n - col);
    const cCol = c + (<usize>col << 2);
    let k0 = 0;
    do {
      const kc = min(chunk, k - k0);
      panelRows3x12(m, <usize>kc << 2, a + (<usize>k0 << 2), aRowBytes, b + <usize>k0 * 48,
        k0 == 0 && bias ? bias + (<usize>col << 2) : 0, cCol, cRowBytes, cols,
        chunkEpilogue(epilogue, k0 == 0, k0 + kc >= k));
      k0 += kc;
    } while (k0 < k);
  }
}

/** All rows of one column panel (3×12 tiles, then 2 and 1 rows) for one K chunk. */
function panelRows3x12(
  m: i32, kBytes: usize, a: usize, aRowBytes: usize, b: usize, bias: usize, c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  let row = 0;
  if (cols < 12) {
    for (; row + 3 <= m; row += 3) {
      gemmTile3x12Partial(kBytes, a + <usize>row * aRowBytes, aRowBytes, b, bias, c + <usize>row * cRowBytes, cRowBytes, cols, epilogue);
    }
  } else if (epilogue & EPILOGUE_ACCUMULATE) {
    for (; row + 3 <= m; row += 3) {
      const cTile = c + <usize>row * cRowBytes;
      gemmTile3x12Accumulate(kBytes, a + <usize>row * aRowBytes, aRowBytes, b, bias, cTile, cRowBytes);
      if (epilogue & EPILOGUE_GELU) geluTile(cTile, cRowBytes, 3, 12);
    }
  } else {
    for (; row + 3 <= m; row += 3) {
      const cTile = c + <usize>row * cRowBytes;
      gemmTile3x12Store(kBytes, a + <usize>row * aRowBytes, aRowBytes, b, bias, cTile, cRowBytes);
      if (epilogue & EPILOGUE_GELU) geluTile(cTile, cRowBytes, 3, 12);
    }
  }
  if (row + 2 <= m) {
    gemmTile2x12(kBytes, a + <usize>row * aRowBytes, aRowBytes, b, bias, c + <usize>row * cRowBytes, cRowBytes, cols, epilogue);
    row += 2;
  }
  if (row < m) {
    gemmTile1x12(kBytes, a + <usize>row * aRowBytes, b, bias, c + <usize>row * cRowBytes, cols, epilogue);
  }
}

// The micro-kernels: accumulators start at the bias; per κ, one row of the B panel (3 vectors)
// times each A row's element broadcast with load32_splat. Strides and kBytes are in bytes. The
// loops index A by one pointer (V8 folds `base + index` into each load) and walk B.
// Full tiles get one function per epilogue, with nothing but c and its stride live across the
// loop: with the column count and the epilogue code live too, V8 runs out of general registers
// and recomputes A's row addresses in the loop (−18 % in the plain SIMD build, −3 % relaxed).

function gemmTile3x12Store(kBytes: usize, a: usize, aRowBytes: usize, b: usize, bias: usize, c: usize, cRowBytes: usize): void {
  gemmTile3x12(kBytes, a, aRowBytes, b, bias, c, cRowBytes, 12, EPILOGUE_STORE);
}

function gemmTile3x12Accumulate(kBytes: usize, a: usize, aRowBytes: usize, b: usize, bias: usize, c: usize, cRowBytes: usize): void {
  gemmTile3x12(kBytes, a, aRowBytes, b, bias, c, cRowBytes, 12, EPILOGUE_ACCUMULATE);
}

/** The last panel's tiles when n is not a multiple of 12: any cols (1…12) and epilogue. */
function gemmTile3x12Partial(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bias: usize, c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  gemmTile3x12(kBytes, a, aRowBytes, b, bias, c, cRowBytes, cols, epilogue);
}

// @ts-ignore: decorator
@inline
function gemmTile3x12(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bias: usize, c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  const bias0 = bias ? v128.load(bias) : f32x4.splat(0);
  const bias1 = bias ? v128.load(bias, 16) : f32x4.splat(0);
  const bias2 = bias ? v128.load(bias, 32) : f32x4.splat(0);
  let c00 = bias0, c01 = bias1, c02 = bias2;
  let c10 = bias0, c11 = bias1, c12 = bias2;
  let c20 = bias0, c21 = bias1, c22 = bias2;
  const aRow2 = aRowBytes << 1;
  const end = a + kBytes;
  for (; a < end; a += 4, b += 48) {
    const b0 = v128.load(b), b1 = v128.load(b, 16), b2 = v128.load(b, 32);
    let x = v128.load32_splat(a);
    c00 = madd(x, b0, c00); c01 = madd(x, b1, c01); c02 = madd(x, b2, c02);
    x = v128.load32_splat(a + aRowBytes);
    c10 = madd(x, b0, c10); c11 = madd(x, b1, c11); c12 = madd(x, b2, c12);
    x = v128.load32_splat(a + aRow2);
    c20 = madd(x, b0, c20); c21 = madd(x, b1, c21); c22 = madd(x, b2, c22);
  }
  if (cols == 12) {
    storeRow12(c, c00, c01, c02, epilogue);
    storeRow12(c + cRowBytes, c10, c11, c12, epilogue);
    storeRow12(c + (cRowBytes << 1), c20, c21, c22, epilogue);
  } else {
    storePartialRow12(c, c00, c01, c02, cols, epilogue);
    storePartialRow12(c + cRowBytes, c10, c11, c12, cols, epilogue);
    storePartialRow12(c + (cRowBytes << 1), c20, c21, c22, cols, epilogue);
  }
  if (epilogue & EPILOGUE_GELU) geluTile(c, cRowBytes, 3, cols);
}

function gemmTile2x12(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bias: usize, c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  const bias0 = bias ? v128.load(bias) : f32x4.splat(0);
  const bias1 = bias ? v128.load(bias, 16) : f32x4.splat(0);
  const bias2 = bias ? v128.load(bias, 32) : f32x4.splat(0);
  let c00 = bias0, c01 = bias1, c02 = bias2;
  let c10 = bias0, c11 = bias1, c12 = bias2;
  const end = a + kBytes;
  for (; a < end; a += 4, b += 48) {
    const b0 = v128.load(b), b1 = v128.load(b, 16), b2 = v128.load(b, 32);
    let x = v128.load32_splat(a);
    c00 = madd(x, b0, c00); c01 = madd(x, b1, c01); c02 = madd(x, b2, c02);
    x = v128.load32_splat(a + aRowBytes);
    c10 = madd(x, b0, c10); c11 = madd(x, b1, c11); c12 = madd(x, b2, c12);
  }
  storePartialRow12(c, c00, c01, c02, cols, epilogue);
  storePartialRow12(c + cRowBytes, c10, c11, c12, cols, epilogue);
  if (epilogue & EPILOGUE_GELU) geluTile(c, cRowBytes, 2, cols);
}

function gemmTile1x12(
  kBytes: usize, a: usize, b: usize, bias: usize, c: usize, cols: i32, epilogue: i32,
): void {
  let c00 = bias ? v128.load(bias) : f32x4.splat(0);
  let c01 = bias ? v128.load(bias, 16) : f32x4.splat(0);
  let c02 = bias ? v128.load(bias, 32) : f32x4.splat(0);
  const end = a + kBytes;
  for (; a < end; a += 4, b += 48) {
    const x = v128.load32_splat(a);
    c00 = madd(x, v128.load(b), c00);
    c01 = madd(x, v128.load(b, 16), c01);
    c02 = madd(x, v128.load(b, 32), c02);
  }
  storePartialRow12(c, c00, c01, c02, cols, epilogue);
  if (epilogue & EPILOGUE_GELU) geluTile(c, 0, 1, cols);
}

// Tile epilogues. The residual add happens in registers; GELU runs afterwards over the stored
// tile (still in L1) in a separate function: applied in registers inside a micro-kernel it was
// no faster (its arithmetic is the cost, ≈ 2.6 ns per 4 floats), and kept out of the tile
// functions it cannot disturb their register allocation.

/** Stores a full tile row of 12 at c, added to c's values for EPILOGUE_ACCUMULATE. */
// @ts-ignore: decorator
@inline
function storeRow12(c: usize, v0: v128, v1: v128, v2: v128, epilogue: i32): void {
  if (epilogue & EPILOGUE_ACCUMULATE) {
    v0 = f32x4.add(v0, v128.load(c));
    v1 = f32x4.add(v1, v128.load(c, 16));
    v2 = f32x4.add(v2, v128.load(c, 32));
  }
  v128.store(c, v0);
  v128.store(c, v1, 16);
  v128.store(c, v2, 32);
}

/** storeRow12 for the first `cols` (1…12) lanes. */
function storePartialRow12(c: usize, v0: v128, v1: v128, v2: v128, cols: i32, epilogue: i32): void {
  storeQuad(c, v0, cols, epilogue);
  storeQuad(c + 16, v1, cols - 4, epilogue);
  storeQuad(c + 32, v2, cols - 8, epilogue);
}

/** Stores min(lanes, 4) lanes of v at c (nothing for lanes ≤ 0), added to c's for EPILOGUE_ACCUMULATE. */
// @ts-ignore: decorator
@inline
function storeQuad(c: usize, v: v128, lanes: i32, epilogue: i32): void {
  if (lanes >= 4) {
    if (epilogue & EPILOGUE_ACCUMULATE) v = f32x4.add(v, v128.load(c));
    v128.store(c, v);
  } else if (lanes > 0) {
    if (epilogue & EPILOGUE_ACCUMULATE) v = f32x4.add(v, loadFirstLanes(c, lanes));
    storeFirstLanes(c, v, lanes);
  }
}

/** GELU in place over a stored tile: `rows` rows of `cols` floats, cRowBytes apart. */
function geluTile(c: usize, cRowBytes: usize, rows: i32, cols: i32): void {
  const vectorBytes = <usize>(cols & ~3) << 2;
  const rest = cols & 3;
  for (let r = 0; r < rows; r++, c += cRowBytes) {
    let p = c;
    const end = c + vectorBytes;
    for (; p < end; p += 16) v128.store(p, geluF32x4(v128.load(p)));
    if (rest) storeFirstLanes(p, geluF32x4(loadFirstLanes(p, rest)), rest);
  }
}

// ---------------------------------------------------------------- 4×8 tiles (panels of 8)

/**
 * c[m, n] = epilogue(a[m, k] · b + bias[n]) in register tiles of 4×8 (2×8 and 1×8 for
 * the last rows; the last panel's columns past n are computed and not stored).
 *   a:    rows at a + i·lda floats
 *   b:    column panels of 8: columns 8p…8p+7 at b + p·panelStride floats, row κ of a panel at
 *         κ·bRowStride floats. Packed (f32_pack_panels8): panelStride = 8k, bRowStride = 8. A
 *         row-major [k, n] matrix read in place: panelStride = 8, bRowStride = its row stride
 *         (the last panel then reads up to 7 floats past each row; they only reach discarded lanes).
 *   bias: [n] read 8 at a time (lanes past n are discarded), or 0 for none
 *   c:    rows at c + i·ldc floats
 * K in chunks of ≤ K_CHUNK. Pointers are byte addresses, strides in floats.
 */
export function f32_gemm_4x8_wasmsimd(
  m: i32, n: i32, k: i32, a: usize, lda: i32, b: usize, panelStride: i32, bRowStride: i32,
  bias: usize, c: usize, ldc: i32, epilogue: i32,
): void {
  const aRowBytes = <usize>lda << 2;
  const bRowBytes = <usize>bRowStride << 2;
  const cRowBytes = <usize>ldc << 2;
  const panelBytes = <usize>panelStride << 2;
  const chunk = chunkLength(k);
  for (let col = 0; col < n; col += 8, b += panelBytes) {
    const cols = min(8, n - col);
    const cCol = c + (<usize>col << 2);
    let k0 = 0;
    do {
      const kc = min(chunk, k - k0);
      panelRows4x8(m, <usize>kc << 2, a + (<usize>k0 << 2), aRowBytes, b + <usize>k0 * bRowBytes, bRowBytes,
        k0 == 0 && bias ? bias + (<usize>col << 2) : 0, cCol, cRowBytes, cols,
        chunkEpilogue(epilogue, k0 == 0, k0 + kc >= k));
      k0 += kc;
    } while (k0 < k);
  }
}

/** All rows of one column panel (4×8 tiles, then 2 and 1 rows) for one K chunk. */
function panelRows4x8(
  m: i32, kBytes: usize, a: usize, aRowBytes: usize, b: usize, bRowBytes: usize, bias: usize,
  c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  let row = 0;
  if (cols < 8) {
    for (; row + 4 <= m; row += 4) {
      gemmTile4x8Partial(kBytes, a + <usize>row * aRowBytes, aRowBytes, b, bRowBytes, bias,
        c + <usize>row * cRowBytes, cRowBytes, cols, epilogue);
    }
  } else if (epilogue & EPILOGUE_ACCUMULATE) {
    for (; row + 4 <= m; row += 4) {
      const cTile = c + <usize>row * cRowBytes;
      gemmTile4x8Accumulate(kBytes, a + <usize>row * aRowBytes, aRowBytes, b, bRowBytes, bias, cTile, cRowBytes);
      if (epilogue & EPILOGUE_GELU) geluTile(cTile, cRowBytes, 4, 8);
    }
  } else {
    for (; row + 4 <= m; row += 4) {
      const cTile = c + <usize>row * cRowBytes;
      gemmTile4x8Store(kBytes, a + <usize>row * aRowBytes, aRowBytes, b, bRowBytes, bias, cTile, cRowBytes);
      if (epilogue & EPILOGUE_GELU) geluTile(cTile, cRowBytes, 4, 8);
    }
  }
  if (row + 2 <= m) {
    gemmTile2x8(kBytes, a + <usize>row * aRowBytes, aRowBytes, b, bRowBytes, bias,
      c + <usize>row * cRowBytes, cRowBytes, cols, epilogue);
    row += 2;
  }
  if (row < m) {
    gemmTile1x8(kBytes, a + <usize>row * aRowBytes, b, bRowBytes, bias, c + <usize>row * cRowBytes, cols, epilogue);
  }
}

function gemmTile4x8Store(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bRowBytes: usize, bias: usize, c: usize, cRowBytes: usize,
): void {
  gemmTile4x8(kBytes, a, aRowBytes, b, bRowBytes, bias, c, cRowBytes, 8, EPILOGUE_STORE);
}

function gemmTile4x8Accumulate(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bRowBytes: usize, bias: usize, c: usize, cRowBytes: usize,
): void {
  gemmTile4x8(kBytes, a, aRowBytes, b, bRowBytes, bias, c, cRowBytes, 8, EPILOGUE_ACCUMULATE);
}

/** The last panel's tiles when n is not a multiple of 8: any cols (1…8) and epilogue. */
function gemmTile4x8Partial(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bRowBytes: usize, bias: usize,
  c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  gemmTile4x8(kBytes, a, aRowBytes, b, bRowBytes, bias, c, cRowBytes, cols, epilogue);
}

// @ts-ignore: decorator
@inline
function gemmTile4x8(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bRowBytes: usize, bias: usize,
  c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  const biasLo = bias ? v128.load(bias) : f32x4.splat(0);
  const biasHi = bias ? v128.load(bias, 16) : f32x4.splat(0);
  let c0lo = biasLo, c0hi = biasHi, c1lo = biasLo, c1hi = biasHi;
  let c2lo = biasLo, c2hi = biasHi, c3lo = biasLo, c3hi = biasHi;
  const aRow2 = aRowBytes << 1;
  const aRow3 = aRow2 + aRowBytes;
  const end = a + kBytes;
  for (; a < end; a += 4, b += bRowBytes) {
    const bLo = v128.load(b);
    const bHi = v128.load(b, 16);
    let x = v128.load32_splat(a);
    c0lo = madd(x, bLo, c0lo); c0hi = madd(x, bHi, c0hi);
    x = v128.load32_splat(a + aRowBytes);
    c1lo = madd(x, bLo, c1lo); c1hi = madd(x, bHi, c1hi);
    x = v128.load32_splat(a + aRow2);
    c2lo = madd(x, bLo, c2lo); c2hi = madd(x, bHi, c2hi);
    x = v128.load32_splat(a + aRow3);
    c3lo = madd(x, bLo, c3lo); c3hi = madd(x, bHi, c3hi);
  }
  if (cols == 8) {
    storeRow8(c, c0lo, c0hi, epilogue);
    storeRow8(c + cRowBytes, c1lo, c1hi, epilogue);
    storeRow8(c + (cRowBytes << 1), c2lo, c2hi, epilogue);
    storeRow8(c + 3 * cRowBytes, c3lo, c3hi, epilogue);
  } else {
    storePartialRow8(c, c0lo, c0hi, cols, epilogue);
    storePartialRow8(c + cRowBytes, c1lo, c1hi, cols, epilogue);
    storePartialRow8(c + (cRowBytes << 1), c2lo, c2hi, cols, epilogue);
    storePartialRow8(c + 3 * cRowBytes, c3lo, c3hi, cols, epilogue);
  }
  if (epilogue & EPILOGUE_GELU) geluTile(c, cRowBytes, 4, cols);
}

function gemmTile2x8(
  kBytes: usize, a: usize, aRowBytes: usize, b: usize, bRowBytes: usize, bias: usize,
  c: usize, cRowBytes: usize, cols: i32, epilogue: i32,
): void {
  const biasLo = bias ? v128.load(bias) : f32x4.splat(0);
  const biasHi = bias ? v128.load(bias, 16) : f32x4.splat(0);
  let c0lo = biasLo, c0hi = biasHi, c1lo = biasLo, c1hi = biasHi;
  const end = a + kBytes;
  for (; a < end; a += 4, b += bRowBytes) {
    const bLo = v128.load(b);
    const bHi = v128.load(b, 16);
    let x = v128.load32_splat(a);
    c0lo = madd(x, bLo, c0lo); c0hi = madd(x, bHi, c0hi);
    x = v128.load32_splat(a + aRowBytes);
    c1lo = madd(x, bLo, c1lo); c1hi = madd(x, bHi, c1hi);
  }
  storePartialRow8(c, c0lo, c0hi, cols, epilogue);
  storePartialRow8(c + cRowBytes, c1lo, c1hi, cols, epilogue);
  if (epilogue & EPILOGUE_GELU) geluTile(c, cRowBytes, 2, cols);
}

function gemmTile1x8(
  kBytes: usize, a: usize, b: usize, bRowBytes: usize, bias: usize,
  c: usize, cols: i32, epilogue: i32,
): void {
  let c0lo = bias ? v128.load(bias) : f32x4.splat(0);
  let c0hi = bias ? v128.load(bias, 16) : f32x4.splat(0);
  const end = a + kBytes;
  for (; a < end; a += 4, b += bRowBytes) {
    const x = v128.load32_splat(a);
    c0lo = madd(x, v128.load(b), c0lo);
    c0hi = madd(x, v128.load(b, 16), c0hi);
  }
  storePartialRow8(c, c0lo, c0hi, cols, epilogue);
  if (epilogue & EPILOGUE_GELU) geluTile(c, 0, 1, cols);
}

/** Stores a full tile row of 8 at c, added to c's values for EPILOGUE_ACCUMULATE. */
// @ts-ignore: decorator
@inline
function storeRow8(c: usize, lo: v128, hi: v128, epilogue: i32): void {
  if (epilogue & EPILOGUE_ACCUMULATE) {
    lo = f32x4.add(lo, v128.load(c));
    hi = f32x4.add(hi, v128.load(c, 16));
  }
  v128.store(c, lo);
  v128.store(c, hi, 16);
}

/** storeRow8 for the first `cols` (1…8) lanes. */
function storePartialRow8(c: usize, lo: v128, hi: v128, cols: i32, epilogue: i32): void {
  storeQuad(c, lo, cols, epilogue);
  storeQuad(c + 16, hi, cols - 4, epilogue);
}
