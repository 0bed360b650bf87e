/**
 * out[m, d] = (x − mean)/√(var + eps) · gamma + beta per row, population variance; two passes
 * over each row in f32 (mean, then the centred sum of squares).
 */
export function f32_layernorm_rows_wasmsimd(
  x: usize, m: i32, d: i32, gamma: usize, beta: usize, eps: f32, out: usize,
): void {
  const rowBytes = <usize>d << 2;
  const vectorBytes = <usize>(d & ~3) << 2;
  for (let r = 0; r < m; r++, x += rowBytes, out += rowBytes) {
    let sumV = f32x4.splat(0);
    let j: usize = 0;
    for (; j < vectorBytes; j += 16) sumV = f32x4.add(sumV, v128.load(x + j));
    let sum = f32x4.extract_lane(sumV, 0) + f32x4.extract_lane(sumV, 1)
      + f32x4.extract_lane(sumV, 2) + f32x4.extract_lane(sumV, 3);
    for (; j < rowBytes; j += 4) sum += load<f32>(x + j);
    const mean = sum / <f32>d;
    const meanV = f32x4.splat(mean);

    let squaresV = f32x4.splat(0);
    for (j = 0; j < vectorBytes; j += 16) {
      const c = f32x4.sub(v128.load(x + j), meanV);
      squaresV = f32x4.add(squaresV, f32x4.mul(c, c));
    }
    let squares = f32x4.extract_lane(squaresV, 0) + f32x4.extract_lane(squaresV, 1)
      + f32x4.extract_lane(squaresV, 2) + f32x4.extract_lane(squaresV, 3);
    for (; j < rowBytes; j += 4) {
      const c = load<f32>(x + j) - mean;
      squares += c * c;
    }
    const invStd: f32 = 1.0 / Mathf.sqrt(squares / <f32>d + eps);
    const invStdV = f32x4.splat(invStd);

    for (j = 0; j < vectorBytes; j += 16) {
      const normed = f32x4.mul(f32x4.sub(v128.load(x + j), meanV), invStdV);
      v128.store(out + j, f32x4.add(f32x4.mul(normed, v128.load(gamma + j)), v128.load(beta + j)));
    }
    for (; j < rowBytes; j += 4) {
      store<f32>(out + j, (load<f32>(x + j) - mean) * invStd * load<f32>(gamma + j) + load<f32>(beta + j));
    }
  }
}
