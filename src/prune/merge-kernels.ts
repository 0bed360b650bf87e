import { WasmBackendError } from '../errors.js';
import type { FloatArray, Kernels } from '../kernels/types.js';
import type { WasmKernels } from '../kernels/wasm.js';
import { initialTokens } from '../model/gmacs.js';
import type { ViTConfig } from '../model/types.js';
import { qkvLayout, type QkvLayout } from '../model/types.js';
import { rankDescending } from './rank.js';

/**
 * The heavy loops of the merging and fusion methods (ToMe tome.ts, MCTF mctf.ts and
 * mctf-matching.ts, PiToMe pitome.ts), apart from the forward pass's Kernels, as
 * zero-tprune-kernels.ts does for Zero-TPrune. Two implementations: the TypeScript oracles below
 * (any backend), and the wasm builds' (assembly/merge.ts) on the wasm backend, working where the
 * block's tensors lie. Every implementation returns results BIT-IDENTICAL to the oracles (the
 * same reductions, float32 for the cosines and float64 for the rest, in the same order), so
 * matchings, merged tokens and sizes never depend on the backend. The methods assemble their
 * decisions (who merges where, the output order) from these results in their own TypeScript.
 */
export interface MergeKernels extends MergeKernelLoops {
  /** The forward-pass backend whose buffers these kernels work on. */
  readonly backend: Kernels;

  /** Buffers for a model's blocks, made once per backend and model config (the runner's `model`, see MergeWorkspace). */
  workspace(cfg: ViTConfig): MergeWorkspace;
}

/** The loops themselves: every implementation's, and the oracles' (REFERENCE_MERGE_KERNELS). */
export interface MergeKernelLoops {
  /** k̄[i] = f32(Σ_h K_h[i]) / H, summed in float32 from 0 over h in order.  qkv [≥ t, stride] → out [t, qkDim] */
  headMeanKeys(qkv: FloatArray, cfg: ViTConfig, t: number, out: Float32Array): void;

  /**
   * cos[i, j] = u_2i · u_2j+1 for the float32 unit rows u of metric [t, c] (unitRows), summed in
   * float32 over d in order (each product rounded, then added)  →  out [⌈t/2⌉, ⌊t/2⌋]
   */
  evenOddCosines(metric: Float32Array, t: number, c: number, out: Float64Array): void;

  /**
   * cos[i, j] = u_i · u_j (as evenOddCosines) for the unit rows u of metric rows first…first + n − 1
   * ([·, c]), at least for j ≥ i: out [n, n] holds the upper triangle (the oracle fills both halves; cos is
   * symmetric, so read cos(i, j) at [min(i, j), max(i, j)]).
   */
  pairwiseCosines(metric: Float32Array, first: number, n: number, c: number, out: Float64Array): void;

  /** best[i] = max_{j ≥ firstColumn} W[i, j], partner[i] = the first such j, for rows i ≥ firstRow (others −∞, 0).  W [rows, cols] */
  rowArgmax(W: Float64Array, rows: number, cols: number, firstRow: number, firstColumn: number, best: Float64Array, partner: Int32Array): void;

  /** indices[0..count) sorted in place by values[index] descending, ties by index ascending (values without NaN). */
  rankDescending(values: Float64Array, indices: Int32Array, count: number): void;

  /**
   * best[j] = max W[i, j] over the rows i = candidates[0..count), partner[j] = the first such i in
   * that order, for columns j ≥ firstColumn (others −∞, 0).  W [rows, cols]   best, partner [cols]
   */
  columnArgmax(
    W: Float64Array,
    rows: number,
    cols: number,
    candidates: Int32Array,
    count: number,
    firstColumn: number,
    best: Float64Array,
    partner: Int32Array,
  ): void;

  /**
   * Weighted pooling, entry by entry in order: sum[rows[e]] += weights[e]·x[positions[e]],
   * total[rows[e]] += weights[e] (float64 from 0); out[g] = sum[g] / total[g].
   *   x [·, D]   positions, rows, weights [m]   total [outRows] (written)   out [outRows, D]
   */
  poolRows(
    x: FloatArray,
    D: number,
    positions: Int32Array,
    rows: Int32Array,
    weights: Float64Array,
    m: number,
    outRows: number,
    total: Float64Array,
    out: FloatArray,
  ): void;

  /**
   * MCTF's affinity in place, W [nA, nB] holding the even/odd cosines (evenOddCosines):
   *   W[i, j] = s · info[2i] · info[2j + 1] · size[2i] · size[2j + 1]
   * s = min(1, max(0, (W[i, j] + 1)/2))^(1/τ_sim), or 1 when τ_sim = 0.   info, size [nA + nB]
   */
  mctfAffinity(W: Float64Array, nA: number, nB: number, tauSim: number, info: Float64Array, size: Float64Array): void;

  /** ā_k = (Σ_h Σ_q P_h[q, k]) / (H·n), summed over h then q in order.  probs [H, n, n] → out [n] */
  attentionReceived(probs: FloatArray, heads: number, n: number, out: Float64Array): void;

  /**
   * MCTF's one-step-ahead correction (mctf.ts): with the m tokens fused[0..m) of fused groups,
   *   pooled[h, g, i] = Σ_{q: rowOf[q] = g} share[q]·P_h[q, fused[i]]       (float64; h, then q, in order)
   *   out[g, h·v + c] += Σ_i f32(pooled[h, g, i])·delta[i, h·v + c]          (float32, i in order; then added)
   *   probs [H, t, t]   rowOf, share [t]   delta [m, H·v]   out [rows, H·v] (added to)
   */
  fusedAttentionCorrection(
    probs: FloatArray,
    heads: number,
    t: number,
    fused: Int32Array,
    m: number,
    rowOf: Int32Array,
    share: Float64Array,
    rows: number,
    delta: Float32Array,
    v: number,
    out: FloatArray,
  ): void;

  /**
   * PiToMe: E_i = (S_even + S_odd)/n, S_even = Σ_{even j} ELU_α(cos(i, j) − margin) and S_odd the
   * same over odd j, each over j in order; ELU_α(z) = z for z > 0, else α·expm1NonPositive(f32(z));
   * cos(i, j) read at [min(i, j), max(i, j)] of cosines [n, n] (pairwiseCosines).  → energy [n]
   */
  pitomeEnergy(cosines: Float64Array, n: number, margin: number, alpha: number, energy: Float64Array): void;
}

/**
 * Buffers of one model's merging steps, sized for all its tokens T and allocated once (in the
 * backend's memory on wasm, ordinary arrays otherwise: then every value is stored as the oracles
 * always stored it, float32 where they rounded to float32). A step may overwrite any of them; a
 * step's results live until the next step, so a hook hands them to the runner, which copies them.
 */
export interface MergeWorkspace {
  readonly tokens: number; // T
  readonly metric: Float32Array; // [T, qk] head-mean keys
  readonly cosines: Float64Array; // [T, T] a cosine matrix (even/odd or pairwise)
  readonly best: Float64Array; // [T] row maxima
  readonly partner: Int32Array; // [T] their columns
  readonly columnBest: Float64Array; // [T] column maxima
  readonly columnPartner: Int32Array; // [T] their rows
  readonly candidates: Int32Array; // [T] rows a column maximum runs over
  readonly ranking: Int32Array; // [T] indices being ranked
  readonly received: Float64Array; // [T] attention received
  readonly info: Float64Array; // [T] MCTF's tempered informativeness
  readonly sizeShare: Float64Array; // [T] MCTF's tempered size term
  readonly energy: Float64Array; // [T]
  readonly positions: Int32Array; // [T] pooling entries
  readonly rows: Int32Array; // [T]
  readonly weights: Float64Array; // [T]
  readonly total: Float64Array; // [T] pooled weights
  readonly pooled: Float32Array; // [T, D] pooled rows
  readonly fused: Int32Array; // [T] MCTF's one-step-ahead: tokens of fused groups
  readonly share: Float64Array; // [T]
  readonly delta: Float32Array; // [T, H·v]
}

const { fround } = Math;

const forBackend = new WeakMap<Kernels, MergeKernels>();

/** The merge kernels for a forward-pass backend: the wasm build's on the wasm backend, else the TypeScript oracles. */
export function mergeKernels(backend: Kernels): MergeKernels {
  let kernels = forBackend.get(backend);
  if (!kernels) {
    kernels = isWasm(backend) ? wasmMergeKernels(backend) : referenceMergeKernels(backend);
    forBackend.set(backend, kernels);
  }
  return kernels;
}

/** The TypeScript oracles, on buffers of ordinary arrays. */
export const REFERENCE_MERGE_KERNELS: MergeKernelLoops = {
  headMeanKeys(qkv, cfg, t, out) {
    const { stride, keyOffset } = qkvLayout(cfg);
    const c = cfg.qkDim;
    out.fill(0, 0, t * c);
    for (let i = 0; i < t; i++) {
      for (let h = 0; h < cfg.heads; h++) {
        const k = i * stride + keyOffset(h);
        for (let j = 0; j < c; j++) out[i * c + j] += qkv[k + j];
      }
      for (let j = 0; j < c; j++) out[i * c + j] /= cfg.heads;
    }
  },

  evenOddCosines(metric, t, c, out) {
    const u = unitRows(metric, 0, t, c);
    const nA = Math.ceil(t / 2);
    const nB = Math.floor(t / 2);
    // Rows i, i + 1 against columns j, j + 1: four dot products sharing their loads (≈ 3× faster
    // in V8); each sums d in order, so the values are those of the plain double loop. An odd last
    // row or column pairs with itself.
    for (let i = 0; i < nA; i += 2) {
      const i1 = Math.min(i + 1, nA - 1);
      const a0 = 2 * i * c;
      const a1 = 2 * i1 * c;
      for (let j = 0; j < nB; j += 2) {
        const j1 = Math.min(j + 1, nB - 1);
        const b0 = (2 * j + 1) * c;
        const b1 = (2 * j1 + 1) * c;
        let d00 = 0,
          d01 = 0,
          d10 = 0,
          d11 = 0;
        for (let d = 0; d < c; d++) {
          const x0 = u[a0 + d],
            x1 = u[a1 + d],
            y0 = u[b0 + d],
            y1 = u[b1 + d];
          d00 = fround(d00 + fround(x0 * y0));
          d01 = fround(d01 + fround(x0 * y1));
          d10 = fround(d10 + fround(x1 * y0));
          d11 = fround(d11 + fround(x1 * y1));
        }
        out[i * nB + j] = d00;
        out[i * nB + j1] = d01;
        out[i1 * nB + j] = d10;
        out[i1 * nB + j1] = d11;
      }
    }
  },

  pairwiseCosines(metric, first, n, c, out) {
    const unit = unitRows(metric, first, n, c);
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        let dot = 0;
        for (let d = 0; d < c; d++) dot = fround(dot + fround(unit[i * c + d] * unit[j * c + d]));
        out[i * n + j] = dot;
        out[j * n + i] = dot;
      }
    }
  },

  rowArgmax(W, rows, cols, firstRow, firstColumn, best, partner) {
    for (let i = 0; i < rows; i++) {
      let max = -Infinity;
      let arg = 0;
      for (let j = firstColumn; i >= firstRow && j < cols; j++) {
        if (W[i * cols + j] > max) {
          max = W[i * cols + j];
          arg = j;
        }
      }
      best[i] = max;
      partner[i] = arg;
    }
  },

  rankDescending(values, indices, count) {
    rankDescending(values, indices, count);
  },

  columnArgmax(W, _rows, cols, candidates, count, firstColumn, best, partner) {
    best.fill(-Infinity, 0, cols);
    partner.fill(0, 0, cols);
    for (let j = firstColumn; j < cols; j++) {
      for (let k = 0; k < count; k++) {
        const i = candidates[k];
        if (W[i * cols + j] > best[j]) {
          best[j] = W[i * cols + j];
          partner[j] = i;
        }
      }
    }
  },

  poolRows(x, D, positions, rows, weights, m, outRows, total, out) {
    const sum = new Float64Array(outRows * D);
    total.fill(0, 0, outRows);
    for (let e = 0; e < m; e++) {
      const g = rows[e];
      const w = weights[e];
      const p = positions[e];
      for (let d = 0; d < D; d++) sum[g * D + d] += w * x[p * D + d];
      total[g] += w;
    }
    for (let g = 0; g < outRows; g++) {
      for (let d = 0; d < D; d++) out[g * D + d] = sum[g * D + d] / total[g];
    }
  },

  mctfAffinity(W, nA, nB, tauSim, info, size) {
    for (let i = 0; i < nA; i++) {
      for (let j = 0; j < nB; j++) {
        const sim = tauSim > 0 ? Math.min(1, Math.max(0, (W[i * nB + j] + 1) / 2)) ** (1 / tauSim) : 1;
        W[i * nB + j] = sim * info[2 * i] * info[2 * j + 1] * size[2 * i] * size[2 * j + 1];
      }
    }
  },

  attentionReceived(probs, heads, n, out) {
    out.fill(0, 0, n);
    for (let h = 0; h < heads; h++) {
      for (let q = 0; q < n; q++) {
        const row = (h * n + q) * n;
        for (let k = 0; k < n; k++) out[k] += probs[row + k];
      }
    }
    for (let k = 0; k < n; k++) out[k] /= heads * n;
  },

  fusedAttentionCorrection(probs, H, t, fused, m, rowOf, share, rows, delta, v, out) {
    const width = H * v;
    const pooled = new Float64Array(H * rows * m);
    for (let h = 0; h < H; h++) {
      for (let q = 0; q < t; q++) {
        const pRow = (h * t + q) * t;
        const o = (h * rows + rowOf[q]) * m;
        for (let i = 0; i < m; i++) pooled[o + i] += share[q] * probs[pRow + fused[i]];
      }
    }
    for (let g = 0; g < rows; g++) {
      for (let h = 0; h < H; h++) {
        const pRow = (h * rows + g) * m;
        for (let c = 0; c < v; c++) {
          let sum = 0;
          for (let i = 0; i < m; i++) sum = fround(sum + fround(fround(pooled[pRow + i]) * delta[i * width + h * v + c]));
          out[g * width + h * v + c] = fround(out[g * width + h * v + c] + sum);
        }
      }
    }
  },

  pitomeEnergy(cosines, n, margin, alpha, energy) {
    for (let i = 0; i < n; i++) {
      let even = 0;
      let odd = 0;
      for (let j = 0; j < n; j++) {
        const z = (i <= j ? cosines[i * n + j] : cosines[j * n + i]) - margin;
        const e = z > 0 ? z : alpha * expm1NonPositive(fround(z));
        if (j % 2 === 0) even += e;
        else odd += e;
      }
      energy[i] = (even + odd) / n;
    }
  },
};

// expm1NonPositive's constants, float32 values (the same bits in assembly/merge.ts).
const LN2_HI = 0.6931381225585938; // 0x3f317180: 7 trailing zero bits, so k·LN2_HI is exact for |k| < 2⁷
const LN2_LO = 9.058001523953862e-6; // f32(ln 2 − LN2_HI)
const INV_LN2 = 1.4426950216293335; // f32(1/ln 2)
const ROUNDING = 12582912; // 1.5·2²³: (x + ROUNDING) − ROUNDING is x rounded to an integer in float32, |x| < 2²²
/** f32(1/i!) for i = 2…7: the Taylor coefficients of (eʳ − 1 − r)/r². */
const TAYLOR = [2, 6, 24, 120, 720, 5040].map((f) => fround(1 / f));
/** 2^−k for k = 0…29, by exact halving. */
const POWERS_OF_HALF = Float64Array.from({ length: 30 }, (_, k) => 0.5 ** k);

/**
 * eᶻ − 1 for a float32 z ≤ 0, in float32, within an ulp of it (float32): every operation a
 * float32 operation (here: fround of the float64 result, which is the same), none fused, no
 * library function, so that any language and the wasm kernel (four lanes at a time, without
 * branches) repeat it to the bit. Float32 is enough: PiToMe's cosines, its argument, are float32
 * sums already.
 *   x = max(z, −20)                         (below −20, eᶻ − 1 rounds to −1 as well)
 *   k = (x·(1/ln 2) + 1.5·2²³) − 1.5·2²³     (x/ln 2 rounded to an integer, in −29…0)
 *   r = (x − k·LN2_HI) − k·LN2_LO            (|r| ≤ ½ ln 2)
 *   p = r + (r·r)·q(r), q(r) = 1/2! + r·(1/3! + r·(1/4! + … + r/7!))  (Horner; eʳ − 1 to degree
 *       7, the first omitted term < 3e-8·|p|)
 *   eᶻ − 1 = 2ᵏ·p + (2ᵏ − 1)
 * A NaN z gives NaN.
 */
export function expm1NonPositive(z: number): number {
  const x = z < -20 ? -20 : z;
  const k = fround(fround(x * INV_LN2) + ROUNDING) - ROUNDING;
  const r = fround(fround(x - fround(k * LN2_HI)) - fround(k * LN2_LO));
  let q = TAYLOR[TAYLOR.length - 1];
  for (let i = TAYLOR.length - 2; i >= 0; i--) q = fround(fround(q * r) + TAYLOR[i]);
  const p = fround(r + fround(fround(r * r) * q));
  const s = POWERS_OF_HALF[-k] ?? Number.NaN; // k is NaN for a NaN z, or positive for z > 0 (not expected)
  return fround(fround(s * p) + fround(s - 1));
}

/**
 * Rows first…first + count − 1 of `metric` [·, c] scaled to unit length: f32(x·(1/√Σx²)), the norm
 * in float64 (a zero row stays 0).  → [count, c]
 */
export function unitRows(metric: Float32Array, first: number, count: number, c: number): Float32Array {
  const unit = new Float32Array(count * c);
  for (let i = 0; i < count; i++) {
    const row = (first + i) * c;
    let norm = 0;
    for (let j = 0; j < c; j++) norm += metric[row + j] ** 2;
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let j = 0; j < c; j++) unit[i * c + j] = metric[row + j] * inv; // rounded to float32 on store
  }
  return unit;
}

function isWasm(backend: Kernels): backend is WasmKernels {
  return 'exports' in backend && 'address' in backend;
}

interface WorkspaceAllocator {
  f32(length: number): Float32Array;
  f64(length: number): Float64Array;
  i32(length: number): Int32Array;
}

function makeWorkspace(cfg: ViTConfig, T: number, allocate: WorkspaceAllocator): MergeWorkspace {
  return {
    tokens: T,
    metric: allocate.f32(T * cfg.qkDim),
    cosines: allocate.f64(T * T),
    best: allocate.f64(T),
    partner: allocate.i32(T),
    columnBest: allocate.f64(T),
    columnPartner: allocate.i32(T),
    candidates: allocate.i32(T),
    ranking: allocate.i32(T),
    received: allocate.f64(T),
    info: allocate.f64(T),
    sizeShare: allocate.f64(T),
    energy: allocate.f64(T),
    positions: allocate.i32(T),
    rows: allocate.i32(T),
    weights: allocate.f64(T),
    total: allocate.f64(T),
    pooled: allocate.f32(T * cfg.dim),
    fused: allocate.i32(T),
    share: allocate.f64(T),
    delta: allocate.f32(T * cfg.heads * cfg.vDim),
  };
}

const ORDINARY_ARRAYS: WorkspaceAllocator = { f32: (n) => new Float32Array(n), f64: (n) => new Float64Array(n), i32: (n) => new Int32Array(n) };

/** A workspace of ordinary arrays for t tokens of a model, for one call of the oracles outside a forward pass. */
export function scratchWorkspace(cfg: ViTConfig, t: number): MergeWorkspace {
  return makeWorkspace(cfg, t, ORDINARY_ARRAYS);
}

/** One workspace per model config, made at first use. */
function workspaces(allocate: WorkspaceAllocator): (cfg: ViTConfig) => MergeWorkspace {
  const byConfig = new WeakMap<ViTConfig, MergeWorkspace>();
  return (cfg) => {
    const made = byConfig.get(cfg);
    if (made) return made;
    const w = makeWorkspace(cfg, initialTokens(cfg), allocate);
    byConfig.set(cfg, w);
    return w;
  };
}

function referenceMergeKernels(backend: Kernels): MergeKernels {
  return {
    backend,
    workspace: workspaces(ORDINARY_ARRAYS),
    ...REFERENCE_MERGE_KERNELS,
  };
}

/** The merge exports of build/vitprune-*.wasm (assembly/merge.ts). Pointers are byte addresses, counts in elements. */
interface MergeExports {
  f32_head_mean_keys(qkv: number, stride: number, keyOffset: number, heads: number, c: number, t: number, out: number): void;
  f32_cosine_work_bytes(t: number, c: number): number;
  f32_even_odd_cosines(metric: number, t: number, c: number, work: number, out: number): void;
  f32_pairwise_cosines(metric: number, n: number, c: number, work: number, out: number): void;
  i32_rank_descending(values: number, indices: number, count: number): void;
  f64_column_argmax(W: number, rows: number, cols: number, candidates: number, count: number, firstColumn: number, best: number, partner: number): void;
  f64_row_argmax(W: number, rows: number, cols: number, firstRow: number, firstColumn: number, best: number, partner: number): void;
  f64_pool_rows(
    x: number,
    D: number,
    positions: number,
    rows: number,
    weights: number,
    m: number,
    outRows: number,
    work: number,
    total: number,
    out: number,
  ): void;
  f64_attention_received(probs: number, heads: number, n: number, out: number): void;
  f64_mctf_affinity(W: number, nA: number, nB: number, similarity: boolean, info: number, size: number): void;
  f32_fused_attention_correction(
    probs: number,
    heads: number,
    t: number,
    fused: number,
    m: number,
    rowOf: number,
    share: number,
    rows: number,
    delta: number,
    v: number,
    pooled: number,
    out: number,
  ): void;
  f64_pitome_energy(cosines: number, n: number, margin: number, alpha: number, work: number, energy: number): void;
}

/** Scratch of the wasm kernels that no caller sees, grown (never shrunk) when a larger call first comes. */
class WasmScratch {
  private bytes = 0;
  private buffer: Float64Array | null = null;

  constructor(private readonly backend: WasmKernels) {}

  /** Byte address of at least `bytes` bytes of scratch (16-byte aligned). */
  at(bytes: number): number {
    if (bytes > this.bytes || !this.buffer) {
      if (this.buffer) this.backend.free(this.buffer);
      const floats = Math.ceil(bytes / 4) + 4;
      const f = this.backend.alloc(floats);
      this.buffer = new Float64Array(f.buffer, f.byteOffset, floats >> 1);
      this.bytes = bytes;
    }
    return this.buffer.byteOffset;
  }
}

function wasmMergeKernels(backend: WasmKernels): MergeKernels {
  const wasm = backend.exports as unknown as MergeExports;
  const { address, checks } = backend;
  const overFloats = <T>(floats: number, make: (buffer: ArrayBufferLike, byteOffset: number) => T): T => {
    const f = backend.alloc(floats);
    return make(f.buffer, f.byteOffset);
  };
  const scratch = new WasmScratch(backend);
  const layouts = new WeakMap<ViTConfig, QkvLayout>(); // per config: qkvLayout makes closures on every call
  const layoutOf = (cfg: ViTConfig): QkvLayout => {
    const known = layouts.get(cfg);
    if (known) return known;
    const layout = qkvLayout(cfg);
    layouts.set(cfg, layout);
    return layout;
  };
  const f32 = (x: FloatArray, length: number, what: string): number => {
    if (checks && !(x instanceof Float32Array)) throw new WasmBackendError(`${what}: expected a Float32Array of the wasm backend, got a ${x.constructor.name}`);
    return address(x as Float32Array, length, what);
  };
  const checkCount = (what: string, value: number, max: number) => {
    if (checks && !(Number.isInteger(value) && value >= 0 && value <= max))
      throw new WasmBackendError(`${what}: expected an integer in 0…${max}, got ${value}`);
  };
  const checkIndices = (what: string, values: Int32Array, m: number, limit: number) => {
    if (!checks) return;
    for (let e = 0; e < m; e++) {
      if (!(values[e] >= 0 && values[e] < limit)) throw new WasmBackendError(`${what}: entry ${e} is ${values[e]}, expected 0…${limit - 1}`);
    }
  };
  return {
    backend,
    workspace: workspaces({
      f32: (n) => backend.alloc(n),
      f64: (n) => overFloats(2 * n, (buffer, byteOffset) => new Float64Array(buffer, byteOffset, n)),
      i32: (n) => overFloats(n, (buffer, byteOffset) => new Int32Array(buffer, byteOffset, n)),
    }),

    headMeanKeys(qkv, cfg, t, out) {
      const { stride, keyOffset } = layoutOf(cfg);
      wasm.f32_head_mean_keys(
        f32(qkv, t * stride, 'headMeanKeys qkv'),
        stride,
        keyOffset(0),
        cfg.heads,
        cfg.qkDim,
        t,
        address(out, t * cfg.qkDim, 'headMeanKeys out'),
      );
    },

    evenOddCosines(metric, t, c, out) {
      const metricAt = address(metric, t * c, 'evenOddCosines metric');
      const outAt = address(out, Math.ceil(t / 2) * Math.floor(t / 2), 'evenOddCosines out');
      wasm.f32_even_odd_cosines(metricAt, t, c, scratch.at(wasm.f32_cosine_work_bytes(t, c)), outAt);
    },

    pairwiseCosines(metric, first, n, c, out) {
      const metricAt = address(metric, (first + n) * c, 'pairwiseCosines metric') + 4 * first * c;
      wasm.f32_pairwise_cosines(metricAt, n, c, scratch.at(wasm.f32_cosine_work_bytes(n, c)), address(out, n * n, 'pairwiseCosines out'));
    },

    rowArgmax(W, rows, cols, firstRow, firstColumn, best, partner) {
      wasm.f64_row_argmax(
        address(W, rows * cols, 'rowArgmax W'),
        rows,
        cols,
        firstRow,
        firstColumn,
        address(best, rows, 'rowArgmax best'),
        address(partner, rows, 'rowArgmax partner'),
      );
    },

    rankDescending(values, indices, count) {
      let size = 0; // 1 + the largest index: values read
      for (let k = 0; k < count; k++) if (indices[k] >= size) size = indices[k] + 1;
      checkIndices('rankDescending indices', indices, count, size);
      wasm.i32_rank_descending(address(values, size, 'rankDescending values'), address(indices, count, 'rankDescending indices'), count);
    },

    columnArgmax(W, rows, cols, candidates, count, firstColumn, best, partner) {
      checkIndices('columnArgmax candidates', candidates, count, rows);
      wasm.f64_column_argmax(
        address(W, rows * cols, 'columnArgmax W'),
        rows,
        cols,
        address(candidates, count, 'columnArgmax candidates'),
        count,
        firstColumn,
        address(best, cols, 'columnArgmax best'),
        address(partner, cols, 'columnArgmax partner'),
      );
    },

    poolRows(x, D, positions, rows, weights, m, outRows, total, out) {
      checkIndices('poolRows rows', rows, m, outRows);
      let tokens = 0; // 1 + the largest position: rows of x read
      for (let e = 0; e < m; e++) if (positions[e] >= tokens) tokens = positions[e] + 1;
      checkIndices('poolRows positions', positions, m, tokens);
      wasm.f64_pool_rows(
        f32(x, tokens * D, 'poolRows x'),
        D,
        address(positions, m, 'poolRows positions'),
        address(rows, m, 'poolRows rows'),
        address(weights, m, 'poolRows weights'),
        m,
        outRows,
        scratch.at(4 * (outRows + 1 + m)),
        address(total, outRows, 'poolRows total'),
        f32(out, outRows * D, 'poolRows out'),
      );
    },

    mctfAffinity(W, nA, nB, tauSim, info, size) {
      // τ_sim = 1 needs no power (x^1 = x exactly); other temperatures run the oracle on the same buffers
      if (tauSim > 0 && tauSim !== 1) return REFERENCE_MERGE_KERNELS.mctfAffinity(W, nA, nB, tauSim, info, size);
      const needed = nA + nB; // = t: the last index read is t − 1
      wasm.f64_mctf_affinity(
        address(W, nA * nB, 'mctfAffinity W'),
        nA,
        nB,
        tauSim > 0,
        address(info, needed, 'mctfAffinity info'),
        address(size, needed, 'mctfAffinity size'),
      );
    },

    attentionReceived(probs, heads, n, out) {
      wasm.f64_attention_received(f32(probs, heads * n * n, 'attentionReceived probs'), heads, n, address(out, n, 'attentionReceived out'));
    },

    fusedAttentionCorrection(probs, heads, t, fused, m, rowOf, share, rows, delta, v, out) {
      checkCount('fusedAttentionCorrection m', m, t);
      checkIndices('fusedAttentionCorrection fused', fused, m, t);
      checkIndices('fusedAttentionCorrection rowOf', rowOf, t, rows);
      const width = heads * v;
      wasm.f32_fused_attention_correction(
        f32(probs, heads * t * t, 'fusedAttentionCorrection probs'),
        heads,
        t,
        address(fused, m, 'fusedAttentionCorrection fused'),
        m,
        address(rowOf, t, 'fusedAttentionCorrection rowOf'),
        address(share, t, 'fusedAttentionCorrection share'),
        rows,
        f32(delta, m * width, 'fusedAttentionCorrection delta'),
        v,
        scratch.at(8 * heads * rows * m),
        f32(out, rows * width, 'fusedAttentionCorrection out'),
      );
    },

    pitomeEnergy(cosines, n, margin, alpha, energy) {
      wasm.f64_pitome_energy(address(cosines, n * n, 'pitomeEnergy cosines'), n, margin, alpha, scratch.at(16 * n), address(energy, n, 'pitomeEnergy energy'));
    },
  };
}
