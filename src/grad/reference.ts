import type { Linear } from '../model/types.js';
import { attentionBackward, attentionForward } from './attention.js';
import { geluBackward, geluForward } from './gelu.js';
import { layerNormBackward, layerNormForward } from './layer-norm.js';
import type { GradKernels, GradLinear, GradNorm, Tensor } from './types.js';

/**
 * The reference gradient kernels: plain loops that read like the math (see attention.ts,
 * layer-norm.ts, gelu.ts), in float64 storage for finite-difference checks or float32 to
 * check the wasm backend. Arithmetic is float64 either way; only storage rounds.
 */

interface ReferenceGradLinear extends GradLinear {
  weight: Tensor; // [out, in]
  bias: Tensor; // [out]
}

export function createReferenceGradKernels(precision: 'float32' | 'float64' = 'float64'): GradKernels {
  const alloc = (length: number): Tensor => (precision === 'float64' ? new Float64Array(length) : new Float32Array(length));
  const upload = (data: ArrayLike<number>): Tensor => {
    const buf = alloc(data.length);
    buf.set(data);
    return buf;
  };

  /** out[m, o] (+)= x[m, i]·Wᵀ + b */
  function linearForward(x: Tensor, m: number, w: GradLinear, out: Tensor, accumulate: boolean): void {
    const { weight, bias, inFeatures: k, outFeatures: o } = w as ReferenceGradLinear;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < o; j++) {
        let sum = bias[j];
        for (let t = 0; t < k; t++) sum += x[i * k + t] * weight[j * k + t];
        out[i * o + j] = accumulate ? out[i * o + j] + sum : sum;
      }
    }
  }

  return {
    name: `reference-${precision}`,
    precision,
    alloc,
    upload,
    prepareLinear(lin: Linear): ReferenceGradLinear {
      return { weight: upload(lin.weight), bias: upload(lin.bias), outFeatures: lin.outFeatures, inFeatures: lin.inFeatures };
    },
    prepareNorm(norm): GradNorm {
      return { gamma: upload(norm.weight), beta: upload(norm.bias) };
    },

    linear: (x, m, w, out) => linearForward(x, m, w, out, false),
    linearAdd: (x, m, w, acc) => linearForward(x, m, w, acc, true),
    linearBackward(dy, m, w, dx, accumulate) {
      // dx[i, t] = Σ_j dy[i, j]·W[j, t]
      const { weight, inFeatures: k, outFeatures: o } = w as ReferenceGradLinear;
      for (let i = 0; i < m; i++) {
        for (let t = 0; t < k; t++) {
          let sum = 0;
          for (let j = 0; j < o; j++) sum += dy[i * o + j] * weight[j * k + t];
          dx[i * k + t] = accumulate ? dx[i * k + t] + sum : sum;
        }
      }
    },

    layerNorm: (x, m, d, norm, eps, out) => layerNormForward(x, m, d, norm.gamma, norm.beta, eps, out),
    layerNormBackward: (x, m, d, norm, eps, dy, dx) => layerNormBackward(x, m, d, norm.gamma, eps, dy, dx),
    gelu: geluForward,
    geluBackward,
    attention: attentionForward,
    attentionBackward,
  };
}
