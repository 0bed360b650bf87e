import { WasmBackendError } from '../errors.js';
import { ThreadPool, type PoolExports } from './pool.js';
import { readPoolLayout } from './pool-protocol.js';
import { threadsAllowedHere } from './platform.js';
import type { Kernels, Linear, PreparedLinear } from './types.js';
import { ParallelKernels } from './wasm-parallel.js';
import { WasmHeap } from './wasm-heap.js';

/**
 * The fast kernels: AssemblyScript compiled to WebAssembly SIMD (assembly/, built by
 * scripts/build-wasm.mjs into build/). Two builds of one source: 'relaxed' fuses multiply-adds
 * with f32x4.relaxed_madd, 'simd' is plain SIMD128 for engines without relaxed SIMD (Safari,
 * Node 20 unless the V8 flag is set, which this module does).
 *
 * Memory. All buffers live in one shared WebAssembly.Memory that this module lays out (a
 * WasmHeap: `alloc` at set-up, `free` gives a buffer back). It is shared because growing a shared
 * memory keeps every earlier Float32Array view valid (a non-shared memory detaches them on each
 * grow), and because worker threads run kernels on the same buffers. In browsers a shared
 * memory needs a cross-origin isolated page (COOP/COEP headers).
 * Kernels take byte addresses, computed from each view's byteOffset: nothing is allocated per call.
 *
 * Threads. With `threads` > 1 a ThreadPool (pool.ts) instantiates the same module on the same
 * memory in threads − 1 workers, and the forward-pass kernels large enough to gain run split in
 * chunks over all threads (wasm-parallel.ts); results are bit-identical for every thread count.
 */

export type WasmVariant = 'relaxed' | 'simd';

export interface WasmKernelOptions {
  /** Which build to load; 'auto' (default) takes 'relaxed' where the engine supports it. */
  variant?: WasmVariant | 'auto';
  /**
   * Check on every call that buffers come from this backend and are long enough for the shapes
   * (default true; a few comparisons per call). Without it a foreign or short buffer makes the
   * kernels read and write wrong parts of wasm memory.
   */
  checks?: boolean;
  /**
   * Threads the kernels run on, the calling thread included (default 1: no workers at all).
   * The workers never keep Node alive; `dispose()` ends them.
   */
  threads?: number;
  /**
   * For tests (default false): with threads, split every call into chunks however little work it
   * holds, so that a tiny model (the conformance suite's) runs on the workers as a large one does.
   */
  splitSmallCalls?: boolean;
}

export interface WasmKernels extends Kernels {
  readonly name: 'wasm-relaxed' | 'wasm-simd';
  readonly variant: WasmVariant;
  /** The shared memory all buffers live in (for worker threads). */
  readonly memory: WebAssembly.Memory;
  /** The compiled module (for worker threads, which instantiate it on the same memory). */
  readonly module: WebAssembly.Module;
  /** The build's exported functions, for kernels beyond this interface (a pruning method's, e.g. prune/zero-tprune-kernels.ts). */
  readonly exports: WebAssembly.Exports;
  /** Byte address of `buf` for a call of `exports`, after checking (when enabled) that it lives in this memory and holds `length` elements. */
  address(buf: Float32Array | Float64Array | Int32Array, length: number, what: string): number;
  /** Whether calls check their buffers and arguments (WasmKernelOptions.checks). */
  readonly checks: boolean;
  /** Threads the kernels run on (the caller's included). */
  readonly threads: number;
  /** The worker pool when threads > 1. */
  readonly pool: ThreadPool | null;
  /** Bytes of wasm memory in buffers and prepared layers not freed (and in the kernels' own scratch). */
  allocatedBytes(): number;
}

/** The exports of build/vitprune-*.wasm (assembly/index.ts). Pointers are byte addresses, strides in floats. */
interface KernelExports extends PoolExports {
  heap_base(): number;
  f32_packed_panel_width(): number;
  f32_pack_weights(src: number, srcStride: number, n: number, k: number, dst: number): void;
  f32_gemm_packed_wasmsimd(m: number, n: number, k: number, a: number, lda: number, b: number, bias: number, c: number, ldc: number, epilogue: number): void;
  f32_layernorm_rows_wasmsimd(x: number, m: number, d: number, gamma: number, beta: number, eps: number, out: number): void;
  f32_gelu_wasmsimd(x: number, length: number): void;
  f32_im2col(image: number, channels: number, size: number, patch: number, out: number): void;
  f32_softmax_rows_wasmsimd(x: number, rows: number, cols: number): void;
  f32_attention_head_wasmsimd(
    q: number,
    k: number,
    v: number,
    rowStride: number,
    n: number,
    qkDim: number,
    vDim: number,
    scale: number,
    logSizes: number,
    probs: number,
    out: number,
    outStride: number,
    scratch: number,
  ): void;
  f32_attention_scratch_floats(n: number, qkDim: number, vDim: number): number;
}

/** GEMM epilogues, as in assembly/gemm.ts. */
const enum Epilogue {
  Store = 0,
  Accumulate = 1,
  Gelu = 2,
}

const PAGE_BYTES = 65536;
const MAX_PAGES = 65536; // the builds declare their memory import with this maximum (4 GiB)
/**
 * Bytes kept addressable past the last allocation: the GEMMs read a bias (or attention's logSizes) a
 * whole panel at a time, up to 11 floats past its end, into discarded lanes.
 */
const TAIL_SLACK = 64;

/** f32x4.relaxed_madd on three v128 parameters: validates only where relaxed SIMD is on. */
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00, // magic, version 1
  0x01,
  0x08,
  0x01,
  0x60,
  0x03,
  0x7b,
  0x7b,
  0x7b,
  0x01,
  0x7b, // type 0: (v128, v128, v128) → v128
  0x03,
  0x02,
  0x01,
  0x00, // one function of type 0
  0x0a,
  0x0d,
  0x01,
  0x0b,
  0x00, // code: one body of 11 bytes, no locals
  0x20,
  0x00,
  0x20,
  0x01,
  0x20,
  0x02, // local.get 0, 1, 2
  0xfd,
  0x85,
  0x02, // f32x4.relaxed_madd
  0x0b, // end
]);

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/**
 * Whether this engine runs relaxed SIMD. On Node 20 it is behind a V8 flag, which is switched
 * on here (it applies to modules compiled afterwards, workers included).
 */
export async function relaxedSimdSupported(): Promise<boolean> {
  if (WebAssembly.validate(RELAXED_SIMD_PROBE)) return true;
  if (!isNode()) return false;
  // getBuiltinModule, not import('node:v8'): a browser bundle of this module then holds no Node import.
  const v8 = process.getBuiltinModule('node:v8');
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return WebAssembly.validate(RELAXED_SIMD_PROBE);
}

async function readBuild(variant: WasmVariant): Promise<ArrayBuffer | Uint8Array<ArrayBuffer>> {
  // src/kernels/ and dist/kernels/ both sit two levels below the project root, beside build/.
  const url = new URL(`../../build/vitprune-${variant}.wasm`, import.meta.url);
  try {
    if (url.protocol === 'file:') {
      const { readFile } = process.getBuiltinModule('node:fs/promises');
      return new Uint8Array(await readFile(url));
    }
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await response.arrayBuffer();
  } catch (cause) {
    throw new WasmBackendError(`expected the wasm build at ${url.href} (made by \`npm run build:wasm\`), could not read it: ${(cause as Error).message}`, {
      cause,
    });
  }
}

function createSharedMemory(): WebAssembly.Memory {
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
  } catch (cause) {
    throw new WasmBackendError(
      'expected shared WebAssembly memory (browsers allow it on cross-origin isolated pages only), ' + `the engine refused it: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/** A linear layer whose weight is packed in column panels (of the build's panel width) in wasm memory. */
interface PackedLinear extends PreparedLinear {
  readonly packedWeight: number; // byte address of Wᵀ as [⌈out/P⌉][in][P], P = the build's f32_packed_panel_width()
  readonly bias: number; // byte address of [out]
}

export async function createWasmKernels(opts: WasmKernelOptions = {}): Promise<WasmKernels> {
  const requested = opts.variant ?? 'auto';
  const checks = opts.checks ?? true;
  const relaxed = requested !== 'simd' && (await relaxedSimdSupported());
  if (requested === 'relaxed' && !relaxed) {
    throw new WasmBackendError("expected an engine with relaxed SIMD for variant 'relaxed', this one has none (use 'simd' or 'auto')");
  }
  const variant: WasmVariant = relaxed ? 'relaxed' : 'simd';

  const asked = opts.threads ?? 1;
  if (!(Number.isInteger(asked) && asked >= 1)) throw new WasmBackendError(`expected a thread count ≥ 1, got ${asked}`);
  const threads = threadsAllowedHere(asked);

  const memory = createSharedMemory();
  const module = await WebAssembly.compile(await readBuild(variant));
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const wasm = instance.exports as unknown as KernelExports;

  // ---- memory layout: a WasmHeap over [heap_base, …) ----
  const heap = new WasmHeap(wasm.heap_base(), ensureCapacity);
  const ownBuffers = new WeakSet<ArrayBufferLike>(); // memory.buffer objects views were made on
  const ownLinears = new WeakSet<PreparedLinear>();
  const panel = wasm.f32_packed_panel_width(); // columns per packed weight panel (12 or 8)
  let attentionScratch = 0; // byte address of the packed scale·Kᵀ and V of one head (of every head when threaded)
  let attentionScratchBytes = 0;

  /** Makes [0, end + TAIL_SLACK) addressable. */
  function ensureCapacity(end: number): void {
    const needed = end + TAIL_SLACK;
    const have = memory.buffer.byteLength;
    if (needed <= have) return;
    const pages = Math.ceil((needed - have) / PAGE_BYTES);
    if (have / PAGE_BYTES + pages > MAX_PAGES) {
      throw new WasmBackendError(`expected at most 4 GiB of wasm memory, needed ${needed} bytes`);
    }
    memory.grow(pages);
  }

  function reserve(floats: number): number {
    if (!Number.isInteger(floats) || floats < 0) throw new RangeError(`expected a float count ≥ 0, got ${floats}`);
    return heap.allocate(floats * 4);
  }

  const layout = readPoolLayout(instance.exports);
  let pool: ThreadPool | null = null;
  let parallel: ParallelKernels | null = null;
  if (threads > 1) {
    const control = reserve(layout.controlBytes / 4);
    pool = await ThreadPool.start({ module, memory, exports: wasm, layout, control, threads });
    parallel = new ParallelKernels(pool, instance.exports, panel, opts.splitSmallCalls ?? false);
  }

  function view(ptr: number, floats: number): Float32Array {
    const buffer = memory.buffer;
    ownBuffers.add(buffer);
    return new Float32Array(buffer, ptr, floats);
  }

  function alloc(length: number): Float32Array {
    const buf = view(reserve(length), length);
    buf.fill(0); // the bytes may have held a freed buffer
    return buf;
  }

  /** Byte address of `buf`, after checking (when enabled) that it lives in this memory and holds `length` elements. */
  function address(buf: Float32Array | Float64Array | Int32Array, length: number, what: string): number {
    if (checks) {
      if (!ownBuffers.has(buf.buffer)) {
        throw new WasmBackendError(`${what}: expected a buffer from this backend's alloc/upload, got one outside its memory`);
      }
      if (buf.length < length) {
        const unit = buf instanceof Float32Array ? 'floats' : buf instanceof Float64Array ? 'float64 values' : 'int32 values';
        throw new WasmBackendError(`${what}: expected at least ${length} ${unit}, got ${buf.length}`);
      }
    }
    return buf.byteOffset;
  }

  function linearAddress(w: PreparedLinear): PackedLinear {
    if (checks && !ownLinears.has(w)) throw new WasmBackendError("expected a linear layer prepared by this backend's prepareLinear");
    return w as PackedLinear;
  }

  function gemmLinear(x: Float32Array, m: number, w: PreparedLinear, out: Float32Array, epilogue: Epilogue): void {
    const lin = linearAddress(w);
    const k = lin.inFeatures;
    const n = lin.outFeatures;
    const xAt = address(x, m * k, 'linear input');
    const outAt = address(out, m * n, 'linear output');
    if (!parallel?.gemm(m, n, k, xAt, k, lin.packedWeight, lin.bias, outAt, n, epilogue)) {
      wasm.f32_gemm_packed_wasmsimd(m, n, k, xAt, k, lin.packedWeight, lin.bias, outAt, n, epilogue);
    }
  }

  /** At least `bytes` of attention scratch (grows only when a larger shape first appears). */
  function ensureAttentionScratch(bytes: number): void {
    if (bytes <= attentionScratchBytes) return;
    if (attentionScratchBytes > 0) heap.release(attentionScratch);
    attentionScratch = heap.allocate(bytes);
    attentionScratchBytes = bytes;
  }

  /** Gives back the block `buf` was allocated as (its whole view, as alloc/upload returned it). */
  function free(buf: Float32Array | Float64Array | Int32Array): void {
    const fromHere = ownBuffers.has(buf.buffer) && heap.owns(buf.byteOffset);
    if (!fromHere || !heap.release(buf.byteOffset)) {
      throw new WasmBackendError(
        `free: expected a buffer returned by this backend's alloc/upload and not freed yet, got ${buf.length} values at byte ${buf.byteOffset}` +
          (ownBuffers.has(buf.buffer) ? ' (a part of a buffer, or freed already)' : ' outside its memory'),
      );
    }
  }

  const kernels: WasmKernels = {
    name: relaxed ? 'wasm-relaxed' : 'wasm-simd',
    variant,
    memory,
    module,
    exports: instance.exports,
    address,
    checks,
    threads,
    pool,
    allocatedBytes: () => heap.allocatedBytes,
    alloc,
    upload(data) {
      const buf = alloc(data.length);
      buf.set(data);
      return buf;
    },
    prepareLinear(lin: Linear): PreparedLinear {
      const { outFeatures: n, inFeatures: k } = lin;
      if (lin.weight.length !== n * k || lin.bias.length !== n) {
        throw new WasmBackendError(`expected a linear layer with weight [${n}, ${k}] and bias [${n}], got ${lin.weight.length} and ${lin.bias.length} floats`);
      }
      const packedWeight = reserve(Math.ceil(n / panel) * panel * k);
      const bias = reserve(n);
      view(bias, n).set(lin.bias);
      // W is copied into a temporary block, packed, and the block freed.
      const weight = reserve(n * k);
      view(weight, n * k).set(lin.weight);
      wasm.f32_pack_weights(weight, k, n, k, packedWeight);
      heap.release(weight);
      const packed: PackedLinear = { outFeatures: n, inFeatures: k, packedWeight, bias };
      ownLinears.add(packed);
      return packed;
    },

    free,

    releaseLinear(w) {
      const lin = linearAddress(w);
      if (!ownLinears.delete(lin)) throw new WasmBackendError('releaseLinear: expected a linear layer prepared by this backend and not released yet');
      heap.release(lin.packedWeight);
      heap.release(lin.bias);
    },

    dispose: () => pool?.dispose() ?? Promise.resolve(),

    linear: (x, m, w, out) => gemmLinear(x, m, w, out, Epilogue.Store),
    linearAdd: (x, m, w, acc) => gemmLinear(x, m, w, acc, Epilogue.Accumulate),
    linearGelu: (x, m, w, out) => gemmLinear(x, m, w, out, Epilogue.Gelu),

    im2col(image, C, S, P, out) {
      if (checks && !(Number.isInteger(S / P) && P > 0)) throw new WasmBackendError(`im2col: expected a patch size that divides the image size ${S}, got ${P}`);
      wasm.f32_im2col(address(image, C * S * S, 'im2col image'), C, S, P, address(out, C * S * S, 'im2col output'));
    },

    layerNorm(x, m, d, gamma, beta, eps, out) {
      const xAt = address(x, m * d, 'layerNorm input');
      const gammaAt = address(gamma, d, 'layerNorm gamma');
      const betaAt = address(beta, d, 'layerNorm beta');
      const outAt = address(out, m * d, 'layerNorm output');
      if (!parallel?.layerNorm(xAt, m, d, gammaAt, betaAt, eps, outAt)) wasm.f32_layernorm_rows_wasmsimd(xAt, m, d, gammaAt, betaAt, eps, outAt);
    },

    gelu(x, length) {
      const xAt = address(x, length, 'gelu buffer');
      if (!parallel?.gelu(xAt, length)) wasm.f32_gelu_wasmsimd(xAt, length);
    },

    softmax(x, rows, cols) {
      const xAt = address(x, rows * cols, 'softmax buffer');
      if (!parallel?.softmax(xAt, rows, cols)) wasm.f32_softmax_rows_wasmsimd(xAt, rows, cols);
    },

    attention(qkv, n, heads, qkDim, vDim, scale, logSizes, probs, out) {
      const rowStride = 2 * heads * qkDim + heads * vDim; // floats per token row of qkv
      const outStride = heads * vDim;
      const qkvPtr = address(qkv, n * rowStride, 'attention qkv');
      const probsPtr = address(probs, heads * n * n, 'attention probs');
      const outPtr = address(out, n * outStride, 'attention output');
      const logSizesPtr = logSizes ? address(logSizes, n, 'attention logSizes') : 0;
      const headScratchBytes = Math.ceil(wasm.f32_attention_scratch_floats(n, qkDim, vDim) / 4) * 16;
      if (parallel) {
        ensureAttentionScratch(heads * headScratchBytes);
        if (parallel.attention(qkvPtr, n, heads, qkDim, vDim, scale, logSizesPtr, probsPtr, outPtr, attentionScratch, headScratchBytes)) return;
      }
      ensureAttentionScratch(headScratchBytes);
      for (let h = 0; h < heads; h++) {
        wasm.f32_attention_head_wasmsimd(
          qkvPtr + 4 * h * qkDim, // Q_h
          qkvPtr + 4 * (heads + h) * qkDim, // K_h
          qkvPtr + 4 * (2 * heads * qkDim + h * vDim), // V_h
          rowStride,
          n,
          qkDim,
          vDim,
          scale,
          logSizesPtr,
          probsPtr + 4 * h * n * n, // [n, n] block of head h
          outPtr + 4 * h * vDim,
          outStride,
          attentionScratch,
        );
      }
    },
  };
  return kernels;
}
