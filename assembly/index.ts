// The exported kernels of vitprune's wasm backend. All take byte addresses into the imported
// memory, which JavaScript lays out (src/kernels/wasm.ts); no kernel allocates. One source, two
// builds: `_wasmsimd` kernels use f32x4.relaxed_madd in the relaxed-SIMD build (see vector.ts).
// The token-pruning kernels (prune.ts) are bit-identical to their TypeScript oracles in both builds.
export { f32_attention_head_wasmsimd, f32_attention_scratch_floats } from './attention';
export {
  f32_gemm_4x8_wasmsimd, f32_gemm_packed_wasmsimd, f32_pack_panels8, f32_pack_weights, f32_packed_panel_width,
} from './gemm';
export { f32_gelu_wasmsimd } from './gelu';
export {
  f32_attention_backward_scratch_floats, f32_attention_head_backward_wasmsimd, f32_gelu_backward_wasmsimd, f32_layernorm_backward_rows_wasmsimd,
} from './grad';
export { f32_layernorm_rows_wasmsimd } from './norm';
export { f32_softmax_rows_wasmsimd } from './softmax';
export { f32_restrict_graph, f64_max_cosine, f64_weighted_page_rank } from './prune';

/** The first byte past the module's static data: JavaScript's allocations start here. */
export function heap_base(): usize {
  return __heap_base;
}
