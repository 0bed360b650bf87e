import {
  EPILOGUE_STORE, PACKED_PANEL, f32_gemm_4x8_wasmsimd, f32_gemm_packed_wasmsimd, f32_pack_panels, f32_pack_rows8,
} from './gemm';
import { softmaxRow } from './softmax';

/** Floats of scratch f32_attention_head_wasmsimd needs: packed scale·Kᵀ, then packed V. */
export function f32_attention_scratch_floats(n: i32, qkDim: i32, vDim: i32): i32 {
  return keyPanelsFloats(n, qkDim) + ((vDim + 7) >> 3) * 8 * n;
}

// @ts-ignore: decorator
@inline
function keyPanelsFloats(n: i32, qkDim: i32): i32 {
  // rounded up to 4 floats so the V panels start 16-byte aligned
  return ((((n + PACKED_PANEL - 1) / PACKED_PANEL) * PACKED_PANEL * qkDim) + 3) & ~3;
}

/**
 * One head of self-attention over n tokens:
 *   probs[n, n] = softmax(scale · Q Kᵀ + logSizes)   (row = query; logSizes added per key)
 *   out[n, vDim] = probs · V
 * q, k, v: the head's first Q, K, V element of token 0; token rows `rowStride` floats apart
 *          (the rows of the fused qkv projection).
 * logSizes: [n] or 0 for none. probs: this head's [n, n] block. out: rows `outStride` floats apart.
 * scratch: f32_attention_scratch_floats(n, qkDim, vDim) floats, 16-byte aligned: scale·Kᵀ in
 *          the packed GEMM's column panels, then V in column panels of 8 (so that P·V reads B
 *          contiguously instead of one 32-byte piece per qkv row).
 * Pointers are byte addresses, strides in floats.
 */
export function f32_attention_head_wasmsimd(
  q: usize, k: usize, v: usize, rowStride: i32, n: i32, qkDim: i32, vDim: i32, scale: f32,
  logSizes: usize, probs: usize, out: usize, outStride: i32, scratch: usize,
): void {
  attentionPackKeys(k, rowStride, n, qkDim, scale, scratch);
  attentionPackValues(v, rowStride, n, qkDim, vDim, scratch);
  attentionRows(q, rowStride, n, qkDim, vDim, logSizes, probs, out, outStride, scratch, 0, n);
}

/** The first half of a head's scratch: scale·Kᵀ in the packed GEMM's column panels. */
export function attentionPackKeys(k: usize, rowStride: i32, n: i32, qkDim: i32, scale: f32, scratch: usize): void {
  f32_pack_panels(k, rowStride, n, qkDim, scale, PACKED_PANEL, scratch);
}

/** The second half of a head's scratch: V in column panels of 8. */
export function attentionPackValues(v: usize, rowStride: i32, n: i32, qkDim: i32, vDim: i32, scratch: usize): void {
  f32_pack_rows8(v, rowStride, n, vDim, scratch + (<usize>keyPanelsFloats(n, qkDim) << 2));
}

/**
 * Query rows [rowStart, rowEnd) of one head whose scratch is packed (attentionPackKeys and
 * attentionPackValues): those rows of probs and of out. Every row is computed exactly as in the
 * whole head (rows of a GEMM and of a softmax are independent), so any split of the rows gives
 * the same bits. Arguments as f32_attention_head_wasmsimd, probs and out at row 0.
 */
export function attentionRows(
  q: usize, rowStride: i32, n: i32, qkDim: i32, vDim: i32, logSizes: usize, probs: usize, out: usize,
  outStride: i32, scratch: usize, rowStart: i32, rowEnd: i32,
): void {
  const keys = scratch;
  const values = scratch + (<usize>keyPanelsFloats(n, qkDim) << 2);
  const rows = rowEnd - rowStart;
  const rowBytes = <usize>n << 2;
  const probsRows = probs + <usize>rowStart * rowBytes;
  // probs = Q · (scale·Kᵀ) + logSizes
  f32_gemm_packed_wasmsimd(rows, n, qkDim, q + (<usize>rowStart * rowStride << 2), rowStride, keys, logSizes, probsRows, n, EPILOGUE_STORE);
  for (let row = 0, p = probsRows; row < rows; row++, p += rowBytes) softmaxRow(p, n);
  // out = probs · V
  f32_gemm_4x8_wasmsimd(rows, vDim, n, probsRows, n, values, n << 3, 8, 0, out + (<usize>rowStart * outStride << 2), outStride, EPILOGUE_STORE);
}
