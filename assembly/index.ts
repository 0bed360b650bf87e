// The exported kernels of vitprune's wasm backend. All take byte addresses into the imported
// memory, which JavaScript lays out (src/kernels/wasm.ts); no kernel allocates. One source, two
// builds: `_wasmsimd` kernels use f32x4.relaxed_madd in the relaxed-SIMD build (see vector.ts).
// The token-pruning and merging kernels (prune.ts, merge.ts) are bit-identical to their TypeScript oracles in both builds.
// pool.ts runs the forward-pass kernels in chunks on several threads (src/kernels/pool.ts).
export { f32_attention_head_wasmsimd, f32_attention_scratch_floats } from './attention';
export {
  f32_gemm_4x8_wasmsimd, f32_gemm_packed_wasmsimd, f32_pack_panels8, f32_pack_weights, f32_packed_panel_width,
} from './gemm';
export { f32_gelu_wasmsimd } from './gelu';
export { f32_im2col } from './patches';
export {
  f32_attention_backward_scratch_floats, f32_attention_head_backward_wasmsimd, f32_gelu_backward_wasmsimd, f32_layernorm_backward_rows_wasmsimd,
} from './grad';
export { f32_layernorm_rows_wasmsimd } from './norm';
export { f32_softmax_rows_wasmsimd } from './softmax';
export { f32_restrict_graph, f64_max_cosine, f64_weighted_page_rank } from './prune';
export {
  f32_head_mean_keys, f64_attention_received, f64_column_argmax, i32_rank_descending, f32_cosine_work_bytes, f32_even_odd_cosines, f32_fused_attention_correction, f64_mctf_affinity,
  f32_pairwise_cosines, f64_pitome_energy, f64_pool_rows, f64_row_argmax,
} from './merge';
export {
  POOL_CLAIM, POOL_CONTROL_BYTES, POOL_DONE, POOL_FAULTS, POOL_GENERATION, POOL_JOB, POOL_JOB_ATTENTION_PACK,
  POOL_JOB_ATTENTION_ROWS, POOL_JOB_GELU, POOL_JOB_GEMM, POOL_JOB_LAYERNORM, POOL_JOB_SOFTMAX, POOL_MAX_CHUNKS,
  POOL_MAX_THREADS, POOL_MESSAGE, POOL_MESSAGE_BYTES, POOL_SLEEPERS, POOL_SLOT_BYTES, POOL_SLOT_CHUNKS, POOL_SLOT_HELD,
  POOL_SLOT_LOST, POOL_SLOT_SLEEPS, POOL_SLOT_STATE, POOL_SLOTS, POOL_STATE_DEAD,
  POOL_STATE_READY, POOL_STATE_STARTING, POOL_STATE_STOPPED, POOL_STOP, pool_publish, pool_run, pool_seal, pool_worker_run,
} from './pool';

/** The first byte past the module's static data: JavaScript's allocations start here. */
export function heap_base(): usize {
  return __heap_base;
}
