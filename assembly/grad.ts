import {
  EPILOGUE_ACCUMULATE, EPILOGUE_STORE, PACKED_PANEL, f32_gemm_4x8_wasmsimd, f32_gemm_packed_wasmsimd, f32_pack_weights, f32_pack_rows8,
} from './gemm';
import { expF32x4, laneMask, loadFirstLanes, madd, storeFirstLanes } from './vector';

// Input gradients of the forward kernels, for the backward pass with frozen weights
// (src/grad/wasm.ts; the TypeScript oracles are src/grad/{attention,layer-norm,gelu}.ts).
// The products run on the GEMMs of gemm.ts; these add the element-wise parts. Pointers are
// byte addresses, strides and sizes in floats.

// @ts-ignore: decorator
@inline
function horizontalSum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

// ---------------------------------------------------------------- GELU′

// GELU′(x) = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π), Φ(x) = erfc(−x/√2)/2. erfc on z = |x|/√2 ≥ 0 by
// the Chebyshev-fitted form of Numerical Recipes (§6.2; fractional error < 1.2e-7 for all z):
//   erfc(z) = t·exp(−z² + C(t)),  t = 1/(1 + z/2),  C a degree-9 polynomial
// then Φ(x) = erfc(z)/2 for x < 0 and 1 − erfc(z)/2 for x ≥ 0 (tails keep their relative accuracy).
const C0: f32 = -1.26551223;
const C1: f32 = 1.00002368;
const C2: f32 = 0.37409196;
const C3: f32 = 0.09678418;
const C4: f32 = -0.18628806;
const C5: f32 = 0.27886807;
const C6: f32 = -1.13520398;
const C7: f32 = 1.48851587;
const C8: f32 = -0.82215223;
const C9: f32 = 0.17087277;
const INV_SQRT2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// @ts-ignore: decorator
@inline
function geluDerivativeF32x4(x: v128): v128 {
  const z = f32x4.mul(f32x4.abs(x), f32x4.splat(INV_SQRT2));
  const t = f32x4.div(f32x4.splat(1), madd(z, f32x4.splat(0.5), f32x4.splat(1)));
  let c = madd(f32x4.splat(C9), t, f32x4.splat(C8));
  c = madd(c, t, f32x4.splat(C7));
  c = madd(c, t, f32x4.splat(C6));
  c = madd(c, t, f32x4.splat(C5));
  c = madd(c, t, f32x4.splat(C4));
  c = madd(c, t, f32x4.splat(C3));
  c = madd(c, t, f32x4.splat(C2));
  c = madd(c, t, f32x4.splat(C1));
  c = madd(c, t, f32x4.splat(C0));
  const zz = f32x4.mul(z, z);
  const halfErfc = f32x4.mul(f32x4.mul(t, expF32x4(f32x4.sub(c, zz))), f32x4.splat(0.5)); // Φ(−|x|)
  const cdf = v128.bitselect(f32x4.sub(f32x4.splat(1), halfErfc), halfErfc, f32x4.ge(x, f32x4.splat(0)));
  const density = f32x4.mul(expF32x4(f32x4.neg(zz)), f32x4.splat(INV_SQRT_2PI)); // φ(x)
  return madd(x, density, cdf);
}

/** dx[i] = dy[i]·GELU′(x[i]) for i < length (dx may be dy). */
export function f32_gelu_backward_wasmsimd(x: usize, dy: usize, length: i32, dx: usize): void {
  const vectorBytes = <usize>(length & ~3) << 2;
  let j: usize = 0;
  for (; j < vectorBytes; j += 16) v128.store(dx + j, f32x4.mul(v128.load(dy + j), geluDerivativeF32x4(v128.load(x + j))));
  const rest = length & 3;
  if (rest) storeFirstLanes(dx + j, f32x4.mul(loadFirstLanes(dy + j, rest), geluDerivativeF32x4(loadFirstLanes(x + j, rest))), rest);
}

// ---------------------------------------------------------------- LayerNorm

/**
 * dx[m, d] += r·(g − mean(g) − x̂·mean(g⊙x̂)) per row, g = dy⊙γ, x̂ = (x − μ)·r, r = 1/√(σ² + eps),
 * from the forward's input x (μ and σ² recomputed as f32_layernorm_rows_wasmsimd does).
 */
export function f32_layernorm_backward_rows_wasmsimd(x: usize, m: i32, d: i32, gamma: usize, eps: f32, dy: usize, dx: usize): void {
  const rowBytes = <usize>d << 2;
  const vectorBytes = <usize>(d & ~3) << 2;
  const rest = d & 3;
  for (let r = 0; r < m; r++, x += rowBytes, dy += rowBytes, dx += rowBytes) {
    let sumV = f32x4.splat(0);
    let j: usize = 0;
    for (; j < vectorBytes; j += 16) sumV = f32x4.add(sumV, v128.load(x + j));
    if (rest) sumV = f32x4.add(sumV, loadFirstLanes(x + j, rest));
    const meanV = f32x4.splat(horizontalSum(sumV) / <f32>d);

    let squaresV = f32x4.splat(0);
    for (j = 0; j < vectorBytes; j += 16) {
      const c = f32x4.sub(v128.load(x + j), meanV);
      squaresV = madd(c, c, squaresV);
    }
    if (rest) {
      const c = v128.and(f32x4.sub(loadFirstLanes(x + j, rest), meanV), laneMask(rest));
      squaresV = madd(c, c, squaresV);
    }
    const invStdV = f32x4.splat(<f32>1.0 / Mathf.sqrt(horizontalSum(squaresV) / <f32>d + eps));

    // mean(g) and mean(g⊙x̂) (tail lanes of g are 0: loadFirstLanes zero-fills dy)
    let gV = f32x4.splat(0);
    let gxV = f32x4.splat(0);
    for (j = 0; j < vectorBytes; j += 16) {
      const g = f32x4.mul(v128.load(dy + j), v128.load(gamma + j));
      gV = f32x4.add(gV, g);
      gxV = madd(g, f32x4.mul(f32x4.sub(v128.load(x + j), meanV), invStdV), gxV);
    }
    if (rest) {
      const g = f32x4.mul(loadFirstLanes(dy + j, rest), loadFirstLanes(gamma + j, rest));
      gV = f32x4.add(gV, g);
      gxV = madd(g, f32x4.mul(f32x4.sub(loadFirstLanes(x + j, rest), meanV), invStdV), gxV);
    }
    const meanG = f32x4.splat(horizontalSum(gV) / <f32>d);
    const meanGX = f32x4.splat(horizontalSum(gxV) / <f32>d);

    for (j = 0; j < vectorBytes; j += 16) {
      const xHat = f32x4.mul(f32x4.sub(v128.load(x + j), meanV), invStdV);
      const g = f32x4.mul(v128.load(dy + j), v128.load(gamma + j));
      const inner = f32x4.sub(f32x4.sub(g, meanG), f32x4.mul(xHat, meanGX));
      v128.store(dx + j, madd(invStdV, inner, v128.load(dx + j)));
    }
    if (rest) {
      const xHat = f32x4.mul(f32x4.sub(loadFirstLanes(x + j, rest), meanV), invStdV);
      const g = f32x4.mul(loadFirstLanes(dy + j, rest), loadFirstLanes(gamma + j, rest));
      const inner = f32x4.sub(f32x4.sub(g, meanG), f32x4.mul(xHat, meanGX));
      storeFirstLanes(dx + j, madd(invStdV, inner, loadFirstLanes(dx + j, rest)), rest);
    }
  }
}

// ---------------------------------------------------------------- attention

/**
 * Per row of P [rows, cols]: dS = P ⊙ (dP − Σ_j P_j·dP_j) (the softmax's input gradient);
 * colSums[j] += dS[j] (when colSums ≠ 0); then dP ← scale·dS in place.
 */
function softmaxBackwardRows(probs: usize, dProbs: usize, rows: i32, cols: i32, scale: f32, colSums: usize): void {
  const rowBytes = <usize>cols << 2;
  const vectorBytes = <usize>(cols & ~3) << 2;
  const rest = cols & 3;
  const scaleV = f32x4.splat(scale);
  for (let r = 0; r < rows; r++, probs += rowBytes, dProbs += rowBytes) {
    let dotV = f32x4.splat(0);
    let j: usize = 0;
    for (; j < vectorBytes; j += 16) dotV = madd(v128.load(probs + j), v128.load(dProbs + j), dotV);
    if (rest) dotV = madd(loadFirstLanes(probs + j, rest), loadFirstLanes(dProbs + j, rest), dotV);
    const dot = f32x4.splat(horizontalSum(dotV));
    for (j = 0; j < vectorBytes; j += 16) {
      const dS = f32x4.mul(v128.load(probs + j), f32x4.sub(v128.load(dProbs + j), dot));
      if (colSums) v128.store(colSums + j, f32x4.add(v128.load(colSums + j), dS));
      v128.store(dProbs + j, f32x4.mul(dS, scaleV));
    }
    if (rest) {
      const dS = f32x4.mul(loadFirstLanes(probs + j, rest), f32x4.sub(loadFirstLanes(dProbs + j, rest), dot));
      if (colSums) storeFirstLanes(colSums + j, f32x4.add(loadFirstLanes(colSums + j, rest), dS), rest);
      storeFirstLanes(dProbs + j, f32x4.mul(dS, scaleV), rest);
    }
  }
}

/** dst[j, i] = src[i, j] for a square [n, n] matrix (rows n floats apart in both). */
function transposeSquare(src: usize, n: i32, dst: usize): void {
  const rowBytes = <usize>n << 2;
  for (let i = 0; i < n; i++) {
    const from = src + <usize>i * rowBytes;
    const to = dst + (<usize>i << 2);
    for (let j = 0; j < n; j++) store<f32>(to + <usize>j * rowBytes, load<f32>(from + (<usize>j << 2)));
  }
}

// @ts-ignore: decorator
@inline
function valuePanelsFloats(n: i32, vDim: i32): i32 {
  return (((n + PACKED_PANEL - 1) / PACKED_PANEL) * PACKED_PANEL * vDim + 3) & ~3; // 16-byte aligned end
}

/** Floats of scratch f32_attention_head_backward_wasmsimd needs: Vᵀ packed, one matrix in panels of 8, and Pᵀ. */
export function f32_attention_backward_scratch_floats(n: i32, qkDim: i32, vDim: i32): i32 {
  const width = max(qkDim, vDim);
  return valuePanelsFloats(n, vDim) + ((width + 7) >> 3) * 8 * n + n * n;
}

/**
 * The input gradients of one head of f32_attention_head_wasmsimd (the math in src/grad/attention.ts):
 *   dP = dProbs + dO·Vᵀ;  dS = P ⊙ (dP − rowsum(P ⊙ dP));  dKeyBias[k] += Σ_q dS[q, k] (if ≠ 0)
 *   dQ = scale·dS·K,  dK = scale·dSᵀ·Q,  dV = Pᵀ·dO
 * q, k, v: the head's first Q, K, V element of token 0, rows rowStride apart (the qkv rows);
 * probs: the head's [n, n] P; dOut: its dO, rows outStride apart; dProbs: [n, n] in, clobbered;
 * dq, dk, dv: where dQ, dK, dV go, rows dRowStride apart (stored, not accumulated);
 * scratch: f32_attention_backward_scratch_floats(n, qkDim, vDim) floats, 16-byte aligned.
 */
export function f32_attention_head_backward_wasmsimd(
  q: usize, k: usize, v: usize, rowStride: i32, n: i32, qkDim: i32, vDim: i32, scale: f32,
  probs: usize, dOut: usize, outStride: i32, dProbs: usize, dq: usize, dk: usize, dv: usize, dRowStride: i32,
  dKeyBias: usize, scratch: usize,
): void {
  const valuePanels = scratch;
  const rowPanels = valuePanels + (<usize>valuePanelsFloats(n, vDim) << 2);
  const transposed = rowPanels + (<usize>(((max(qkDim, vDim) + 7) >> 3) * 8 * n) << 2);
  const rowPanelStride = n << 3;

  // dP += dO·Vᵀ  (V's rows are the columns of Vᵀ: packed as a weight matrix is)
  f32_pack_weights(v, rowStride, n, vDim, valuePanels);
  f32_gemm_packed_wasmsimd(n, n, vDim, dOut, outStride, valuePanels, 0, dProbs, n, EPILOGUE_ACCUMULATE);
  // scale·dS in place, dKeyBias += column sums of dS
  softmaxBackwardRows(probs, dProbs, n, n, scale, dKeyBias);
  // dQ = (scale·dS)·K
  f32_pack_rows8(k, rowStride, n, qkDim, rowPanels);
  f32_gemm_4x8_wasmsimd(n, qkDim, n, dProbs, n, rowPanels, rowPanelStride, 8, 0, dq, dRowStride, EPILOGUE_STORE);
  // dK = (scale·dS)ᵀ·Q
  transposeSquare(dProbs, n, transposed);
  f32_pack_rows8(q, rowStride, n, qkDim, rowPanels);
  f32_gemm_4x8_wasmsimd(n, qkDim, n, transposed, n, rowPanels, rowPanelStride, 8, 0, dk, dRowStride, EPILOGUE_STORE);
  // dV = Pᵀ·dO
  transposeSquare(probs, n, transposed);
  f32_pack_rows8(dOut, outStride, n, vDim, rowPanels);
  f32_gemm_4x8_wasmsimd(n, vDim, n, transposed, n, rowPanels, rowPanelStride, 8, 0, dv, dRowStride, EPILOGUE_STORE);
}
