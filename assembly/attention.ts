import { EPILOGUE_STORE, f32_gemm_4x8_wasmsimd, f32_pack_panels8 } from './gemm';
import { softmaxRow } from './softmax';

/**
 * One head of self-attention over n tokens:
 *   probs[n, n] = softmax(scale · Q Kᵀ + logSizes)   (row = query; logSizes added per key)
 *   out[n, vDim] = probs · V
 * q, k, v: the head's first Q, K, V element of token 0; token rows `rowStride` floats apart
 *          (the rows of the fused qkv projection).
 * logSizes: [n] or 0 for none. probs: this head's [n, n] block. out: rows `outStride` floats apart.
 * scratch: ⌈n/8⌉·8·qkDim floats for scale·Kᵀ packed in column panels.
 * Pointers are byte addresses, strides in floats.
 */
export function f32_attention_head_wasmsimd(
  q: usize, k: usize, v: usize, rowStride: i32, n: i32, qkDim: i32, vDim: i32, scale: f32,
  logSizes: usize, probs: usize, out: usize, outStride: i32, scratch: usize,
): void {
  f32_pack_panels8(k, rowStride, n, qkDim, scale, scratch);
  // probs = Q · (scale·Kᵀ) + logSizes
  f32_gemm_4x8_wasmsimd(n, n, qkDim, q, rowStride, scratch, qkDim << 3, 8, logSizes, probs, n, EPILOGUE_STORE);
  const rowBytes = <usize>n << 2;
  for (let row = 0, p = probs; row < n; row++, p += rowBytes) softmaxRow(p, n);
  // out = probs · V, V read in place as a row-major [n, vDim] matrix
  f32_gemm_4x8_wasmsimd(n, vDim, n, probs, n, v, 8, rowStride, 0, out, outStride, EPILOGUE_STORE);
}
