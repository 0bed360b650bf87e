import type { FloatArray, Kernels, Linear, PreparedLinear } from './types.js';

/**
 * The reference kernels: plain loops that read like the math. They are the oracle the
 * wasm kernels are tested against, so they favour clarity over speed. Every operation runs
 * in JavaScript numbers (float64); results are rounded only where they are stored:
 *   - `reference`: float32 buffers, like every other backend;
 *   - `reference64`: float64 buffers, so nothing is rounded to float32 between operations:
 *     all arithmetic of the forward pass is float64 (weights and input are float32 values,
 *     which float64 holds exactly). It writes the expected values of trace bundles.
 */

interface ReferenceLinear extends PreparedLinear {
  weight: Float32Array; // [out, in]
  bias: Float32Array; // [out]
}

/** erf(x) to ~1e-15 (W. J. Cody's rational approximations, as in most libm's). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 0.5) {
    // erf(x) = x · P(x²)/Q(x²)
    const t = x * x;
    const p =
      (((0.185777706184603152673 * t + 3.161123743870565596947) * t + 113.8641541510501556495) * t + 377.4852376853020208137) * t + 3209.377589138469472562;
    const q = (((t + 23.60129095234412093499) * t + 244.0246379344441733056) * t + 1282.616526077372275645) * t + 2844.236833439170622273;
    return (x * p) / q;
  }
  return x < 0 ? -(1 - erfcPositive(ax)) : 1 - erfcPositive(ax);
}

function erfcPositive(x: number): number {
  if (x < 4) {
    const p =
      (((((((2.15311535474403846343e-8 * x + 0.56418849698867008918) * x + 8.88314979438837594118) * x + 66.1191906371416294775) * x + 298.635138197400131132) *
        x +
        881.952221241769090411) *
        x +
        1712.04761263407058314) *
        x +
        2051.07837782607146532) *
        x +
      1230.33935479799725272;
    const q =
      (((((((x + 15.7449261107098347253) * x + 117.693950891312499305) * x + 537.181101862009857509) * x + 1621.38957456669018874) * x +
        3290.79923573345962678) *
        x +
        4362.6190901432471582) *
        x +
        3439.36767414372163696) *
        x +
      1230.33935480374942043;
    return Math.exp(-x * x) * (p / q);
  }
  const z = 1 / (x * x);
  const p =
    ((((0.0163153871373020978498 * z + 0.305326634961232344035) * z + 0.360344899949804439429) * z + 0.125781726111229246204) * z + 0.0160837851487422766278) *
      z +
    6.58749161529837803157e-4;
  const q =
    ((((z + 2.56852019228982242072) * z + 1.87295284992346725209) * z + 0.527905102951428412248) * z + 0.0605183413124413191178) * z +
    2.33520497626869185443e-3;
  const r = (1 / Math.sqrt(Math.PI) - z * (p / q)) / x;
  return Math.exp(-x * x) * r;
}

/** GELU(x) = x · Φ(x) = x/2 · (1 + erf(x/√2)). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
}

/** The reference kernels with float32 buffers. */
export function createReferenceKernels(): Kernels<Float32Array> {
  return referenceKernels('reference', (length) => new Float32Array(length));
}

/** The reference kernels with float64 buffers (see the top of this file). */
export function createReference64Kernels(): Kernels<Float64Array> {
  return referenceKernels('reference64', (length) => new Float64Array(length));
}

/**
 * reference64 where float32 kernels are expected. The runner, its blocks and hooks are generic
 * over the buffer type (Kernels<A>), but the pruning methods, the evaluation and the commands are
 * written for Float32Array buffers; they only index, slice, set and copy them, which a
 * Float64Array does alike, so they run unchanged on float64 storage (trace bundles of every
 * method, `--backend reference64`). The one place float64 buffers pass through the float32 type.
 */
export function createReference64KernelsAsFloat32(): Kernels {
  return createReference64Kernels() as unknown as Kernels;
}

/** The reference kernels storing every buffer as `allocate` makes it. */
function referenceKernels<A extends FloatArray>(name: string, allocate: (length: number) => A): Kernels<A> {
  function matmulBias(x: A, m: number, w: PreparedLinear, out: A, mode: 'set' | 'add' | 'gelu'): void {
    const { weight, bias, inFeatures: k, outFeatures: o } = w as ReferenceLinear;
    for (let i = 0; i < m; i++) {
      const xRow = i * k;
      for (let j = 0; j < o; j++) {
        const wRow = j * k;
        let sum = 0;
        for (let t = 0; t < k; t++) sum += x[xRow + t] * weight[wRow + t];
        const y = sum + bias[j];
        const idx = i * o + j;
        if (mode === 'add') out[idx] += y;
        else out[idx] = mode === 'gelu' ? gelu(y) : y;
      }
    }
  }

  return {
    name,
    alloc: allocate,
    upload(data) {
      const buffer = allocate(data.length);
      buffer.set(data);
      return buffer;
    },
    prepareLinear(lin: Linear): ReferenceLinear {
      return { weight: lin.weight, bias: lin.bias, outFeatures: lin.outFeatures, inFeatures: lin.inFeatures };
    },
    // Buffers and layers are ordinary arrays, given back by the garbage collector; no threads.
    free: () => {},
    releaseLinear: () => {},
    dispose: () => Promise.resolve(),
    linear: (x, m, w, out) => matmulBias(x, m, w, out, 'set'),
    linearAdd: (x, m, w, acc) => matmulBias(x, m, w, acc, 'add'),
    linearGelu: (x, m, w, out) => matmulBias(x, m, w, out, 'gelu'),

    im2col(image, C, S, P, out) {
      const side = S / P;
      let o = 0;
      for (let py = 0; py < side; py++) {
        for (let px = 0; px < side; px++) {
          for (let c = 0; c < C; c++) {
            for (let y = 0; y < P; y++) {
              const row = c * S * S + (py * P + y) * S + px * P;
              for (let x = 0; x < P; x++) out[o++] = image[row + x];
            }
          }
        }
      }
    },

    layerNorm(x, m, d, gamma, beta, eps, out) {
      for (let i = 0; i < m; i++) {
        const row = i * d;
        let mean = 0;
        for (let j = 0; j < d; j++) mean += x[row + j];
        mean /= d;
        let variance = 0;
        for (let j = 0; j < d; j++) variance += (x[row + j] - mean) ** 2;
        variance /= d;
        const invStd = 1 / Math.sqrt(variance + eps);
        for (let j = 0; j < d; j++) out[row + j] = (x[row + j] - mean) * invStd * gamma[j] + beta[j];
      }
    },

    gelu(x, length) {
      for (let i = 0; i < length; i++) x[i] = gelu(x[i]);
    },

    softmax(x, rows, cols) {
      for (let r = 0; r < rows; r++) softmaxRow(x, r * cols, cols);
    },

    attention(qkv, n, heads, qkDim, vDim, scale, logSizes, probs, out) {
      const stride = 2 * heads * qkDim + heads * vDim; // floats per token row of qkv
      const outStride = heads * vDim;
      for (let h = 0; h < heads; h++) {
        const qOff = h * qkDim;
        const kOff = heads * qkDim + h * qkDim;
        const vOff = 2 * heads * qkDim + h * vDim;
        const p = h * n * n; // this head's [n, n] block of probs
        // logits[q, k] = scale · Q_h[q]·K_h[k] (+ log size of k)
        for (let q = 0; q < n; q++) {
          for (let k = 0; k < n; k++) {
            let dot = 0;
            for (let c = 0; c < qkDim; c++) dot += qkv[q * stride + qOff + c] * qkv[k * stride + kOff + c];
            probs[p + q * n + k] = scale * dot + (logSizes ? logSizes[k] : 0);
          }
          softmaxRow(probs, p + q * n, n);
        }
        // out[q, h·vDim + c] = Σ_k P_h[q, k] · V_h[k, c]
        for (let q = 0; q < n; q++) {
          for (let c = 0; c < vDim; c++) {
            let sum = 0;
            for (let k = 0; k < n; k++) sum += probs[p + q * n + k] * qkv[k * stride + vOff + c];
            out[q * outStride + h * vDim + c] = sum;
          }
        }
      }
    },
  };
}

function softmaxRow(x: FloatArray, offset: number, length: number): void {
  let max = -Infinity;
  for (let j = 0; j < length; j++) max = Math.max(max, x[offset + j]);
  let sum = 0;
  for (let j = 0; j < length; j++) {
    const e = Math.exp(x[offset + j] - max);
    x[offset + j] = e;
    sum += e;
  }
  for (let j = 0; j < length; j++) x[offset + j] /= sum;
}
