/**
 * The im2col of a ViT's patch embedding (a stride-P convolution): out[p, (c, y, x)] =
 * image[c, py·P + y, px·P + x] for the patches p = py·(S/P) + px in row-major order. A copy,
 * sixteen bytes at a time (the same values as src/kernels/reference.ts's loop).
 *   image: [C, S, S] float32   out: [(S/P)², C·P·P] float32
 */
export function f32_im2col(image: usize, C: i32, S: i32, P: i32, out: usize): void {
  const side = S / P;
  const rowBytes = <usize>P << 2;
  const vectorBytes = rowBytes & ~(<usize>15);
  let o = out;
  for (let py = 0; py < side; py++) {
    for (let px = 0; px < side; px++) {
      for (let c = 0; c < C; c++) {
        let src = image + ((<usize>(c * S + py * P) * <usize>S + <usize>(px * P)) << 2);
        for (let y = 0; y < P; y++, src += <usize>S << 2, o += rowBytes) {
          let d: usize = 0;
          for (; d < vectorBytes; d += 16) v128.store(o + d, v128.load(src + d));
          for (; d < rowBytes; d += 4) store<f32>(o + d, load<f32>(src + d));
        }
      }
    }
  }
}
