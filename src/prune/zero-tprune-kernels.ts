import { WasmBackendError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import type { WasmKernels } from '../kernels/wasm.js';
import { bestMatch, restrictGraph, weightedPageRank } from './wpr.js';

/**
 * The heavy steps of a Zero-TPrune pruning layer (wpr.ts), apart from the forward pass's Kernels:
 * a method's kernels never widen the backend interface. Two implementations: the TypeScript
 * oracles themselves (any backend), and the wasm builds' (assembly/prune.ts) on the wasm backend,
 * working where the attention probabilities and keys lie. Every implementation returns results
 * BIT-IDENTICAL to the oracles (same float64 reductions in the same order), so rankings and
 * therefore pruning decisions never depend on the backend.
 */
export interface ZeroTPruneKernels {
  /** The forward-pass backend whose buffers these kernels work on. */
  readonly backend: Kernels;

  /** Zero-filled buffers these kernels can use (the backend's memory). Set-up only, as Kernels.alloc. */
  alloc(length: number): Float32Array;
  allocFloat64(length: number): Float64Array;
  allocInt32(length: number): Int32Array;

  /**
   * The attention graph of the tokens alive[0..c) (indices into P's n tokens), rows re-normalised:
   * out[q, k] = P[alive[q], alive[k]] / Σ_j P[alive[q], alive[j]] (a row without mass → 1/c).
   *   P: [n, n]  out: [c, c]            = `restrictGraph` of wpr.ts
   */
  restrictGraph(P: Float32Array, n: number, alive: Int32Array, c: number, out: Float32Array): void;

  /**
   * Weighted Page Rank: s ← Pᵀ s in place, `iterations` times or until ‖Δs‖₁ < tolerance
   * (0: never stop early); returns the steps taken.
   *   P: [n, n] row-stochastic (row = query)  s: [n] in/out  next: [n] scratch
   *                                     = `weightedPageRank` of wpr.ts
   */
  weightedPageRank(P: Float32Array, n: number, s: Float64Array, iterations: number, next: Float64Array, tolerance: number): number;

  /**
   * Best cosine match: with rows f_t = features[offset + t·stride … + dim) and the token list
   * order[0..m), B = order[0..bCount), A = order[bCount..m):
   *   best[a] = max_{b ∈ B} cos(f_a, f_b)   for every a ∈ A   (best indexed by token; others untouched)
   *   work: ≥ (m + 4)·dim float64 scratch   = `bestMatch` of wpr.ts
   */
  maxCosine(
    features: Float32Array,
    offset: number,
    stride: number,
    dim: number,
    order: Int32Array,
    m: number,
    bCount: number,
    work: Float64Array,
    best: Float64Array,
  ): void;
}

const forBackend = new WeakMap<Kernels, ZeroTPruneKernels>();

/** The Zero-TPrune kernels for a forward-pass backend: the wasm build's on the wasm backend, else the TypeScript oracles. */
export function zeroTPruneKernels(backend: Kernels): ZeroTPruneKernels {
  let kernels = forBackend.get(backend);
  if (!kernels) {
    kernels = isWasm(backend) ? wasmZeroTPruneKernels(backend) : referenceZeroTPruneKernels(backend);
    forBackend.set(backend, kernels);
  }
  return kernels;
}

function isWasm(backend: Kernels): backend is WasmKernels {
  return 'exports' in backend && 'address' in backend;
}

/** A float64 or int32 buffer laid over `floats` floats of the backend's memory (zero-filled, 16-byte aligned on wasm). */
function allocOver<T>(backend: Kernels, floats: number, make: (buffer: ArrayBufferLike, byteOffset: number) => T): T {
  const f = backend.alloc(floats);
  return make(f.buffer, f.byteOffset);
}

function allocators(backend: Kernels): Pick<ZeroTPruneKernels, 'alloc' | 'allocFloat64' | 'allocInt32'> {
  return {
    alloc: (length) => backend.alloc(length),
    allocFloat64: (length) => allocOver(backend, 2 * length, (buffer, byteOffset) => new Float64Array(buffer, byteOffset, length)),
    allocInt32: (length) => allocOver(backend, length, (buffer, byteOffset) => new Int32Array(buffer, byteOffset, length)),
  };
}

/** The TypeScript oracles of wpr.ts, for any backend whose buffers are ordinary typed arrays. */
function referenceZeroTPruneKernels(backend: Kernels): ZeroTPruneKernels {
  return {
    backend,
    ...allocators(backend),
    restrictGraph,
    weightedPageRank,
    maxCosine(features, offset, stride, dim, order, m, bCount, work, best) {
      if (work.length < (m + 4) * dim) throw new RangeError(`maxCosine: expected ≥ ${(m + 4) * dim} floats of work, got ${work.length}`);
      // bestMatch keeps its unit rows in the features' storage (float64 on reference64): m·dim of them fit in work.
      const unit =
        (features as Float32Array | Float64Array) instanceof Float64Array ? work.subarray(0, m * dim) : new Float32Array(work.buffer, work.byteOffset, m * dim);
      bestMatch({ data: features, offset, stride, dim }, order, m, bCount, unit, best);
    },
  };
}

/** The Zero-TPrune exports of build/vitprune-*.wasm (assembly/prune.ts). Pointers are byte addresses, strides in floats. */
interface ZeroTPruneExports {
  f32_restrict_graph(P: number, n: number, alive: number, c: number, out: number): void;
  f64_weighted_page_rank(P: number, n: number, s: number, iterations: number, next: number, tolerance: number): number;
  f64_max_cosine(features: number, stride: number, dim: number, order: number, m: number, bCount: number, work: number, best: number): void;
}

function wasmZeroTPruneKernels(backend: WasmKernels): ZeroTPruneKernels {
  const wasm = backend.exports as unknown as ZeroTPruneExports;
  const { address, checks } = backend;
  return {
    backend,
    ...allocators(backend),

    restrictGraph(P, n, alive, c, out) {
      if (checks && !(Number.isInteger(c) && c >= 0 && c <= n)) throw new WasmBackendError(`restrictGraph: expected 0 ≤ c ≤ n = ${n}, got ${c}`);
      const aliveAt = address(alive, c, 'restrictGraph alive');
      if (checks) {
        for (let i = 0; i < c; i++) {
          if (!(alive[i] >= 0 && alive[i] < n)) throw new WasmBackendError(`restrictGraph: alive[${i}] = ${alive[i]} is outside 0..${n - 1}`);
        }
      }
      wasm.f32_restrict_graph(address(P, n * n, 'restrictGraph P'), n, aliveAt, c, address(out, c * c, 'restrictGraph out'));
    },

    weightedPageRank(P, n, s, iterations, next, tolerance) {
      if (checks && !Number.isInteger(iterations)) throw new WasmBackendError(`weightedPageRank: expected an integer iteration count, got ${iterations}`);
      return wasm.f64_weighted_page_rank(
        address(P, n * n, 'weightedPageRank P'),
        n,
        address(s, n, 'weightedPageRank s'),
        iterations,
        address(next, n, 'weightedPageRank next'),
        tolerance,
      );
    },

    maxCosine(features, offset, stride, dim, order, m, bCount, work, best) {
      if (m <= bCount) return; // A is empty: nothing to match
      const orderAt = address(order, m, 'maxCosine order');
      let tokens = 0; // 1 + the largest token index: rows of features and entries of best read
      for (let j = 0; j < m; j++) {
        const t = order[j];
        if (checks && !(Number.isInteger(t) && t >= 0)) throw new WasmBackendError(`maxCosine: order[${j}] = ${t} is not a token index`);
        if (t >= tokens) tokens = t + 1;
      }
      const featuresAt = address(features, offset + (tokens - 1) * stride + dim, 'maxCosine features');
      wasm.f64_max_cosine(
        featuresAt + 4 * offset,
        stride,
        dim,
        orderAt,
        m,
        bCount,
        address(work, (m + 4) * dim, 'maxCosine work'),
        address(best, tokens, 'maxCosine best'),
      );
    },
  };
}
