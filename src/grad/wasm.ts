import type { WasmKernels } from '../kernels/wasm.js';
import { WasmBackendError } from '../errors.js';
import type { PreparedLinear } from '../kernels/types.js';
import type { Linear } from '../model/types.js';
import type { GradKernels, GradLinear, GradNorm, Tensor } from './types.js';

/**
 * The gradient kernels on the wasm backend. The forward operations are the backend's own
 * kernels, on its memory and allocator. The backward ones:
 *   - dx = dy·W is a `linear` with Wᵀ as its weight (and a zero bias): each layer is packed a
 *     second time, transposed, when prepared, so the backward's products run on the same GEMM;
 *   - LayerNorm′, GELU′ and the attention's input gradients are kernels of assembly/grad.ts.
 * Those kernels are reached through a second instance of the backend's compiled module on the
 * same shared memory (as worker threads do): it shares every buffer and allocates nothing.
 */

interface GradExports {
  f32_gelu_backward_wasmsimd(x: number, dy: number, length: number, dx: number): void;
  f32_layernorm_backward_rows_wasmsimd(x: number, m: number, d: number, gamma: number, eps: number, dy: number, dx: number): void;
  f32_attention_backward_scratch_floats(n: number, qkDim: number, vDim: number): number;
  f32_attention_head_backward_wasmsimd(
    q: number,
    k: number,
    v: number,
    rowStride: number,
    n: number,
    qkDim: number,
    vDim: number,
    scale: number,
    probs: number,
    dOut: number,
    outStride: number,
    dProbs: number,
    dq: number,
    dk: number,
    dv: number,
    dRowStride: number,
    dKeyBias: number,
    scratch: number,
  ): void;
}

interface WasmGradLinear extends GradLinear {
  forward: PreparedLinear; // W [out, in]
  backward: PreparedLinear; // Wᵀ [in, out], zero bias
}

export function createWasmGradKernels(wasm: WasmKernels): GradKernels {
  const instance = new WebAssembly.Instance(wasm.module, { env: { memory: wasm.memory } });
  const exports = instance.exports as unknown as GradExports;
  const own = new WeakSet<ArrayBufferLike>(); // buffers of the memory our allocations were made on
  let scratch: Float32Array | null = null; // the attention backward's, grown to the largest shape seen

  function alloc(length: number): Float32Array {
    const buf = wasm.alloc(length);
    own.add(buf.buffer);
    return buf;
  }

  function upload(data: ArrayLike<number>): Float32Array {
    const buf = alloc(data.length);
    buf.set(data);
    return buf;
  }

  /** Byte address of a float32 buffer of this backend holding at least `length` values. */
  function address(buf: Tensor, length: number, what: string): number {
    if (!(buf instanceof Float32Array) || !own.has(buf.buffer)) {
      throw new WasmBackendError(`${what}: expected a float32 buffer from this backend's alloc, got one outside its memory`);
    }
    if (buf.length < length) throw new WasmBackendError(`${what}: expected at least ${length} floats, got ${buf.length}`);
    return buf.byteOffset;
  }

  const float32 = (buf: Tensor, what: string): Float32Array => {
    if (!(buf instanceof Float32Array)) throw new WasmBackendError(`${what}: expected a float32 buffer, got float64`);
    return buf;
  };
  const linearOf = (w: GradLinear) => w as WasmGradLinear;

  return {
    name: `${wasm.name}-grad`,
    precision: 'float32',
    alloc,
    upload,
    prepareLinear(lin: Linear): WasmGradLinear {
      const { outFeatures: o, inFeatures: i } = lin;
      const transposed = new Float32Array(o * i); // Wᵀ [in, out]
      for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) transposed[c * o + r] = lin.weight[r * i + c];
      return {
        outFeatures: o,
        inFeatures: i,
        forward: wasm.prepareLinear(lin),
        backward: wasm.prepareLinear({ weight: transposed, bias: new Float32Array(i), outFeatures: i, inFeatures: o }),
      };
    },
    prepareNorm(norm): GradNorm {
      return { gamma: upload(norm.weight), beta: upload(norm.bias) };
    },

    linear: (x, m, w, out) => wasm.linear(float32(x, 'linear input'), m, linearOf(w).forward, float32(out, 'linear output')),
    linearAdd: (x, m, w, acc) => wasm.linearAdd(float32(x, 'linear input'), m, linearOf(w).forward, float32(acc, 'linear output')),
    linearBackward(dy, m, w, dx, accumulate) {
      const run = accumulate ? wasm.linearAdd : wasm.linear;
      run(float32(dy, 'linear backward dy'), m, linearOf(w).backward, float32(dx, 'linear backward dx'));
    },

    layerNorm: (x, m, d, norm, eps, out) =>
      wasm.layerNorm(float32(x, 'layerNorm input'), m, d, float32(norm.gamma, 'gamma'), float32(norm.beta, 'beta'), eps, float32(out, 'layerNorm output')),
    layerNormBackward(x, m, d, norm, eps, dy, dx) {
      exports.f32_layernorm_backward_rows_wasmsimd(
        address(x, m * d, 'layerNorm backward x'),
        m,
        d,
        address(norm.gamma, d, 'layerNorm backward gamma'),
        eps,
        address(dy, m * d, 'layerNorm backward dy'),
        address(dx, m * d, 'layerNorm backward dx'),
      );
    },

    gelu(x, length, out) {
      const result = float32(out, 'gelu output');
      result.set(x.subarray(0, length));
      wasm.gelu(result, length);
    },
    geluBackward(x, dy, length, dx) {
      exports.f32_gelu_backward_wasmsimd(
        address(x, length, 'gelu backward x'),
        address(dy, length, 'gelu backward dy'),
        length,
        address(dx, length, 'gelu backward dx'),
      );
    },

    attention(qkv, n, heads, qkDim, vDim, scale, keyBias, probs, out) {
      wasm.attention(
        float32(qkv, 'attention qkv'),
        n,
        heads,
        qkDim,
        vDim,
        scale,
        keyBias && float32(keyBias, 'attention key bias'),
        float32(probs, 'attention probs'),
        float32(out, 'attention output'),
      );
    },
    attentionBackward(qkv, n, heads, qkDim, vDim, scale, probs, dOut, dProbs, dqkv, dKeyBias) {
      const rowStride = 2 * heads * qkDim + heads * vDim; // floats per token row of qkv
      const outStride = heads * vDim;
      const qkvAt = address(qkv, n * rowStride, 'attention backward qkv');
      const dqkvAt = address(dqkv, n * rowStride, 'attention backward dqkv');
      const probsAt = address(probs, heads * n * n, 'attention backward probs');
      const dProbsAt = address(dProbs, heads * n * n, 'attention backward dProbs');
      const dOutAt = address(dOut, n * outStride, 'attention backward dOut');
      const dKeyBiasAt = dKeyBias ? address(dKeyBias, n, 'attention backward dKeyBias') : 0;
      const scratchFloats = exports.f32_attention_backward_scratch_floats(n, qkDim, vDim);
      if (!scratch || scratch.length < scratchFloats) scratch = alloc(scratchFloats); // grows only when a larger shape first appears
      for (let h = 0; h < heads; h++) {
        const query = 4 * h * qkDim;
        const key = 4 * (heads + h) * qkDim;
        const value = 4 * (2 * heads * qkDim + h * vDim);
        exports.f32_attention_head_backward_wasmsimd(
          qkvAt + query,
          qkvAt + key,
          qkvAt + value,
          rowStride,
          n,
          qkDim,
          vDim,
          scale,
          probsAt + 4 * h * n * n,
          dOutAt + 4 * h * vDim,
          outStride,
          dProbsAt + 4 * h * n * n,
          dqkvAt + query,
          dqkvAt + key,
          dqkvAt + value,
          rowStride,
          dKeyBiasAt,
          scratch.byteOffset,
        );
      }
    },
  };
}
