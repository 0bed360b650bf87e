import type { ThreadPool } from './pool.js';

/**
 * The wasm kernels split into chunks for a ThreadPool (assembly/pool.ts runs the chunks). Each
 * method returns false when the call is too small to be worth splitting; the caller then runs
 * the one-thread kernel, which gives the same bits (a chunk computes its outputs with the same
 * code, in the same order).
 *   GEMM: column panels first (each thread then streams its own part of the packed weights
 *         and shares the smaller activations), then rows in multiples of ROW_TILE;
 *   attention: every head's K and V packed (one chunk each), then heads × blocks of query rows;
 *   LayerNorm, softmax: blocks of rows; GELU: blocks of floats.
 */

/** Job kind codes, from the module's exported globals. */
interface JobKinds {
  gemm: number;
  attentionPack: number;
  attentionRows: number;
  layerNorm: number;
  softmax: number;
  gelu: number;
}

/** Multiply-adds below which a chunk costs more to hand out than it saves (≈ 4 µs of GEMM). */
const MIN_CHUNK_MACS = 1 << 17;
/** Floats below which a chunk of LayerNorm, softmax or GELU is not worth handing out. */
const MIN_CHUNK_FLOATS = 1 << 13;
/**
 * Chunks per thread at most: the threads finish a job at most about one chunk apart (≈ 1/16 of
 * it on 2 threads, half that on average); more chunks even out threads the machine slows down,
 * at ≈ 0.2–0.5 µs each to claim.
 */
const CHUNKS_PER_THREAD = 8;
/** Rows of a GEMM or attention chunk come in multiples of this: whole 3×12 and 4×8 register tiles. */
const ROW_TILE = 12;

function readJobKinds(exports: WebAssembly.Exports): JobKinds {
  const value = (name: string): number => (exports[name] as WebAssembly.Global).value as number;
  return {
    gemm: value('POOL_JOB_GEMM'),
    attentionPack: value('POOL_JOB_ATTENTION_PACK'),
    attentionRows: value('POOL_JOB_ATTENTION_ROWS'),
    layerNorm: value('POOL_JOB_LAYERNORM'),
    softmax: value('POOL_JOB_SOFTMAX'),
    gelu: value('POOL_JOB_GELU'),
  };
}

/** `rows` split into at most `parts` blocks of a multiple of `tile` rows (one block of all rows when they are fewer than a tile). */
function rowBlocks(rows: number, parts: number, tile: number): { rowsPerChunk: number; chunks: number } {
  const rowsPerChunk = Math.min(rows, Math.ceil(Math.ceil(rows / parts) / tile) * tile);
  return { rowsPerChunk, chunks: Math.ceil(rows / rowsPerChunk) };
}

export class ParallelKernels {
  private readonly kinds: JobKinds;
  private readonly maxChunks: number;

  /** `splitSmallCalls`: chunks of any size (WasmKernelOptions.splitSmallCalls, for tests). */
  constructor(
    private readonly pool: ThreadPool,
    exports: WebAssembly.Exports,
    private readonly panel: number,
    private readonly splitSmallCalls = false,
  ) {
    this.kinds = readJobKinds(exports);
    this.maxChunks = pool.threads * CHUNKS_PER_THREAD;
  }

  private chunksFor(work: number, minimum: number): number {
    return Math.min(this.maxChunks, Math.floor(work / (this.splitSmallCalls ? 1 : minimum)));
  }

  /** f32_gemm_packed_wasmsimd's arguments. */
  gemm(m: number, n: number, k: number, a: number, lda: number, b: number, bias: number, c: number, ldc: number, epilogue: number): boolean {
    const wanted = this.chunksFor(m * n * k, MIN_CHUNK_MACS);
    if (wanted < 2) return false;
    const panels = Math.ceil(n / this.panel);
    const panelsPerChunk = Math.ceil(panels / Math.min(panels, wanted));
    const panelChunks = Math.ceil(panels / panelsPerChunk);
    const rows = rowBlocks(m, Math.max(1, Math.floor(wanted / panelChunks)), ROW_TILE);
    const chunks = rows.chunks * panelChunks;
    if (chunks < 2) return false;
    this.pool.run('linear', this.kinds.gemm, chunks, 0, m, n, k, a, lda, b, bias, c, ldc, epilogue, rows.rowsPerChunk, panelsPerChunk, panelChunks);
    return true;
  }

  /**
   * Kernels.attention on byte addresses; `scratch` holds `heads` scratch areas of `scratchBytes`
   * (f32_attention_scratch_floats, rounded up to 16 bytes) each.
   */
  attention(
    qkv: number,
    n: number,
    heads: number,
    qkDim: number,
    vDim: number,
    scale: number,
    logSizes: number,
    probs: number,
    out: number,
    scratch: number,
    scratchBytes: number,
  ): boolean {
    const wanted = this.chunksFor(heads * n * n * (qkDim + vDim), MIN_CHUNK_MACS);
    if (wanted < 2) return false;
    const rowStride = 2 * heads * qkDim + heads * vDim;
    const rows = rowBlocks(n, Math.max(1, Math.ceil(wanted / heads)), ROW_TILE);
    this.pool.run('attention (packing K and V)', this.kinds.attentionPack, 2 * heads, scale, qkv, rowStride, n, heads, qkDim, vDim, scratch, scratchBytes);
    this.pool.run(
      'attention',
      this.kinds.attentionRows,
      heads * rows.chunks,
      0,
      qkv,
      rowStride,
      n,
      heads,
      qkDim,
      vDim,
      scratch,
      scratchBytes,
      logSizes,
      probs,
      out,
      heads * vDim,
      rows.rowsPerChunk,
      rows.chunks,
    );
    return true;
  }

  layerNorm(x: number, m: number, d: number, gamma: number, beta: number, eps: number, out: number): boolean {
    const wanted = this.chunksFor(m * d, MIN_CHUNK_FLOATS);
    if (wanted < 2) return false;
    const rows = rowBlocks(m, wanted, 1);
    this.pool.run('layerNorm', this.kinds.layerNorm, rows.chunks, eps, x, m, d, gamma, beta, out, rows.rowsPerChunk);
    return true;
  }

  softmax(x: number, rows: number, cols: number): boolean {
    const wanted = this.chunksFor(rows * cols, MIN_CHUNK_FLOATS);
    if (wanted < 2) return false;
    const blocks = rowBlocks(rows, wanted, 1);
    this.pool.run('softmax', this.kinds.softmax, blocks.chunks, 0, x, rows, cols, blocks.rowsPerChunk);
    return true;
  }

  gelu(x: number, length: number): boolean {
    const wanted = this.chunksFor(length, MIN_CHUNK_FLOATS);
    if (wanted < 2) return false;
    const floatsPerChunk = Math.ceil(length / wanted / 4) * 4;
    this.pool.run('gelu', this.kinds.gelu, Math.ceil(length / floatsPerChunk), 0, x, length, floatsPerChunk);
    return true;
  }
}
